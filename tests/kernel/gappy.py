"""SYNTHETIC gappy market data for kernel tests (seeded; never market data):
1-minute candles replayed as 4 ticks a bar (open, high/low, low/high,
close, 15 s apart), a 1-3 % jump before some bars, spreads of 1-5 ticks."""

from __future__ import annotations

from datetime import date

import numpy as np

from aitrapp import Instrument
from aitrapp.calendar import ist_ns
from aitrapp.feeds.base import TickBatch

MIN_NS = 60_000_000_000


def instrument(token: int) -> Instrument:
    return Instrument(
        exchange="NSE",
        tradingsymbol=f"SYN{token}",
        instrument_token=token,
        segment="EQ",
        tick_size="0.05",
        lot_size=1,
        freeze_qty=100_000,
    )


def gappy_day(
    day: date, tokens: list[int], *, minutes: int = 375, jump_share: float = 0.1, seed: int = 7
) -> TickBatch:
    from datetime import time

    rng = np.random.default_rng(seed)
    open_ns = ist_ns(day, time(9, 15))
    rows: list[tuple[int, int, int, int, int]] = []  # ts, token, paise, spread, qty
    price = {t: 250_000 for t in tokens}
    for m in range(minutes):
        for k, tok in enumerate(tokens):
            o = price[tok]
            if rng.random() < jump_share:
                pct = (1 + 2 * rng.random()) * (1 if rng.random() < 0.5 else -1)
                o = round(o * (1 + pct / 100) / 5) * 5
            c = max(o + int(rng.integers(-30, 31)) * 5, 500)
            hi = max(o, c) + int(rng.integers(0, 21)) * 5
            lo = max(min(o, c) - int(rng.integers(0, 21)) * 5, 500)
            path = (o, hi, lo, c) if rng.random() < 0.5 else (o, lo, hi, c)
            for j, p in enumerate(path):
                ts = open_ns + m * MIN_NS + j * 15_000_000_000 + k * 1_000_000
                rows.append((ts, tok, p, int(rng.integers(1, 6)), int(rng.integers(1, 501))))
            price[tok] = c
    rows.sort()
    ts = np.array([r[0] for r in rows], dtype=np.int64)
    tok = np.array([r[1] for r in rows], dtype=np.uint32)
    paise = np.array([r[2] for r in rows], dtype=np.int64)
    spread = np.array([r[3] for r in rows], dtype=np.int64)
    qty = np.array([r[4] for r in rows], dtype=np.int64)
    vol = np.zeros(len(rows), dtype=np.int64)
    for t in tokens:
        m = tok == t
        vol[m] = np.cumsum(qty[m])
    half = spread // 2 * 5
    return TickBatch(
        token=tok,
        ts_ns=ts,
        last_price=paise / 100.0,
        last_qty=qty,
        volume=vol,
        bid=(paise - half) / 100.0,
        ask=(paise + (spread * 5 - half)) / 100.0,
        oi=np.full(len(rows), -1, dtype=np.int64),
        synthetic=True,
    )
