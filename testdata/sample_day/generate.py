"""Regenerates this folder's SYNTHETIC sample day from the built-in generator.

    .venv/bin/python testdata/sample_day/generate.py

Every file carries a `source` column with the value SYNTHETIC, so a replay of
it is labelled synthetic. The data is generated, not market data.
"""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import numpy as np

from aitrapp.calendar import session_times, to_ist
from aitrapp.feeds.base import TickBatch
from aitrapp.feeds.synthetic import SyntheticParams, generate_day
from aitrapp.universe import load_universe

DAY = date(2026, 1, 5)
SEED = 20260105
CANDLE_SYMBOLS = ("RELIANCE", "HDFCBANK", "INFY", "SBIN", "TATASTEEL")
TICK_SYMBOLS = ("TCS", "ICICIBANK")
TICK_MINUTES = 15  # ticks.csv covers 09:15-09:30
HERE = Path(__file__).resolve().parent


def _iso(ts_ns: int) -> str:
    return to_ist(ts_ns).isoformat(timespec="milliseconds")


def _price(value: float) -> str:
    return f"{value:.2f}"


def _write_candles(batch: TickBatch, token: int, path: Path) -> None:
    m = batch.token == token
    ts, price, qty = batch.ts_ns[m], batch.last_price[m], batch.last_qty[m]
    minute = (ts - ts[0] // 60_000_000_000 * 60_000_000_000) // 60_000_000_000
    with path.open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["date", "open", "high", "low", "close", "volume", "source"])
        for k in np.unique(minute):
            sel = minute == k
            start = int(ts[sel][0] // 60_000_000_000 * 60_000_000_000)
            p = price[sel]
            w.writerow(
                [
                    to_ist(start).isoformat(),
                    _price(p[0]),
                    _price(p.max()),
                    _price(p.min()),
                    _price(p[-1]),
                    int(qty[sel].sum()),
                    "SYNTHETIC",
                ]
            )


def _write_ticks(batch: TickBatch, tokens: dict[int, str], end_ns: int, path: Path) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(
            [
                "timestamp",
                "tradingsymbol",
                "last_price",
                "last_qty",
                "volume",
                "bid",
                "ask",
                "source",
            ]
        )
        for tok, ts, last, qty, vol, bid, ask, _ in batch.rows():
            if ts >= end_ns:
                break
            if tok not in tokens:
                continue
            w.writerow(
                [
                    _iso(ts),
                    tokens[tok],
                    _price(last),
                    qty,
                    vol,
                    "" if bid is None else _price(bid),
                    "" if ask is None else _price(ask),
                    "SYNTHETIC",
                ]
            )


def main() -> None:
    universe = load_universe(on=DAY)
    session = session_times(DAY)
    chosen = universe.select(CANDLE_SYMBOLS + TICK_SYMBOLS)
    batch = generate_day(chosen, session=session, seed=SEED, params=SyntheticParams())
    candles = HERE / "candles"
    candles.mkdir(exist_ok=True)
    for symbol in CANDLE_SYMBOLS:
        _write_candles(batch, universe.by_symbol(symbol).token, candles / f"{symbol}.csv")
    tokens = {universe.by_symbol(s).token: s for s in TICK_SYMBOLS}
    end = session.open_ns + TICK_MINUTES * 60_000_000_000
    _write_ticks(batch, tokens, end, HERE / "ticks.csv")


if __name__ == "__main__":
    main()
