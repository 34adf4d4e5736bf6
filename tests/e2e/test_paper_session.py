"""`aitrapp paper` end to end, as a user runs it: a real subprocess, the embedded
PostgreSQL, the built-in synthetic feed, the API up on a free port."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

pytestmark = pytest.mark.e2e

SYMBOLS = "RELIANCE,HDFCBANK,ICICIBANK,INFY,TCS,SBIN,ITC,LT,AXISBANK,NIFTY26DECFUT"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_paper_session_through_the_cli(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "AITRAPP_DATA_DIR": str(tmp_path / "var"),
        "AITRAPP_LOGS_DIR": str(tmp_path / "logs"),
        "AITRAPP_API_PORT": str(_free_port()),
    }
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    reports = tmp_path / "reports"
    proc = subprocess.run(
        [
            sys.executable, "-m", "aitrapp", "paper", "--date", "2026-11-25",
            "--symbols", SYMBOLS, "--report-dir", str(reports), "--strict",
        ],
        capture_output=True, text=True, env=env, timeout=240, check=False,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "SYNTHETIC" in out
    assert "burn-in" in out and "PASS" in out
    # The report files exist and are not empty.
    for name in ("report.html",):
        assert (reports / name).stat().st_size > 500, name
    pngs = sorted(reports.glob("*.png"))
    assert len(pngs) == 2 and all(p.stat().st_size > 1000 for p in pngs)
    # JSON logs, one object per line, order lines carry client_order_id.
    lines = (tmp_path / "logs" / "aitrapp.log").read_text().splitlines()
    docs = [json.loads(line) for line in lines]
    assert any(d.get("client_order_id") for d in docs)


@pytest.mark.asyncio
async def test_verdict_is_stored_with_the_session(tmp_path: Path, pg_url: str) -> None:
    """Same session against an external PostgreSQL (DATABASE_URL): the verdict lands
    in sessions.burnin_verdict and every criterion passes."""
    db = f"e2e_{os.getpid()}"
    admin = await asyncpg.connect(pg_url)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {db}")
        await admin.execute(f"CREATE DATABASE {db}")
    finally:
        await admin.close()
    url = pg_url.rsplit("/", 1)[0] + f"/{db}"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "AITRAPP_DATA_DIR": str(tmp_path / "var"),
        "AITRAPP_LOGS_DIR": str(tmp_path / "logs"),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aitrapp", "paper", "--date", "2026-11-25",
        "--symbols", SYMBOLS, "--no-serve", "--report-dir", str(tmp_path / "r"),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    stdout, _ = await asyncio.wait_for(proc.communicate(), 240)
    assert proc.returncode == 0, stdout.decode()
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            "SELECT status, feed, burnin_verdict::text AS v FROM sessions ORDER BY started_at DESC"
        )
        assert row is not None
        assert row["status"] == "COMPLETED" and row["feed"] == "synthetic"
        verdict = json.loads(row["v"])
        failed = [c for c in verdict["criteria"] if not c["passed"]]
        assert verdict["passed"], failed
        names = {c["name"] for c in verdict["criteria"]}
        assert {"signals", "decisions", "oco_lifecycle", "flatten"} <= names | {
            n.split("_")[0] for n in names
        }
    finally:
        await conn.close()
