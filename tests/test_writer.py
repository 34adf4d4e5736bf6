"""The batched writer against a real PostgreSQL, including a real outage.

The outage tests run their own embedded server (so stopping it cannot
disturb the shared one): rows submitted while it is down are retained, the
writer reports unhealthy, and after the restart every row lands exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from uuid import UUID, uuid4

import asyncpg
import pytest
import pytest_asyncio

from aitrapp.db import repo
from aitrapp.db.embedded import EmbeddedPostgres
from aitrapp.db.migrate import migrate
from aitrapp.db.pool import Pool, create_pool
from aitrapp.db.repo import (
    AuditRow,
    FillRow,
    OrderEventRow,
    OrderStatusUpdate,
    RiskEventRow,
    SessionEnd,
    SessionRow,
    Write,
)
from aitrapp.db.writer import SPILL_SUFFIX, DbWriter, decode_write, encode_write
from aitrapp.metrics import Metrics
from test_db_repo import T0, decision_row, order_row, session_row, signal_row

pytestmark = pytest.mark.integration


async def wait_until(cond: Callable[[], bool], limit_s: float = 30.0) -> None:
    """Poll a condition (not a timing assertion: the bound only stops a hang)."""
    async with asyncio.timeout(limit_s):
        while not cond():  # noqa: ASYNC110 - the writer exposes state, not events
            await asyncio.sleep(0.01)


async def count(pool: Pool, table: str, session_id: UUID | None = None) -> int:
    if session_id is None:
        return int(await pool.fetchval(f"SELECT count(*) FROM {table}"))
    return int(
        await pool.fetchval(f"SELECT count(*) FROM {table} WHERE session_id = $1", session_id)
    )


def plan_rows(session_id: UUID, i: int) -> list[Write]:
    """Everything one plan writes, parents and children, in submission order."""
    sig = signal_row(session_id, ts=T0 + timedelta(seconds=i))
    plan = f"{i:024x}"
    dec = decision_row(sig, plan)
    entry = order_row(session_id, plan)
    return [
        sig,
        dec,
        entry,
        OrderStatusUpdate(
            client_order_id=entry.client_order_id,
            status="COMPLETE",
            filled_qty=24,
            avg_price=Decimal("2500.05"),
            broker_order_id=f"B{i}",
            status_message=None,
            ts=T0 + timedelta(seconds=i, milliseconds=5),
        ),
        OrderEventRow(
            client_order_id=entry.client_order_id,
            ts=T0 + timedelta(seconds=i, milliseconds=5),
            status="COMPLETE",
            filled_qty=24,
            avg_price=Decimal("2500.05"),
        ),
        FillRow(
            fill_scope="paper:writer-test",
            client_order_id=entry.client_order_id,
            broker_fill_key=f"T{i}",
            qty=24,
            price=Decimal("2500.05"),
            ts=T0 + timedelta(seconds=i, milliseconds=5),
        ),
    ]


@pytest_asyncio.fixture
async def session_in(db_pool: Pool) -> SessionRow:
    s = session_row()
    await repo.create_session(db_pool, s)
    return s


async def test_batches_mixed_rows_parents_first(db_pool: Pool, session_in: SessionRow) -> None:
    metrics = Metrics()
    writer = DbWriter(db_pool, batch_max=1000, metrics=metrics)
    # Children are submitted *before* their parents within one batch: the
    # writer orders each batch by table so the foreign keys still hold.
    rows = [w for i in range(50) for w in reversed(plan_rows(session_in.id, i))]
    assert writer.submit_many(rows) == len(rows)
    assert writer.queue_depth == len(rows)
    await writer.start()
    async with asyncio.timeout(30):
        await writer.flush()
    await writer.close()
    assert writer.written == len(rows)
    assert writer.queue_depth == 0
    for table in ("signals", "decisions", "orders"):
        assert await count(db_pool, table, session_in.id) == 50
    assert await count(db_pool, "fills") == 50
    assert await count(db_pool, "order_events") == 50
    assert await db_pool.fetchval("SELECT count(*) FROM orders WHERE status = 'COMPLETE'") == 50
    assert "trader_writer_queue_depth 0.0" in metrics.render()


async def test_resubmitted_rows_land_once(db_pool: Pool, session_in: SessionRow) -> None:
    writer = DbWriter(db_pool)
    await writer.start()
    rows = plan_rows(session_in.id, 1)
    writer.submit_many(rows)
    async with asyncio.timeout(30):
        await writer.flush()
    writer.submit_many(rows)  # e.g. a batch replayed after a lost acknowledgement
    async with asyncio.timeout(30):
        await writer.flush()
    await writer.close()
    assert writer.written == 2 * len(rows)
    for table in ("signals", "decisions", "orders", "order_events", "fills"):
        assert await count(db_pool, table) == 1, table


async def test_rejected_row_is_isolated_and_counted(db_pool: Pool, session_in: SessionRow) -> None:
    metrics = Metrics()
    writer = DbWriter(db_pool, metrics=metrics)
    good = plan_rows(session_in.id, 1)
    orphan = FillRow(
        fill_scope="paper:writer-test",
        client_order_id="no-such-order:ENTRY",  # foreign key violation
        broker_fill_key="T-orphan",
        qty=1,
        price=Decimal(1),
        ts=T0,
    )
    writer.submit_many([*good[:3], orphan, *good[3:]])
    await writer.start()
    async with asyncio.timeout(30):
        await writer.flush()
    await writer.close()
    assert writer.written == len(good)
    assert [w for w, _ in writer.dead_letters] == [orphan]
    assert "ForeignKeyViolation" in writer.dead_letters[0][1]
    assert writer.healthy  # a bad row is not an outage
    assert await count(db_pool, "fills") == 1
    assert "trader_writer_dropped_total 1.0" in metrics.render()


async def test_full_queue_refuses_without_blocking(db_pool: Pool, session_in: SessionRow) -> None:
    metrics = Metrics()
    writer = DbWriter(db_pool, queue_max=10, metrics=metrics)  # not started: nothing drains
    results = [writer.submit(RiskEventRow(ts=T0, reason=f"r{i}")) for i in range(11)]
    assert results == [True] * 10 + [False]
    assert writer.dropped == 1
    assert not writer.healthy  # a saturated queue must stop new entries too
    assert "trader_writer_dropped_total 1.0" in metrics.render()
    await writer.start()
    async with asyncio.timeout(30):
        await writer.flush()
    assert writer.healthy
    await writer.close()
    assert not writer.submit(RiskEventRow(ts=T0, reason="late"))  # closed
    assert await count(db_pool, "risk_events") == 10
    with pytest.raises(TypeError, match="not a database write"):
        writer.submit("INSERT ...")  # type: ignore[arg-type]


# ---- a real outage on a private embedded server ----
@pytest_asyncio.fixture
async def own_pg(pg_dir: Path) -> AsyncIterator[EmbeddedPostgres]:
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


async def test_outage_retains_rows_and_flushes_exactly_once(own_pg: EmbeddedPostgres) -> None:
    pool = await create_pool(own_pg.url(), min_size=1, max_size=2, connect_timeout=2)
    metrics = Metrics()
    health: list[tuple[bool, str | None]] = []
    writer = DbWriter(pool, retry_max_s=0.2, probe_interval_s=0.05, metrics=metrics)
    writer.add_health_listener(lambda ok, why: health.append((ok, why)))
    try:
        s = session_row()
        await repo.create_session(pool, s)
        await writer.start()
        before = [w for i in range(5) for w in plan_rows(s.id, i)]
        writer.submit_many(before)
        async with asyncio.timeout(30):
            await writer.flush()

        await own_pg.stop("fast")  # the database goes away mid-session
        await wait_until(lambda: not writer.healthy)
        assert health[-1][0] is False
        assert "trader_db_healthy 0.0" in metrics.render()

        during = [w for i in range(5, 25) for w in plan_rows(s.id, i)]
        during.append(RiskEventRow(ts=T0, reason="db_unavailable", session_id=s.id))
        assert writer.submit_many(during) == len(during)  # accepted, not blocked
        await asyncio.sleep(0.3)  # several failed retries happen meanwhile
        assert writer.queue_depth == len(during)  # nothing lost, nothing half-written
        assert not writer.healthy

        await own_pg.start()  # same port, same data
        async with asyncio.timeout(60):
            await writer.flush()
        assert writer.healthy
        assert health[-1] == (True, None)
        assert writer.dropped == 0
        for table in ("signals", "decisions", "orders", "fills", "order_events"):
            assert await count(pool, table) == 25, table
        assert await count(pool, "risk_events") == 1
        assert await pool.fetchval("SELECT count(DISTINCT client_order_id) FROM orders") == 25
        assert "trader_db_healthy 1.0" in metrics.render()
    finally:
        await writer.close(grace_s=5)
        await pool.close()


async def test_shutdown_during_outage_spills_and_next_start_replays(
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
        rows = [w for i in range(10) for w in plan_rows(s.id, i)]
        rows.append(SessionEnd(session_id=s.id, ended_at=T0 + timedelta(hours=6), status="FAILED"))
        writer.submit_many(rows)
        await writer.close(grace_s=0.5)  # the database never came back
        spilled = list(spill_dir.glob(f"*{SPILL_SUFFIX}"))
        assert len(spilled) == 1
        assert len(spilled[0].read_text().splitlines()) == len(rows)
        assert writer.dropped == 0

        await own_pg.start()
        again = DbWriter(pool, spill_dir=spill_dir)
        await again.start()  # replays the spill file
        async with asyncio.timeout(60):
            await again.flush()
        await again.close()
        assert await count(pool, "orders") == 10
        assert await count(pool, "fills") == 10
        assert await pool.fetchval("SELECT status FROM sessions WHERE id = $1", s.id) == "FAILED"
        assert list(spill_dir.glob(f"*{SPILL_SUFFIX}")) == []  # deleted once written
    finally:
        await pool.close()


def test_every_write_type_survives_the_spill_encoding() -> None:
    sid = uuid4()
    rows: list[Write] = [
        session_row(summary={"x": [1, 2]}),
        *plan_rows(sid, 7),
        AuditRow(ts=datetime(2026, 1, 5, tzinfo=UTC), actor="cli", action="flatten"),
        RiskEventRow(ts=T0, reason="heat", signal_id=sid, details={"pct": "2.5"}),
    ]
    for row in rows:
        back = decode_write(encode_write(row))
        assert back == row, type(row).__name__
        assert all(
            type(getattr(back, f.name)) is type(getattr(row, f.name))
            for f in dataclasses.fields(row)  # type: ignore[arg-type]
        )
    with pytest.raises(ValueError, match="unknown row type"):
        decode_write('{"type": "Nope", "fields": {}}')


class FlakyPool:
    """The real pool, but single-row executes fail once with a connection error."""

    def __init__(self, pool: Pool, fail_on_call: int) -> None:
        self._pool = pool
        self._calls = 0
        self._fail_on = fail_on_call

    @contextlib.asynccontextmanager
    async def acquire(self, **kw: object) -> AsyncIterator[object]:
        async with self._pool.acquire(**kw) as conn:  # type: ignore[arg-type]
            yield _FlakyConnection(self, conn)

    def count_execute(self) -> None:
        self._calls += 1
        if self._calls == self._fail_on:
            raise ConnectionResetError("connection lost mid-batch")


class _FlakyConnection:
    """Single-row executes go through the pool's failure counter; the rest is the real one."""

    def __init__(self, pool: FlakyPool, conn: object) -> None:
        self._flaky = pool
        self._conn = conn

    def __getattr__(self, name: str) -> object:
        return getattr(self._conn, name)

    async def execute(self, *args: object, **kw: object) -> str:
        self._flaky.count_execute()
        return await self._conn.execute(*args, **kw)  # type: ignore[attr-defined,no-any-return]


