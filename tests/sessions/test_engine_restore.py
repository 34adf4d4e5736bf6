"""A restarted runtime's engine resumes the day an earlier session traded.

The earlier session is written through the repo (as a session's shell and the
journal write it): two closed trades (one a loss) and one open position. A
new runtime on the same database and day must show that book in its kernel's
engine and block as the first process would have. By default a simulated
feed starts a fresh account instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import pytest

from aitrapp import Instrument, broker_tag, order_client_id
from aitrapp._core import Decision, Engine
from aitrapp.calendar import IST, ist_ns
from aitrapp.config import EngineConfig
from aitrapp.db import repo
from aitrapp.db.pool import Conn, create_pool
from aitrapp.db.repo import (
    DecisionRow,
    OrderRow,
    OrderStatusUpdate,
    PositionRow,
    SessionRow,
    SignalRow,
    TradeRow,
)
from aitrapp.recovery.engine_restore import ist_day_number, restore_engine
from aitrapp.runtime import Runtime, start_runtime
from aitrapp.universe import load_universe

from .conftest import MakeDb
from .helpers import SEC, TEST_DAY, options, plan_id, settings_for

pytestmark = pytest.mark.integration

# EMA(2) over EMA(4) on the tick path below: one upward cross, an entry signal.
# A 50-tick stop (2.50 on SBIN's 800) clears the gate's 20 bps stop floor.
EMA_ONLY = EngineConfig.parse(
    {
        "strategies": {
            "orb": {"enabled": False},
            "trend_pullback": {"enabled": False},
            "vwap_reversion": {"enabled": False},
            "ema_cross": {"enabled": True, "fast_period": 2, "slow_period": 4, "stop_ticks": 50},
        }
    }
)
PATH = (1.0, 0.999, 0.998, 0.997, 0.996, 0.998, 1.001, 1.004)
LOSS, WIN = Decimal("-800.00"), Decimal("300.00")


def at(hh: int, mm: int) -> datetime:
    return datetime.combine(TEST_DAY, time(hh, mm), tzinfo=IST).astimezone(UTC)


def by_symbol() -> dict[str, Instrument]:
    u = load_universe(on=TEST_DAY).select(["RELIANCE", "SBIN", "INFY"])
    return {i.tradingsymbol: i for i in u.instruments}


async def write_plan(
    conn: Conn,
    session: UUID,
    inst: Instrument,
    n: int,
    decided: datetime,
    *,
    entry: Decimal,
    closed_pnl: Decimal | None,
) -> str:
    """One plan: its signal, decision and filled entry; then either a trade
    (closed ``closed_pnl`` later) or an OPEN position of 10 at entry + 0.50."""
    pid = plan_id(n)
    stop, tp = entry - 5, entry + 10
    sig = SignalRow(
        session_id=session,
        ts=decided,
        instrument_token=inst.instrument_token,
        tradingsymbol=inst.tradingsymbol,
        strategy="EmaCross",
        side="BUY",
        entry=entry,
        stop=stop,
        tp=tp,
    )
    decision = DecisionRow(
        session_id=session,
        signal_id=sig.id,
        plan_id=pid,
        ts=decided,
        tradingsymbol=inst.tradingsymbol,
        strategy="EmaCross",
        side="BUY",
        qty=10,
        entry=entry,
        stop=stop,
        tp=tp,
        risk_rupees=Decimal(50),
        heat_after_pct=Decimal("0.005"),
        config_sha="c0",
    )
    cid = order_client_id("ENTRY", pid)
    order = OrderRow(
        session_id=session,
        client_order_id=cid,
        plan_id=pid,
        tag=broker_tag(cid),
        role="ENTRY",
        exchange=inst.exchange,
        tradingsymbol=inst.tradingsymbol,
        instrument_token=inst.instrument_token,
        side="BUY",
        order_type="LIMIT",
        product="MIS",
        qty=10,
        price=entry,
        created_at=decided,
        updated_at=decided,
    )
    for row in (sig, decision):
        assert await repo.execute(conn, row)
    assert await repo.insert_order_new(conn, order)
    filled = OrderStatusUpdate(
        client_order_id=cid,
        status="COMPLETE",
        filled_qty=10,
        avg_price=entry + Decimal("0.5"),
        broker_order_id=f"b{n}",
        status_message=None,
        ts=decided + timedelta(seconds=1),
    )
    assert await repo.update_order_status(conn, filled)
    if closed_pnl is None:
        position = PositionRow(
            session_id=session,
            plan_id=pid,
            instrument_token=inst.instrument_token,
            exchange=inst.exchange,
            tradingsymbol=inst.tradingsymbol,
            side="BUY",
            qty=10,
            avg_entry=entry + Decimal("0.5"),
            opened_at=decided,
            updated_at=decided,
        )
        assert await repo.execute(conn, position)
        return pid
    trade = TradeRow(
        session_id=session,
        decision_id=decision.id,
        plan_id=pid,
        strategy="EmaCross",
        exchange=inst.exchange,
        tradingsymbol=inst.tradingsymbol,
        side="BUY",
        qty=10,
        entry_price=entry + Decimal("0.5"),
        exit_price=entry + Decimal("0.5") + closed_pnl / 10,
        gross_pnl=closed_pnl,
        charges=Decimal(20),
        net_pnl=closed_pnl - 20,
        exit_reason="TP" if closed_pnl > 0 else "STOP",
        opened_at=decided,
        closed_at=decided + timedelta(minutes=5),
    )
    assert await repo.execute(conn, trade)
    return pid


async def earlier_session(url: str) -> str:
    """Earlier today: SBIN won, INFY lost (closed 10:05), RELIANCE still held.
    Returns the open plan's id."""
    s = by_symbol()
    conn = await create_pool(url, min_size=1, max_size=1)
    try:
        session = SessionRow(trading_date=TEST_DAY, mode="PAPER", feed="kite", started_at=at(9, 15))
        assert await repo.create_session(conn, session)
        sid = session.id
        await write_plan(conn, sid, s["SBIN"], 1, at(9, 40), entry=Decimal(800), closed_pnl=WIN)
        await write_plan(conn, sid, s["INFY"], 2, at(10, 0), entry=Decimal(1500), closed_pnl=LOSS)
        return await write_plan(
            conn, sid, s["RELIANCE"], 3, at(10, 1), entry=Decimal(1450), closed_pnl=None
        )
    finally:
        await conn.close()


