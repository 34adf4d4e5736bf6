"""The kernel's event batches in PostgreSQL (bulk lane), on SYNTHETIC gappy
data: every event becomes its row (checked against the event log itself), a
batch written twice lands once, an order's status lands in the transaction of
the fill that made it and a position's close in the trade's, and a database
outage mid-session loses no row."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from aitrapp._core import Kernel
from aitrapp.charges import ChargeSchedule
from aitrapp.db import repo
from aitrapp.db.bulk import BulkWrite
from aitrapp.db.embedded import EmbeddedPostgres
from aitrapp.db.pool import Pool, create_pool
from aitrapp.db.writer import DbWriter
from aitrapp.kernel.events import EventBatch, extend, rows
from aitrapp.kernel.persist import KernelPersister, rupees, utc
from aitrapp.kernel.replay import KernelTrade, trades_of
from test_db_repo import session_row
from test_writer import own_pg, wait_until

from .gappy import gappy_day, instrument
from .test_kernel_replay import DAY, TOKENS, ema_config

pytestmark = pytest.mark.integration
__all__ = ["own_pg"]  # a fixture used by name

INSTRUMENTS = {t: instrument(t) for t in TOKENS}
TABLES = (
    "signals", "decisions", "risk_events", "orders", "order_events", "fills", "positions",
    "trades", "bracket_transitions",
)  # fmt: skip


def kernel_session(seed: int = 4, size: int = 97) -> list[tuple[EventBatch, list[KernelTrade]]]:
    """A gappy day run through the kernel in small batches, with each batch's trades.
    A fill takes at most a fifth of a tick's quantity: orders fill in parts."""
    ticks = gappy_day(DAY, TOKENS, jump_share=0.2, seed=seed)
    k = Kernel(
        ema_config().to_core_json(),
        list(INSTRUMENTS.values()),
        json.dumps({"participation_pct": 20}),
        json.dumps({"entry_type": "MARKET"}),
    )
    out: list[EventBatch | None] = []
    for lo in range(0, len(ticks), size):
        hi = lo + size
        out.append(
            k.run(
                ticks.token[lo:hi], ticks.ts_ns[lo:hi], ticks.last_price[lo:hi],
                ticks.last_qty[lo:hi], ticks.volume[lo:hi], ticks.bid[lo:hi],
                ticks.ask[lo:hi], ticks.oi[lo:hi],
            )
        )  # fmt: skip
    last = int(ticks.ts_ns[-1])
    out.append(k.finish(last, last + 3_600_000_000_000))
    schedule = ChargeSchedule.default()
    open_fills: dict[str, list[dict[str, Any]]] = {}
    return [(ev, trades_of(ev, INSTRUMENTS, schedule, open_fills)) for ev in out if ev]


def persister(writer: DbWriter, session_id: UUID) -> KernelPersister:
    return KernelPersister(writer, session_id, INSTRUMENTS, f"paper:{session_id}", "sha")


async def drain(writer: DbWriter) -> None:
    async with asyncio.timeout(60):
        await writer.flush()


async def dump(pool: Pool) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    for name in TABLES:
        records = await pool.fetch(f"SELECT * FROM {name}")
        out[name] = sorted(tuple(str(v) for v in r.values()) for r in records)
    return out