async def test_outage_while_isolating_a_bad_row_still_flushes(
    db_pool: Pool, session_in: SessionRow
) -> None:
    flaky = FlakyPool(db_pool, fail_on_call=3)
    writer = DbWriter(flaky, retry_min_s=0.01)  # type: ignore[arg-type]
    good = plan_rows(session_in.id, 1)
    orphan = FillRow(
        fill_scope="paper:writer-test",
        client_order_id="no-such-order:ENTRY",
        broker_fill_key="T-x",
        qty=1,
        price=Decimal(1),
        ts=T0,
    )
    writer.submit_many([*good, orphan])
    await writer.start()
    async with asyncio.timeout(30):  # hung forever when partial progress was miscounted
        await writer.flush()
    await writer.close()
    assert [w for w, _ in writer.dead_letters] == [orphan]
    for table in ("signals", "decisions", "orders", "order_events", "fills"):
        assert await count(db_pool, table) == 1, table


def test_atomic_rows_are_never_split_across_batches() -> None:
    """An order's status and its fill travel together: a batch boundary (and so a
    process killed between two transactions) never separates them."""
    writer = DbWriter(None, batch_max=3)  # type: ignore[arg-type]  # batching only, never started
    sid = uuid4()
    singles = [RiskEventRow(ts=T0, reason=f"r{i}", session_id=sid) for i in range(2)]
    group = plan_rows(sid, 1)[3:]  # status update, order event, fill
    writer.submit_many(singles)
    assert writer.submit_many(group, atomic=True) == len(group)
    writer.submit(singles[0])
    first = writer._take_batch()
    assert first == [*singles, *group]  # over batch_max rather than cut in two
    assert writer._take_batch() == [singles[0]]
    # Without atomic, the boundary falls where batch_max says.
    writer.submit_many([*singles, *group])
    assert len(writer._take_batch()) == 3


