"""Engine speed from Python: the per-tick live call and the batch replay.

`.venv/bin/pytest benches/bench_engine.py --benchmark-enable -s` (after a
release build) prints p50/p99 of single on_tick calls timed with
perf_counter_ns; pytest-benchmark reports the rest. Nothing here asserts a
timing: under the normal test run the benches run once, small, as smoke tests.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from aitrapp import Engine, EngineConfig, Instrument

OPEN_NS = 1_767_239_100_000_000_000  # 2026-01-01 09:15 IST
SESSION_NS = 22_500 * 1_000_000_000
INSTRUMENTS = 100


def _instruments() -> list[Instrument]:
    return [
        Instrument(
            exchange="NSE",
            tradingsymbol=f"SYM{i:03d}",
            instrument_token=1_000 + i,
            segment="EQ",
            tick_size="0.05",
            lot_size=1,
            freeze_qty=100_000,
        )
        for i in range(INSTRUMENTS)
    ]


def _session(n: int, seed: int = 1) -> dict[str, np.ndarray]:
    """A random walk per instrument on the 0.05 grid, one-tick spread."""
    rng = np.random.default_rng(seed)
    k = rng.integers(0, INSTRUMENTS, n)
    steps = rng.integers(-2, 3, n) * 5
    paise = np.empty(n, dtype=np.int64)
    level = 10_000 + 2_000 * np.arange(INSTRUMENTS, dtype=np.int64)
    cum = np.zeros(INSTRUMENTS, dtype=np.int64)
    qty = rng.integers(1, 51, n).astype(np.int64)
    volume = np.empty(n, dtype=np.int64)
    for i in range(n):
        j = k[i]
        level[j] = max(100, level[j] + steps[i])
        paise[i] = level[j]
        cum[j] += qty[i]
        volume[i] = cum[j]
    return {
        "tokens": (1_000 + k).astype(np.int64),
        "ts": OPEN_NS + np.arange(n, dtype=np.int64) * (SESSION_NS // n),
        "last": paise / 100.0,
        "qty": qty,
        "volume": volume,
        "bid": (paise - 5) / 100.0,
        "ask": (paise + 5) / 100.0,
    }


def _engine() -> Engine:
    # Every strategy on, EmaCross (the benchmark strategy, off by default) too.
    cfg = EngineConfig.parse({"strategies": {"ema_cross": {"enabled": True}}})
    return Engine(cfg.to_core_json(), _instruments())


def test_bench_on_tick_live_path(benchmark: Any) -> None:
    n = 200_000 if not benchmark.disabled else 2_000
    s = _session(n)
    rows = list(
        zip(
            s["tokens"].tolist(),
            s["ts"].tolist(),
            s["last"].tolist(),
            s["qty"].tolist(),
            s["volume"].tolist(),
            s["bid"].tolist(),
            s["ask"].tolist(),
            strict=True,
        )
    )

    # Individual calls, each timed: the tick-to-decision latency from Python.
    eng = _engine()
    on_tick = eng.on_tick
    clock = time.perf_counter_ns
    lat = np.empty(n, dtype=np.int64)
    outcomes = 0
    for i, (tok, ts, px, q, v, b, a) in enumerate(rows):
        t0 = clock()
        out = on_tick(tok, ts, px, q, v, b, a, None)
        lat[i] = clock() - t0
        outcomes += len(out)
    p50, p99, p999 = np.percentile(lat, [50, 99, 99.9])
    print(
        f"\non_tick from Python over {n:,} ticks x {INSTRUMENTS} instruments, all strategies: "
        f"p50 {p50 / 1000:.2f} us, p99 {p99 / 1000:.2f} us, p99.9 {p999 / 1000:.2f} us, "
        f"max {lat.max() / 1000:.1f} us; {outcomes} outcomes"
    )
    assert outcomes > 0  # the path exercised strategies and the gate, not just intake

    # pytest-benchmark over a fresh engine: one call per round, ticks in order.
    eng2 = _engine()
    it = iter(rows)

    def one_tick() -> None:
        tok, ts, px, q, v, b, a = next(it)
        eng2.on_tick(tok, ts, px, q, v, b, a, None)

    benchmark.pedantic(one_tick, rounds=min(n, 100_000), iterations=1, warmup_rounds=0)


def test_bench_on_ticks_batch(benchmark: Any) -> None:
    n = 1_000_000 if not benchmark.disabled else 5_000
    s = _session(n)

    def replay() -> int:
        eng = _engine()
        out = eng.on_ticks(
            s["tokens"], s["ts"], s["last"], s["qty"], s["volume"], s["bid"], s["ask"]
        )
        return len(out)

    outcomes = benchmark.pedantic(replay, rounds=3 if not benchmark.disabled else 1, iterations=1)
    assert outcomes > 0
    if not benchmark.disabled and benchmark.stats:
        mean = benchmark.stats.stats.mean
        print(f"\non_ticks: {n:,} ticks in {mean * 1000:.0f} ms = {n / mean / 1e6:.2f} M ticks/s")
