"""The database goes away mid-session and comes back: nothing is lost, no entry is opened blind.

A real embedded PostgreSQL of the test's own is stopped while a bracket is
open and started again (same port, same data) later in the day. While it is
down: new entries are refused at the kernel's risk gate with a DB_UNAVAILABLE
risk event (a refused signal, no decision), the open brackets keep being
managed (children fill, siblings are cancelled, exits are placed at the paper
venue), the writer reports unhealthy and holds its rows. After the session
every signal, decision, risk event, order, order event, fill and trade the
runtime counted is in the database exactly once. The kernel's brackets and
paper venue are read from its event batches.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import time as dtime
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from aitrapp.calendar import ist_ns
from aitrapp.db import repo
from aitrapp.db.embedded import EmbeddedPostgres
from aitrapp.db.migrate import migrate
from aitrapp.db.writer import SPILL_SUFFIX
from aitrapp.feeds.base import TickBatch
from aitrapp.runtime import Runtime, start_runtime

from .helpers import (
    BUSY_ENGINE,
    TEST_DAY,
    KernelLog,
    SteppedFeed,
    count,
    metric,
    options,
    settings_for,
    stepped,
    updates_taken,
    venue_orders,
    wait_until,
)

pytestmark = pytest.mark.integration

DB_UNAVAILABLE = "DB_UNAVAILABLE"
# Give up waiting for the outage's evidence at this session time (IST) and restart
# anyway: the checks below then fail with what was missing.
GIVE_UP_AT = ist_ns(TEST_DAY, dtime(14, 30))
TERMINAL = ("CLOSED", "CANCELLED")


@pytest_asyncio.fixture
async def own_pg(pg_dir: Path) -> AsyncIterator[EmbeddedPostgres]:
    """A private server: stopping it cannot disturb the other tests' databases."""
    server = EmbeddedPostgres(pg_dir / "pgdata", durable=False)
    await server.start()
    try:
        conn = await asyncpg.connect(server.url())
        try:
            await migrate(conn)
        finally:
            await conn.close()
        yield server
    finally:
        await server.stop("immediate")


@dataclass
class Outage:
    """Drives the outage from between the feed's batches (see SteppedFeed).

    The server is stopped at the first moment an entry is working at the broker
    (its bracket PENDING): its fill, its children and their OCO all happen while
    the database is away. It is started again once every bracket that was live at
    the stop has closed and at least two new decisions have been refused.
    """

    rt: Runtime
    pg: EmbeddedPostgres
    phase: str = "before"
    live_at_stop: set[str] = field(default_factory=set)
    pending_at_stop: set[str] = field(default_factory=set)
    broker_orders_at_stop: set[str] = field(default_factory=set)
    decisions_at_stop: int = 0
    placed_while_down: set[str] = field(default_factory=set)
    closed_while_down: set[str] = field(default_factory=set)
    decisions_while_down: int = 0
    refused_while_down: float = 0.0
    queued_at_restart: int = 0
    unhealthy_batches: int = 0

    async def _broker_cids(self) -> set[str]:
        return {u.client_order_id for u in await venue_orders(self.rt)}

    def _decisions(self) -> int:
        return int(self.rt.book().counters["decisions"])

    async def step(self, _batch: TickBatch) -> None:
        rt = self.rt
        if self.phase == "before":
            states = bracket_states(rt)
            live = {pid for pid, state in states.items() if state not in TERMINAL}
            pending = {pid for pid in live if states[pid] == "PENDING"}
            if not pending:
                return
            self.live_at_stop = live
            self.pending_at_stop = pending
            self.broker_orders_at_stop = await self._broker_cids()
            self.decisions_at_stop = self._decisions()
            await self.pg.stop("fast")
            await wait_until(lambda: not rt.writer.healthy, "the writer to notice the outage")
            assert rt.health()["database"].ok is False
            self.phase = "down"
            return
        if self.phase != "down":
            return
        # Down: the writer must keep saying so, and hold everything.
        assert not rt.writer.healthy
        self.unhealthy_batches += 1
        states = bracket_states(rt)
        closed = {pid for pid in self.live_at_stop if states[pid] in TERMINAL}
        refused = metric(rt, "trader_risk_blocks_total", reason=DB_UNAVAILABLE)
        if (closed == self.live_at_stop and refused >= 2) or rt.now_ns() >= GIVE_UP_AT:
            self.closed_while_down = closed
            self.refused_while_down = refused
            self.decisions_while_down = self._decisions() - self.decisions_at_stop
            self.placed_while_down = await self._broker_cids() - self.broker_orders_at_stop
            self.queued_at_restart = rt.writer.queue_depth
            await self.pg.start()  # same port, same data
            await wait_until(lambda: rt.writer.healthy, "the writer to reconnect", 60)
            self.phase = "after"


