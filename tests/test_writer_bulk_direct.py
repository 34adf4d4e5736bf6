"""The bulk lane's fast path (append-only rows COPYed straight into their
tables, values computed client side) against the staged path it replaces:
the same write gives the same rows to the bit, a write already there or with
a bad row goes staged and lands as before, orphans are still refused. Rows
are SYNTHETIC, hand-made records (see test_writer_bulk), with the awkward
values on purpose: times on a half microsecond, odd details, quotes and
non-ASCII in messages, NULLs where a column allows them."""

from __future__ import annotations

import io
import json
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from aitrapp._core import encode_copy
from aitrapp.db import bulk as bulk_lane
from aitrapp.db.bulk import BLOCKS, FILLS, ORDERS, TRANSITIONS, UPDATES, BulkRow, BulkWrite
from aitrapp.db.pool import Pool
from aitrapp.db.repo import SessionRow
from aitrapp.db.writer import DbWriter
from test_writer import count, session_in
from test_writer_bulk import T0_NS, _plan, drain, fill, order, plan_bulk, update

pytestmark = pytest.mark.integration
__all__ = ["session_in"]  # fixture used by name

# Times whose fraction of a microsecond is exactly or about a half (rounding).
_NS = [T0_NS + 500, T0_NS + 1_500, T0_NS + 2_499, T0_NS + 123_456_789, T0_NS - 500]


def _block(sid: UUID, seq: int, details: str | None, strategy: str = "EmaCross") -> Any:
    return (
        sid, seq, _NS[seq % len(_NS)], 101, "SYN101", strategy, "SELL" if seq % 2 else "BUY",
        "INSTRUMENT_BUSY", 250_005 + seq, 249_995 - seq, 1_000_000 * seq + 5, details,
    )  # fmt: skip


def _awkward(sid: UUID) -> BulkWrite:
    coids = [f"{_plan(i)}:ENTRY" for i in range(3)]
    details = [
        "open_plan_id=abc;open_strategy=EmaCross", "", None, "a=1;a=2;;b", "k=v=w;strategy=x",
        "note=ünïcode \"quoted\"",
    ]  # fmt: skip
    return BulkWrite(
        {
            BLOCKS.table: [_block(sid, i, d) for i, d in enumerate(details)],
            ORDERS.table: [order(sid, i) for i in range(3)],
            UPDATES.table: [
                update(sid, 1, coids[0], "OPEN PENDING", 0),
                update(sid, 2, coids[0], "OPEN", 10, 250_000, 'partial "fill" ✓'),
                update(sid, 3, coids[0], "COMPLETE", 24, 250_005),
                (sid, 4, coids[1], None, _NS[0], "REJECTED", 0, 0, "no margin", True),
                (sid, 5, coids[2], "B2", _NS[3], "OPEN", 0, None, None, None),
            ],
            FILLS.table: [fill(1000, 10, coids[0], 10), fill(1000, 24, coids[0], 14, 250_010)],
            TRANSITIONS.table: [
                (
                    sid,
                    _plan(0),
                    0,
                    _NS[1],
                    "NEW",
                    "ENTRY_SENT",
                    "SIGNAL",
                    json.dumps([{"kind": "PLACE_ORDER", "price": "2500.05"}]),
                ),
                (sid, _plan(0), 1, _NS[2], "ENTRY_SENT", "LIVE", "ENTRY_FILLED", "[]"),
            ],
        }
    )


_TABLES = {
    "signals": "id", "risk_events": "id", "orders": "client_order_id", "order_events": "id",
    "fills": "id", "bracket_transitions": "plan_id, seq",
}  # fmt: skip


async def _rows(conn: Any) -> dict[str, list[str]]:
    """Every row as the server prints it (numeric scales and times included); an
    order without its identity id (a rolled-back insert still takes a number)."""
    out = {}
    for name, key in _TABLES.items():
        row = "to_jsonb(t) - 'id'" if name == "orders" else "to_jsonb(t)"
        sql = f"SELECT ({row})::text FROM (SELECT * FROM {name} ORDER BY {key}) t"
        out[name] = [r[0] for r in await conn.fetch(sql)]
    return out


@pytest.mark.parametrize("per_write_fk", [True, False])
async def test_the_fast_path_writes_what_the_staged_path_writes(
    db_pool: Pool, session_in: SessionRow, per_write_fk: bool
) -> None:
    bulk = _awkward(session_in.id)
    seen = {}
    for direct in (True, False):
        async with db_pool.acquire() as conn:
            tx = conn.transaction()
            await tx.start()
            try:
                await bulk_lane.apply(conn, bulk, 30, per_write_fk=per_write_fk, direct=direct)
                seen[direct] = await _rows(conn)
            finally:
                await tx.rollback()
    assert seen[True] == seen[False]
    assert len(seen[True]["signals"]) == 6
    assert len(seen[True]["risk_events"]) == 6
    assert len(seen[True]["order_events"]) == 5
    assert len(seen[True]["fills"]) == 2
    assert len(seen[True]["bracket_transitions"]) == 2