@pytest.fixture
async def runtime(make_db: MakeDb, tmp_path: Path) -> AsyncIterator[tuple[Runtime, str]]:
    url = await make_db()
    open_plan = await earlier_session(url)
    opts = options(engine=EMA_ONLY, start_feed=False, restore_day=True)
    rt = await start_runtime(settings_for(url, tmp_path), opts)
    try:
        yield rt, open_plan
    finally:
        await rt.stop()


def cross(rt: Runtime, symbol: str, start: datetime) -> list[str]:
    """Feeds the session's kernel a path that crosses up on ``symbol``; block
    reasons or DECISION."""
    inst = by_symbol()[symbol]
    t0 = ist_ns(TEST_DAY, start.astimezone(IST).time().replace(tzinfo=None))
    base = {"RELIANCE": 1450.0, "SBIN": 800.0, "INFY": 1500.0}[symbol]
    kinds: list[str] = []
    for i, f in enumerate(PATH):
        ts, px = t0 + i * SEC, base * f
        assert rt.kernel is not None
        ev = rt.kernel.kernel.on_tick(inst.instrument_token, ts, px, 1, i + 1) or {}
        kinds += ev.get("blocks", {}).get("reason", [])
        kinds += ["DECISION"] * len(ev.get("decisions", {}).get("plan_id", []))
    return kinds


