"""SYNTHETIC sample data for trying backtests and sweeps: never market data.

``python -m aitrapp.backtest.sample --out DIR`` writes, seeded:

- ``DIR/instruments.csv``: your own instruments in Kite's dump format (with a
  ``freeze_qty`` column), symbols the built-in universe does not know;
- ``DIR/candles/<SYMBOL>.csv``: 1-minute candles (09:15-15:29 IST) for every
  calendar weekday of the range, NSE holidays included (a backtest skips and
  lists them), each row marked ``source=synthetic``. Bars jump 1-3 % now and
  then and some minutes are missing, like real sparse data.
"""

from __future__ import annotations

import argparse
import csv
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np

from aitrapp.calendar import IST

_HEADER = (
    "instrument_token,exchange_token,tradingsymbol,name,last_price,expiry,strike,"
    "tick_size,lot_size,instrument_type,segment,exchange,freeze_qty"
)


def weekdays(first: date, last: date) -> list[date]:
    out, d = [], first
    while d <= last:
        if d.weekday() < 5:
            out.append(d)
        d += timedelta(days=1)
    return out


def write_candles(
    path: Path, days: Sequence[date], *, seed: int, start_price: float, tick: float = 0.05
) -> Path:
    """One instrument's seeded 1-minute candles for ``days``."""
    rng = np.random.default_rng(seed)
    price = start_price
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["date", "open", "high", "low", "close", "volume", "source"])
        for day in days:
            t0 = datetime.combine(day, datetime.min.time(), tzinfo=IST).replace(hour=9, minute=15)
            for minute in range(375):
                step = rng.normal(0.0, 0.0015)
                if minute and minute % 25 == 0:  # a 1-3 % jump between bars
                    step = rng.choice([-1.0, 1.0]) * rng.uniform(0.01, 0.03)
                o = _grid(price * (1 + step), tick)
                c = _grid(o * (1 + rng.normal(0.0, 0.002)), tick)
                spread = abs(rng.normal(0.0, 0.0015)) * o
                h, lo = _grid(max(o, c) + spread, tick), _grid(min(o, c) - spread, tick)
                price = c
                if minute and rng.random() < 0.08:
                    continue  # a minute without a bar
                ts = (t0 + timedelta(minutes=minute)).isoformat()
                vol = int(rng.integers(100, 5000))
                w.writerow([ts, f"{o:.2f}", f"{h:.2f}", f"{lo:.2f}", f"{c:.2f}", vol, "synthetic"])
    return path


def write_sample(out: Path, first: date, last: date, *, symbols: int = 3, seed: int = 7) -> Path:
    """The instruments file and candles for ``symbols`` made-up names."""
    out.mkdir(parents=True, exist_ok=True)
    days = weekdays(first, last)
    rows = [_HEADER]
    for n in range(symbols):
        symbol, price = f"SYN{n + 1:02d}", 200.0 + 150.0 * n
        token = 0x00F00000 | (n + 1) << 8 | 1  # made up; low byte 1 = NSE like Kite's
        rows.append(f"{token},{token >> 8},{symbol},SYNTHETIC {n + 1},{price:.2f},,0,0.05,1,EQ,"
                    "NSE,NSE,100000")  # fmt: skip
        write_candles(out / "candles" / f"{symbol}.csv", days, seed=seed + n, start_price=price)
    (out / "instruments.csv").write_text("\n".join(rows) + "\n")
    return out


def _grid(value: float, tick: float) -> float:
    return round(round(value / tick) * tick, 2)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--from", dest="first", type=date.fromisoformat, default=date(2026, 1, 19))
    p.add_argument("--to", dest="last", type=date.fromisoformat, default=date(2026, 1, 30))
    p.add_argument("--symbols", type=int, default=3)
    p.add_argument("--seed", type=int, default=7)
    a = p.parse_args(argv)
    write_sample(a.out, a.first, a.last, symbols=a.symbols, seed=a.seed)
    print(f"SYNTHETIC sample in {a.out}: instruments.csv, candles/ ({a.first}..{a.last})")


if __name__ == "__main__":
    main()
