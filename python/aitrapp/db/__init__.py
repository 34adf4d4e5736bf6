"""Persistence: the embedded server, the asyncpg pool, migrations, the batched writer, queries.

Submodules: ``embedded``, ``pool``, ``migrate`` (``migrate()``, ``check()``),
``writer``, ``repo`` (rows and queries).
"""

from aitrapp.db.embedded import EmbeddedPostgres, EmbeddedPostgresError
from aitrapp.db.migrate import MigrationError, MigrationStatus
from aitrapp.db.pool import Database, create_pool, database, open_database
from aitrapp.db.writer import DbWriter

__all__ = [
    "Database",
    "DbWriter",
    "EmbeddedPostgres",
    "EmbeddedPostgresError",
    "MigrationError",
    "MigrationStatus",
    "create_pool",
    "database",
    "open_database",
]
