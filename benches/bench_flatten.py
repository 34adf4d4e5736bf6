"""Flatten at scale: 15 open brackets, exits first, then clean-up.

- Kite: the OCO manager and ``KiteBroker`` against the fake Kite on loopback,
  which counts request arrivals in a sliding 1 s window and answers 429 over
  10 order requests a second (target: flat in <= 2 s, and no 429).
- Paper, unpaced: the OCO manager and the paper broker (target: <= 50 ms).

Each scenario prints "flat after" (every position exited) and "clean after"
(nothing working any more) and stores them in the benchmark's extra info.
Times are measured and reported, never asserted; what is asserted is the
outcome (flat, clean, no 429, every stop turned into the exit).

Run with ``make bench`` (or ``pytest benches/bench_flatten.py --benchmark-enable
-s``); under plain ``pytest`` each scenario runs once as a test, the paced Kite one
on 6 brackets (its flatten still sends 12 requests at once, over Kite's 10 a
second: only the pacing keeps the 429s away).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from aitrapp import Instrument
from aitrapp.brokers.kite import KiteBroker
from aitrapp.brokers.paper import PaperBroker, PaperConfig
from aitrapp.oco import BracketSpec, OCOManager
from aitrapp.oco.flatten import FlattenReport
from aitrapp.ticks import Tick

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the fake Kite
from kite.fake_kite import FakeKite

BRACKETS = 15  # the scale
SMOKE_KITE_BRACKETS = 6  # plain pytest: 45 requests at 10 a second take 4.5 s of the run
T0 = 1_767_240_000_000_000_000  # 2026-01-01 09:30 IST
SEC = 1_000_000_000
RELIANCE = 738561


def instrument(tick: str) -> Instrument:
    return Instrument(
        exchange="NSE",
        tradingsymbol="RELIANCE",
        instrument_token=RELIANCE,
        segment="EQ",
        tick_size=tick,
        lot_size=1,
        freeze_qty=10_000,
    )


def specs(inst: Instrument, brackets: int = BRACKETS) -> list[BracketSpec]:
    return [
        BracketSpec(
            plan_id=f"{n:02x}" * 12,
            instrument=inst,
            side="BUY",
            qty=10,
            entry_price="2500.00",
            stop="2480.00",
            take_profit="2540.00",
        )
        for n in range(1, brackets + 1)
    ]


def all_working(mgr: OCOManager) -> bool:
    return all(
        [o.status for o in b.working_orders] == ["WORKING", "WORKING"] for b in mgr.brackets()
    )


async def kite_flatten(brackets: int) -> tuple[FlattenReport, dict[str, Any]]:
    async with FakeKite() as fake:
        fake.set_ltp(RELIANCE, "2500.00")  # entries cross and fill at once
        broker = KiteBroker(
            api_key=fake.api_key,
            access_token=fake.access_token,
            instruments={RELIANCE: instrument("0.10")},
            api_root=fake.rest_root,
            ws_root=fake.ws_root,
            poll_interval=0.2,
        )
        await broker.start()
        mgr = OCOManager(broker, clock=lambda: T0)
        pump = asyncio.create_task(mgr.pump(broker.updates()))
        try:
            await asyncio.gather(
                *(mgr.open_bracket(s) for s in specs(instrument("0.10"), brackets))
            )
            for _ in range(1500):  # 30 s at most: 45 order requests at 10 a second
                if all_working(mgr):
                    break
                await asyncio.sleep(0.02)
            await asyncio.sleep(1.1)  # opened earlier in the day: the rate window is empty
            before = len(fake.requests)
            report = await mgr.flatten(timeout_s=20, tick_s=0.05)
            requests = [m for m, _, _ in fake.requests[before:] if m in ("PUT", "DELETE", "POST")]
            net = sum(p.quantity for p in await broker.positions())
        finally:
            pump.cancel()
            await broker.stop()
        extra = {
            "http_429": len(fake.too_many),
            "modifies": requests.count("PUT"),
            "cancels": requests.count("DELETE"),
            "placements": requests.count("POST"),
            "broker_net": net,
            "working_at_broker": sum(
                1 for o in fake.orders.values() if o["status"] in ("OPEN", "TRIGGER PENDING")
            ),
        }
        return report, extra


async def paper_flatten() -> tuple[FlattenReport, dict[str, Any]]:
    inst = instrument("0.05")
    paper = PaperBroker([inst], PaperConfig(max_orders_per_second=None), wall_clock_ns=lambda: 0)
    now = [T0]
    mgr = OCOManager(paper, clock=lambda: now[0], retry_delay_s=0.0)
    pump = asyncio.create_task(mgr.pump(paper.updates()))

    async def tick(rupees: float) -> None:
        now[0] += SEC
        paper.on_tick(Tick(RELIANCE, now[0], rupees, last_qty=100, volume=0))
        for _ in range(50):
            await asyncio.sleep(0)

    try:
        await tick(2501.0)
        for s in specs(inst):
            await mgr.open_bracket(s)
        for price in (2501.0, 2499.5, 2505.0, 2505.0):  # ack, fill, children acked
            await tick(price)
        assert all_working(mgr), "paper brackets did not open"
        paper.feed_ended()  # the session is over: market orders fill at the last quote
        report = await mgr.flatten(timeout_s=10, tick_s=0.01)
        net = sum(p.quantity for p in await paper.positions())
    finally:
        pump.cancel()
    return report, {"broker_net": net}


def show(name: str, report: FlattenReport, extra: dict[str, Any], benchmark: Any) -> None:
    doc = {**report.as_dict(), **extra}
    benchmark.extra_info.update(doc)
    print(f"\n{name}: {doc}")


def run_once(benchmark: Any, scenario: Any) -> tuple[FlattenReport, dict[str, Any]]:
    result: tuple[FlattenReport, dict[str, Any]] = benchmark.pedantic(
        lambda: asyncio.run(scenario()), rounds=1, iterations=1, warmup_rounds=0
    )
    return result


def test_flatten_brackets_kite_paced(benchmark: Any) -> None:
    n = SMOKE_KITE_BRACKETS if benchmark.disabled else BRACKETS
    report, extra = run_once(benchmark, lambda: kite_flatten(n))
    show(f"kite, {n} brackets", report, extra, benchmark)
    assert extra["http_429"] == 0
    assert (report.converted_stops, report.market_exits) == (n, 0)
    assert (extra["modifies"], extra["cancels"], extra["placements"]) == (n, n, 0)
    assert extra["broker_net"] == 0 and extra["working_at_broker"] == 0
    assert report.flat_after_s is not None and report.clean_after_s is not None


def test_flatten_15_brackets_paper_unpaced(benchmark: Any) -> None:
    report, extra = run_once(benchmark, paper_flatten)
    show("paper, 15 brackets, unpaced", report, extra, benchmark)
    assert report.converted_stops == BRACKETS and extra["broker_net"] == 0
    assert report.flat_after_s is not None and report.clean_after_s is not None
