"""A hung database (every PostgreSQL process SIGSTOPped), not a stopped one.

A stopped server refuses connections at once; a hung one accepts them and
never answers, which is what asyncpg's own timeouts handle worst (a timed-out
query is followed by a cancel request that the hung server never answers
either). The writer must say it is unhealthy within seconds, keep every row
and, once the server runs again, land each row exactly once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from aitrapp.bus import BusEvent, Subscription
from aitrapp.db import repo
from aitrapp.db.embedded import EmbeddedPostgres
from aitrapp.db.migrate import migrate
from aitrapp.db.pool import create_pool
from aitrapp.db.writer import SPILL_SUFFIX, DbWriter
from aitrapp.feeds.base import TickBatch
from aitrapp.metrics import Metrics
from aitrapp.runtime import Runtime, start_runtime
from sessions.helpers import (
    BUSY_ENGINE,
    KernelLog,
    SteppedFeed,
    metric,
    options,
    settings_for,
    stepped,
    updates_taken,
)
from sessions.helpers import count as pcount
from test_db_repo import session_row
from test_writer import count, plan_rows

from .conftest import ChaosSizes
from .procs import freeze, hung, thaw

pytestmark = pytest.mark.integration


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


async def test_hung_database_is_detected_and_every_row_lands_once(
    own_pg: EmbeddedPostgres, chaos: ChaosSizes
) -> None:
    url = own_pg.url()
    pool = await create_pool(url, min_size=2, max_size=4, connect_timeout=2)
    metrics = Metrics()
    health: list[tuple[bool, str | None]] = []
    writer = DbWriter(
        pool,
        retry_max_s=0.5,
        probe_interval_s=0.5,
        command_timeout_s=2.0,
        heartbeat_timeout_s=0.5,
        heartbeat_connect=lambda: asyncpg.connect(url, timeout=2),
        metrics=metrics,
    )
    writer.add_health_listener(lambda ok, why: health.append((ok, why)))
    s = session_row()
    await repo.create_session(pool, s)
    await writer.start()
    submitted = 0
    try:
        with hung(own_pg.pgdata) as pids:
            assert len(pids) >= 2  # the postmaster and its processes
            t0 = time.monotonic()
            detected_after: float | None = None
            while time.monotonic() - t0 < chaos.db_hang_s:
                # Rows keep coming while the server hangs (a session does not stop).
                submitted += writer.submit_many(plan_rows(s.id, submitted // 6))
                if detected_after is None and not writer.healthy:
                    detected_after = time.monotonic() - t0
                await asyncio.sleep(0.1)
            assert detected_after is not None, "the hang was never noticed"
            assert not writer.healthy
            assert health and health[-1][0] is False
            assert "trader_db_healthy 0.0" in metrics.render()
            assert writer.queue_depth > 0  # retained, not dropped
            assert writer.dropped == 0
        async with asyncio.timeout(60):
            await writer.flush()
        async with asyncio.timeout(30):
            while not writer.healthy:  # noqa: ASYNC110 - health is state, not an event
                await asyncio.sleep(0.05)
        assert health[-1] == (True, None)
        assert writer.dropped == 0
        plans = submitted // 6
        for table in ("signals", "decisions", "orders", "fills", "order_events"):
            assert await count(pool, table) == plans, table
        # Detected well inside the hang (the heartbeat's deadline plus its period).
        print(f"hang of {chaos.db_hang_s:g} s noticed after {detected_after:.2f} s")
    finally:
        await writer.close(grace_s=5)
        await pool.close()


@dataclass
class Hang:
    """Hangs the database from between the feed's batches, mid-session.

    The hang starts once a bracket is open (so exits must be managed through it)
    and lasts ``hang_s`` of wall time, spread over session time by a short pause
    per batch so that strategies keep deciding while the database is away.
    """

    rt: Runtime
    pg: EmbeddedPostgres
    hang_s: float
    phase: str = "before"
    pids: list[int] = field(default_factory=list)
    t0: float = 0.0
    detected_after: float | None = None
    decisions_at_detection: int = 0
    decisions_while_down: int = 0
    signals_at_detection: int = 0
    signals_while_down: int = 0
    detected_at: datetime | None = None  # wall clock, as the bus stamps its events
    thawed_at: datetime | None = None
    health_while_down: dict[str, bool] = field(default_factory=dict)

    def _counters(self) -> dict[str, int]:
        return self.rt.book().counters

    def on_health(self, ok: bool, _reason: str | None) -> None:
        """The writer's verdict, as it happens (its heartbeat runs beside the feed)."""
        if ok or self.phase != "hung" or self.detected_after is not None:
            return
        c = self._counters()
        self.detected_after = time.monotonic() - self.t0
        self.decisions_at_detection = c["decisions"]
        self.signals_at_detection = c["signals"]
        self.detected_at = datetime.now(UTC)  # compared with BusEvent.ts (ISO, microseconds)
        self.health_while_down = {k: v.ok for k, v in self.rt.health().items()}

    async def step(self, _batch: TickBatch) -> None:
        rt = self.rt
        if self.phase == "before":
            if not rt.book().positions:
                return
            self.t0 = time.monotonic()
            self.phase = "hung"
            self.pids = freeze(self.pg.pgdata)
            return
        if self.phase != "hung":
            return
        if time.monotonic() - self.t0 < self.hang_s:
            # The feed hands the kernel a minute of session time per batch: ~50 min per hang.
            await asyncio.sleep(self.hang_s / 50)
            return
        c = self._counters()
        self.decisions_while_down = c["decisions"] - self.decisions_at_detection
        self.signals_while_down = c["signals"] - self.signals_at_detection
        self.thawed_at = datetime.now(UTC)
        thaw(self.pids)
        self.phase = "after"
        async with asyncio.timeout(60):
            while not rt.writer.healthy:  # noqa: ASYNC110 - health is state
                await asyncio.sleep(0.02)


