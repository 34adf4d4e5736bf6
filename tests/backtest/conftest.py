"""Fixtures of the backtest tests: SYNTHETIC candles, your own instruments, a busy config."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from aitrapp.config import EngineConfig
from aitrapp.settings import AppSettings, load_settings

from .candles import synthetic_candles, write_instruments

# Thu, Fri, (weekend), Mon 2026-01-26 = Republic Day (an NSE holiday), Tue.
DAYS = (date(2026, 1, 22), date(2026, 1, 23), date(2026, 1, 26), date(2026, 1, 27))
TRADING_DAYS = (date(2026, 1, 22), date(2026, 1, 23), date(2026, 1, 27))

# Only a fast EMA cross, with limits wide enough for dozens of trades a day.
BUSY = EngineConfig.parse(
    {
        "risk": {
            "daily_loss_stop_pct": 50.0,
            "cooldown_seconds": 0,
            "max_trades_per_day": 40,
            "per_trade_risk_pct": 1.0,
        },
        "strategies": {
            "orb": {"enabled": False},
            "trend_pullback": {"enabled": False},
            "vwap_reversion": {"enabled": False},
            "ema_cross": {
                "enabled": True,  # off by default
                "fast_period": 3,
                "slow_period": 8,
                "stop_ticks": 60,
                "tp_ticks": 90,
            },
        },
    }
)


@pytest.fixture
def own_instruments(tmp_path: Path) -> Path:
    """Two symbols the built-in universe does not know."""
    return write_instruments(
        tmp_path / "instruments.csv", [(990001, "RELX", "500.00"), (990101, "ACME", "250.00")]
    )


@pytest.fixture
def candles(tmp_path: Path) -> list[Path]:
    data = tmp_path / "data"
    data.mkdir()
    return [
        synthetic_candles(data / "RELX.csv", DAYS, seed=1),
        synthetic_candles(data / "ACME.csv", DAYS, seed=2, start_price=250.0),
    ]


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> AppSettings:
    return load_settings(
        database_url=db_url, redis_url=None, data_dir=tmp_path / "var", logs_dir=tmp_path / "logs"
    )
