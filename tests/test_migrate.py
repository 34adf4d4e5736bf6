"""Migrations: discovery, idempotence, checksums, rollback, concurrency, the CLI, schema rules.

`aitrapp migrate` runs once as a real subprocess (its wiring); its other runs are in
this process, with the same environment (``cli_inprocess``)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from aitrapp.db.migrate import MigrationError, check, default_migrations_dir, discover, migrate
from cli_inprocess import run_aitrapp

pytestmark = pytest.mark.integration

TABLES = {
    "sessions",
    "instruments",
    "signals",
    "decisions",
    "risk_events",
    "orders",
    "order_events",
    "fills",
    "positions",
    "trades",
    "audit_log",
    "bracket_transitions",
    "schema_migrations",
}


@pytest_asyncio.fixture
async def empty_db(pg_url: str) -> AsyncIterator[str]:
    """An empty database (no migrations applied)."""
    name = f"m_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    try:
        yield pg_url.rsplit("/", 1)[0] + "/" + name
    finally:
        conn = await asyncpg.connect(pg_url)
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            await conn.close()


def copy_migrations(dst: Path) -> Path:
    dst.mkdir()
    for m in discover():
        (dst / m.filename).write_text(m.sql)
    return dst


def test_discover_orders_by_version_and_rejects_bad_names(tmp_path: Path) -> None:
    found = discover()
    assert [m.version for m in found] == sorted(m.version for m in found)
    assert found[0].filename == "0001_sessions_instruments.sql"
    assert default_migrations_dir() == found[0].path.parent

    d = tmp_path / "m"
    d.mkdir()
    (d / "0002_b.sql").write_text("SELECT 2;")
    (d / "0001_a.sql").write_text("SELECT 1;")
    (d / "README.md").write_text("ignored")
    assert [m.name for m in discover(d)] == ["a", "b"]
    (d / "3_c.sql").write_text("SELECT 3;")
    with pytest.raises(MigrationError, match=r"3_c\.sql: migration files must be named"):
        discover(d)
    (d / "3_c.sql").unlink()
    (d / "0002_dup.sql").write_text("SELECT 2;")
    with pytest.raises(MigrationError, match="version 2 already used"):
        discover(d)
    with pytest.raises(MigrationError, match="not found"):
        discover(tmp_path / "missing")


async def test_migrate_applies_all_once_and_check_agrees(empty_db: str) -> None:
    conn = await asyncpg.connect(empty_db)
    try:
        status = await check(conn)
        assert status.applied == []
        assert len(status.pending) == len(discover())
        applied = await migrate(conn)
        assert [m.filename for m in applied] == [m.filename for m in discover()]
        assert await migrate(conn) == []  # safe to run twice
        status = await check(conn)
        assert status.up_to_date
        assert [a.version for a in status.applied] == [m.version for m in discover()]
        tables = {
            r["tablename"]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")
        }
        assert tables >= TABLES
    finally:
        await conn.close()


async def test_edited_migration_is_refused(empty_db: str, tmp_path: Path) -> None:
    d = copy_migrations(tmp_path / "m")
    conn = await asyncpg.connect(empty_db)
    try:
        await migrate(conn, d)
        first = sorted(d.iterdir())[0]
        first.write_text(first.read_text() + "\n-- edited\n")
        with pytest.raises(MigrationError, match=re.escape(first.name) + " was edited"):
            await migrate(conn, d)
        with pytest.raises(MigrationError, match="edited"):
            await check(conn, d)
        first.unlink()
        with pytest.raises(MigrationError, match="not in this checkout"):
            await check(conn, d)
    finally:
        await conn.close()


async def test_failed_migration_leaves_no_trace(empty_db: str, tmp_path: Path) -> None:
    d = tmp_path / "m"
    d.mkdir()
    (d / "0001_ok.sql").write_text("CREATE TABLE a (x int);")
    (d / "0002_bad.sql").write_text("CREATE TABLE b (x int);\nCREATE TABLE broken (;")
    conn = await asyncpg.connect(empty_db)
    try:
        with pytest.raises(MigrationError, match=r"0002_bad\.sql failed"):
            await migrate(conn, d)
        assert await conn.fetchval("SELECT to_regclass('a') IS NOT NULL")
        assert await conn.fetchval("SELECT to_regclass('b') IS NULL")  # rolled back
        assert [a.version for a in (await check(conn, d)).applied] == [1]
        (d / "0002_bad.sql").write_text("CREATE TABLE b (x int);")
        assert [m.version for m in await migrate(conn, d)] == [2]
    finally:
        await conn.close()


async def test_concurrent_migrators_apply_each_file_once(empty_db: str) -> None:
    conns = [await asyncpg.connect(empty_db) for _ in range(3)]
    try:
        results = await asyncio.gather(*(migrate(c) for c in conns))
        assert sorted(len(r) for r in results) == [0, 0, len(discover())]
        assert await conns[0].fetchval("SELECT count(*) FROM schema_migrations") == len(discover())
    finally:
        for c in conns:
            await c.close()


async def test_schema_rules(db_url: str) -> None:
    """Money is NUMERIC, time is timestamptz, everywhere."""
    conn = await asyncpg.connect(db_url)
    try:
        cols = await conn.fetch(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name <> 'trade_chain'"
        )
    finally:
        await conn.close()
    money = {
        "entry", "stop", "tp", "price", "trigger_price", "avg_price", "avg_entry", "exit_price",
        "entry_price", "risk_rupees", "gross_pnl", "charges", "net_pnl", "tick_size", "strike",
    }  # fmt: skip
    seen_money = 0
    for c in cols:
        name, kind = c["column_name"], c["data_type"]
        where = f"{c['table_name']}.{name}"
        if name == "ts" or name.endswith("_at"):
            assert kind == "timestamp with time zone", where
        if name in money:
            seen_money += 1
            assert kind == "numeric", where
    assert seen_money >= 20


def run_process(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``python -m aitrapp migrate ARGS`` as a real subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "aitrapp", "migrate", *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=120,
    )


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The same command in this process (call it in a thread: it runs its own event loop)."""
    return run_aitrapp(["migrate", *args], env=env)


async def test_cli_migrate_and_check(empty_db: str, tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": empty_db, "AITRAPP_DATA_DIR": str(tmp_path)}
    out = await asyncio.to_thread(run_process, "--check", env=env)
    assert out.returncode == 1, out.stderr
    assert "pending  0001_sessions_instruments.sql" in out.stdout
    assert "***" in out.stdout  # the password is never printed
    out = await asyncio.to_thread(run_cli, env=env)
    assert out.returncode == 0, out.stderr
    assert f"{len(discover())} applied" in out.stdout
    out = await asyncio.to_thread(run_cli, env=env)
    assert out.returncode == 0, out.stderr
    assert "up to date" in out.stdout
    out = await asyncio.to_thread(run_cli, "--check", env=env)
    assert out.returncode == 0, out.stderr
    assert not (tmp_path / "pgdata").exists()  # DATABASE_URL set: no embedded server


async def test_cli_reports_a_bad_setting(tmp_path: Path) -> None:
    env = {**os.environ, "AITRAPP_API_HOST": "0.0.0.0", "AITRAPP_DATA_DIR": str(tmp_path)}
    env.pop("AITRAPP_API_TOKEN", None)
    out = await asyncio.to_thread(run_cli, env=env)
    assert out.returncode == 2
    assert "AITRAPP_API_TOKEN" in out.stderr
    assert "Traceback" not in out.stderr