async def test_session_through_a_hung_database(
    own_pg: EmbeddedPostgres, tmp_path: Path, chaos: ChaosSizes
) -> None:
    settings = settings_for(
        own_pg.url(),
        tmp_path,
        writer_probe_interval_s=0.2,
        db_heartbeat_timeout_s=0.5,
        writer_command_timeout_s=1.0,
    )
    rt = await start_runtime(
        settings,
        options(engine=BUSY_ENGINE, start_feed=False, feed_factory=SteppedFeed.factory()),
    )
    KernelLog.attach(rt)
    hang = Hang(rt, own_pg, chaos.db_hang_s)
    rt.writer.add_health_listener(hang.on_health)
    stepped(rt).between = hang.step
    placed: list[BusEvent] = []  # every order placed, stamped when it was
    sub = await rt.bus.subscribe(["orders"])
    collector = asyncio.create_task(_collect(sub, placed))
    try:
        rt.start_feed()
        async with asyncio.timeout(180 + chaos.db_hang_s):
            await rt.wait_feed()
        await rt.stop_trading()
    finally:
        thaw(hang.pids)
        await sub.close()
        await collector
        await rt.stop()
    assert hang.phase == "after", hang.phase
    # Noticed while it lasted; /health said so for the database and the writer.
    assert hang.detected_after is not None and hang.detected_after < chaos.db_hang_s
    assert hang.health_while_down["database"] is False
    assert hang.health_while_down["writer"] is False
    # No new entry while it was hung; strategies did signal, and the kernel's gate
    # refused each (no decision came of them).
    assert hang.signals_while_down >= 1
    assert hang.decisions_while_down == 0
    assert hang.detected_at is not None and hang.thawed_at is not None
    down = tuple(t.isoformat(timespec="microseconds") for t in (hang.detected_at, hang.thawed_at))
    entries = [e for e in placed if _is_entry(e)]
    assert entries, "no entry at all: the session did not trade"
    assert [e.data["client_order_id"] for e in entries if down[0] <= e.ts <= down[1]] == []
    assert metric(rt, "trader_risk_blocks_total", reason="DB_UNAVAILABLE") >= (
        hang.signals_while_down
    )
    # An alert when it went, another when it came back.
    codes = [a["code"] for a in rt.book().alerts]
    assert "DB_UNAVAILABLE" in codes
    assert codes.index("DB_RECOVERED") > codes.index("DB_UNAVAILABLE")
    assert metric(rt, "trader_oco_alerts_total", severity="CRITICAL", code="DB_UNAVAILABLE") >= 1
    # Every row the session counted landed exactly once.
    await _check_rows_once(rt, tmp_path)


def _is_entry(e: BusEvent) -> bool:
    """An entry placed (the kernel publishes each order command: PLACE, MODIFY, CANCEL)."""
    return e.data["action"] == "PLACE" and e.data["client_order_id"].endswith(":ENTRY")


async def _collect(sub: Subscription, into: list[BusEvent]) -> None:
    async for event in sub:
        into.append(event)


async def _check_rows_once(rt: Runtime, data_dir: Path) -> None:
    w = rt.writer
    assert (w.dropped, len(w.dead_letters), w.queue_depth) == (0, 0, 0)
    assert await asyncio.to_thread(lambda: list(data_dir.glob(f"*{SPILL_SUFFIX}"))) == []
    sid = rt.session_id
    assert sid is not None
    pool = await asyncpg.create_pool(rt.settings.database_dsn(), min_size=1, max_size=1)
    try:
        c = rt.book().counters
        assert await pool.fetchval("SELECT status FROM sessions WHERE id = $1", sid) == (
            "COMPLETED"
        )
        assert await pcount(pool, "signals", sid) == c["signals"]
        assert await pcount(pool, "decisions", sid) == c["decisions"]
        assert await pcount(pool, "risk_events", sid) == c["risk_blocks"]
        assert await pcount(pool, "trades", sid) == c["trades"]
        assert await pcount(pool, "order_events", sid) == updates_taken(rt)
        mismatched = await pool.fetch(
            "SELECT o.client_order_id FROM orders o LEFT JOIN fills f USING (client_order_id) "
            "WHERE o.session_id = $1 GROUP BY o.client_order_id, o.filled_qty "
            "HAVING COALESCE(sum(f.qty), 0) <> o.filled_qty",
            sid,
        )
        assert mismatched == []
    finally:
        await pool.close()
