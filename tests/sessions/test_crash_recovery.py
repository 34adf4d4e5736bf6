"""What a killed process leaves behind: RUNNING sessions and positions nobody closes.

Sessions are written as the runtime writes them (with the pid and host of
their process); a dead process is a real one that has exited. Positions are
closed by the real start-up reconciliation against a fresh paper broker (the
simulated account died with the process).
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import pytest

from aitrapp.brokers.paper import PaperBroker
from aitrapp.db import repo
from aitrapp.db.pool import Pool
from aitrapp.db.repo import FillRow, InstrumentRow, SessionRow
from aitrapp.recovery.crash_recovery import RECONCILED, abort_dead_sessions, this_host
from aitrapp.recovery.startup_reconcile import reconcile_at_start
from aitrapp.report.burnin import evaluate_session, fill_mismatches, load_criteria
from test_db_repo import decision_row, signal_row

from .test_startup_reconcile import (
    RELIANCE,
    SETTLE,
    T0,
    bracket,
    instruments,
    write_order,
    write_position,
)

pytestmark = pytest.mark.integration

NOW = datetime(2026, 1, 20, 12, 0, tzinfo=UTC)


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


async def session(pool: Pool, *, pid: int | None, host: str | None, started: datetime = T0) -> UUID:
    row = SessionRow(
        trading_date=date(2026, 1, 20),
        mode="PAPER",
        feed="kite",
        started_at=started,
        pid=pid,
        host=host,
    )
    assert await repo.create_session(pool, row)
    return row.id


async def status(pool: Pool, sid: UUID) -> tuple[str, datetime | None, dict[str, object]]:
    s = await repo.get_session(pool, sid)
    assert s is not None
    return s.status, s.ended_at, s.summary


async def test_sessions_of_dead_processes_are_aborted_at_their_last_event(db_pool: Pool) -> None:
    here = this_host()
    dead = await session(db_pool, pid=dead_pid(), host=here)
    last = T0 + timedelta(minutes=42)
    await repo.execute(db_pool, signal_row(dead, ts=T0 + timedelta(minutes=5)))
    await repo.execute(db_pool, signal_row(dead, ts=last))
    idle = await session(db_pool, pid=dead_pid(), host=here)  # died before any event
    # Alive, and running since before its session started.
    mine = await session(db_pool, pid=os.getpid(), host=here, started=datetime.now(UTC))
    # Our pid, but our process started long after this session did: a reused pid.
    reused = await session(db_pool, pid=dead_pid(), host=here, started=T0 - timedelta(days=400))
    await db_pool.execute("UPDATE sessions SET pid = $2 WHERE id = $1", reused, os.getpid())
    elsewhere = await session(db_pool, pid=dead_pid(), host=f"not-{here}")
    unknown = await session(db_pool, pid=None, host=None)

    aborted = await abort_dead_sessions(db_pool, now=NOW)

    assert {a.session_id for a in aborted} == {dead, idle, reused}
    st, ended, summary = await status(db_pool, dead)
    assert (st, ended) == ("ABORTED", last)
    info = summary["aborted"]
    assert isinstance(info, dict)
    assert info["last_event_at"] == last.isoformat() and info["host"] == here
    assert "ended without closing the session" in str(info["reason"])
    assert (await status(db_pool, idle))[:2] == ("ABORTED", T0)  # no event: its start
    for alive_or_unknown in (mine, elsewhere, unknown):
        assert (await status(db_pool, alive_or_unknown))[0] == "RUNNING"
    assert await abort_dead_sessions(db_pool, now=NOW) == []  # once only


async def _earlier_session_with_open_bracket(pool: Pool) -> tuple[UUID, str]:
    """A killed session: entry filled (its fill recorded), children working, position
    OPEN, as the first process left them; plus a later fill on the same instrument."""
    before = await session(pool, pid=dead_pid(), host=this_host(), started=T0 - timedelta(hours=1))
    await repo.upsert_instruments(
        pool,
        [
            InstrumentRow(instrument_token=RELIANCE, exchange="NSE", tradingsymbol="RELIANCE",
                          segment="EQ", tick_size=Decimal("0.1"), lot_size=1, updated_at=T0)
        ],
    )  # fmt: skip
    entry, stop, tp = bracket()
    plan = entry.client_order_id.split(":")[0]
    sig = signal_row(before, ts=T0 - timedelta(seconds=1))
    await repo.execute(pool, sig)
    await repo.execute(pool, decision_row(sig, plan, qty=10))
    await write_order(pool, before, entry, status="COMPLETE", filled=10, avg="2500", broker_id="1")
    await write_order(pool, before, stop, status="TRIGGER PENDING", broker_id="2")
    await write_order(pool, before, tp, status="OPEN", broker_id="3")
    await repo.insert_fill(
        pool,
        FillRow(fill_scope=f"paper:{before}", broker_fill_key="1:10", qty=10,
                price=Decimal("2500"), ts=T0, client_order_id=entry.client_order_id,
                broker_order_id="1"),
    )  # fmt: skip
    await write_position(pool, before)
    # Another session's fill on RELIANCE after the position opened: the last price known.
    other = await session(pool, pid=None, host=None)
    await pool.execute("UPDATE sessions SET status = 'COMPLETED', ended_at = $2 WHERE id = $1",
                       other, NOW)  # fmt: skip
    other_entry, _, _ = bracket("fedcba9876543210fedcba98")
    await write_order(pool, other, other_entry, status="COMPLETE", filled=10, avg="2510.5",
                      broker_id="4")  # fmt: skip
    await repo.insert_fill(
        pool,
        FillRow(fill_scope=f"paper:{other}", broker_fill_key="4:10", qty=10,
                price=Decimal("2510.5"), ts=T0 + timedelta(minutes=3),
                client_order_id=other_entry.client_order_id, broker_order_id="4"),
    )  # fmt: skip
    return before, plan


async def test_a_position_reconciliation_closes_becomes_a_trade(db_pool: Pool) -> None:
    before, plan = await _earlier_session_with_open_bracket(db_pool)
    await abort_dead_sessions(db_pool, now=NOW)
    now = await session(db_pool, pid=os.getpid(), host=this_host())
    paper = PaperBroker(instruments().values())

    rec = await reconcile_at_start(
        pool=db_pool, broker=paper, session_id=now, accept=True, settle_s=SETTLE
    )

    (close,) = [a for a in rec.actions if a.kind == "db_position_close"]
    assert close.ok, close.detail
    assert "exit price 2510.5" in close.detail
    assert "last fill price known for the instrument" in close.detail
    pos = next(p for p in await repo.list_positions(db_pool) if p.plan_id == plan)
    assert pos.status == "CLOSED" and pos.exit_price == Decimal("2510.5")
    trades = [t for t in await repo.list_trades(db_pool, session_id=before) if t.plan_id == plan]
    (t,) = trades
    assert (t.exit_reason, t.qty, t.side) == (RECONCILED, 10, "BUY")
    assert (t.entry_price, t.exit_price, t.gross_pnl) == (
        Decimal("2500"),
        Decimal("2510.5"),
        Decimal("105"),
    )
    assert t.charges > 0 and t.net_pnl == t.gross_pnl - t.charges  # the entry's charges
    assert t.closed_at == T0  # the last time the position was known: the session's day
    # Positions still add up to fills; the trade chains without an exit fill.
    assert await fill_mismatches(db_pool, before) == []
    verdict = await evaluate_session(db_pool, before, now=NOW, criteria=load_criteria())
    chain = next(c for c in verdict.criteria if c.name == "trade_chain")
    assert chain.passed, chain.detail
    # A second start writes no second trade.
    again = await reconcile_at_start(
        pool=db_pool, broker=paper, session_id=now, accept=True, settle_s=SETTLE
    )
    assert again.in_agreement
    assert len(await repo.list_trades(db_pool, session_id=before)) == 1
