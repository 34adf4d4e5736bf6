"""The writer's bulk lane (COPY into temp tables, set-based statements, one
transaction) against a real PostgreSQL: applied twice it lands once, guarded
updates keep their guards and their order, a rejected row is isolated, and an
outage or a shutdown during one loses nothing. The rows are SYNTHETIC,
hand-made records (one instrument, round prices)."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from aitrapp.db import repo
from aitrapp.db.bulk import (
    DECISIONS,
    FILLS,
    ORDERS,
    POSITIONS,
    TRADES,
    UPDATES,
    BulkRow,
    BulkWrite,
    Record,
    bulk_id,
    decode_bulk,
    encode_bulk,
)
from aitrapp.db.embedded import EmbeddedPostgres
from aitrapp.db.pool import Pool, create_pool
from aitrapp.db.repo import RiskEventRow, SessionRow
from aitrapp.db.writer import SPILL_SUFFIX, DbWriter, decode_queued
from aitrapp.kernel.persist import utc
from aitrapp.metrics import Metrics
from test_db_repo import T0, session_row
from test_writer import count, own_pg, session_in, wait_until

pytestmark = pytest.mark.integration
__all__ = ["own_pg", "session_in"]  # fixtures used by name

T0_NS = int(T0.timestamp()) * 1_000_000_000
TOKEN = 101
SCOPE = "paper:bulk-test"


def _plan(i: int) -> str:
    return f"{i:024x}"


def decision(sid: UUID, i: int) -> Record:
    return (
        sid, _plan(i), T0_NS + i * 1_000_000_000, TOKEN, "SYN101", "EmaCross", "BUY", 24,
        250_000, 249_500, 251_000, "synthetic", 12_000, "0.5", "sha",
    )  # fmt: skip


def order(sid: UUID, i: int, role: str = "ENTRY", seq: int = 0) -> Record:
    coid = f"{_plan(i)}:{role}"
    return (
        sid, seq or i + 1, coid, _plan(i), f"T{i}{role[:2]}", role, "NSE", "SYN101", TOKEN,
        "BUY", "MARKET", 24, T0_NS + i * 1_000_000_000, 0, 0, f"B{i}",
    )  # fmt: skip


def update(
    sid: UUID, seq: int, coid: str, status: str, filled: int, avg: int = 0, message: str = ""
) -> Record:
    return (sid, seq, coid, "B", T0_NS + seq * 1_000_000, status, filled, avg, message, False)


def fill(order_id: int, filled: int, coid: str, qty: int, price: int = 250_005) -> Record:
    return (SCOPE, order_id, filled, coid, qty, price, T0_NS + filled * 1_000_000)


def position(sid: UUID, i: int) -> Record:
    return (sid, i + 1, "open", _plan(i), TOKEN, "NSE", "SYN101", "BUY", 24, 25_000_500, T0_NS + i)


def trade(sid: UUID, i: int) -> Record:
    """A trade of this session's plan: its decision is this session's (an adopted
    plan's trade names the earlier process's decision instead)."""
    return (
        sid, bulk_id(sid, "decision", _plan(i)), _plan(i), "EmaCross", "NSE", "SYN101", "BUY",
        24, Decimal("2500.05"), Decimal("2510.00"), Decimal("238.80"), Decimal("40.00"),
        Decimal("198.80"), "TP",
        T0_NS + i, T0_NS + i + 60_000_000_000,
    )  # fmt: skip


def plan_bulk(sid: UUID, i: int) -> BulkWrite:
    """One plan: its decision, the entry order, its updates up to COMPLETE, the fill,
    the position and the trade that closes it."""
    coid = f"{_plan(i)}:ENTRY"
    return BulkWrite(
        {
            DECISIONS.table: [decision(sid, i)],
            ORDERS.table: [order(sid, i)],
            UPDATES.table: [
                update(sid, 10 * i + 1, coid, "OPEN PENDING", 0),
                update(sid, 10 * i + 2, coid, "OPEN", 0),
                update(sid, 10 * i + 3, coid, "COMPLETE", 24, 250_005),
            ],
            FILLS.table: [fill(1000 + i, 24, coid, 24)],
            POSITIONS.table: [position(sid, i)],
            TRADES.table: [trade(sid, i)],
        }
    )


async def table(pool: Pool, sql: str, *args: object) -> list[dict[str, Any]]:
    return [dict(r) for r in await pool.fetch(sql, *args)]


async def dump(pool: Pool) -> dict[str, list[dict[str, Any]]]:
    """Every table a bulk write touches, in a stable order."""
    out = {}
    for name, key in (
        ("signals", "id"), ("decisions", "id"), ("orders", "client_order_id"),
        ("order_events", "id"), ("fills", "id"), ("positions", "id"), ("trades", "id"),
    ):  # fmt: skip
        out[name] = await table(pool, f"SELECT * FROM {name} ORDER BY {key}")
    return out


async def drain(writer: DbWriter) -> None:
    async with asyncio.timeout(60):
        await writer.flush()


async def test_a_bulk_written_twice_lands_once(db_pool: Pool, session_in: SessionRow) -> None:
    writer = DbWriter(db_pool)
    await writer.start()
    bulks = [plan_bulk(session_in.id, i) for i in range(3)]
    for b in bulks:
        assert writer.submit_batch(b)
    await drain(writer)
    first = await dump(db_pool)
    for b in bulks:  # e.g. replayed after a lost acknowledgement
        writer.submit_batch(b)
    await drain(writer)
    await writer.close()
    assert await dump(db_pool) == first
    assert writer.written == 2 * sum(b.rows for b in bulks)
    assert (writer.dropped, len(writer.dead_letters)) == (0, 0)
    for name in ("decisions", "orders", "fills", "positions", "trades"):
        assert len(first[name]) == 3, name
    assert len(first["order_events"]) == 9
    assert {o["status"] for o in first["orders"]} == {"COMPLETE"}
    assert {p["status"] for p in first["positions"]} == {"CLOSED"}
    # The ids are the documented ones, and a trade points at its plan's decision.
    trade = first["trades"][0]
    assert trade["id"] == bulk_id(session_in.id, "trade", trade["plan_id"])
    assert trade["decision_id"] == bulk_id(session_in.id, "decision", trade["plan_id"])
    assert trade["net_pnl"] == trade["gross_pnl"] - trade["charges"]


async def test_updates_apply_in_order_and_keep_their_guards(
    db_pool: Pool, session_in: SessionRow
) -> None:
    """Several updates of one order in one bulk apply in seq order; a stale one, in
    the same bulk or a later one, changes nothing: a terminal status is final, the
    filled quantity never shrinks; a refused update stops nothing after it."""
    sid = session_in.id
    done, cancelled, partial, flip, shrink, late = (f"{_plan(i)}:ENTRY" for i in range(6))
    first = BulkWrite(
        {
            ORDERS.table: [order(sid, i) for i in range(6)],
            UPDATES.table: [  # seq order is the order of events, not of the list
                update(sid, 3, done, "COMPLETE", 24, 250_010),
                update(sid, 1, done, "OPEN PENDING", 0),
                update(sid, 2, done, "OPEN", 10, 250_000, "partial"),
                update(sid, 4, cancelled, "OPEN", 0),
                update(sid, 5, cancelled, "CANCELLED", 0, 0, "cancelled by user"),
                update(sid, 6, partial, "OPEN", 20, 250_000),
                update(sid, 20, flip, "OPEN", 0),
                update(sid, 21, flip, "CANCELLED", 0),
                update(sid, 22, flip, "OPEN", 0, 0, "after the end"),
                update(sid, 23, shrink, "OPEN", 20),
                update(sid, 24, shrink, "OPEN", 10, 0, "stale"),
                update(sid, 25, shrink, "TRIGGER PENDING", 20),
                update(sid, 26, late, "OPEN", 12),
                update(sid, 27, late, "CANCELLED", 5),  # refused: 5 < 12
                update(sid, 28, late, "OPEN", 18),
            ],
        }
    )
    stale = BulkWrite(
        {
            UPDATES.table: [
                update(sid, 7, done, "OPEN", 10),
                update(sid, 8, cancelled, "OPEN", 0),
                update(sid, 9, partial, "OPEN", 5, 249_000),
                update(sid, 10, partial, "OPEN PENDING", 20),
            ]
        }
    )
    writer = DbWriter(db_pool)
    await writer.start()
    writer.submit_batch(first)
    await drain(writer)
    writer.submit_batch(stale)
    await drain(writer)
    await writer.close()
    rows = {
        r["client_order_id"]: r
        for r in await table(db_pool, "SELECT * FROM orders WHERE session_id = $1", sid)
    }
    assert (rows[done]["status"], rows[done]["filled_qty"]) == ("COMPLETE", 24)
    assert rows[done]["avg_price"] == Decimal("2500.1000")
    assert rows[done]["status_message"] == "partial"  # kept: COMPLETE carried none
    assert rows[cancelled]["status"] == "CANCELLED"
    assert rows[cancelled]["status_message"] == "cancelled by user"
    # The stale 5 is refused; the last one (20 again) applies: OPEN PENDING is PENDING.
    assert (rows[partial]["status"], rows[partial]["filled_qty"]) == ("PENDING", 20)
    assert rows[partial]["avg_price"] == Decimal("2500.0000")
    assert (rows[flip]["status"], rows[flip]["status_message"]) == ("CANCELLED", None)
    assert (rows[shrink]["status"], rows[shrink]["filled_qty"]) == ("TRIGGER PENDING", 20)
    assert rows[shrink]["status_message"] is None
    assert (rows[late]["status"], rows[late]["filled_qty"]) == ("OPEN", 18)
    assert await count(db_pool, "order_events") == 19  # the history keeps every report


async def test_a_position_ends_as_its_last_resize_says(
    db_pool: Pool, session_in: SessionRow
) -> None:
    sid = session_in.id

    def resize(seq: int, i: int, qty: int, avg_e4: int) -> Record:
        p = _plan(i)
        return (sid, seq, "update", p, TOKEN, "NSE", "SYN101", "BUY", qty, avg_e4, T0_NS + seq)

    first = BulkWrite(
        {
            DECISIONS.table: [decision(sid, i) for i in range(2)],
            POSITIONS.table: [  # seq order is the order of fills, not of the list
                resize(30, 0, 24, 25_001_000),
                position(sid, 0),
                resize(20, 0, 12, 25_000_700),
                position(sid, 1),
            ],
            TRADES.table: [trade(sid, 1)],
        }
    )
    late = BulkWrite({POSITIONS.table: [resize(40, 1, 6, 25_009_000)]})  # plan 1 is closed
    writer = DbWriter(db_pool)
    await writer.start()
    writer.submit_batch(first)
    await drain(writer)
    writer.submit_batch(late)
    await drain(writer)
    await writer.close()
    got = {
        r["plan_id"]: r
        for r in await table(db_pool, "SELECT * FROM positions WHERE session_id = $1", sid)
    }
    assert (got[_plan(0)]["qty"], got[_plan(0)]["avg_entry"]) == (24, Decimal("2500.1000"))
    assert got[_plan(0)]["updated_at"] == utc(T0_NS + 30)
    assert (got[_plan(1)]["status"], got[_plan(1)]["qty"]) == ("CLOSED", 24)


async def test_waiting_bulks_merge_into_one_transaction(
    db_pool: Pool, session_in: SessionRow
) -> None:
    bulks = [plan_bulk(session_in.id, i) for i in range(4)]
    n = bulks[0].rows  # 8
    single = RiskEventRow(ts=T0, reason="between", session_id=session_in.id)
    batching = DbWriter(db_pool, bulk_rows_max=3 * n + 1)  # batching only, never started
    batching.submit_batch(bulks[0])
    batching.submit_batch(bulks[1])
    batching.submit(single)
    for b in bulks[2:]:
        batching.submit_batch(b)
    assert batching.queue_depth == 4 * n + 1  # rows, not queue entries
    # Bulks never share a batch with rows; consecutive ones merge up to bulk_rows_max.
    assert batching._take_batch() == bulks[:2]
    assert batching._take_batch() == [single]
    assert batching._take_batch() == bulks[2:]

    writer = DbWriter(db_pool, bulk_rows_max=3 * n + 1)
    for b in bulks:  # all waiting when the writer starts
        writer.submit_batch(b)
    await writer.start()
    await drain(writer)
    await writer.close()
    groups = await table(
        db_pool,
        "SELECT xmin::text AS tx, count(*) AS n FROM decisions WHERE session_id = $1 GROUP BY 1",
        session_in.id,
    )
    # Plans 0-2 in one transaction (3n rows), plan 3 in the next.
    assert sorted(g["n"] for g in groups) == [1, 3]
    assert writer.written == 4 * n and writer.queue_depth == 0


async def test_a_rejected_row_is_isolated_and_the_rest_lands(
    db_pool: Pool, session_in: SessionRow, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = Metrics()
    sid = session_in.id
    writer = DbWriter(db_pool, metrics=metrics)
    await writer.start()
    writer.submit_batch(plan_bulk(sid, 0))
    await drain(writer)
    good = plan_bulk(sid, 1)
    orphan = update(sid, 500, "no-such-order:ENTRY", "OPEN", 0)  # foreign key violation
    conflict = fill(1000, 24, f"{_plan(0)}:ENTRY", 23)  # plan 0's fill key, another qty
    huge = fill(2**64 - 1, 1, f"{_plan(1)}:ENTRY", 1)  # no bigint holds this order id
    bad = BulkWrite(
        {
            **good.parts,
            UPDATES.table: [*good.parts[UPDATES.table][:2], orphan, good.parts[UPDATES.table][2]],
            FILLS.table: [conflict, *good.parts[FILLS.table], huge],
        }
    )
    writer.submit_batch(bad)
    await drain(writer)
    await writer.close()
    rejected = [w for w, _ in writer.dead_letters]
    assert rejected == [
        BulkRow(UPDATES.table, dict(zip(UPDATES.names, orphan, strict=True))),
        BulkRow(FILLS.table, dict(zip(FILLS.names, conflict, strict=True))),
        BulkRow(FILLS.table, dict(zip(FILLS.names, huge, strict=True))),
    ]
    assert "ForeignKeyViolation" in writer.dead_letters[0][1]
    assert writer.fill_conflicts == 1
    assert writer.healthy  # bad rows are not an outage
    assert any("conflicting fill" in r.getMessage() for r in caplog.records)
    assert "trader_writer_dropped_total 3.0" in metrics.render()
    assert await count(db_pool, "order_events") == 6
    assert await count(db_pool, "fills") == 2
    assert await db_pool.fetchval("SELECT sum(qty) FROM fills") == 48  # the conflict not added
    status = await db_pool.fetchval(
        "SELECT status FROM orders WHERE client_order_id = $1", f"{_plan(1)}:ENTRY"
    )
    assert status == "COMPLETE"
    assert await count(db_pool, "trades") == 2


async def test_a_full_queue_refuses_a_bulk_whole(db_pool: Pool, session_in: SessionRow) -> None:
    metrics = Metrics()
    n = plan_bulk(session_in.id, 0).rows
    # Not started: nothing drains. Two bulks fit, a third would not.
    writer = DbWriter(db_pool, queue_max=2 * n + 1, metrics=metrics)
    assert writer.submit_batch(plan_bulk(session_in.id, 0))
    assert writer.submit_batch(plan_bulk(session_in.id, 1))
    assert not writer.submit_batch(plan_bulk(session_in.id, 2))  # refused whole
    assert writer.dropped == n
    assert not writer.healthy  # over 90 % full: no new entries
    assert f"trader_writer_dropped_total {float(n)}" in metrics.render()
    assert writer.submit_batch(BulkWrite({}))  # nothing to write is no loss
    await writer.start()
    await drain(writer)
    await writer.close()
    assert await count(db_pool, "decisions") == 2
    assert not writer.submit_batch(plan_bulk(session_in.id, 3))  # closed
    with pytest.raises(TypeError, match="not a bulk write"):
        writer.submit_batch([decision(session_in.id, 4)])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown stage 'nope'"):
        BulkWrite({"nope": []})
    with pytest.raises(ValueError, match="bulk_decisions records have 2 values"):
        BulkWrite({DECISIONS.table: [(1, 2)]})


async def test_a_producer_that_may_wait_waits_for_room(
    db_pool: Pool, session_in: SessionRow
) -> None:
    n = plan_bulk(session_in.id, 0).rows
    writer = DbWriter(db_pool, queue_max=4 * n)  # not started yet: nothing drains
    for i in range(3):
        assert writer.submit_batch(plan_bulk(session_in.id, i))
    waiting = asyncio.create_task(writer.wait_for_room())  # 3n rows >= half of 4n
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await writer.start()
    async with asyncio.timeout(30):
        await waiting
    assert writer.queue_depth < 2 * n
    async with asyncio.timeout(5):
        await writer.wait_for_room()  # room already: returns at once
    await drain(writer)
    await writer.close()
    assert (writer.dropped, await count(db_pool, "decisions")) == (0, 3)


# ---- a real outage on a private embedded server ----
async def test_outage_retains_bulks_and_flushes_them_exactly_once(
    own_pg: EmbeddedPostgres,
) -> None:
    pool = await create_pool(own_pg.url(), min_size=1, max_size=2, connect_timeout=2)
    health: list[bool] = []
    writer = DbWriter(pool, retry_max_s=0.2, probe_interval_s=0.05)
    writer.add_health_listener(lambda ok, _why: health.append(ok))
    try:
        s = session_row()
        await repo.create_session(pool, s)
        await writer.start()
        writer.submit_batch(plan_bulk(s.id, 0))
        await drain(writer)

        await own_pg.stop("fast")
        await wait_until(lambda: not writer.healthy)
        during = [plan_bulk(s.id, i) for i in range(1, 6)]
        assert all(writer.submit_batch(b) for b in during)  # accepted, never blocked
        await asyncio.sleep(0.3)  # failed retries meanwhile
        assert writer.queue_depth == sum(b.rows for b in during)
        assert health[-1] is False

        await own_pg.start()
        await drain(writer)
        assert writer.healthy and health[-1] is True
        assert writer.dropped == 0
        for name in ("decisions", "orders", "fills", "positions", "trades"):
            assert await count(pool, name) == 6, name
        assert await count(pool, "order_events") == 18
        assert await pool.fetchval("SELECT count(*) FROM positions WHERE status = 'OPEN'") == 0
    finally:
        await writer.close(grace_s=5)
        await pool.close()


async def test_shutdown_during_outage_spills_bulks_and_next_start_replays(
    own_pg: EmbeddedPostgres, tmp_path: Path
) -> None:
    spill_dir = tmp_path / "spill"
    pool = await create_pool(own_pg.url(), min_size=1, max_size=2, connect_timeout=2)
    try:
        s = session_row()
        await repo.create_session(pool, s)
        await own_pg.stop("fast")
        writer = DbWriter(pool, retry_max_s=0.1, spill_dir=spill_dir)
        await writer.start()
        bulks = [plan_bulk(s.id, i) for i in range(4)]
        for b in bulks:
            writer.submit_batch(b)
        writer.submit(RiskEventRow(ts=T0, reason="db_unavailable", session_id=s.id))
        await writer.close(grace_s=0.5)  # the database never came back
        (spilled,) = spill_dir.glob(f"*{SPILL_SUFFIX}")
        lines = spilled.read_text().splitlines()
        assert len(lines) == 5  # the in-flight merged bulks line by line, then the row
        assert writer.dropped == 0

        await own_pg.start()
        again = DbWriter(pool, spill_dir=spill_dir)
        await again.start()
        await drain(again)
        await again.close()
        for name in ("decisions", "orders", "fills", "trades"):
            assert await count(pool, name) == 4, name
        assert await count(pool, "risk_events") == 1
        assert list(spill_dir.glob(f"*{SPILL_SUFFIX}")) == []
    finally:
        await pool.close()


def test_a_bulk_survives_the_spill_encoding() -> None:
    b = plan_bulk(uuid4(), 7)
    back = decode_queued(encode_bulk(b))
    assert isinstance(back, BulkWrite)
    assert back.parts == b.parts
    for name, records in b.parts.items():
        for mine, theirs in zip(records, back.parts[name], strict=True):
            assert [type(v) for v in mine] == [type(v) for v in theirs], name
    with pytest.raises(ValueError, match="unknown bulk stage"):
        decode_bulk(json.loads('{"type": "BulkWrite", "parts": {"nope": []}}'))