async def test_conflicting_fill_is_refused_logged_and_counted(
    db_pool: Pool, session_in: SessionRow, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = Metrics()
    writer = DbWriter(db_pool, metrics=metrics)
    rows = plan_rows(session_in.id, 1)
    fill = rows[-1]
    assert isinstance(fill, FillRow)
    same_again = dataclasses.replace(fill, id=uuid4())  # a restart sees the same fill
    different = dataclasses.replace(fill, id=uuid4(), qty=fill.qty - 1)
    other_scope = dataclasses.replace(fill, id=uuid4(), fill_scope="paper:another-session")
    writer.submit_many([*rows, same_again, different, other_scope])
    await writer.start()
    async with asyncio.timeout(30):
        await writer.flush()
    await writer.close()
    assert [w for w, _ in writer.dead_letters] == [different]
    assert writer.fill_conflicts == 1
    assert "trader_fill_conflicts_total 1.0" in metrics.render()
    assert any("conflicting fill" in r.getMessage() for r in caplog.records)
    stored = await db_pool.fetch("SELECT fill_scope, qty FROM fills ORDER BY fill_scope")
    assert [(r["fill_scope"], r["qty"]) for r in stored] == [
        ("paper:another-session", fill.qty),
        ("paper:writer-test", fill.qty),
    ]


async def test_grouped_rows_are_one_transaction_and_other_tasks_are_not_held() -> None:
    writer = DbWriter(None, batch_max=2)  # type: ignore[arg-type]  # batching only, never started
    sid = uuid4()
    rows = [RiskEventRow(ts=T0, reason=f"g{i}", session_id=sid) for i in range(5)]
    other = RiskEventRow(ts=T0, reason="another task", session_id=sid)
    late = RiskEventRow(ts=T0, reason="after the block", session_id=sid)
    go = asyncio.Event()

    async def submit_when(event: asyncio.Event, row: RiskEventRow) -> None:
        await event.wait()
        writer.submit(row)

    before = asyncio.create_task(submit_when(go, other))  # its own context: never grouped
    with writer.grouped():
        writer.submit(rows[0])
        with writer.grouped():  # nested: joins the outer group
            writer.submit_many(rows[1:3])
        writer.submit_many(rows[3:], atomic=True)
        go.set()
        await before
        assert writer.queued() == [other]  # the group's rows wait for the block's end
        after_end = asyncio.Event()
        inside = asyncio.create_task(submit_when(after_end, late))  # submits after the block
    after_end.set()
    await inside
    # The group is queued when the block ends, in one batch whatever batch_max says.
    assert writer._take_batch() == [other, *rows]
    assert writer._take_batch() == [late]
