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
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import asyncpg
import httpx

from aitrapp.db.embedded import EmbeddedPostgres, free_port
from aitrapp.report.burnin import fill_mismatches

SYMBOLS = "RELIANCE,SBIN,INFY"
# A run that may be signalled replays its day at this speed (its session then lasts
# about 6 s: there is time to reach a chosen moment); the others run at full speed.
SLOW = ("--speed", "4000x")
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
    returncode: int | None
    output: str
    seconds: float
    signalled_at: float | None = None  # seconds after the start; None: it ended first
    exit_after_signal: float | None = None
    progress_at_signal: float | None = None  # the session's replay progress then, if known


@dataclass(frozen=True)
class When:
    """When a run gets its signal: ``seconds`` after its start (start-up moments), once its
    session's replay reached ``progress`` (read from /state), or ``after_close`` seconds
    after the session closed (serving with --keep-serving)."""

    seconds: float | None = None
    progress: float | None = None
    after_close: float | None = None


def start_paper(data_dir: Path, out: IO[str], *args: str) -> tuple[subprocess.Popen[str], int]:
    env = paper_env(data_dir)
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
    proc = subprocess.Popen(
        argv, cwd=data_dir, env=env, stdout=out, stderr=subprocess.STDOUT, text=True
    )
    return proc, int(env["AITRAPP_API_PORT"])


def _session(port: int) -> dict[str, object] | None:
    try:
        r = httpx.get(f"http://127.0.0.1:{port}/state", timeout=1.0)
    except httpx.HTTPError:
        return None  # not serving yet (or any more)
    if r.status_code != 200:
        return None
    session = r.json().get("session")
    return session if isinstance(session, dict) else None


def _due(when: When, t0: float, port: int, closed_at: list[float]) -> tuple[bool, float | None]:
    if when.seconds is not None:
        return time.monotonic() - t0 >= when.seconds, None
    session = _session(port)
    if session is None:
        return False, None
    progress = session.get("progress")
    progress = float(progress) if isinstance(progress, int | float) else None
    if when.progress is not None:
        return progress is not None and progress >= when.progress, progress
    if session.get("feed_done") and not closed_at:
        closed_at.append(time.monotonic())
    assert when.after_close is not None
    return bool(closed_at) and time.monotonic() - closed_at[0] >= when.after_close, progress


def run_paper(
    data_dir: Path, *args: str, when: When | None = None, sig: int = signal.SIGKILL
) -> Run:
    """One run; with ``when``, send it ``sig`` at that moment (if it is still running)."""
    with tempfile.TemporaryFile("w+") as out:
        proc, port = start_paper(data_dir, out, *args)
        t0 = time.monotonic()
        sent: float | None = None
        progress: float | None = None
        closed_at: list[float] = []
        while when is not None and proc.poll() is None:
            due, progress = _due(when, t0, port, closed_at)
            if due:
                proc.send_signal(sig)
                sent = time.monotonic() - t0
                break
            time.sleep(0.02)
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            out.seek(0)
            raise AssertionError(f"aitrapp paper {args} hung:\n{out.read()[-3000:]}") from None
        seconds = time.monotonic() - t0
        out.seek(0)
        output = out.read()
    return Run(
        list(args),
        proc.returncode,
        output,
        seconds,
        signalled_at=sent,
        exit_after_signal=None if sent is None else seconds - sent,
        progress_at_signal=progress if sent is not None else None,
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
