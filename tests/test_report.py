"""The daily report: figures checked against the hand-computed fixture trades
(see the table in test_burnin_support), latency sources, the HTML and PNGs."""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from uuid import uuid4

import pytest
from rich.console import Console

from aitrapp.db.pool import Pool
from aitrapp.db.repo import TradeRow
from aitrapp.report import ReportError, load_daily_report
from aitrapp.report.data import (
    SOURCE_DECISIONS,
    SOURCE_ORDER_EVENTS,
    SOURCE_SUMMARY,
    pnl_summary,
)
from aitrapp.report.render_html import default_out_dir, render_html, write_html_report
from aitrapp.report.render_terminal import render_report
from test_burnin_support import DAY, TRADES, SessionBuilder, TradeSpec, ist, passing_session

pytestmark = pytest.mark.integration

NOW = datetime(2026, 1, 5, 10, 30, tzinfo=UTC)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, path
    width, height = struct.unpack(">II", data[16:24])
    return width, height


async def test_pnl_figures_match_the_hand_computation(db_pool: Pool) -> None:
    s, _ = await passing_session(db_pool)
    r = await load_daily_report(db_pool, session_id=s.id, now=NOW)
    p = r.pnl
    assert (p.gross_pnl, p.charges, p.net_pnl) == (
        Decimal("200.00"),
        Decimal("200.75"),
        Decimal("-0.75"),
    )
    assert (p.trades, p.wins, p.losses) == (5, 3, 2)
    assert p.win_rate == pytest.approx(0.6)
    assert [pt.equity for pt in p.equity] == [
        Decimal(x) for x in ("174.50", "-55.75", "124.25", "424.25", "-0.75")
    ]
    assert p.max_drawdown.amount == Decimal("425.00")
    assert (p.max_drawdown.peak_ts, p.max_drawdown.trough_ts) == (ist(13), ist(14))
    # Inserted out of order, listed by close time.
    assert [t.tradingsymbol for t in r.trades] == [t.symbol for t in TRADES]
    assert p.by_strategy["EmaCross"].trades == 5
    assert p.by_strategy["EmaCross"].net_pnl == Decimal("-0.75")


def test_drawdown_counts_from_the_start_of_the_day() -> None:
    """A day that only loses: the peak is the flat start (0)."""
    losing = [TradeSpec("X", "BUY", 1, "100", "99", "-1.00", "0.50", 10 + i, "STOP")
              for i in range(3)]  # fmt: skip
    rows = []
    for spec in losing:
        rows.append(
            TradeRow(
                session_id=uuid4(),
                decision_id=uuid4(),
                plan_id="p",
                strategy="S",
                exchange="NSE",
                tradingsymbol="X",
                side="BUY",
                qty=1,
                entry_price=Decimal(spec.entry),
                exit_price=Decimal(spec.exit),
                gross_pnl=Decimal(spec.gross),
                charges=Decimal(spec.charges),
                net_pnl=spec.net,
                exit_reason="STOP",
                opened_at=ist(9),
                closed_at=ist(spec.closed_hour),
            )
        )
    p = pnl_summary(rows)
    assert p.max_drawdown.amount == Decimal("4.50")
    assert p.max_drawdown.peak_ts is None and p.max_drawdown.trough_ts == ist(12)
    assert p.win_rate == 0.0
    empty = pnl_summary([])
    assert empty.win_rate is None and empty.max_drawdown.amount == 0


async def test_activity_counts(db_pool: Pool) -> None:
    s, _ = await passing_session(db_pool)
    r = await load_daily_report(db_pool, session_id=s.id, now=NOW)
    assert (r.signals, r.decisions) == (60, 5)
    assert r.signals_by_strategy == {"EmaCross": 60}
    assert r.risk_blocks == {"COOLDOWN": 7, "PORTFOLIO_HEAT": 3}
    assert list(r.risk_blocks) == ["COOLDOWN", "PORTFOLIO_HEAT"]  # most frequent first
    assert r.orders_by_status == {"COMPLETE": 10, "CANCELLED": 5}
    assert r.orders_by_role == {"ENTRY": 5, "STOP": 5, "TP": 5}
    assert len(r.positions) == 5 and r.open_positions == 0
    assert [x.id for x in r.sessions] == [s.id]
    assert r.sessions[0].burnin_passed is None  # never judged
    assert r.title == f"AITRAPP session {s.id} (2026-01-05)"


