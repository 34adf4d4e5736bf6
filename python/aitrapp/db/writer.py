"""The database writer: the tick path hands rows over and never waits.

``submit()`` is synchronous and O(1): it appends to a bounded buffer. One
task drains the buffer in batches (grouped by statement, parents first, one
transaction, ``executemany``). Every write is idempotent (see
:mod:`aitrapp.db.repo`), so a batch whose acknowledgement was lost is simply
sent again.

When the database is unreachable the batch stays pending, the writer reports
``healthy = False`` (the kernel then opens no new entries), retries with
exponential backoff, and flushes everything once the server is back. A row the
database rejects for its content (constraint or data error) cannot succeed on
retry: the batch is replayed row by row, and each rejected row is logged in
full and counted, so one bad row never blocks the rest.

A database that hangs (every PostgreSQL process stopped) refuses nothing, it
just never answers; asyncpg then waits out its command timeout and again for
the cancel request. So every statement runs under a deadline of its own, and a
heartbeat task (``SELECT 1`` on a dedicated connection, a short deadline, the
connection dropped when it is missed) says within about two seconds that the
database is gone, whatever the writer happens to be waiting on.

Rows submitted together with ``submit_many(..., atomic=True)`` always travel
in one batch, hence one transaction; ``with writer.grouped():`` does the same
for every row submitted inside the block by the same task (the order watcher
wraps each broker update: the order's status, its fill, the position it opens
or closes and the trade). A process killed between two batches never leaves a
fill without its position, or a position without its fill.

``close()`` drains; if the database is still down when its timeout expires,
the unwritten rows are spilled to a JSON-lines file that the next
``start()`` replays (idempotently), so a restart loses nothing either.

The bulk lane (``submit_batch``) takes a whole :class:`~aitrapp.db.bulk.BulkWrite`
(the trading kernel's event batch as plain tuples): binary COPY into temp
tables and set-based statements, one transaction. Consecutive bulk writes
waiting in the queue are merged into one transaction (up to
``bulk_rows_max`` rows: few round trips for a fast producer, and a transaction
that stays well inside its deadline); each still lands whole. Everything
above holds for it too: it is queued without waiting, retained and retried
through an outage, counted in the queue depth (by rows), spilled on close and
replayed; a row the database rejects is isolated (by halving the rows of the
stage that failed) and dead-lettered.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import json
import logging
import os
import time
import typing
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal
from itertools import groupby
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg

from aitrapp.db import bulk as bulk_lane
from aitrapp.db import repo
from aitrapp.db.bulk import BulkRow, BulkWrite, Record, Stage
from aitrapp.db.pool import Pool, json_dumps
from aitrapp.db.repo import Write, args_for, statement_for
from aitrapp.metrics import Metrics

log = logging.getLogger(__name__)

HealthListener = Callable[[bool, str | None], None]
# What waits in the queue: one row, or a bulk write (one transaction of its own).
Queued = Write | BulkWrite


@dataclasses.dataclass(eq=False)
class _Group:
    writer: DbWriter
    rows: list[Write]
    open: bool = True


# The group of the running task (and of tasks it starts while the block is open).
_GROUP: contextvars.ContextVar[_Group | None] = contextvars.ContextVar(
    "aitrapp_writer_group", default=None
)
# A dedicated connection for the heartbeat (so a saturated pool cannot hide an outage).
HeartbeatConnect = Callable[[], Awaitable["asyncpg.Connection[asyncpg.Record]"]]
SPILL_SUFFIX = ".spill.jsonl"
# A spilled row that must be replayed in one batch with the next line.
GLUED_PREFIX = "+"

# Errors about the row itself: retrying the same row cannot succeed.
_ROW_ERRORS = (
    asyncpg.IntegrityConstraintViolationError,
    asyncpg.DataError,
    TypeError,
    ValueError,
    OverflowError,  # a number its column cannot hold (bulk COPY encodes it client side)
)


class DbWriter:
    """Batched, non-blocking writes with retention while the database is down."""

    def __init__(
        self,
        pool: Pool,
        *,
        queue_max: int = 100_000,
        batch_max: int = 500,
        bulk_rows_max: int = 20_000,
        retry_min_s: float = 0.05,
        retry_max_s: float = 5.0,
        probe_interval_s: float = 1.0,
        command_timeout_s: float = 5.0,
        heartbeat_timeout_s: float = 1.0,
        heartbeat_connect: HeartbeatConnect | None = None,
        metrics: Metrics | None = None,
        spill_dir: Path | None = None,
    ) -> None:
        if queue_max < 1 or batch_max < 1 or bulk_rows_max < 1:
            raise ValueError("queue_max, batch_max and bulk_rows_max must be >= 1")
        if command_timeout_s <= 0 or heartbeat_timeout_s <= 0 or probe_interval_s <= 0:
            raise ValueError("timeouts and the probe interval must be > 0")
        self._pool = pool
        self._queue_max = queue_max
        self._batch_max = batch_max
        self._bulk_rows_max = bulk_rows_max
        self._retry_min = retry_min_s
        self._retry_max = retry_max_s
        self._probe_interval = probe_interval_s
        self._timeout = command_timeout_s
        self._hb_timeout = heartbeat_timeout_s
        self._hb_connect = heartbeat_connect
        self._hb_conn: asyncpg.Connection[asyncpg.Record] | None = None
        self._hb_task: asyncio.Task[None] | None = None
        self._metrics = metrics
        self._spill_dir = spill_dir
        # (row, glued): a glued row travels in the same batch as the row after it.
        self._buf: deque[tuple[Queued, bool]] = deque()
        self._pending: list[Queued] = []
        # Rows (a bulk write counts its rows) in _buf and in _pending.
        self._buf_rows = 0
        self._pending_rows = 0
        self._wake = asyncio.Event()
        self._progress = asyncio.Condition()
        self._submitted = 0
        self._done = 0  # rows written or dead-lettered, counted per completed batch
        self._inflight = 0  # size of the batch in self._pending when it was taken
        self._db_ok = True  # the overall verdict: writes and heartbeat both fine
        self._writes_ok = True
        self._beat_ok = True
        self._write_error: str | None = None
        self._beat_error: str | None = None
        self._last_error: str | None = None
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._listeners: list[HealthListener] = []
        self._replayed: list[tuple[Path, int]] = []
        # Bulk writes check foreign keys once per write when the role may (None: not asked yet).
        self._per_write_fk: bool | None = None
        self.written = 0
        self.dropped = 0
        self.fill_conflicts = 0
        # Bulk writes the fast path could not take (rows already there, a bad row):
        # applied again staged.
        self.bulk_restaged = 0
        self.dead_letters: deque[tuple[Write | BulkRow, str]] = deque(maxlen=1000)
        if metrics is not None:
            metrics.bind_writer_depth(lambda: float(self.queue_depth))
            metrics.db_healthy.set(1)

    # ---- state ----
    @property
    def references_checked_per_write(self) -> bool | None:
        """Bulk writes check their foreign keys once per write (None: none written yet)."""
        return self._per_write_fk

    @property
    def queue_depth(self) -> int:
        """Rows submitted but not yet written (buffered plus in flight)."""
        return self._buf_rows + self._pending_rows

    @property
    def healthy(self) -> bool:
        """False while the database is unreachable or hung, or the buffer is 90% full."""
        return self._db_ok and self._buf_rows < 0.9 * self._queue_max

    @property
    def database_ok(self) -> bool:
        """The database answers (heartbeat) and takes the writes."""
        return self._db_ok

    def queued(self) -> list[Queued]:
        """The rows waiting (in flight first), for inspection."""
        return [*self._pending, *(w for w, _ in self._buf)]

    @property
    def last_error(self) -> str | None:
        return self._last_error

    def add_health_listener(self, listener: HealthListener) -> None:
        """Called as ``listener(healthy, reason)`` when the database goes down or comes back."""
        self._listeners.append(listener)

    # ---- the tick-path API ----
    def submit(self, write: Write) -> bool:
        """Queue one row; never blocks. False if refused (closing or buffer full: logged)."""
        group = _GROUP.get()
        if group is not None and group.open and group.writer is self:
            if type(write) not in repo.STATEMENTS:
                raise TypeError(f"not a database write: {type(write).__name__}")
            group.rows.append(write)  # queued, atomically, when the group closes
            return True
        return self._submit(write, glued=False)

    @contextlib.contextmanager
    def grouped(self) -> Iterator[None]:
        """Every row this task submits inside the block lands in one transaction.

        Nested blocks join the outer one. Rows are queued when the block ends
        (also on an exception); a task started inside the block that submits
        after it ended queues its rows on its own.
        """
        outer = _GROUP.get()
        if outer is not None and outer.open and outer.writer is self:
            yield
            return
        group = _Group(self, [])
        token = _GROUP.set(group)
        try:
            yield
        finally:
            group.open = False
            _GROUP.reset(token)
            if group.rows:
                self.submit_many(group.rows, atomic=True)

    def _submit(self, write: Write, *, glued: bool) -> bool:
        if type(write) not in repo.STATEMENTS:
            raise TypeError(f"not a database write: {type(write).__name__}")
        if self._closing:
            self._drop(write, "writer is closing")
            return False
        if self._buf_rows >= self._queue_max:
            self._drop(write, f"writer queue full ({self._queue_max})")
            return False
        self._buf.append((write, glued))
        self._buf_rows += 1
        self._submitted += 1
        self._wake.set()
        return True

    def submit_many(self, writes: Iterable[Write], *, atomic: bool = False) -> int:
        """Queue rows; ``atomic``: all of them land in one transaction (or none, and all
        are refused together when the queue cannot take them all)."""
        rows = list(writes)
        group = _GROUP.get()
        if not atomic or (group is not None and group.open and group.writer is self):
            return sum(self.submit(w) for w in rows)
        for w in rows:
            if type(w) not in repo.STATEMENTS:
                raise TypeError(f"not a database write: {type(w).__name__}")
        if not self._closing and self._buf_rows + len(rows) > self._queue_max:
            for w in rows:
                self._drop(w, f"writer queue full ({self._queue_max})")
            return 0
        return sum(self._submit(w, glued=i < len(rows) - 1) for i, w in enumerate(rows))

    def submit_batch(self, bulk: BulkWrite) -> bool:
        """Queue a bulk write: all its rows land in one transaction (or none, and it is
        refused whole when the queue cannot take it). Never blocks; not part of an
        open ``grouped()`` block (it is atomic by itself)."""
        if not isinstance(bulk, BulkWrite):
            raise TypeError(f"not a bulk write: {type(bulk).__name__}")
        if not bulk.rows:
            return True
        if self._closing:
            self._drop(bulk, "writer is closing")
            return False
        if self._buf_rows + bulk.rows > self._queue_max:
            self._drop(bulk, f"writer queue full ({self._queue_max})")
            return False
        self._buf.append((bulk, False))
        self._buf_rows += bulk.rows
        self._submitted += 1
        self._wake.set()
        return True

    # ---- lifecycle ----
    async def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("DbWriter already started")
        self._replay_spills()
        self._task = asyncio.create_task(self._run(), name="db-writer")
        self._task.add_done_callback(_log_crash)
        self._hb_task = asyncio.create_task(self._heartbeat_loop(), name="db-heartbeat")
        self._hb_task.add_done_callback(_log_crash)

    async def flush(self) -> None:
        """Wait until every row submitted before this call is written (or dead-lettered).

        Waits as long as the database is down; bound it with ``asyncio.timeout``.
        """
        target = self._submitted
        async with self._progress:
            await self._progress.wait_for(lambda: self._done >= target)

    async def wait_for_room(self, rows: int | None = None) -> None:
        """Until fewer than ``rows`` rows wait (default: half the queue), for a producer
        that may pause, such as a replay running faster than the database can take
        its rows (rather than have them refused). Never for the live tick path. Waits
        as long as the database is down; bound it with ``asyncio.timeout``."""
        limit = self._queue_max // 2 if rows is None else rows
        async with self._progress:
            await self._progress.wait_for(lambda: self._closing or self._buf_rows < limit)

    async def close(self, grace_s: float = 30.0) -> None:
        """Stop accepting rows and drain for up to ``grace_s``; then spill what is left."""
        self._closing = True
        self._wake.set()
        task = self._task
        try:
            if task is None:
                self._spill()
                return
            try:
                await asyncio.wait_for(asyncio.shield(task), grace_s)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                self._spill()
            finally:
                self._task = None
        finally:
            await self._stop_heartbeat()

    async def _stop_heartbeat(self) -> None:
        hb, self._hb_task = self._hb_task, None
        if hb is not None:
            hb.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await hb
        self._drop_hb_conn()

    # ---- the loop ----
    async def _run(self) -> None:
        backoff = self._retry_min
        while True:
            if not self._pending:
                if not self._buf:
                    if self._closing:
                        return
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._probe_interval)
                    continue
                self._pending = self._take_batch()
                # Counted done only when the whole batch is: rows are reordered
                # by table, so a partial count could release flush() early.
                self._inflight = len(self._pending)
                self._pending_rows = sum(_rows(w) for w in self._pending)
                self._buf_rows -= self._pending_rows
            try:
                await self._write_pending()
            except Exception as exc:  # the database is unreachable or failing: keep the rows
                self._writes_ok, self._write_error = False, _describe(exc)
                self._update_health()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._retry_max)
                continue
            backoff = self._retry_min
            self._writes_ok, self._write_error = True, None
            self._update_health()
            await self._batch_done()

    def _take_batch(self) -> list[Queued]:
        """Up to ``batch_max`` rows, and never a glued group cut in two; or the bulk
        writes at the head of the queue, up to ``bulk_rows_max`` rows (at least one)."""
        batch: list[Queued] = []
        if self._buf and isinstance(self._buf[0][0], BulkWrite):
            rows = 0
            while self._buf and isinstance(head := self._buf[0][0], BulkWrite):
                if batch and rows + head.rows > self._bulk_rows_max:
                    break
                self._buf.popleft()
                batch.append(head)
                rows += head.rows
            return batch
        glued = False
        while self._buf and (len(batch) < self._batch_max or glued):
            if not glued and isinstance(self._buf[0][0], BulkWrite):
                break
            write, glued = self._buf.popleft()
            batch.append(write)
        return batch

    async def _write_pending(self) -> None:
        if isinstance(self._pending[0], BulkWrite):
            await self._write_bulks(typing.cast(list[BulkWrite], self._pending))
            return
        writes = typing.cast(list[Write], self._pending)
        batch = sorted(writes, key=lambda w: statement_for(w).rank)
        try:
            # A deadline over the whole transaction: asyncpg's own per-statement
            # timeout is followed by a cancel request that a hung server never answers.
            async with (
                asyncio.timeout(self._timeout * 2),
                self._pool.acquire(timeout=self._timeout) as conn,
                conn.transaction(),
            ):
                for st, group in groupby(batch, key=statement_for):
                    rows = [args_for(w) for w in group]
                    await conn.executemany(st.sql, rows, timeout=self._timeout)
        except _ROW_ERRORS:
            await self._write_one_by_one(batch)
            return
        self.written += len(batch)

    async def _execute_one(self, write: Write) -> None:
        async with (
            asyncio.timeout(self._timeout * 2),
            self._pool.acquire(timeout=self._timeout) as conn,
        ):
            await conn.execute(statement_for(write).sql, *args_for(write), timeout=self._timeout)

    async def _write_one_by_one(self, batch: list[Write]) -> None:
        """Isolate rejected rows; a connection error leaves the rest pending."""
        for i, w in enumerate(batch):
            try:
                await self._execute_one(w)
                self.written += 1
            except _ROW_ERRORS as exc:
                self._dead_letter(w, f"{type(exc).__name__}: {exc}", exc)
            except BaseException:
                self._pending = list(batch[i:])
                self._pending_rows = len(self._pending)
                raise

    # ---- the bulk lane ----
    async def _write_bulks(self, bulks: list[BulkWrite]) -> None:
        merged = BulkWrite.merge(bulks)
        try:
            # Append-only rows straight into their tables; a row already there (a
            # retried or replayed write) or a bad row fails it: then staged below.
            await self._apply_bulk(merged, direct=True)
        except _ROW_ERRORS:
            self.bulk_restaged += 1
            try:
                await self._apply_bulk(merged, direct=False)
            except _ROW_ERRORS:
                await self._write_bulk_isolating(merged)
                return
        self.written += merged.rows

    async def _apply_bulk(self, merged: BulkWrite, *, direct: bool) -> None:
        async with (
            asyncio.timeout(self._timeout * 2),
            self._pool.acquire(timeout=self._timeout) as conn,
            conn.transaction(),
        ):
            if self._per_write_fk is None:
                self._per_write_fk = await bulk_lane.may_check_per_write(conn)
            await bulk_lane.apply(
                conn, merged, self._timeout, per_write_fk=self._per_write_fk, direct=direct
            )

    async def _write_bulk_isolating(self, merged: BulkWrite) -> None:
        """Every good row in one transaction; each rejected row found by halving the
        rows of a failing stage and dead-lettered once the rest is committed."""
        rejected: list[tuple[BulkRow, BaseException]] = []
        loop = asyncio.get_running_loop()
        # A deadline per step (each attempt, the commit), however many steps it takes.
        async with asyncio.timeout(None) as deadline:

            def arm() -> None:
                deadline.reschedule(loop.time() + self._timeout * 2)

            arm()
            async with self._pool.acquire(timeout=self._timeout) as conn, conn.transaction():
                for stage, records in merged.stages():
                    await self._isolate(conn, stage, records, rejected, arm)
                arm()
        self.written += merged.rows - len(rejected)
        for row, exc in rejected:
            self._dead_letter(row, f"{type(exc).__name__}: {exc}", exc)

    async def _isolate(
        self,
        conn: Any,
        stage: Stage,
        records: list[Record],
        rejected: list[tuple[BulkRow, BaseException]],
        arm: Callable[[], None],
    ) -> None:
        arm()
        try:
            async with conn.transaction():  # a savepoint
                await bulk_lane.apply_stage(conn, stage, records, self._timeout)
        except _ROW_ERRORS as exc:
            if len(records) == 1:
                rejected.extend((row, exc) for row in bulk_lane.rows_of(stage, records))
                return
            half = len(records) // 2
            await self._isolate(conn, stage, records[:half], rejected, arm)
            await self._isolate(conn, stage, records[half:], rejected, arm)

    async def _batch_done(self) -> None:
        self._done += self._inflight
        self._inflight = 0
        self._pending = []
        self._pending_rows = 0
        self._finish_replays()
        async with self._progress:
            self._progress.notify_all()

    # ---- the heartbeat ----
    async def _heartbeat_loop(self) -> None:
        while True:
            started = time.monotonic()
            ok, reason = await self.heartbeat()
            self._beat_ok, self._beat_error = ok, reason
            self._update_health()
            await asyncio.sleep(max(0.0, self._probe_interval - (time.monotonic() - started)))

    async def heartbeat(self) -> tuple[bool, str | None]:
        """One ``SELECT 1`` under the heartbeat deadline: (answered, why not)."""
        try:
            async with asyncio.timeout(self._hb_timeout):
                if self._hb_connect is None:
                    await self._pool_heartbeat()
                else:
                    if self._hb_conn is None or self._hb_conn.is_closed():
                        self._hb_conn = await self._hb_connect()
                    await self._hb_conn.fetchval("SELECT 1")
        except TimeoutError:
            self._drop_hb_conn()  # it may be stuck mid-protocol: never reuse it
            return False, f"no answer to the heartbeat within {self._hb_timeout:g} s (hung?)"
        except Exception as exc:
            self._drop_hb_conn()
            return False, _describe(exc)
        return True, None

    async def _pool_heartbeat(self) -> None:
        async with self._pool.acquire(timeout=self._hb_timeout) as conn:
            try:
                await conn.fetchval("SELECT 1")
            except BaseException:
                conn.terminate()  # never hand a connection stuck mid-query back
                raise

    def _drop_hb_conn(self) -> None:
        conn, self._hb_conn = self._hb_conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()

    def _update_health(self) -> None:
        ok = self._writes_ok and self._beat_ok
        self._set_db_ok(ok, None if ok else (self._beat_error or self._write_error))

    def _set_db_ok(self, ok: bool, reason: str | None) -> None:
        self._last_error = reason
        if ok == self._db_ok:
            return
        self._db_ok = ok
        if self._metrics is not None:
            self._metrics.db_healthy.set(1 if ok else 0)
        if ok:
            log.warning("database reachable again", extra={"queued": self.queue_depth})
        else:
            log.error(
                "database unreachable: writes retained, new entries must stop",
                extra={"reason": reason, "queued": self.queue_depth},
            )
        for listener in self._listeners:
            try:
                listener(ok, reason)
            except Exception:
                log.exception("writer health listener failed")

    # ---- losses are loud ----
    def _drop(self, write: Queued | BulkRow, reason: str) -> None:
        n = _rows(write)
        self.dropped += n
        if self._metrics is not None:
            self._metrics.writer_dropped.inc(n)
        log.error(
            "database write dropped: %s",
            reason,
            extra={"row_type": _type_name(write), "rows": n, "row": encode_queued(write)},
        )

    def _dead_letter(
        self, write: Write | BulkRow, reason: str, exc: BaseException | None = None
    ) -> None:
        self.dead_letters.append((write, reason))
        if exc is not None and repo.is_fill_conflict(exc):
            # Never silently ignored: a second, different fill under a taken key means
            # the broker account (or the key) is wrong; positions may no longer add up.
            self.fill_conflicts += 1
            if self._metrics is not None:
                self._metrics.fill_conflicts.inc()
            log.error("conflicting fill refused: %s", reason, extra={"row": encode_queued(write)})
        self._drop(write, f"rejected by the database: {reason}")

    # ---- spill files: rows that outlive the process ----
    def _spill(self) -> None:
        # The batch in flight stays one batch when it is replayed.
        pending = [
            (w, i < len(self._pending) - 1 and not isinstance(w, BulkWrite))
            for i, w in enumerate(self._pending)
        ]
        rows = [*pending, *self._buf]
        self._pending = []
        self._buf.clear()
        self._pending_rows = self._buf_rows = 0
        if not rows:
            return
        if self._spill_dir is None:
            for w, _ in rows:
                self._drop(w, "writer closed with the database unreachable (no spill dir)")
            return
        self._spill_dir.mkdir(parents=True, exist_ok=True)
        path = self._spill_dir / f"writer-{time.time_ns()}-{os.getpid()}{SPILL_SUFFIX}"
        with open(path, "w", encoding="utf-8") as fh:
            for w, glued in rows:
                fh.write((GLUED_PREFIX if glued else "") + encode_queued(w) + "\n")
        log.error(
            "database unreachable at shutdown: rows spilled for the next start",
            extra={"rows": sum(_rows(w) for w, _ in rows), "path": str(path)},
        )

    def _replay_spills(self) -> None:
        if self._spill_dir is None or not self._spill_dir.is_dir():
            return
        for path in sorted(self._spill_dir.glob(f"*{SPILL_SUFFIX}")):
            lines = [line for line in path.read_text("utf-8").splitlines() if line]
            writes = [
                (decode_queued(line.removeprefix(GLUED_PREFIX)), line.startswith(GLUED_PREFIX))
                for line in lines
            ]
            for w, glued in writes:
                self._buf.append((w, glued))
                self._buf_rows += _rows(w)
                self._submitted += 1
            # Deleted once everything submitted up to here is written.
            self._replayed.append((path, self._submitted))
            log.warning("replaying spilled rows", extra={"rows": len(writes), "path": str(path)})

    def _finish_replays(self) -> None:
        while self._replayed and self._done >= self._replayed[0][1]:
            path, _ = self._replayed.pop(0)
            path.unlink(missing_ok=True)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _rows(item: Queued | BulkRow) -> int:
    return item.rows if isinstance(item, BulkWrite) else 1


def _type_name(item: Queued | BulkRow) -> str:
    return f"bulk:{item.stage}" if isinstance(item, BulkRow) else type(item).__name__


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.critical("database writer crashed", exc_info=task.exception())


# ---- (de)serialisation of writes for spill files and logs ----
_WRITE_TYPES: dict[str, type[Any]] = {cls.__name__: cls for cls in repo.STATEMENTS}


def encode_write(write: Write) -> str:
    fields = {f.name: getattr(write, f.name) for f in dataclasses.fields(write)}  # type: ignore[arg-type]
    return json_dumps({"type": type(write).__name__, "fields": fields})


def _decode_value(hint: object, value: object) -> object:
    if value is None:
        return None
    args = typing.get_args(hint)
    base = next((a for a in args if a is not type(None)), hint) if args else hint
    if base is UUID:
        return UUID(str(value))
    if base is Decimal:
        return Decimal(str(value))
    if base is datetime:
        return datetime.fromisoformat(str(value))
    if base is date:
        return date.fromisoformat(str(value))
    return value


def encode_queued(item: Queued | BulkRow) -> str:
    """A row, a bulk write or one row of it, as one JSON line."""
    if isinstance(item, BulkWrite):
        return bulk_lane.encode_bulk(item)
    if isinstance(item, BulkRow):
        return json_dumps({"type": "BulkRow", "stage": item.stage, "values": item.values})
    return encode_write(item)


def decode_queued(line: str) -> Queued:
    """A spill line back as the row or bulk write it was."""
    doc = json.loads(line)
    if bulk_lane.is_bulk_line(doc):
        return bulk_lane.decode_bulk(doc)
    return _decode_row(doc)


def decode_write(line: str) -> Write:
    return _decode_row(json.loads(line))


def _decode_row(doc: Any) -> Write:
    cls = _WRITE_TYPES.get(doc.get("type"))
    if cls is None:
        raise ValueError(f"spill line has an unknown row type: {doc.get('type')!r}")
    hints = typing.get_type_hints(cls)
    kwargs = {k: _decode_value(hints[k], v) for k, v in doc["fields"].items()}
    write: Write = cls(**kwargs)
    return write
