"""SYNTHETIC test data: seeded 1-minute candles with gaps, and an instruments file.

Nothing here is market data. Every candle row carries ``source=synthetic``
(the replay then labels the feed SYNTHETIC). Bars jump 1-3 % from the
previous close now and then, and some minutes are missing, like real sparse
1-minute data replayed as four ticks a bar.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

IST = ZoneInfo("Asia/Kolkata")
HEADER = (
    "instrument_token,exchange_token,tradingsymbol,name,last_price,expiry,strike,"
    "tick_size,lot_size,instrument_type,segment,exchange,freeze_qty"
)


def write_instruments(path: Path, rows: Sequence[tuple[int, str, str]]) -> Path:
    """A Kite-format instruments file: (token, symbol, last price) cash-equity rows."""
    lines = [HEADER]
    for token, symbol, price in rows:
        name = f"{symbol} LTD"
        lines.append(f"{token},{token >> 8},{symbol},{name},{price},,0,0.05,1,EQ,NSE,NSE,5000")
    path.write_text("\n".join(lines) + "\n")
    return path


def synthetic_candles(
    path: Path,
    days: Sequence[date],
    *,
    seed: int,
    start_price: float = 500.0,
    tick: float = 0.05,
    gap_every: int = 25,
    missing_share: float = 0.08,
) -> Path:
    """One instrument's 1-minute candles (09:15-15:29 IST) for ``days``, seeded."""
    rng = np.random.default_rng(seed)
    price = start_price
    rows = []
    for day in days:
        t0 = datetime.combine(day, datetime.min.time(), tzinfo=IST).replace(hour=9, minute=15)
        for minute in range(375):
            step = rng.normal(0.0, 0.0015)
            if minute and minute % gap_every == 0:  # a jump of 1-3 % between bars
                step = rng.choice([-1.0, 1.0]) * rng.uniform(0.01, 0.03)
            open_ = _grid(price * (1 + step), tick)
            close = _grid(open_ * (1 + rng.normal(0.0, 0.002)), tick)
            spread = abs(rng.normal(0.0, 0.0015)) * open_
            high = _grid(max(open_, close) + spread, tick)
            low = _grid(min(open_, close) - spread, tick)
            price = close
            if minute and rng.random() < missing_share:
                continue  # a minute without a bar
            ts = t0 + timedelta(minutes=minute)
            volume = int(rng.integers(100, 5000))
            rows.append((ts.isoformat(), open_, high, low, close, volume))
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["date", "open", "high", "low", "close", "volume", "source"])
        for ts, o, h, lo, c, v in rows:
            w.writerow([ts, f"{o:.2f}", f"{h:.2f}", f"{lo:.2f}", f"{c:.2f}", v, "synthetic"])
    return path


def _grid(value: float, tick: float) -> float:
    return round(round(value / tick) * tick, 2)