async def test_latency_falls_back_to_decisions_and_order_events(db_pool: Pool) -> None:
    s, _ = await passing_session(db_pool)
    r = await load_daily_report(db_pool, session_id=s.id, now=NOW)
    (t,) = r.tick_to_decision
    # Samples 0.5, 1, 2, 4, 20 ms; nearest rank: p50 = 3rd, p99 = p99.9 = 5th.
    assert (t.source, t.count, t.p50_ms, t.p99_ms, t.p999_ms) == (SOURCE_DECISIONS, 5, 2.0,
                                                                  20.0, 20.0)  # fmt: skip
    assert (t.slo_ms, t.slo_compliance) == (10.0, 0.8)
    (o,) = r.order_latency
    assert (o.source, o.count) == (SOURCE_ORDER_EVENTS, 5)
    assert o.p50_ms == pytest.approx(50.0) and o.p999_ms == pytest.approx(50.0)
    assert sorted(r.decision_latencies_ms) == [0.5, 1.0, 2.0, 4.0, 20.0]
    r2 = await load_daily_report(db_pool, session_id=s.id, now=NOW, default_slo_ms=1.5)
    assert r2.tick_to_decision[0].slo_compliance == pytest.approx(0.4)


async def test_latency_prefers_the_session_summary(db_pool: Pool) -> None:
    block = {"count": 450_000, "p50_ms": 0.8, "p99_ms": 3.2, "p999_ms": 7.5,
             "slo_ms": 5, "slo_compliance": 0.9995}  # fmt: skip
    orders = {"count": 12, "p50_ms": 51.0, "p99_ms": 60.0, "p999_ms": 61.0}
    s, _ = await passing_session(
        db_pool, tick_to_decision=block, order_latency=orders, ticks=450_000
    )
    r = await load_daily_report(db_pool, session_id=s.id, now=NOW)
    (t,) = r.tick_to_decision
    assert (t.source, t.count, t.p50_ms, t.p99_ms, t.p999_ms, t.slo_ms, t.slo_compliance) == (
        SOURCE_SUMMARY, 450_000, 0.8, 3.2, 7.5, 5.0, 0.9995)  # fmt: skip
    (o,) = r.order_latency
    assert (o.count, o.p50_ms, o.p99_ms) == (12, 51.0, 60.0)
    assert r.sessions[0].ticks == 450_000
    assert r.notes == ()


async def test_malformed_summary_is_named_and_falls_back(db_pool: Pool) -> None:
    bad = {"count": 10, "p50_ms": 1, "p99_ms": "slow", "p999_ms": 3}
    s, _ = await passing_session(db_pool, tick_to_decision=bad, order_latency=[1, 2])
    r = await load_daily_report(db_pool, session_id=s.id, now=NOW)
    assert r.tick_to_decision[0].source == SOURCE_DECISIONS
    assert r.order_latency[0].source == SOURCE_ORDER_EVENTS
    assert any("summary.tick_to_decision.p99_ms is not a number: 'slow'" in n for n in r.notes)
    assert any("summary.order_latency is not an object" in n for n in r.notes)


async def test_summary_without_samples_falls_back_quietly(db_pool: Pool) -> None:
    """The runner writes count 0 and None percentiles before any tick: not an error."""
    empty = {"count": 0, "p50_ms": None, "p99_ms": None, "p999_ms": None, "max_ms": None,
             "slo_ms": 5.0, "slo_compliance": None}  # fmt: skip
    s, _ = await passing_session(db_pool, tick_to_decision=empty, order_latency=empty)
    r = await load_daily_report(db_pool, session_id=s.id, now=NOW)
    assert r.tick_to_decision[0].source == SOURCE_DECISIONS
    assert r.order_latency[0].source == SOURCE_ORDER_EVENTS
    assert r.notes == ()


