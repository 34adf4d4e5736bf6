"""A whole PAPER session on the kernel, persisted to PostgreSQL: the peer
benchmark's 1,000,000 ticks (see bench_kernel.py) replayed through the
runtime, from the first tick to the last row committed.

``make bench`` runs it at full size with an embedded PostgreSQL and prints
ticks/s, and where the time went: the feed (the kernel and the Python shell,
including building the bulk writes) and the drain after the last tick (rows
still queued for PostgreSQL then). The replay waits for the writer when half
its queue is full (``DbWriter.wait_for_room`` after each batch) instead of
outrunning the database until rows are refused; no row may be dropped, and
every bulk write must take the fast path (append-only rows COPYed straight
into their tables, :mod:`aitrapp.db.bulk_direct`). Under
plain ``pytest`` it runs once on 20,000 ticks as a test.
"""

from __future__ import annotations

import asyncio
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from aitrapp import Instrument
from aitrapp.backtest.runner import DayFeed, _universe_of
from aitrapp.feeds.base import TickBatch
from aitrapp.kernel.options import BracketOptions
from aitrapp.runtime import RuntimeOptions, start_runtime
from aitrapp.settings import load_settings
from bench_kernel import TOKEN, bench_config, peer_ticks

# The peer's ticks start 2024-01-02 09:15 IST; the same times of day are
# moved to a day the charge schedule covers (whole days: nothing else changes).
DAY = date(2026, 1, 6)
SHIFT_NS = (DAY - date(2024, 1, 2)).days * 86_400_000_000_000


def _instrument() -> Instrument:
    return Instrument(
        exchange="NSE",
        tradingsymbol="BENCH",
        instrument_token=TOKEN,
        segment="EQ",
        tick_size="0.05",
        lot_size=1,
        freeze_qty=1_000_000,
    )


def _batch(n: int) -> TickBatch:
    t = peer_ticks(n)
    return TickBatch(
        token=t["tokens"].astype(np.uint32),
        ts_ns=t["ts"] + SHIFT_NS,
        last_price=t["last"],
        last_qty=t["qty"],
        volume=t["volume"],
        bid=t["bid"],
        ask=t["ask"],
        oi=np.full(n, -1, dtype=np.int64),
        synthetic=True,
    )


async def _session(n: int, data_dir: Path) -> dict[str, Any]:
    settings = load_settings(data_dir=data_dir, logs_dir=data_dir / "logs")
    batch = _batch(n)
    inst = _instrument()
    options = RuntimeOptions(
        feed="replay",
        day=DAY,
        engine=bench_config(),
        universe=_universe_of([inst]),
        bracket=BracketOptions(entry_type="MARKET", entry_timeout_s=60),
        feed_factory=lambda _u, d: DayFeed(d, batch, [inst], "bench"),
        batch_rows=65_536,
        start_feed=False,
    )
    rt = await start_runtime(settings, options)
    rt.after_batch = rt.writer.wait_for_room
    try:
        t0 = time.perf_counter()
        rt.start_feed()
        await rt.wait_feed()
        fed, queued = time.perf_counter() - t0, rt.writer.queue_depth
        await rt.stop_trading()  # drains the writer: the last row is committed
        elapsed = time.perf_counter() - t0
        rows = await rt.pool.fetchval("SELECT count(*) FROM orders")
        return {
            "elapsed": elapsed,
            "fed": fed,
            "queued": queued,
            "written": rt.writer.written,
            "dropped": rt.writer.dropped,
            "restaged": rt.writer.bulk_restaged,
            "summary": rt.summary(),
            "orders": rows,
        }
    finally:
        await rt.stop()


def test_bench_paper_session_on_the_kernel(benchmark: Any, tmp_path: Path) -> None:
    n = 20_000 if benchmark.disabled else 1_000_000
    result: dict[str, Any] = {}

    def once() -> None:
        result.update(asyncio.run(_session(n, tmp_path / f"run{len(result)}")))

    benchmark.pedantic(once, rounds=1, iterations=1)
    assert result["summary"]["ticks"] == n
    assert result["orders"] > 0
    assert result["dropped"] == 0
    assert result["restaged"] == 0  # every bulk write took the fast path (direct COPY)
    if not benchmark.disabled:
        r = result
        print(
            f"\npaper session on the kernel, persisted: {n / r['elapsed']:,.0f} ticks/s "
            f"({r['elapsed']:.2f} s, {r['summary']['trades']} trades, {r['orders']} orders, "
            f"{r['written']:,} rows; feed {r['fed']:.2f} s, then {r['queued']:,} rows "
            f"drained in {r['elapsed'] - r['fed']:.2f} s)"
        )