async def assert_rows_are_the_events(
    pool: Pool, session: list[tuple[EventBatch, list[KernelTrade]]]
) -> None:
    """Every event is its row, with its values (nothing lost, nothing twice)."""
    ev: EventBatch = {}
    for batch, _ in session:
        extend(ev, batch)
    trades = [t for _, ts in session for t in ts]
    decisions, blocks = rows(ev, "decisions"), rows(ev, "blocks")
    assert decisions and blocks and trades
    count = {n: await pool.fetchval(f"SELECT count(*) FROM {n}") for n in TABLES}
    assert count["decisions"] == len(decisions)
    assert count["signals"] == len(decisions) + len(blocks)
    reasons = await pool.fetch("SELECT reason, count(*) AS n FROM risk_events GROUP BY reason")
    assert {r["reason"]: r["n"] for r in reasons} == Counter(b["reason"] for b in blocks)
    assert count["bracket_transitions"] == len(rows(ev, "transitions"))

    placed = [o for o in rows(ev, "orders") if o["action"] == "PLACE"]
    db_orders = {r["client_order_id"]: r for r in await pool.fetch("SELECT * FROM orders")}
    assert sorted(db_orders) == sorted(o["client_order_id"] for o in placed)
    for o in placed:
        r = db_orders[o["client_order_id"]]
        assert (r["side"], r["order_type"], r["qty"]) == (o["side"], o["order_type"], o["qty"])
        assert r["price"] == (rupees(o["price"]) if o["price"] else None)
        assert r["trigger_price"] == (rupees(o["trigger"]) if o["trigger"] else None)
    last_update = {u["client_order_id"]: u for u in rows(ev, "updates")}
    for coid, u in last_update.items():
        status = "PENDING" if u["status"] == "OPEN PENDING" else u["status"]
        r = db_orders[coid]
        assert (r["status"], r["filled_qty"]) == (status, u["filled_qty"]), coid
    assert count["order_events"] == len(rows(ev, "updates"))

    fills = {
        (f"{f['order_id']}:{f['filled_qty']}", f["qty"], rupees(f["price"]), utc(f["ts_ns"]))
        for f in rows(ev, "fills")
    }
    db_fills = await pool.fetch("SELECT broker_fill_key, qty, price, ts FROM fills")
    assert {tuple(r.values()) for r in db_fills} == fills
    assert count["fills"] == len(rows(ev, "fills"))

    db_trades = {r["plan_id"]: r for r in await pool.fetch("SELECT * FROM trades")}
    assert sorted(db_trades) == sorted(t.plan_id for t in trades)
    for t in trades:
        r = db_trades[t.plan_id]
        assert (r["gross_pnl"], r["charges"], r["net_pnl"]) == (t.gross, t.charges, t.net)
        assert (r["qty"], r["exit_price"]) == (t.qty, t.exit_price)
        assert r["closed_at"] == utc(t.closed_ns)
    positions = await pool.fetch("SELECT plan_id, status, qty, exit_price FROM positions")
    assert sorted(p["plan_id"] for p in positions) == sorted(db_trades)  # each traded plan
    for p in positions:  # the session squared off: all closed, at the trade's price
        assert p["status"] == "CLOSED" and p["exit_price"] == db_trades[p["plan_id"]]["exit_price"]
    assert sum(r["net_pnl"] for r in db_trades.values()) == sum((t.net for t in trades), Decimal(0))


async def test_every_event_becomes_its_row(db_pool: Pool) -> None:
    s = session_row(trading_date=DAY)
    await repo.create_session(db_pool, s)
    session = kernel_session()
    writer = DbWriter(db_pool)
    await writer.start()
    p = persister(writer, s.id)
    for ev, trades in session:
        p.persist(ev, trades)
    await drain(writer)
    await writer.close()
    assert (writer.dropped, len(writer.dead_letters)) == (0, 0)
    await assert_rows_are_the_events(db_pool, session)
    # Orders filled in parts, so positions were resized, not only opened and closed.
    parts = await db_pool.fetchval(
        "SELECT count(*) FROM (SELECT client_order_id FROM fills GROUP BY 1 HAVING count(*) > 1) x"
    )
    assert parts > 0


async def test_a_kernel_batch_persisted_twice_lands_once(db_pool: Pool) -> None:
    s = session_row(trading_date=DAY)
    await repo.create_session(db_pool, s)
    session = kernel_session(seed=6)
    writer = DbWriter(db_pool)
    await writer.start()
    p = persister(writer, s.id)
    bulks = [p.bulk(ev, trades) for ev, trades in session]
    for b in bulks:
        writer.submit_batch(b)
    await drain(writer)
    first = await dump(db_pool)
    # The same bulk writes again (an acknowledgement lost, a spill replayed) ...
    for b in bulks:
        writer.submit_batch(b)
    await drain(writer)
    assert await dump(db_pool) == first
    # ... and the same event batches persisted again from the start of the session.
    again = persister(writer, s.id)
    for ev, trades in session:
        again.persist(ev, trades)
    await drain(writer)
    await writer.close()
    assert await dump(db_pool) == first
    assert (writer.dropped, len(writer.dead_letters)) == (0, 0)
    await assert_rows_are_the_events(db_pool, session)


