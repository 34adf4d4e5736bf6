"""SYNTHETIC sample data for trying backtests and sweeps: never market data.

``python -m aitrapp.backtest.sample --out DIR`` writes, seeded:

- ``DIR/instruments.csv``: your own instruments in Kite's dump format (with a
  ``freeze_qty`` column), symbols the built-in universe does not know;
- ``DIR/candles/<SYMBOL>.csv``: 1-minute candles (09:15-15:29 IST) for every
  calendar weekday of the range, NSE holidays included (a backtest skips and
  lists them), each row marked ``source=synthetic``. Bars jump 1-3 % now and
  then and some minutes are missing, like real sparse data;
- with ``--ticks``, ``DIR/ticks/<SYMBOL>.parquet`` instead: about one tick a
  second (09:15:00-15:29:59 IST, 22,500 seconds a day; 3 % of them without a
  tick), last price, quantity, cumulative volume, bid and ask, the same jumps.
  20 symbols over 20 trading days are about 9M ticks (the benchmark's data).
"""

from __future__ import annotations

import argparse
import csv
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]

from aitrapp.calendar import IST, ist_ns

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


_SESSION_SECONDS = 375 * 60  # 09:15:00-15:29:59 IST
_TICK_GAP_SHARE = 0.03  # seconds without a tick
_JUMP_EVERY_S = 25 * 60  # on average, a 1-3 % jump this often


def tick_columns(
    days: Sequence[date], *, seed: int, start_price: float, tick: float = 0.05
) -> dict[str, npt.NDArray[np.generic]]:
    """One instrument's seeded ticks for ``days`` as columns (vectorised: millions of
    rows in seconds). Prices stay on the tick grid; bid and ask are a tick away."""
    rng = np.random.default_rng(seed)
    tick_paise = round(tick * 100)
    sigma = 0.0015 / np.sqrt(60.0)  # the candles' 1-minute volatility, per second
    log_price = np.log(start_price)
    parts: dict[str, list[npt.NDArray[np.generic]]] = {
        k: [] for k in ("timestamp", "last_price", "last_qty", "volume", "bid", "ask")
    }
    for day in days:
        n = _SESSION_SECONDS
        steps = rng.normal(0.0, sigma, n)
        jumps = np.flatnonzero(rng.random(n) < 1.0 / _JUMP_EVERY_S)
        steps[jumps] = rng.choice([-1.0, 1.0], len(jumps)) * rng.uniform(0.01, 0.03, len(jumps))
        path = log_price + np.cumsum(steps)
        log_price = float(path[-1])
        keep = rng.random(n) >= _TICK_GAP_SHARE
        keep[0] = True
        seconds = np.flatnonzero(keep)
        paise = np.maximum(np.rint(np.exp(path[seconds]) * 100 / tick_paise), 2) * tick_paise
        qty = rng.integers(1, 200, len(seconds))
        open_ns = ist_ns(day, time(9, 15))
        jitter_ms = rng.integers(0, 1000, len(seconds))  # sorted within its second
        parts["timestamp"].append(open_ns + seconds * 1_000_000_000 + jitter_ms * 1_000_000)
        parts["last_price"].append(paise / 100)
        parts["last_qty"].append(qty)
        parts["volume"].append(np.cumsum(qty))  # cumulative for the day
        parts["bid"].append((paise - tick_paise) / 100)
        parts["ask"].append((paise + tick_paise) / 100)
    return {k: np.concatenate(v) for k, v in parts.items()}


def write_ticks(
    path: Path, days: Sequence[date], *, seed: int, start_price: float, tick: float = 0.05
) -> Path:
    """One instrument's seeded ticks for ``days`` as Parquet (``source=synthetic``)."""
    cols = tick_columns(days, seed=seed, start_price=start_price, tick=tick)
    n = len(cols["timestamp"])
    table = pa.table(
        {
            **{k: pa.array(v) for k, v in cols.items()},
            "source": pa.DictionaryArray.from_arrays(
                pa.array(np.zeros(n, dtype=np.int32)), pa.array(["synthetic"])
            ),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def write_sample(
    out: Path,
    first: date,
    last: date,
    *,
    symbols: int = 3,
    seed: int = 7,
    ticks: bool = False,
) -> Path:
    """The instruments file and candles (or ticks) for ``symbols`` made-up names."""
    out.mkdir(parents=True, exist_ok=True)
    days = weekdays(first, last)
    rows = [_HEADER]
    for n in range(symbols):
        symbol, price = f"SYN{n + 1:02d}", 200.0 + 150.0 * n
        token = 0x00F00000 | (n + 1) << 8 | 1  # made up; low byte 1 = NSE like Kite's
        rows.append(f"{token},{token >> 8},{symbol},SYNTHETIC {n + 1},{price:.2f},,0,0.05,1,EQ,"
                    "NSE,NSE,100000")  # fmt: skip
        if ticks:
            write_ticks(out / "ticks" / f"{symbol}.parquet", days, seed=seed + n, start_price=price)
        else:
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
    p.add_argument("--ticks", action="store_true", help="about a tick a second, as Parquet")
    a = p.parse_args(argv)
    write_sample(a.out, a.first, a.last, symbols=a.symbols, seed=a.seed, ticks=a.ticks)
    what = "ticks/" if a.ticks else "candles/"
    print(f"SYNTHETIC sample in {a.out}: instruments.csv, {what} ({a.first}..{a.last})")


if __name__ == "__main__":
    main()