async def test_a_date_covers_all_its_sessions_or_one_mode(db_pool: Pool) -> None:
    a, _ = await passing_session(db_pool)
    b, _ = await passing_session(db_pool, feed="synthetic", trades=TRADES[:2])
    other_day = DAY.replace(day=6)
    await passing_session(db_pool, day=other_day)
    r = await load_daily_report(db_pool, day=DAY, now=NOW)
    assert {x.id for x in r.sessions} == {a.id, b.id}
    assert r.session_id is None and r.title == "AITRAPP daily report 2026-01-05"
    assert r.pnl.trades == 7
    assert r.pnl.net_pnl == Decimal("-0.75") + Decimal("174.50") - Decimal("230.25")
    assert len(r.tick_to_decision) == 2
    assert {x.id: x.synthetic for x in r.sessions} == {a.id: False, b.id: True}
    with pytest.raises(ReportError, match="no LIVE sessions recorded for 2026-01-05"):
        await load_daily_report(db_pool, day=DAY, mode="LIVE", now=NOW)
    with pytest.raises(ReportError, match="no sessions recorded for 2026-01-07"):
        await load_daily_report(db_pool, day=DAY.replace(day=7), now=NOW)
    with pytest.raises(ReportError, match="traded on 2026-01-05, not on 2026-01-06"):
        await load_daily_report(db_pool, day=other_day, session_id=a.id, now=NOW)
    missing = uuid4()
    with pytest.raises(ReportError, match=f"no session with id {missing}"):
        await load_daily_report(db_pool, session_id=missing, now=NOW)
    with pytest.raises(ReportError, match="give a date or a session id"):
        await load_daily_report(db_pool, now=NOW)


async def test_html_report_with_both_charts(db_pool: Pool, tmp_path: Path) -> None:
    s, _ = await passing_session(db_pool, tick_to_decision={
        "count": 100, "p50_ms": 0.8, "p99_ms": 3.2, "p999_ms": 7.5, "slo_ms": 5,
        "slo_compliance": 0.99})  # fmt: skip
    r = await load_daily_report(db_pool, day=DAY, now=NOW)
    out = write_html_report(r, base_dir=tmp_path / "reports")
    assert out.html == tmp_path / "reports" / "2026-01-05" / "report.html"
    for png in (out.equity_png, out.latency_png):
        assert png.parent == out.html.parent
        assert png.stat().st_size > 5_000
        assert png_size(png) == (900, 400)
    html = out.html.read_text(encoding="utf-8")
    assert 'src="equity.png"' in html and 'src="latency.png"' in html
    for figure in ("200.00", "200.75", "-0.75", "60.0 %", "425.00", "COOLDOWN", str(s.id)):
        assert figure in html, figure
    assert not list(out.html.parent.glob(".*.tmp"))


async def test_session_report_goes_to_its_own_folder(db_pool: Pool, tmp_path: Path) -> None:
    s, _ = await passing_session(db_pool)
    r = await load_daily_report(db_pool, session_id=s.id, now=NOW)
    assert default_out_dir(r, tmp_path) == tmp_path / "2026-01-05" / f"session-{s.id.hex[:8]}"
    out = write_html_report(r, tmp_path / "custom")
    assert out.html == tmp_path / "custom" / "report.html" and out.latency_png.exists()


async def test_empty_session_still_renders(db_pool: Pool, tmp_path: Path) -> None:
    s = await SessionBuilder.start(db_pool, feed="synthetic")
    await s.end()
    r = await load_daily_report(db_pool, session_id=s.id, now=NOW)
    assert r.pnl.trades == 0 and r.pnl.win_rate is None and r.pnl.net_pnl == 0
    assert r.tick_to_decision == () and r.order_latency == ()
    out = write_html_report(r, tmp_path)
    assert png_size(out.equity_png) == (900, 400)
    assert png_size(out.latency_png) == (900, 400)
    html = out.html.read_text(encoding="utf-8")
    assert "no latency data" in html and "SYNTHETIC" in html


async def test_html_escapes_database_text(db_pool: Pool) -> None:
    s, _ = await passing_session(db_pool, trades=())
    await s.risk_blocks("<script>alert(1)</script>", 1)
    r = await load_daily_report(db_pool, session_id=s.id, now=NOW)
    html = render_html(r)
    assert "<script>" not in html and "&lt;script&gt;" in html


async def test_terminal_tables(db_pool: Pool) -> None:
    s, _ = await passing_session(db_pool)
    r = await load_daily_report(db_pool, session_id=s.id, now=NOW)
    console = Console(record=True, width=220, color_system=None)
    render_report(r, console)
    text = console.export_text()
    for figure in ("200.75", "-0.75", "60.0 %", "425.00", "PORTFOLIO_HEAT", "CANCELLED",
                   "HDFCBANK", "decisions (ticks that produced one)", "80.00 %"):  # fmt: skip
        assert figure in text, figure