async def test_timestamps_match_the_sql_on_many_times(db_pool: Pool) -> None:
    """The client-side timestamptz is the SQL's to the microsecond, halves included."""
    ns = [T0_NS + k * 500 + j for k in range(400) for j in (-1, 0, 1)]
    ns += [0, 1_500, -1_500, 4_102_444_800_000_000_500]
    data = encode_copy([("ts", ns), ("int8", ns)], len(ns))
    async with db_pool.acquire() as conn, conn.transaction():
        await conn.execute("CREATE TEMP TABLE t (ts timestamptz, ns bigint) ON COMMIT DROP")
        await conn.copy_to_table("t", source=io.BytesIO(data), format="binary")
        bad = await conn.fetch(f"SELECT ns FROM t WHERE ts <> {bulk_lane._ts('ns')} LIMIT 5")
    assert bad == []


async def test_rupees_match_the_sql(db_pool: Pool) -> None:
    paise = [0, 1, 5, 99, 100, 101, 250_005, -250_005, 10**12 + 7, -(10**15), 2**62]
    data = encode_copy([("rupees", paise), ("rupees0", paise), ("int8", paise)], len(paise))
    async with db_pool.acquire() as conn, conn.transaction():
        await conn.execute("CREATE TEMP TABLE r (v numeric, z numeric, p bigint) ON COMMIT DROP")
        await conn.copy_to_table("r", source=io.BytesIO(data), format="binary")
        rows = await conn.fetch(
            "SELECT v::text, (p * 0.01)::text AS want, z IS NULL AS z_null, p FROM r"
        )
    assert [r["v"] for r in rows] == [r["want"] for r in rows]
    assert [r["p"] for r in rows if r["z_null"]] == [0]


async def test_the_writer_goes_direct_and_a_replayed_write_lands_once(
    db_pool: Pool, session_in: SessionRow
) -> None:
    writer = DbWriter(db_pool)
    await writer.start()
    bulk = _awkward(session_in.id)
    writer.submit_batch(bulk)
    await drain(writer)
    assert writer.bulk_restaged == 0  # the fast path took it
    async with db_pool.acquire() as conn:
        first = await _rows(conn)
    writer.submit_batch(bulk)  # e.g. after a lost acknowledgement
    await drain(writer)
    await writer.close()
    assert writer.bulk_restaged == 1  # its rows were there: applied staged, idempotent
    async with db_pool.acquire() as conn:
        assert await _rows(conn) == first
    assert (writer.dropped, len(writer.dead_letters)) == (0, 0)
    assert writer.written == 2 * bulk.rows


async def test_a_bad_row_on_the_fast_path_is_isolated_as_before(
    db_pool: Pool, session_in: SessionRow
) -> None:
    """A value the fast path cannot encode (an integer column overflowed) and one the
    table refuses (a fill quantity of 0): the write goes staged, each bad row is
    dead-lettered by name, every other row lands."""
    sid = session_in.id
    coid = f"{_plan(0)}:ENTRY"
    good = plan_bulk(sid, 0)
    parts = dict(good.parts)
    too_big = update(sid, 77, coid, "OPEN", 2**40)
    zero_fill = fill(1000, 25, coid, 0)
    parts[UPDATES.table] = [*parts[UPDATES.table], too_big]
    parts[FILLS.table] = [*parts[FILLS.table], zero_fill]
    writer = DbWriter(db_pool)
    await writer.start()
    writer.submit_batch(BulkWrite(parts))
    await drain(writer)
    await writer.close()
    assert writer.bulk_restaged == 1
    dead = [w for w, _ in writer.dead_letters]
    assert dead == [
        BulkRow(UPDATES.table, dict(zip(UPDATES.names, too_big, strict=True))),
        BulkRow(FILLS.table, dict(zip(FILLS.names, zero_fill, strict=True))),
    ]
    assert await count(db_pool, "trades") == 1
    assert await count(db_pool, "order_events") == 3
    assert await count(db_pool, "fills") == 1


async def test_an_orphan_fill_fails_the_fast_path_by_name(
    db_pool: Pool, session_in: SessionRow
) -> None:
    orphan = BulkWrite({FILLS.table: [fill(5, 5, "no-such-order:ENTRY", 5)]})
    async with db_pool.acquire() as conn:
        with pytest.raises(asyncpg.ForeignKeyViolationError, match="no-such-order:ENTRY"):
            async with conn.transaction():
                await bulk_lane.apply(conn, orphan, 30, per_write_fk=True, direct=True)
    assert await count(db_pool, "fills") == 0


def test_encode_copy_names_the_bad_column_and_row() -> None:
    with pytest.raises(ValueError, match="column 1: 1 values for 2 rows"):
        encode_copy([("int8", [1, 2]), ("text", ["a"])], 2)
    with pytest.raises(ValueError, match=r"column 0 row 1: .* out of range for integer"):
        encode_copy([("int4", [1, 2**40])], 2)
    with pytest.raises(ValueError, match=r"column 0 row 0: .*not a uuid"):
        encode_copy([("uuid", "not-a-uuid")], 1)
    with pytest.raises(ValueError, match="unknown spec"):
        encode_copy([("float", [1.0])], 1)
    with pytest.raises(TypeError, match="column 0 row 1: an integer, got NoneType"):
        encode_copy([("int8", [1, None])], 2)
    with pytest.raises(OverflowError, match="column 0 row 1: 2361183241434822606848 does not"):
        encode_copy([("int8", [1, 2**71])], 2)
    with pytest.raises(TypeError, match="column 0 row 1: str or None, got int"):
        encode_copy([("text", ["a", 1])], 2)
    with pytest.raises(ValueError, match="ts needs integer"):
        encode_copy([("ts", ["x"])], 1)
