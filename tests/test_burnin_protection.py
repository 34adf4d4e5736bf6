"""The burn-in's ``protection`` criterion against a real database: double exits
outside recorded races, the UNPROTECTED share, thresholds from the environment,
and the figures the verdict (``aitrapp burnin check``) and the daily report show."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from rich.console import Console

from aitrapp.db import repo
from aitrapp.db.pool import Pool
from aitrapp.exceptions import ConfigError
from aitrapp.report.burnin import BurninCriteria, Verdict, evaluate_session, load_criteria
from aitrapp.report.data import load_daily_report
from aitrapp.report.render_html import render_html
from aitrapp.report.render_terminal import render_report, render_verdict
from test_burnin_support import TRADES, SessionBuilder, ist, passing_session

pytestmark = pytest.mark.integration

NOW = datetime(2026, 1, 5, 10, 30, tzinfo=UTC)


def crit(v: Verdict, name: str = "protection") -> Any:
    return next(c for c in v.criteria if c.name == name)


async def judge(pool: Pool, s: SessionBuilder, **kw: Any) -> Verdict:
    return await evaluate_session(pool, s.id, now=NOW, criteria=BurninCriteria(**kw))


async def add_trades(s: SessionBuilder, reasons: list[str]) -> None:
    """Trades with their decisions (planned risk 100), one exit reason each."""
    for i, reason in enumerate(reasons):
        at = ist(10, 0) + timedelta(minutes=i)
        _, dec = await s.decision(symbol="SBIN", side="BUY", qty=10, entry="800", ts=at)
        await repo.execute(
            s.pool,
            repo.TradeRow(
                session_id=s.id, decision_id=dec.id, plan_id=dec.plan_id, strategy="ORB",
                exchange="NSE", tradingsymbol="SBIN", side="BUY", qty=10,
                entry_price=Decimal("800"), exit_price=Decimal("790"),
                gross_pnl=Decimal("-100"), charges=Decimal("5"), net_pnl=Decimal("-105"),
                exit_reason=reason, opened_at=at, closed_at=at + timedelta(seconds=30),
            ),
        )  # fmt: skip


async def test_a_double_exit_outside_a_race_fails_a_recorded_race_passes(db_pool: Pool) -> None:
    unraced, _ = await passing_session(db_pool, end=False)
    await unraced.bracket(TRADES[1], sibling_status="COMPLETE")  # STOP filled, then TP too
    await unraced.end(double_exits=1, races=0)
    c = crit(await judge(db_pool, unraced))
    assert not c.passed and c.measured == 1
    assert "1 double exits outside recorded races" in c.detail

    raced, _ = await passing_session(db_pool, end=False)
    await raced.bracket(TRADES[1], sibling_status="COMPLETE")
    await raced.end(double_exits=1, races=1)  # the kernel recorded it as a race
    v = await judge(db_pool, raced)
    assert crit(v).passed and crit(v).measured == 0
    assert v.protection is not None
    assert (v.protection.double_exits, v.protection.races) == (1, 1)
    # the lifecycle check still sees a sibling that filled after the bracket closed
    assert not crit(v, "no_orphan_siblings").passed


@pytest.mark.parametrize(("unprotected", "passes"), [(3, False), (2, True)])
async def test_unprotected_six_percent_fails_four_percent_passes(
    db_pool: Pool, unprotected: int, passes: bool
) -> None:
    s, _ = await passing_session(db_pool, end=False)  # five trades, none UNPROTECTED
    await add_trades(s, ["UNPROTECTED"] * unprotected + ["STOP"] * (45 - unprotected))
    await s.end()
    v = await judge(db_pool, s)
    c = crit(v)
    assert v.protection is not None and v.protection.trades == 50
    assert c.passed is passes, c.detail
    if not passes:
        assert "UNPROTECTED 3 of 50 trades = 6.0 % (> 5 %)" in c.detail
    else:
        assert "UNPROTECTED 2 (4.0 %)" in c.detail


async def test_thresholds_come_from_the_environment(
    db_pool: Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    s, _ = await passing_session(db_pool, end=False)
    await add_trades(s, ["UNPROTECTED"] * 3 + ["STOP"] * 42)
    await s.end()
    assert not crit(await evaluate_session(db_pool, s.id, now=NOW)).passed
    monkeypatch.setenv("AITRAPP_BURNIN_MAX_UNPROTECTED_PCT", "6")
    assert load_criteria().max_unprotected_pct == 6.0
    assert crit(await evaluate_session(db_pool, s.id, now=NOW)).passed
    monkeypatch.setenv("AITRAPP_BURNIN_MAX_UNPROTECTED_PCT", "150")
    with pytest.raises(ConfigError, match="AITRAPP_BURNIN_MAX_UNPROTECTED_PCT"):
        load_criteria()
    monkeypatch.delenv("AITRAPP_BURNIN_MAX_UNPROTECTED_PCT")
    monkeypatch.setenv("AITRAPP_BURNIN_MAX_UNRACED_DOUBLE_EXITS", "-1")
    with pytest.raises(ConfigError, match="AITRAPP_BURNIN_MAX_UNRACED_DOUBLE_EXITS"):
        load_criteria()


def test_weaker_protection_thresholds_are_not_as_strict() -> None:
    default = BurninCriteria()
    assert default.at_least_as_strict_as(default)
    assert not BurninCriteria(max_unprotected_pct=10).at_least_as_strict_as(default)
    assert not BurninCriteria(max_unraced_double_exits=1).at_least_as_strict_as(default)
    assert BurninCriteria(max_unprotected_pct=1).at_least_as_strict_as(default)


async def test_verdict_carries_and_shows_the_protection_figures(db_pool: Pool) -> None:
    s, _ = await passing_session(db_pool, end=False)
    await add_trades(s, ["STOP_GAPPED"])  # lost 100 of a planned 100
    watchdog = {"STOP_FILL_TIMEOUT": 2, "STOP_UNFILLED": 1}
    await s.end(races=0, protection={"watchdog": watchdog})
    v = await judge(db_pool, s)
    p = v.protection
    assert p is not None and p.trades == 6
    assert p.exits["TP"] == 3 and p.exits["STOP"] == 2 and p.exits["STOP_GAPPED"] == 1
    assert p.watchdog == watchdog and p.watchdog_escalations == 3
    # losses over a planned 100 each: SBIN -100, INFY -200, HDFCBANK -400: 1, 2, 4
    assert p.loss_risk_worst == pytest.approx(4.0)
    assert (p.beyond, p.beyond_gapped) == (1, 0)  # HDFCBANK, and nothing says it gapped
    doc = v.to_json()
    assert doc["protection"]["exits"]["STOP_GAPPED"] == 1
    assert doc["thresholds"]["max_unprotected_pct"] == 5.0
    console = Console(record=True, width=160)
    render_verdict(v, console)
    out = console.export_text()
    assert "Protection: did the brackets hold their plans?" in out
    assert "median 2.00x, p95 3.80x, worst 4.00x" in out
    assert "3 (STOP_FILL_TIMEOUT 2, STOP_UNFILLED 1)" in out
    assert "1: 0 gapped past the stop (exit STOP_GAPPED only: no ticks here), 1 not" in out


# ---- the daily report shows the same figures ----
async def test_daily_report_shows_protection_in_the_terminal_and_html(db_pool: Pool) -> None:
    s, _ = await passing_session(db_pool, end=False)
    await add_trades(s, ["UNPROTECTED"])
    await s.end(races=0, protection={"watchdog": {"STOP_UNFILLED": 1}})
    r = await load_daily_report(db_pool, session_id=s.id, now=NOW)
    p = r.protection
    assert p is not None and p.trades == 6 and p.unprotected == 1
    assert p.watchdog_escalations == 1
    console = Console(record=True, width=180)
    render_report(r, console)
    out = console.export_text()
    assert "Protection: did the brackets hold their plans?" in out
    assert "exit UNPROTECTED" in out and "1 (16.7 %)" in out
    assert "median 2.00x, p95 3.80x, worst 4.00x" in out
    html = render_html(r)
    assert "<h2>Protection: did the brackets hold their plans?</h2>" in html
    assert '<tr><th>exit UNPROTECTED</th><td class="num">1 (16.7 %)</td></tr>' in html
    assert "1 (STOP_FILL_TIMEOUT 0, STOP_UNFILLED 1)" in html
