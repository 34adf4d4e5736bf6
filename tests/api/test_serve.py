"""`aitrapp serve` as a real process: refuses unsafe binds, serves, shuts down cleanly on Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import asyncpg
import httpx
import pytest

from aitrapp.db.embedded import free_port
from aitrapp.universe import load_universe
from cli_inprocess import run_aitrapp

from .test_e2e_runtime import DAY, write_day


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AITRAPP_")}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    return {**env, **extra}


def test_refuses_a_non_loopback_bind_without_a_token(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "aitrapp", "serve", "--host", "0.0.0.0"],
        capture_output=True, text=True, check=False, timeout=120, cwd=tmp_path, env=_env(),
    )  # fmt: skip
    assert out.returncode == 2, out
    assert "AITRAPP_API_HOST='0.0.0.0' is not a loopback address" in out.stderr
    assert "AITRAPP_API_TOKEN" in out.stderr


def test_bad_options_name_the_option(tmp_path: Path) -> None:
    """In this process (the real process is above): refused before anything starts."""
    for args, option in (
        (["--feed", "bogus"], "--feed"),
        (["--mode", "SIDEWAYS"], "--mode"),
        (["--mode", "LIVE"], "--mode"),  # LIVE trades on the live feed only
        (["--feed", "replay"], "--replay"),
        (["--date", "5-1-2026"], "--date"),
        (["--speed", "fast"], "--speed"),
    ):
        out = run_aitrapp(["serve", *args], env=_env(), cwd=tmp_path)
        assert out.returncode == 2, (args, out)
        assert option in out.stderr, (args, out.stderr)


@pytest.mark.integration
async def test_live_is_refused_before_anything_trades(db_url: str, tmp_path: Path) -> None:
    """--mode LIVE without passing burn-ins: the gate refuses at start, audited; no session."""
    env = _env(
        DATABASE_URL=db_url,
        AITRAPP_DATA_DIR=str(tmp_path / "var"),
        AITRAPP_LOGS_DIR=str(tmp_path / "logs"),
        AITRAPP_API_PORT=str(free_port()),
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aitrapp", "serve", "--mode", "LIVE", "--feed", "kite",
        cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode != 0, out.decode()
    log = (tmp_path / "logs" / "aitrapp.log").read_text()
    assert "burn-in" in log.lower(), log[-2000:]
    conn = await asyncpg.connect(db_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM sessions") == 0
        assert await conn.fetchval("SELECT count(*) FROM orders") == 0
        audited = await conn.fetchval("SELECT count(*) FROM audit_log WHERE action LIKE '%live%'")
        assert audited >= 1
    finally:
        await conn.close()


@pytest.mark.integration
async def test_serves_and_stops_cleanly_on_ctrl_c(db_url: str, tmp_path: Path) -> None:
    csv_path = write_day(tmp_path / "day.csv", load_universe(on=DAY).defaults())
    port = free_port()
    env = _env(DATABASE_URL=db_url, AITRAPP_DATA_DIR=str(tmp_path / "var"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aitrapp", "serve", "--port", str(port), "--feed", "replay",
        "--replay", str(csv_path), "--date", DAY.isoformat(), "--speed", "max",
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url) as client:
            health = None
            for _ in range(1200):
                assert proc.returncode is None, await proc.communicate()
                try:
                    health = await client.get("/health")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            assert health is not None, "the server never answered /health"
            assert health.status_code == 200 and health.json()["ok"] is True
            state = (await client.get("/state")).json()
            assert state["mode"] == "PAPER" and state["session"]["trading_date"] == "2026-01-05"
            assert (await client.post("/pause")).json() == {"trading_state": "PAUSED"}
        proc.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(proc.communicate(), 120)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.communicate()
    stdout, stderr = out.decode(), err.decode()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr, stderr
    assert f"AITRAPP control API on {url}" in stdout
    assert (tmp_path / "logs" / "aitrapp.log").exists()
    # Stopped in reverse order: the writer drained and the session row was closed.
    conn = await asyncpg.connect(db_url)
    try:
        row = await conn.fetchrow("SELECT status, ended_at FROM sessions")
        actions = [
            r["action"] for r in await conn.fetch("SELECT action FROM audit_log ORDER BY ts")
        ]
    finally:
        await conn.close()
    assert row is not None and row["ended_at"] is not None
    assert row["status"] in ("COMPLETED", "ABORTED")
    assert "pause" in actions
