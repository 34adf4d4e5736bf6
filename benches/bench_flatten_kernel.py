"""Flatten at scale on the trading kernel: 15 open brackets, every one exited.

- Kite, paced: ``LiveKernel`` with its ``LiveKernelDriver`` executing through
  the write-ahead journal (an embedded PostgreSQL) and ``KiteBroker`` (its rate
  limiter) against the fake Kite on loopback, which counts request arrivals
  in a sliding 1 s window and answers 429 over 10 order requests a second.
  The brackets are adopted from an earlier process (entry filled at 2500.00,
  SL-M stop 2480.00, target 2540.00).
- Paper, unpaced: ``Kernel`` with its SimVenue (no order rate limit); 15
  instruments each open a bracket on an EMA cross of synthetic prices
  (labelled as such: a V of 0.50 steps), then the kill switch; simulated time
  runs on in 50 ms steps (as the runtime's flatten does) until flat and clean.

Each scenario prints "flat after" (every position exited) and "clean after"
(nothing working any more), in wall-clock seconds from the kill switch, and
stores them in the benchmark's extra info with the order requests counted.
Times are measured and reported, never asserted; what is asserted is the
outcome (flat, clean, no 429, every bracket closed for FLATTEN).

Run with ``make bench`` (or ``pytest benches/bench_flatten_kernel.py
--benchmark-enable -s``); under plain ``pytest`` each scenario runs once as a
test, the Kite one on 6 brackets (its flatten still sends 12 requests, one
modify and one cancel a bracket, over Kite's 10 a second: only the pacing
keeps the 429s away).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
import time
from datetime import time as dt_time
from pathlib import Path
from typing import Any

import asyncpg

from aitrapp import Instrument
from aitrapp._core import Kernel
from aitrapp.brokers.kite import KiteBroker
from aitrapp.calendar import ist_ns
from aitrapp.config import EngineConfig
from aitrapp.db.embedded import EmbeddedPostgres
from aitrapp.db.migrate import migrate
from aitrapp.db.pool import create_pool
from aitrapp.kernel.events import rows

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the fakes
from kite.fake_kite import FakeKite
from kite.live_rig import DAY, T0, adopt, earlier_process, live_rig

BRACKETS = 15  # the scale
SMOKE_KITE_BRACKETS = 6
SEC = 1_000_000_000
RELIANCE = 738561
STEP_NS = 50_000_000  # the runtime's flatten moves paper time in 50 ms steps


def kite_instrument() -> Instrument:
    return Instrument(
        exchange="NSE",
        tradingsymbol="RELIANCE",
        instrument_token=RELIANCE,
        segment="EQ",
        tick_size="0.10",
        lot_size=1,
        freeze_qty=10_000,
    )


def _working_at(fake: FakeKite) -> int:
    return sum(1 for o in fake.orders.values() if o["status"] in ("OPEN", "TRIGGER PENDING"))


def _net_at(fake: FakeKite) -> int:
    return sum(int(r["quantity"]) for r in fake._position_rows())


async def kite_flatten(pg_url: str, brackets: int) -> dict[str, Any]:
    pool = await create_pool(pg_url, min_size=1, max_size=4)
    try:
        async with FakeKite() as fake:
            fake.set_ltp(RELIANCE, "2500.00")  # entries (and exits) fill at once
            inst = kite_instrument()
            broker = KiteBroker(
                api_key=fake.api_key,
                access_token=fake.access_token,
                instruments={RELIANCE: inst},
                api_root=fake.rest_root,
                ws_root=fake.ws_root,
                poll_interval=0.2,
            )
            await broker.start()
            rig = await live_rig(broker, pool, {RELIANCE: inst})
            try:
                for n in range(1, brackets + 1):
                    ids = await earlier_process(rig.earlier, inst, n)
                    await adopt(rig, inst, n, ids)
                await rig.settle()
                assert rig.live.live.open_brackets == brackets, "brackets did not open"
                await asyncio.sleep(1.1)  # opened earlier in the day: the rate window is empty
                before = len(fake.requests)
                t0 = time.perf_counter()
                rig.live.flatten(T0 + SEC)
                flat = clean = None
                for _ in range(3000):  # 30 s at most
                    now = time.perf_counter() - t0
                    if flat is None and _net_at(fake) == 0:
                        flat = now
                    if clean is None and _working_at(fake) == 0:
                        clean = now
                    if flat is not None and clean is not None:
                        break
                    await asyncio.sleep(0.01)
                await rig.settle(within_s=20)
                wire = [m for m, _, _ in fake.requests[before:] if m in ("PUT", "DELETE", "POST")]
                return {
                    "brackets": brackets,
                    "flat_after_s": flat,
                    "clean_after_s": clean,
                    "http_429": len(fake.too_many),
                    "modifies": wire.count("PUT"),
                    "cancels": wire.count("DELETE"),
                    "placements": wire.count("POST"),
                    "broker_net": _net_at(fake),
                    "working_at_broker": _working_at(fake),
                    "exit_reasons": sorted({t["exit_reason"] for t in rig.trades()}),
                    "trades": len(rig.trades()),
                    "open_brackets": rig.live.live.open_brackets,
                }
            finally:
                await rig.close()
                await broker.stop()
    finally:
        await pool.close()


def paper_config(brackets: int) -> str:
    return EngineConfig.parse(
        {
            "risk": {
                "max_open_positions": brackets,
                "max_trades_per_day": 1000,
                "cooldown_seconds": 0,
                "daily_loss_stop_pct": 100.0,
                "max_portfolio_heat_pct": 100.0,
                "max_position_notional_pct": 10_000.0,
                "max_gross_exposure_pct": 10_000.0,
                "min_stop_distance_bps": 0.0,
                "min_stop_spread_multiple": 0.0,
            },
            "strategies": {
                "orb": {"enabled": False},
                "trend_pullback": {"enabled": False},
                "vwap_reversion": {"enabled": False},
                "ema_cross": {
                    "enabled": True,
                    "fast_period": 3,
                    "slow_period": 6,
                    "stop_ticks": 600,
                    "tp_ticks": 600,
                },
            },
        }
    ).to_core_json()


def paper_flatten(brackets: int = BRACKETS) -> dict[str, Any]:
    insts = [
        Instrument(
            exchange="NSE",
            tradingsymbol=f"SYN{i:02d}",
            instrument_token=900_000 + i,
            segment="EQ",
            tick_size="0.05",
            lot_size=1,
            freeze_qty=100_000,
        )
        for i in range(brackets)
    ]
    # The session's paper venue: a market order on a quiet instrument fills on the
    # last quote after 0.5 s of simulated silence (runtime.default_paper_config).
    venue = json.dumps({"no_tick_wait_ns": 500_000_000})
    k = Kernel(paper_config(brackets), insts, venue, json.dumps({"entry_type": "MARKET"}))
    # Synthetic prices: down 20 steps of 0.50, then up; the cross comes on the way up
    # (stop and target 30.00 away: neither is reached before the kill switch).
    v = [1450 - 0.5 * i for i in range(20)] + [1440.5 + 1.0 * i for i in range(20)]
    t = ist_ns(DAY, dt_time(10, 0))
    toks, ts, px = [], [], []
    for j, p in enumerate(v):
        for i in insts:
            toks.append(i.instrument_token)
            ts.append(t + j * SEC + i.instrument_token - 900_000)
            px.append(p)
    k.run(toks, ts, px, [100] * len(px), [0] * len(px), None, None, None)
    now = ts[-1]
    for _ in range(40):  # entries fill, children acknowledged (on ticks of the last price)
        now += STEP_NS
        k.advance_time(now)
    assert k.open_brackets == brackets, f"only {k.open_brackets} paper brackets opened"
    trades: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    ev = k.flatten(now)
    sim0, flat, clean = now, None, None
    while True:
        trades += rows(ev or {}, "trades")
        elapsed = time.perf_counter() - t0
        if flat is None and k.portfolio().open_positions == 0 and k.open_brackets == 0:
            flat = elapsed
        if clean is None and k.working_orders == 0:
            clean = elapsed
        if (flat is not None and clean is not None) or now - sim0 > 10 * SEC:
            break
        now += STEP_NS
        ev = k.advance_time(now)
    return {
        "brackets": brackets,
        "flat_after_s": flat,
        "clean_after_s": clean,
        "simulated_s": (now - sim0) / SEC,
        "trades": len(trades),
        "exit_reasons": sorted({r["exit_reason"] for r in trades}),
        "open_brackets": k.open_brackets,
        "working_orders": k.working_orders,
    }


class _Postgres:
    """An embedded PostgreSQL, migrated, for the journal of the Kite scenario."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="bench-flatten-"))
        self.server = EmbeddedPostgres(self.dir / "data", durable=False)

    def __enter__(self) -> str:
        self.server.start_blocking()
        url = self.server.url()

        async def migrated() -> None:
            conn = await asyncpg.connect(url)
            try:
                await migrate(conn)
            finally:
                await conn.close()

        asyncio.run(migrated())
        return url

    def __exit__(self, *exc: object) -> None:
        self.server.stop_blocking("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


def show(name: str, doc: dict[str, Any], benchmark: Any) -> None:
    benchmark.extra_info.update(doc)
    print(f"\n{name}: {doc}")


def test_kernel_flatten_brackets_kite_paced(benchmark: Any) -> None:
    n = SMOKE_KITE_BRACKETS if benchmark.disabled else BRACKETS
    with _Postgres() as url:
        doc: dict[str, Any] = benchmark.pedantic(
            lambda: asyncio.run(kite_flatten(url, n)), rounds=1, iterations=1, warmup_rounds=0
        )
    show(f"kernel, kite, {n} brackets", doc, benchmark)
    assert doc["http_429"] == 0
    assert doc["broker_net"] == 0 and doc["working_at_broker"] == 0
    assert (doc["trades"], doc["exit_reasons"], doc["open_brackets"]) == (n, ["FLATTEN"], 0)
    # Each SL-M stop becomes its position's market exit by one modify, then
    # each target is cancelled: two requests a bracket, no new order.
    assert (doc["modifies"], doc["cancels"], doc["placements"]) == (n, n, 0)
    assert doc["flat_after_s"] is not None and doc["clean_after_s"] is not None


def test_kernel_flatten_15_brackets_paper_unpaced(benchmark: Any) -> None:
    doc: dict[str, Any] = benchmark.pedantic(paper_flatten, rounds=1, iterations=1, warmup_rounds=0)
    show("kernel, paper, 15 brackets, unpaced", doc, benchmark)
    assert (doc["trades"], doc["exit_reasons"]) == (BRACKETS, ["FLATTEN"])
    assert (doc["open_brackets"], doc["working_orders"]) == (0, 0)
    assert doc["flat_after_s"] is not None and doc["clean_after_s"] is not None