def allow_entries(rt: Runtime) -> None:
    """As an operator would (the session started PAUSED on the position)."""
    assert rt.kernel is not None
    rt.kernel.kernel.set_trading_state("ACTIVE")


async def test_a_new_runtime_resumes_the_earlier_sessions_book(
    runtime: tuple[Runtime, str],
) -> None:
    rt, open_plan = runtime
    # The kernel's fresh paper venue does not hold the position: trading starts
    # PAUSED, the database's open position still stands.
    assert rt.trading_state == "PAUSED"
    p = rt.book().portfolio
    assert p.ist_day == ist_day_number(TEST_DAY)
    assert p.trades_today == 3
    assert p.daily_realized_pnl == pytest.approx(float(WIN + LOSS))
    assert p.open_positions == 1
    (b,) = p.open_brackets
    assert (b.plan_id, b.instrument_token) == (open_plan, by_symbol()["RELIANCE"].instrument_token)
    assert (b.side, b.strategy, b.filled_qty, b.planned_qty) == ("BUY", "EmaCross", 10, 10)
    assert b.avg_fill_price == pytest.approx(1450.5)
    assert (b.entry_paise, b.stop_paise, b.tp_paise) == (145_000, 144_500, 146_000)
    assert p.heat_rupees == pytest.approx(55.0)  # (1450.50 - 1445) x 10
    assert p.gross_exposure_rupees == pytest.approx(14_505.0)

    restored = rt.state()["restored"]
    assert restored["open_brackets"] == 1 and restored["plan_ids"] == [open_plan]
    assert (restored["trades_today"], restored["closed_trades"]) == (3, 2)
    assert Decimal(restored["realized_gross"]) == WIN + LOSS
    assert restored["cooldowns"] == 2 and restored["skipped"] == []

    # Entries allowed again (as an operator would): the restored instrument is
    # busy, the one closed 10:05 cools down until 10:10, the other trades.
    allow_entries(rt)
    assert cross(rt, "RELIANCE", at(10, 7)) == ["INSTRUMENT_BUSY"]
    assert cross(rt, "INFY", at(10, 7)) == ["COOLDOWN"]
    assert cross(rt, "SBIN", at(10, 7)) == ["DECISION"]
    assert rt.book().portfolio.trades_today == 4


async def test_a_restored_plans_close_counts_toward_today(make_db: MakeDb) -> None:
    """The restored open plan's close (the live kernel's adopted bracket closing, in
    its engine) is accepted like a live one and counts toward today."""
    url = await make_db()
    open_plan = await earlier_session(url)
    conn = await create_pool(url, min_size=1, max_size=1)
    try:
        e = Engine(EMA_ONLY.to_core_json(), list(by_symbol().values()))
        await restore_engine(e, conn, TEST_DAY)
    finally:
        await conn.close()
    e.set_trading_state("ACTIVE")
    inst = by_symbol()["SBIN"]
    t0 = ist_ns(TEST_DAY, time(10, 7))
    decided = [
        d
        for i, f in enumerate(PATH)
        for d in e.on_tick(inst.instrument_token, t0 + i * SEC, 800.0 * f, 1, i + 1)
        if isinstance(d, Decision)
    ]
    assert decided, "SBIN must trade after the restore"
    e.on_bracket_closed(open_plan, -55.0, ist_ns(TEST_DAY, time(10, 8)))
    p = e.portfolio()
    assert p.daily_realized_pnl == pytest.approx(-555.0)
    assert [x.instrument_token for x in p.open_brackets] == [inst.instrument_token]


