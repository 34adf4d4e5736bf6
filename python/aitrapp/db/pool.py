"""The asyncpg pool, created from settings, with the embedded-server fallback.

One code path: with ``DATABASE_URL`` we connect to that server; without it we
start (or join) the embedded PostgreSQL under ``<data_dir>/pgdata`` and
connect to it. Either way callers get a :class:`Database` holding the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, TypeAlias, cast
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from aitrapp.db.embedded import EmbeddedPostgres
from aitrapp.settings import AppSettings

log = logging.getLogger(__name__)

Pool: TypeAlias = "asyncpg.Pool[asyncpg.Record]"
# A single connection (transactions, advisory locks) ...
Connection: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"
# ... or anything that can run a query: the pool itself or a connection.
Conn: TypeAlias = "asyncpg.Pool[asyncpg.Record] | Connection"

APPLICATION_NAME = "aitrapp"


def _json_default(obj: object) -> object:
    if isinstance(obj, Decimal):
        return str(obj)  # exact: never through float
    if isinstance(obj, datetime | date):
        return obj.isoformat()
    if isinstance(obj, UUID):
        return str(obj)
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    raise TypeError(f"cannot store {type(obj).__name__} as JSON")


# What json.dumps(value, default=..., separators=..., allow_nan=False) builds per
# call, built once (encode keeps no state between calls).
_ENCODER = json.JSONEncoder(default=_json_default, separators=(",", ":"), allow_nan=False)


def json_dumps(value: object) -> str:
    """JSON for jsonb columns and bus payloads: Decimals as exact strings."""
    return _ENCODER.encode(value)


async def _init_connection(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    # jsonb/json columns take and return Python objects instead of strings.
    for typename in ("jsonb", "json"):
        await conn.set_type_codec(
            typename, schema="pg_catalog", encoder=json_dumps, decoder=json.loads
        )


class BoundedPool(asyncpg.Pool):
    """A pool whose ``release`` never waits long for a hung server.

    When a query is cancelled (its caller's deadline passed), asyncpg sends the
    server a cancel request and ``release`` waits for it, up to the command
    timeout; a server that hangs answers neither, so every ``async with
    pool.acquire()`` under a deadline would block its caller for that long.
    Here the wait is bounded: past it the connection is dropped, not reused.
    """

    release_timeout: float = 2.0

    async def release(self, connection: Any, *, timeout: float | None = None) -> None:  # noqa: ASYNC109 - the signature of asyncpg.Pool.release
        await super().release(
            connection, timeout=self.release_timeout if timeout is None else timeout
        )


async def create_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    connect_timeout: float = 5.0,
    command_timeout: float | None = 15.0,
    release_timeout: float = 2.0,
) -> Pool:
    """An asyncpg pool with the JSON codecs installed on every connection."""
    pool = BoundedPool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        max_queries=50_000,
        max_inactive_connection_lifetime=300.0,
        loop=None,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        timeout=connect_timeout,
        command_timeout=command_timeout,
        init=_init_connection,
        server_settings={"application_name": APPLICATION_NAME, "timezone": "UTC"},
    )
    pool.release_timeout = release_timeout
    await pool
    return cast(Pool, pool)


def redact_dsn(dsn: str) -> str:
    """The DSN with its password replaced, for logs and error messages."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.rsplit("@", 1)
    user = (parts.username or "") + ":***"
    return urlunsplit(parts._replace(netloc=f"{user}@{netloc[-1]}"))


@dataclasses.dataclass(eq=False)
class Database:
    """The pool plus, when we run it, the embedded server it talks to."""

    pool: Pool
    dsn: str
    embedded: EmbeddedPostgres | None = None
    connect_timeout: float = 5.0

    @property
    def safe_dsn(self) -> str:
        return redact_dsn(self.dsn)

    async def connect(self) -> asyncpg.Connection[asyncpg.Record]:
        """One connection outside the pool (the writer's heartbeat: a pool whose
        connections all hang must not hide that the server hangs)."""
        return await asyncpg.connect(
            self.dsn,
            timeout=self.connect_timeout,
            server_settings={"application_name": f"{APPLICATION_NAME}:heartbeat"},
        )

    async def close(self, timeout_s: float = 5.0) -> None:
        """Closes the pool (connections dropped after ``timeout_s``: a hung server
        must not hold the process), then releases the embedded server."""
        try:
            try:
                await asyncio.wait_for(self.pool.close(), timeout_s)
            except TimeoutError:
                log.warning("database pool did not close in %.0f s: connections dropped", timeout_s)
                self.pool.terminate()
        finally:
            if self.embedded is not None:
                await self.embedded.release()


async def open_database(settings: AppSettings, **pool_kwargs: Any) -> Database:
    """Connect to ``DATABASE_URL`` or, without it, to the embedded server.

    Failing to reach the database at start-up is an error: the process must
    not begin trading without its write-ahead log.
    """
    embedded: EmbeddedPostgres | None = None
    dsn = settings.database_dsn()
    if dsn is None:
        embedded = EmbeddedPostgres(settings.pgdata, port=settings.pg_port)
        # Started in a thread that a cancellation (Ctrl-C at start-up) cannot stop:
        # let it finish, then give the server back, so none is left running.
        starting = asyncio.ensure_future(embedded.acquire())
        try:
            await asyncio.shield(starting)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await starting
                await embedded.release()
            raise
        dsn = embedded.url()
    kwargs: dict[str, Any] = {
        "min_size": settings.db_pool_min,
        "max_size": settings.db_pool_max,
        "connect_timeout": settings.db_connect_timeout_s,
        "command_timeout": settings.db_command_timeout_s,
        **pool_kwargs,
    }
    try:
        pool = await create_pool(dsn, **kwargs)
    except BaseException:
        if embedded is not None:
            await embedded.release()
        raise
    db = Database(
        pool=pool, dsn=dsn, embedded=embedded, connect_timeout=settings.db_connect_timeout_s
    )
    log.info("database ready", extra={"dsn": db.safe_dsn, "embedded": embedded is not None})
    return db


@asynccontextmanager
async def database(settings: AppSettings, **pool_kwargs: Any) -> AsyncIterator[Database]:
    db = await open_database(settings, **pool_kwargs)
    try:
        yield db
    finally:
        await db.close()
