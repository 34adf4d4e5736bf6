"""A symbol of your own instruments file trades end to end: `aitrapp paper` on a replay."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import date
from pathlib import Path

import asyncpg
import pytest

from .candles import synthetic_candles

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

CONFIG = """
[risk]
daily_loss_stop_pct = 50.0
cooldown_seconds = 0
per_trade_risk_pct = 1.0
[strategies.orb]
enabled = false
[strategies.trend_pullback]
enabled = false
[strategies.vwap_reversion]
enabled = false
[strategies.ema_cross]
enabled = true
fast_period = 3
slow_period = 8
stop_ticks = 60
tp_ticks = 90
"""


async def test_paper_replay_of_your_own_symbol(
    db_url: str, own_instruments: Path, tmp_path: Path
) -> None:
    data = synthetic_candles(tmp_path / "RELX.csv", [date(2026, 1, 22)], seed=1)
    config = tmp_path / "engine.toml"
    config.write_text(CONFIG)
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "AITRAPP_DATA_DIR": str(tmp_path / "var"),
        "AITRAPP_LOGS_DIR": str(tmp_path / "logs"),
    }
    env.pop("REDIS_URL", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aitrapp", "paper", "--feed", "replay", "--replay", str(data),
        "--instruments", str(own_instruments), "--config", str(config), "--no-serve",
        "--drill-at", "off", "--report-dir", str(tmp_path / "report"),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 240)
    assert proc.returncode == 0, out.decode()
    conn = await asyncpg.connect(db_url)
    try:
        session = await conn.fetchrow("SELECT id, trading_date, replay_sha FROM sessions")
        assert session is not None
        assert session["trading_date"] == date(2026, 1, 22)  # the data's day, not today
        assert session["replay_sha"] is not None
        trades = await conn.fetch(
            "SELECT tradingsymbol, exit_reason, net_pnl FROM trades WHERE session_id = $1",
            session["id"],
        )
        token = await conn.fetchval(
            "SELECT instrument_token FROM instruments WHERE tradingsymbol = 'RELX'"
        )
    finally:
        await conn.close()
    assert token == 990001
    assert trades and {t["tradingsymbol"] for t in trades} == {"RELX"}
    assert {t["exit_reason"] for t in trades} & {"STOP", "TP"}