async def test_positions_closed_by_the_reconciliation_are_not_restored(
    make_db: MakeDb, tmp_path: Path
) -> None:
    url = await make_db()
    await earlier_session(url)
    opts = options(engine=EMA_ONLY, start_feed=False, restore_day=True, accept_reconcile=True)
    rt = await start_runtime(settings_for(url, tmp_path), opts)
    try:
        p = rt.book().portfolio
        assert p.open_positions == 0 and p.heat_rupees == 0
        assert (p.trades_today, p.daily_realized_pnl) == (3, pytest.approx(-500.0))
        assert rt.state()["restored"]["open_brackets"] == 0
    finally:
        await rt.stop()


async def test_other_days_modes_and_unusable_positions(make_db: MakeDb, tmp_path: Path) -> None:
    url = await make_db()
    await earlier_session(url)
    inst = list(by_symbol().values())
    conn = await create_pool(url, min_size=1, max_size=1)
    try:
        # Another day: no figures of TEST_DAY, but the open position still holds heat.
        other = TEST_DAY + timedelta(days=1)
        e = Engine(EMA_ONLY.to_core_json(), inst)
        r = await restore_engine(e, conn, other)
        assert (r.trades_today, r.closed_trades, r.realized_gross, r.cooldowns) == (0, 0, 0, 0)
        assert e.portfolio().open_positions == 1 and e.portfolio().ist_day == ist_day_number(other)

        # LIVE sessions did not trade today: no figures from the PAPER one.
        e = Engine(EMA_ONLY.to_core_json(), inst)
        r = await restore_engine(e, conn, TEST_DAY, mode="LIVE")
        assert (r.trades_today, r.realized_gross) == (0, 0)

        # An engine without RELIANCE cannot hold the position: listed, not raised.
        e = Engine(EMA_ONLY.to_core_json(), [by_symbol()["SBIN"]])
        r = await restore_engine(e, conn, TEST_DAY)
        assert r.brackets == () and len(r.skipped) == 1
        assert "instrument_token" in r.skipped[0][1]
        assert (r.trades_today, r.cooldowns) == (3, 1)

        # A restored engine refuses a second restore for another day.
        with pytest.raises(Exception, match="ist_day"):
            e.restore_day(ist_day_number(other), 0, 0)
    finally:
        await conn.close()


async def test_a_simulated_session_does_not_inherit_another_runs_day(
    make_db: MakeDb, tmp_path: Path
) -> None:
    """By default only the live feed resumes the day: a synthetic run is its own account."""
    url = await make_db()
    await earlier_session(url)
    rt = await start_runtime(
        settings_for(url, tmp_path), options(engine=EMA_ONLY, start_feed=False)
    )
    try:
        assert rt.kernel is not None
        assert rt.restored is None and rt.state()["restored"] is None
        p = rt.book().portfolio  # the kernel's own
        assert (p.open_positions, p.trades_today, p.daily_realized_pnl) == (0, 0, 0.0)
    finally:
        await rt.stop()


@pytest.mark.parametrize("accept", [False, True], ids=["held", "accepted"])
async def test_a_fresh_paper_account_pauses_on_the_open_position_until_accepted(
    make_db: MakeDb, tmp_path: Path, accept: bool
) -> None:
    """The start-up reconciliation of a session's fresh paper account (the kernel's
    venue) against the earlier process's open position:
    held, trading starts PAUSED and the row stands; accepted, the position is closed
    and trading starts ACTIVE."""
    url = await make_db()
    open_plan = await earlier_session(url)
    opts = options(engine=EMA_ONLY, start_feed=False, accept_reconcile=accept)
    rt = await start_runtime(settings_for(url, tmp_path), opts)
    try:
        assert rt.kernel is not None
        assert rt.reconcile is not None and not rt.reconcile.in_agreement
        assert rt.trading_state == ("ACTIVE" if accept else "PAUSED")
        assert rt.paused_by_reconcile is not accept
        position = await repo.get_open_position(rt.pool, open_plan)
        assert (position is None) is accept
        # What the kernel's gate is told.
        assert rt.kernel.kernel.trading_state == rt.trading_state
    finally:
        await rt.stop()
