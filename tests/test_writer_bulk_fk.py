"""The bulk lane's foreign keys, checked once per write (migration 0008) when
the role may turn the per-row triggers off, and per row otherwise: the same
rows land either way, an orphan never does, and the domain's own triggers
(a conflicting fill, append-only history) fire whatever the role. Rows are
SYNTHETIC, hand-made records (see test_writer_bulk)."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from aitrapp.db import bulk as bulk_lane
from aitrapp.db.bulk import FILLS, UPDATES, BulkRow, BulkWrite
from aitrapp.db.pool import Pool, create_pool
from aitrapp.db.repo import SessionRow
from aitrapp.db.writer import DbWriter
from test_writer import count, session_in
from test_writer_bulk import _plan, drain, dump, fill, plan_bulk, update

pytestmark = pytest.mark.integration
__all__ = ["session_in"]  # fixture used by name


def _orphan(sid: uuid.UUID) -> Any:
    return update(sid, 900, "no-such-order:ENTRY", "OPEN", 0)


async def test_the_superuser_checks_references_per_write(
    db_pool: Pool, session_in: SessionRow
) -> None:
    async with db_pool.acquire() as conn:
        assert await bulk_lane.may_check_per_write(conn)
    writer = DbWriter(db_pool)
    await writer.start()
    writer.submit_batch(plan_bulk(session_in.id, 0))
    await drain(writer)
    assert writer.references_checked_per_write is True
    # An orphan alone: the per-write check refuses the write, the row-by-row
    # retry finds the one row and lands the rest.
    good = plan_bulk(session_in.id, 1)
    parts = dict(good.parts)
    parts[UPDATES.table] = [*parts[UPDATES.table], _orphan(session_in.id)]
    writer.submit_batch(BulkWrite(parts))
    await drain(writer)
    await writer.close()
    assert [w for w, _ in writer.dead_letters] == [
        BulkRow(UPDATES.table, dict(zip(UPDATES.names, _orphan(session_in.id), strict=True)))
    ]
    assert await count(db_pool, "trades") == 2
    assert await count(db_pool, "order_events") == 6


async def test_an_orphan_fails_the_per_write_check_by_name(
    db_pool: Pool, session_in: SessionRow
) -> None:
    sid = session_in.id
    write = BulkWrite({UPDATES.table: [_orphan(sid)]})
    async with db_pool.acquire() as conn:
        with pytest.raises(asyncpg.ForeignKeyViolationError, match="no-such-order:ENTRY"):
            async with conn.transaction():
                await bulk_lane.apply(conn, write, 5.0, per_write_fk=True)
        # The role's setting ended with the transaction.
        assert await conn.fetchval("SHOW session_replication_role") == "origin"
    assert await count(db_pool, "order_events") == 0


async def test_a_conflicting_fill_is_refused_with_per_row_triggers_off(
    db_pool: Pool, session_in: SessionRow
) -> None:
    writer = DbWriter(db_pool)
    await writer.start()
    writer.submit_batch(plan_bulk(session_in.id, 0))
    await drain(writer)
    conflict = fill(1000, 24, f"{_plan(0)}:ENTRY", 23)  # plan 0's fill key, another qty
    writer.submit_batch(BulkWrite({FILLS.table: [conflict]}))
    await drain(writer)
    await writer.close()
    assert writer.references_checked_per_write is True
    assert writer.fill_conflicts == 1
    assert await db_pool.fetchval("SELECT sum(qty) FROM fills") == 24
    with pytest.raises(asyncpg.RestrictViolationError):  # history stays append-only
        async with db_pool.acquire() as conn, conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")
            await conn.execute("DELETE FROM order_events")


async def test_a_role_that_may_not_gets_the_same_rows_checked_per_row(
    db_pool: Pool, db_url: str, session_in: SessionRow
) -> None:
    """A plain role (no superuser, no SET grant) writes through the per-row
    triggers: the same tables as the superuser's writes, orphans refused."""
    role = f"app_{uuid.uuid4().hex[:8]}"
    db = urlsplit(db_url).path.lstrip("/")
    await db_pool.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'synthetic'")
    await db_pool.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}")
    await db_pool.execute(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}")
    await db_pool.execute(f"GRANT TEMPORARY ON DATABASE {db} TO {role}")
    u = urlsplit(db_url)
    url = urlunsplit(u._replace(netloc=f"{role}:synthetic@{u.hostname}:{u.port}"))
    pool = await create_pool(url, min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            assert not await bulk_lane.may_check_per_write(conn)
        writer = DbWriter(pool)
        await writer.start()
        for i in range(2):
            writer.submit_batch(plan_bulk(session_in.id, i))
        parts = dict(plan_bulk(session_in.id, 2).parts)
        parts[UPDATES.table] = [*parts[UPDATES.table], _orphan(session_in.id)]
        writer.submit_batch(BulkWrite(parts))
        await drain(writer)
        await writer.close()
        assert writer.references_checked_per_write is False
        assert len(writer.dead_letters) == 1
        assert "ForeignKeyViolation" in writer.dead_letters[0][1]
    finally:
        await pool.close()
    rows = await dump(db_pool)
    assert len(rows["trades"]) == 3 and len(rows["order_events"]) == 9
    assert {o["status"] for o in rows["orders"]} == {"COMPLETE"}
    assert {p["status"] for p in rows["positions"]} == {"CLOSED"}