def bracket_states(rt: Runtime) -> dict[str, str]:
    """Every bracket of the session so far, at its current state."""
    return KernelLog.of(rt).states()


def entry_filled(rt: Runtime, plan_id: str) -> bool:
    fills = KernelLog.of(rt).rows("fills")
    return any(f["plan_id"] == plan_id and f["role"] == "ENTRY" for f in fills)


async def test_database_outage_mid_session_loses_nothing(
    own_pg: EmbeddedPostgres, tmp_path: Path
) -> None:
    settings = settings_for(own_pg.url(), tmp_path)
    rt = await start_runtime(
        settings,
        options(
            engine=BUSY_ENGINE,
            start_feed=False,
            feed_factory=SteppedFeed.factory(),
        ),
    )
    KernelLog.attach(rt)
    outage = Outage(rt, own_pg)
    stepped(rt).between = outage.step
    try:
        rt.start_feed()
        async with asyncio.timeout(180):
            await rt.wait_feed()
        await rt.stop_trading()
        assert outage.phase == "after", f"the outage never ended (phase {outage.phase})"
        await _check_during(rt, outage)
        await _check_nothing_lost(rt, outage, tmp_path)
    finally:
        await rt.stop()


async def _check_during(rt: Runtime, o: Outage) -> None:
    # No new entry while the database was unreachable, and a risk event said why each
    # time: the kernel's gate refuses the signal, so no decision while down.
    assert o.decisions_while_down == 0
    assert o.refused_while_down >= 2
    assert not [c for c in o.placed_while_down if c.endswith(":ENTRY")], o.placed_while_down
    # Every bracket live at the stop was managed to its end without the database...
    assert o.closed_while_down == o.live_at_stop
    # ... including the entry that was working: it filled, its children were placed
    # (journalled through the writer's queue) and one of them closed it.
    filled = {p for p in o.pending_at_stop if entry_filled(rt, p)}
    assert filled, "the entry working at the outage never filled"
    states = bracket_states(rt)
    for pid in filled:
        assert {f"{pid}:STOP", f"{pid}:TP"} <= o.placed_while_down, o.placed_while_down
        assert states[pid] == "CLOSED"
    # Rows were retained, not dropped, while the database was away.
    assert o.queued_at_restart > 0
    assert o.unhealthy_batches >= 1


