"""A short PAPER session for the console tests: a replay (synthetic data, made
here and labelled so) on which the engine opens one bracket per instrument.

Per instrument: flat, one dip (sets the EMA sign), a rise (the BUY cross), then
flat so the entry LIMIT at the ask fills. Stops and targets are 2000 ticks
away, so nothing exits by itself: the brackets stay open until a flatten.
Instruments are 3 s apart so the order rate stays under the paper venue's
10 orders per second.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aitrapp.config import EngineConfig
from aitrapp.runtime import RuntimeOptions
from aitrapp.universe import Universe, load_universe

DAY = date(2026, 1, 5)
IST = ZoneInfo("Asia/Kolkata")
BASE_PAISE = 50_000  # every instrument trades around 500 rupees

ENGINE = EngineConfig.parse(
    {
        "risk": {
            "per_trade_risk_pct": 2.0,
            "max_portfolio_heat_pct": 50.0,
            "max_open_positions": 25,
            "max_trades_per_day": 50,
            "cooldown_seconds": 0,
        },
        "strategies": {
            "orb": {"enabled": False},
            "trend_pullback": {"enabled": False},
            "vwap_reversion": {"enabled": False},
            "ema_cross": {
                "enabled": True,
                "fast_period": 2,
                "slow_period": 4,
                "stop_ticks": 2000,
                "tp_ticks": 2000,
            },
        },
    }
)


def write_day(path: Path, universe: Universe) -> Path:
    start = datetime.combine(DAY, datetime.min.time(), tzinfo=IST).replace(hour=10)
    rows = []
    for i, inst in enumerate(universe.instruments):
        tick = inst.tick_paise
        for k, offset in enumerate([0] * 8 + [-2] + [4] * 60):
            ts = start + timedelta(seconds=3 * i + k)
            last = BASE_PAISE + offset * tick
            rows.append((ts, inst.tradingsymbol, last, last - tick, last + tick, k + 1))
    rows.sort(key=lambda r: (r[0], r[1]))
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["timestamp", "tradingsymbol", "last_price", "last_qty", "volume", "bid", "ask"])
        for ts, sym, last, bid, ask, n in rows:
            w.writerow(
                [ts.isoformat(), sym, f"{last / 100:.2f}", 1, n * 10, f"{bid / 100:.2f}",
                 f"{ask / 100:.2f}"]
            )  # fmt: skip
    return path


def paper_options(workdir: Path, symbols: Sequence[str] = (), **overrides: Any) -> RuntimeOptions:
    """The replay of ``symbols`` (default: the universe's default selection, 20 names)."""
    universe = load_universe(on=DAY)
    chosen = universe.select(symbols) if symbols else universe.defaults()
    csv_path = write_day(workdir / "synthetic-day.csv", chosen)
    # A console session: when the replay ends, the brackets stay open (at their last
    # price) for the console to show and flatten, as `aitrapp serve` holds them.
    options = RuntimeOptions(
        feed="replay",
        day=DAY,
        replay_paths=(csv_path,),
        engine=ENGINE,
        symbols=tuple(symbols),
        close_day_at_feed_end=False,
    )
    return replace(options, **overrides)