async def test_status_fill_position_and_trade_land_together(db_pool: Pool) -> None:
    """Rows written in one transaction share its id (xmin): a completed order's status
    came with the fill that completed it and its COMPLETE event, and a position was
    closed in the transaction that booked its trade."""
    s = session_row(trading_date=DAY)
    await repo.create_session(db_pool, s)
    writer = DbWriter(db_pool)
    await writer.start()
    p = persister(writer, s.id)
    for ev, trades in kernel_session(seed=8):
        p.persist(ev, trades)
        await drain(writer)  # one transaction per kernel batch
    await writer.close()
    completed = await db_pool.fetch(
        "SELECT o.client_order_id, o.xmin::text AS o_tx, f.xmin::text AS f_tx, "
        "e.xmin::text AS e_tx FROM orders o "
        "JOIN fills f ON f.broker_fill_key = o.broker_order_id || ':' || o.filled_qty "
        "JOIN order_events e ON e.client_order_id = o.client_order_id AND e.status = 'COMPLETE' "
        "WHERE o.status = 'COMPLETE'"
    )
    assert len(completed) == await db_pool.fetchval(
        "SELECT count(*) FROM orders WHERE status = 'COMPLETE'"
    )
    assert completed
    for r in completed:
        assert r["o_tx"] == r["f_tx"] == r["e_tx"], r["client_order_id"]
    closed = await db_pool.fetch(
        "SELECT p.plan_id, p.xmin::text AS p_tx, t.xmin::text AS t_tx "
        "FROM positions p JOIN trades t ON t.plan_id = p.plan_id"
    )
    assert closed
    for r in closed:
        assert r["p_tx"] == r["t_tx"], r["plan_id"]
    several = await db_pool.fetchval("SELECT count(DISTINCT xmin::text) FROM trades")
    assert several > 1  # really batch by batch, not everything in one transaction


async def test_an_outage_mid_session_loses_no_row(own_pg: EmbeddedPostgres) -> None:
    pool = await create_pool(own_pg.url(), min_size=1, max_size=2, connect_timeout=2)
    writer = DbWriter(pool, retry_max_s=0.2, probe_interval_s=0.05)
    health: list[bool] = []
    writer.add_health_listener(lambda ok, _why: health.append(ok))
    try:
        s = session_row(trading_date=DAY)
        await repo.create_session(pool, s)
        session = kernel_session(seed=9)
        half = len(session) // 2
        await writer.start()
        p = persister(writer, s.id)
        for ev, trades in session[:half]:
            p.persist(ev, trades)
        await drain(writer)

        await own_pg.stop("fast")  # the database goes away mid-session
        await wait_until(lambda: not writer.healthy)
        assert health[-1] is False
        before = writer.queue_depth
        for ev, trades in session[half:]:
            p.persist(ev, trades)  # accepted without waiting
        queued = writer.queue_depth - before
        assert queued > 100
        await asyncio.sleep(0.3)  # retries fail meanwhile
        assert writer.queue_depth == before + queued

        await own_pg.start()
        await drain(writer)
        assert writer.healthy and health[-1] is True
        assert (writer.dropped, len(writer.dead_letters)) == (0, 0)
        await assert_rows_are_the_events(pool, session)
    finally:
        await writer.close(grace_s=5)
        await pool.close()


def test_money_is_checked_before_anything_is_queued() -> None:
    writer = DbWriter(None)  # type: ignore[arg-type]  # never started: nothing is written
    p = persister(writer, UUID(int=1))
    ev, trades = next((ev, t) for ev, t in kernel_session() if rows(ev, "fills"))
    bad = {**ev, "fills": {**ev["fills"], "price": [0, *ev["fills"]["price"][1:]]}}
    with pytest.raises(ValueError, match=r"fills\.price: must be > 0, got 0 \("):
        p.bulk(bad, trades)
    bad = {**ev, "updates": {**ev["updates"], "status": ["LOST", *ev["updates"]["status"][1:]]}}
    with pytest.raises(ValueError, match=r"order_events\.status: unknown \['LOST'\]"):
        p.bulk(bad, [])
    assert writer.queue_depth == 0
    assert isinstance(p.bulk({}, []), BulkWrite) and p.bulk({}, []).rows == 0
