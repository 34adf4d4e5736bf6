"""OCOManager driven by the real PaperBroker and a tick stream: the two agree
on the protocol (ids, tags, modify and cancel semantics, update shapes)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from aitrapp import Instrument
from aitrapp.brokers.paper import PaperBroker
from aitrapp.oco import BracketResult, BracketSpec, OCOManager
from aitrapp.ticks import Tick

SEC = 1_000_000_000
T0 = 1_767_240_000_000_000_000  # 2026-01-01 09:30 IST
TOKEN = 738561
PLAN = "ab" * 12


def inst() -> Instrument:
    return Instrument(
        exchange="NSE",
        tradingsymbol="RELIANCE",
        instrument_token=TOKEN,
        segment="EQ",
        tick_size="0.05",
        lot_size=1,
        freeze_qty=100_000,
    )


@dataclass
class Session:
    paper: PaperBroker
    mgr: OCOManager
    results: list[BracketResult]
    now: int = T0

    async def tick(self, rupees: float, dt_s: float = 1.0) -> None:
        self.now += int(dt_s * SEC)
        self.paper.on_tick(Tick(TOKEN, self.now, rupees, last_qty=100, volume=0))
        for _ in range(50):  # let the pump deliver what the tick caused
            await asyncio.sleep(0)
        await self.mgr.advance_time(self.now)


@pytest.fixture
async def session() -> AsyncIterator[Session]:
    paper = PaperBroker([inst()], wall_clock_ns=lambda: 0)
    results: list[BracketResult] = []

    async def on_terminal(r: BracketResult) -> None:
        results.append(r)

    s = Session(paper, None, results)  # type: ignore[arg-type]
    s.mgr = OCOManager(paper, clock=lambda: s.now, on_terminal=on_terminal, retry_delay_s=0.0)
    pump = asyncio.get_running_loop().create_task(s.mgr.pump(paper.updates()))
    await s.tick(2501.0)
    yield s
    pump.cancel()


def spec(**over: object) -> BracketSpec:
    fields: dict[str, object] = {
        "plan_id": PLAN,
        "instrument": inst(),
        "side": "BUY",
        "qty": 10,
        "entry_price": "2500.00",
        "stop": "2480.00",
        "take_profit": "2540.00",
    }
    fields.update(over)
    return BracketSpec(**fields)  # type: ignore[arg-type]


async def test_paper_take_profit(session: Session) -> None:
    await session.mgr.open_bracket(spec())
    await session.tick(2501.0)  # acknowledged
    await session.tick(2499.5)  # entry fills; children placed
    await session.tick(2510.0)  # children acknowledged
    snap = session.mgr.bracket(PLAN)
    assert snap.state == "OPEN"
    assert sorted(o.tag for o in snap.working_orders) == ["STOP", "TP"]
    assert all(o.broker_order_id is not None for o in snap.working_orders)
    await session.tick(2541.0)  # take-profit fills, the stop is cancelled
    await session.tick(2541.0)
    snap = session.mgr.bracket(PLAN)
    assert (snap.state, snap.net_qty, snap.working_orders) == ("CLOSED", 0, ())
    # paper fills a limit at the better traded price: bought 2499.50, sold 2541.00
    assert session.results[-1].realized_pnl_paise == 10 * (254_100 - 249_950)
    positions = await session.paper.positions()
    assert all(p.quantity == 0 for p in positions)


async def test_paper_stop_and_flatten(session: Session) -> None:
    await session.mgr.open_bracket(spec())
    await session.tick(2501.0)
    await session.tick(2499.5)
    await session.tick(2490.0)
    await session.tick(2479.0)  # the stop triggers and fills at market (with slippage)
    await session.tick(2479.0)
    snap = session.mgr.bracket(PLAN)
    assert snap.state == "CLOSED"
    result = session.results[-1]
    assert result.closing_reason == "STOP"
    assert result.realized_pnl_paise is not None and result.realized_pnl_paise < 0
    # a second bracket, flattened while open
    await session.mgr.open_bracket(spec(plan_id="cd" * 12))
    await session.tick(2500.0)
    await session.tick(2499.0)
    await session.tick(2500.0)
    assert session.mgr.bracket("cd" * 12).state == "OPEN"

    async def keep_ticking() -> None:
        while True:
            await session.tick(2500.0, dt_s=0.5)

    ticker = asyncio.get_running_loop().create_task(keep_ticking())
    try:
        await session.mgr.flatten(timeout_s=5, tick_s=0.01)
    finally:
        ticker.cancel()
    assert session.mgr.bracket("cd" * 12).state == "CLOSED"
    assert session.results[-1].closing_reason == "FLATTEN"
    positions = await session.paper.positions()
    assert all(p.quantity == 0 for p in positions)
