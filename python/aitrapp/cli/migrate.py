"""`aitrapp migrate`: apply pending schema migrations (or list them with --check)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import asyncpg
import typer

from aitrapp.db import migrate as migrations
from aitrapp.db.pool import database
from aitrapp.exceptions import AitrappError
from aitrapp.settings import AppSettings, load_settings


def migrate(
    check: Annotated[
        bool, typer.Option("--check", help="Only report pending migrations; exit 1 if any.")
    ] = False,
    migrations_dir: Annotated[
        Path | None,
        typer.Option("--dir", help="Folder of NNNN_name.sql files (default: the repository's)."),
    ] = None,
) -> None:
    """Apply the numbered .sql migrations to DATABASE_URL or the embedded PostgreSQL."""
    try:
        settings = load_settings()
        code = asyncio.run(_run(settings, check, migrations_dir or settings.migrations_dir))
    except (AitrappError, OSError, asyncpg.PostgresError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    raise typer.Exit(code)


async def _run(settings: AppSettings, check: bool, migrations_dir: Path | None) -> int:
    async with database(settings, min_size=1, max_size=1) as db:
        typer.echo(f"database: {db.safe_dsn}" + (" (embedded)" if db.embedded else ""))
        if check:
            status = await migrations.check(db.pool, migrations_dir)
            for a in status.applied:
                typer.echo(f"applied  {a.version:04d}_{a.name}  {a.applied_at:%Y-%m-%d %H:%M:%S}")
            for m in status.pending:
                typer.echo(f"pending  {m.filename}")
            typer.echo("up to date" if status.up_to_date else f"{len(status.pending)} pending")
            return 0 if status.up_to_date else 1
        applied = await migrations.migrate(db.pool, migrations_dir)
        for m in applied:
            typer.echo(f"applied  {m.filename}")
        typer.echo(f"{len(applied)} applied" if applied else "up to date")
        return 0
