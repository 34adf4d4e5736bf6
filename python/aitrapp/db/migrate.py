"""Numbered plain-SQL migrations, applied in order and recorded in ``schema_migrations``.

Files are named ``NNNN_snake_name.sql``. Each runs in its own transaction
together with its ``schema_migrations`` row, so a failed file leaves no
trace and the next run retries it. A session advisory lock serialises
concurrent migrators. The SHA-256 of every applied file is stored: editing
an applied migration is refused (write a new one instead).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import asyncpg

from aitrapp.db.pool import Conn, Connection
from aitrapp.exceptions import AitrappError

FILENAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# pg_advisory_lock key: any constant shared by every migrator ("AITRAPPM").
LOCK_KEY = 0x4149545241505056

SCHEMA_MIGRATIONS_DDL = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer     PRIMARY KEY,
    name        text        NOT NULL,
    checksum    text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(AitrappError):
    """A migration file is malformed, was edited after being applied, or failed."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    path: Path
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def filename(self) -> str:
        return self.path.name


@dataclass(frozen=True, slots=True)
class AppliedMigration:
    version: int
    name: str
    checksum: str
    applied_at: datetime


@dataclass(frozen=True, slots=True)
class MigrationStatus:
    applied: list[AppliedMigration]
    pending: list[Migration]

    @property
    def up_to_date(self) -> bool:
        return not self.pending


def default_migrations_dir() -> Path:
    """The migrations shipped inside the package (``migrations/`` at the top of the
    repository is a link to the same folder)."""
    return Path(__file__).resolve().parents[1] / "migrations"


def discover(migrations_dir: Path | None = None) -> list[Migration]:
    """Every migration file in version order; malformed names are an error."""
    root = migrations_dir if migrations_dir is not None else default_migrations_dir()
    if not root.is_dir():
        raise MigrationError(f"migrations directory not found: {root}")
    found: dict[int, Migration] = {}
    for path in sorted(root.iterdir()):
        if path.suffix != ".sql":
            continue
        m = FILENAME.match(path.name)
        if m is None:
            raise MigrationError(f"{path.name}: migration files must be named NNNN_name.sql")
        version = int(m.group(1))
        if version in found:
            raise MigrationError(
                f"{path.name}: version {version} already used by {found[version].filename}"
            )
        sql = path.read_text(encoding="utf-8")
        if not sql.strip():
            raise MigrationError(f"{path.name}: migration file is empty")
        found[version] = Migration(version=version, name=m.group(2), path=path, sql=sql)
    return [found[v] for v in sorted(found)]


async def _applied(conn: Conn) -> list[AppliedMigration]:
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return []
    rows = await conn.fetch(
        "SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version"
    )
    return [AppliedMigration(**dict(r)) for r in rows]


def _verify(applied: list[AppliedMigration], migrations: list[Migration]) -> list[Migration]:
    """The pending migrations; raises if the database and the files disagree."""
    on_disk = {m.version: m for m in migrations}
    for a in applied:
        m = on_disk.get(a.version)
        if m is None:
            raise MigrationError(
                f"database has migration {a.version:04d}_{a.name} that is not in this checkout "
                "(the database is newer than the code)"
            )
        if m.checksum != a.checksum:
            raise MigrationError(
                f"{m.filename} was edited after it was applied (checksum differs); "
                "add a new migration instead"
            )
    done = {a.version for a in applied}
    return [m for m in migrations if m.version not in done]


async def check(conn: Conn, migrations_dir: Path | None = None) -> MigrationStatus:
    """Report applied and pending migrations without changing anything."""
    migrations = discover(migrations_dir)
    applied = await _applied(conn)
    return MigrationStatus(applied=applied, pending=_verify(applied, migrations))


async def migrate(conn: Conn, migrations_dir: Path | None = None) -> list[Migration]:
    """Apply every pending migration in order; returns those applied now.

    ``conn`` may be a pool: one connection is held for the whole run (the
    advisory lock is per session).
    """
    migrations = discover(migrations_dir)
    if isinstance(conn, asyncpg.Pool):
        async with conn.acquire() as held:
            return await _migrate_locked(held, migrations)
    return await _migrate_locked(conn, migrations)


async def _migrate_locked(conn: Connection, migrations: list[Migration]) -> list[Migration]:
    await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
    try:
        await conn.execute(SCHEMA_MIGRATIONS_DDL)
        pending = _verify(await _applied(conn), migrations)
        for m in pending:
            try:
                async with conn.transaction():
                    await conn.execute(m.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) "
                        "VALUES ($1, $2, $3)",
                        m.version,
                        m.name,
                        m.checksum,
                    )
            except Exception as exc:
                if isinstance(exc, MigrationError):
                    raise
                raise MigrationError(f"{m.filename} failed: {exc}") from exc
        return pending
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
