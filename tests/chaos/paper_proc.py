"""`aitrapp paper` as a real process for the chaos tests, and the checks that follow.

Every run of one test shares a data directory (so one embedded PostgreSQL and
one database, as on an operator's machine); a run is a short synthetic day on
three symbols at full speed (a few seconds). The embedded server survives a
SIGKILL of its holder: :func:`stop_embedded` stops it at the end of a test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from aitrapp.db.embedded import EmbeddedPostgres, free_port
from aitrapp.report.burnin import fill_mismatches

SYMBOLS = "RELIANCE,SBIN,INFY"
# A run that may be signalled replays its day at this speed (the session then lasts
# about 10 s, so a random moment falls in start-up, mid-session or the close); the
# others run at full speed.
SLOW = ("--speed", "2000x")
TERMINAL = ("COMPLETE", "CANCELLED", "REJECTED")


def paper_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AITRAPP_")}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    env.update(
        AITRAPP_DATA_DIR=str(data_dir / "data"),
        AITRAPP_LOGS_DIR=str(data_dir / "logs"),
        AITRAPP_API_PORT=str(free_port()),
        COLUMNS="200",  # one line per console message: the checks read them
    )
    return env


@dataclass
class Run:
    args: list[str]
    returncode: int | None  # None: killed by the test
    output: str
    seconds: float
    signalled_at: float | None = None
    exit_after_signal: float | None = None


def start_paper(data_dir: Path, *args: str) -> subprocess.Popen[str]:
    argv = [
        sys.executable,
        "-m",
        "aitrapp",
        "paper",
        "--speed",
        "max",
        "--symbols",
        SYMBOLS,
        "--report-dir",
        str(data_dir / "reports"),
        *args,
    ]  # fmt: skip  (a later --speed wins)
    return subprocess.Popen(
        argv,
        cwd=data_dir,
        env=paper_env(data_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def run_paper(
    data_dir: Path, *args: str, signal_at: float | None = None, sig: int = signal.SIGKILL
) -> Run:
    """One run; ``signal_at``: send ``sig`` after that many seconds (if still running)."""
    proc = start_paper(data_dir, *args)
    t0 = time.monotonic()
    sent: float | None = None
    if signal_at is not None:
        try:
            proc.wait(signal_at)
        except subprocess.TimeoutExpired:
            proc.send_signal(sig)
            sent = time.monotonic() - t0
    try:
        out, _ = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise AssertionError(f"aitrapp paper {args} hung for 120 s:\n{out[-3000:]}") from None
    seconds = time.monotonic() - t0
    return Run(
        list(args),
        proc.returncode,
        out,
        seconds,
        signalled_at=sent,
        exit_after_signal=None if sent is None else seconds - sent,
    )


def pgdata(data_dir: Path) -> Path:
    return data_dir / "data" / "pgdata"


def stop_embedded(data_dir: Path) -> None:
    """The server a SIGKILLed run left behind (no-op when none runs)."""
    server = EmbeddedPostgres(pgdata(data_dir))
    if server.is_running():
        server.stop_blocking("fast")


async def invariants(data_dir: Path) -> dict[str, list[str]]:
    """What must hold in the database after any sequence of crashes and restarts.

    Each entry lists the violations found (empty: holds).
    """
    server = EmbeddedPostgres(pgdata(data_dir))
    await server.acquire()
    try:
        conn = await asyncpg.connect(server.url())
        try:
            return await _invariants(conn)
        finally:
            await conn.close()
    finally:
        await server.release()


async def _invariants(conn: asyncpg.Connection[asyncpg.Record]) -> dict[str, list[str]]:
    placed_twice = await conn.fetch(
        "SELECT client_order_id FROM order_events WHERE broker_order_id IS NOT NULL "
        "GROUP BY client_order_id HAVING count(DISTINCT broker_order_id) > 1"
    )
    working = await conn.fetch(
        "SELECT o.client_order_id, o.status, s.status AS session FROM orders o "
        "JOIN sessions s ON s.id = o.session_id WHERE o.status <> ALL($1::text[])",
        list(TERMINAL),
    )
    running = await conn.fetch("SELECT id FROM sessions WHERE status = 'RUNNING'")
    open_positions = await conn.fetch("SELECT plan_id FROM positions WHERE status = 'OPEN'")
    no_trade = await conn.fetch(
        "SELECT p.plan_id FROM positions p WHERE p.status = 'CLOSED' "
        "AND NOT EXISTS (SELECT 1 FROM trades t WHERE t.plan_id = p.plan_id)"
    )
    return {
        "orders placed twice": [r["client_order_id"] for r in placed_twice],
        "orders left working (orphans)": [
            f"{r['client_order_id']} {r['status']} (session {r['session']})" for r in working
        ],
        "fills vs orders and positions": await fill_mismatches(conn, None),
        "sessions left RUNNING": [str(r["id"]) for r in running],
        "positions left open": [r["plan_id"] for r in open_positions],
        "closed positions without a trade (P&L lost)": [r["plan_id"] for r in no_trade],
    }


def log_problems(data_dir: Path) -> list[str]:
    """Rows the writer dropped and fills refused, from every run's JSON log."""
    log = data_dir / "logs" / "aitrapp.log"
    if not log.exists():
        return []
    bad = ("database write dropped", "conflicting fill refused")
    return [line[:300] for line in log.read_text().splitlines() if any(b in line for b in bad)]