async def _check_nothing_lost(rt: Runtime, o: Outage, data_dir: Path) -> None:
    pool, sid = rt.pool, rt.session_id
    assert sid is not None
    w = rt.writer
    assert (w.dropped, len(w.dead_letters), w.queue_depth) == (0, 0, 0)
    assert await asyncio.to_thread(lambda: list(data_dir.glob(f"*{SPILL_SUFFIX}"))) == []
    session = await repo.get_session(pool, sid)
    assert session is not None
    assert session.status == "COMPLETED"

    c = rt.book().counters
    assert await count(pool, "signals", sid) == c["signals"]
    assert await count(pool, "decisions", sid) == c["decisions"]
    assert await count(pool, "risk_events", sid) == c["risk_blocks"]
    assert await count(pool, "trades", sid) == c["trades"] > 0
    reasons = await repo.count_risk_events_by_reason(pool, sid)
    assert reasons[DB_UNAVAILABLE] == metric(rt, "trader_risk_blocks_total", reason=DB_UNAVAILABLE)
    assert reasons[DB_UNAVAILABLE] >= o.refused_while_down

    # A refused signal is recorded with its risk event, and no decision came of it.
    refused_signals = await pool.fetch(
        "SELECT s.id, (SELECT count(*) FROM decisions d WHERE d.signal_id = s.id) AS decided "
        "FROM risk_events r JOIN signals s ON s.id = r.signal_id "
        "WHERE r.session_id = $1 AND r.reason = $2",
        sid,
        DB_UNAVAILABLE,
    )
    assert len(refused_signals) == reasons[DB_UNAVAILABLE]
    assert all(r["decided"] == 0 for r in refused_signals)

    # Every order the paper venue has is in the database once, as the venue last saw it.
    broker = await venue_orders(rt)
    rows = {
        r["client_order_id"]: r
        for r in await pool.fetch("SELECT * FROM orders WHERE session_id = $1", sid)
    }
    per_cid = Counter(u.client_order_id for u in broker)
    assert per_cid.most_common(1)[0][1] == 1  # no order reached the broker twice
    assert set(per_cid) == set(rows)
    assert o.placed_while_down <= set(rows)
    for u in broker:
        r = rows[u.client_order_id]
        assert (r["broker_order_id"], r["status"], r["filled_qty"]) == (
            u.order_id,
            u.status,
            u.filled_qty,
        ), u.client_order_id

    # Every update the kernel's shell took is an order event; fills add
    # up per order.
    assert await count(pool, "order_events", sid) == updates_taken(rt)
    mismatched = await pool.fetch(
        "SELECT o.client_order_id FROM orders o LEFT JOIN fills f USING (client_order_id) "
        "WHERE o.session_id = $1 GROUP BY o.client_order_id, o.filled_qty "
        "HAVING COALESCE(sum(f.qty), 0) <> o.filled_qty",
        sid,
    )
    assert mismatched == []

    # Brackets: every step persisted in order; those managed through the outage closed
    # with their trade and position, and the sibling of the filled child cancelled.
    walks = KernelLog.of(rt).walks()
    for pid, state in bracket_states(rt).items():
        walk = await pool.fetch(
            "SELECT seq, from_state, event, to_state FROM bracket_transitions "
            "WHERE plan_id = $1 ORDER BY seq",
            pid,
        )
        # Numbered without a gap (where from: test_lifecycle's numbering test), and
        # every step the kernel took is stored, in order.
        first = walk[0]["seq"]
        assert [r["seq"] for r in walk] == list(range(first, first + len(walk))), pid
        assert [(r["from_state"], r["event"], r["to_state"]) for r in walk] == walks[pid]
        assert walk[-1]["to_state"] == state, pid
    for pid in o.closed_while_down:
        trade = await pool.fetchrow("SELECT * FROM trades WHERE plan_id = $1", pid)
        assert trade is not None, pid
        position = await pool.fetchrow("SELECT * FROM positions WHERE plan_id = $1", pid)
        assert position is not None
        assert position["status"] == "CLOSED"
        statuses = {
            r["role"]: r["status"]
            for r in await pool.fetch("SELECT role, status FROM orders WHERE plan_id = $1", pid)
        }
        assert statuses["ENTRY"] == "COMPLETE"
        if trade["exit_reason"] in ("STOP", "TP"):
            sibling = "TP" if trade["exit_reason"] == "STOP" else "STOP"
            assert (statuses[trade["exit_reason"]], statuses[sibling]) == (
                "COMPLETE",
                "CANCELLED",
            )
    assert await repo.list_positions(pool, session_id=sid, status="OPEN") == []
