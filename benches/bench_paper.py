"""Paper broker replay speed: a full NSE day (09:15-15:30, one tick per second per
instrument) for 100 instruments, through the columnar path and the per-tick path.

Run with ``make bench`` (or ``pytest benches/bench_paper.py --benchmark-enable``);
under plain ``pytest`` each benchmark runs once as a test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from aitrapp import Instrument
from aitrapp.brokers.base import OrderRequest, OrderStatus, OrderType
from aitrapp.brokers.paper import PaperBroker, PaperConfig
from aitrapp.ticks import Tick

N_INSTRUMENTS = 100
SESSION_SECONDS = 22_500  # 09:15 to 15:30
SEC = 1_000_000_000
OPEN_NS = int(datetime(2026, 5, 4, 3, 45, tzinfo=UTC).timestamp()) * SEC
BATCH_ROWS = 4096


@dataclass(frozen=True)
class Day:
    token: npt.NDArray[np.uint32]
    ts_ns: npt.NDArray[np.int64]
    last_price: npt.NDArray[np.float64]
    last_qty: npt.NDArray[np.int64]
    volume: npt.NDArray[np.int64]
    bid: npt.NDArray[np.float64]
    ask: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.token)

    def rows(self, start: int, stop: int) -> Day:
        return Day(*(getattr(self, f)[start:stop] for f in Day.__dataclass_fields__))


def make_day(seconds: int = SESSION_SECONDS) -> Day:
    """Random walks on a 5-paise grid around 1,000 rupees, merged in time order."""
    rng = np.random.default_rng(7)
    steps = rng.integers(-1, 2, size=(seconds, N_INSTRUMENTS)).cumsum(axis=0)
    paise = 100_000 + steps * 5
    n = seconds * N_INSTRUMENTS
    ts = (
        OPEN_NS
        + np.repeat(np.arange(seconds, dtype=np.int64) * SEC, N_INSTRUMENTS)
        + np.tile(np.arange(N_INSTRUMENTS, dtype=np.int64) * 1_000_000, seconds)
    )
    last = paise.reshape(-1) / 100.0
    qty = rng.integers(1, 500, size=n)
    volume = np.cumsum(qty.reshape(seconds, N_INSTRUMENTS), axis=0).reshape(-1)
    return Day(
        token=np.tile(np.arange(1, N_INSTRUMENTS + 1, dtype=np.uint32), seconds),
        ts_ns=ts,
        last_price=last,
        last_qty=qty.astype(np.int64),
        volume=volume.astype(np.int64),
        bid=last - 0.05,
        ask=last + 0.05,
    )


@pytest.fixture(scope="module")
def day() -> Day:
    return make_day()


def instruments() -> list[Instrument]:
    return [
        Instrument(
            exchange="NSE",
            tradingsymbol=f"SYM{t}",
            instrument_token=t,
            segment="EQ",
            tick_size="0.05",
            lot_size=1,
            freeze_qty=100_000,
        )
        for t in range(1, N_INSTRUMENTS + 1)
    ]


def order(token: int, n: int, side: str, order_type: OrderType, **kw: Any) -> OrderRequest:
    return OrderRequest(
        client_order_id=f"{token:012x}{n:012x}:ENTRY",
        tag=f"b{token}x{n}",
        exchange="NSE",
        tradingsymbol=f"SYM{token}",
        instrument_token=token,
        side=side,  # type: ignore[arg-type]
        quantity=10,
        order_type=order_type,
        **kw,
    )


def broker_with_brackets(with_brackets: int) -> PaperBroker:
    """A broker whose first ``with_brackets`` instruments each hold a filled-at-open
    entry plus a resting stop and take-profit 20 % away (checked on every tick)."""
    b = PaperBroker(instruments(), PaperConfig(max_orders_per_second=None))
    for t in range(1, with_brackets + 1):
        b.submit(order(t, 1, "BUY", OrderType.MARKET, market_protection=-1))
        b.submit(order(t, 2, "SELL", OrderType.SLM, trigger_paise=80_000, market_protection=-1))
        b.submit(order(t, 3, "SELL", OrderType.LIMIT, price_paise=120_000))
    return b


def replay_columnar(b: PaperBroker, day: Day) -> PaperBroker:
    for start in range(0, len(day), BATCH_ROWS):
        b.on_ticks(day.rows(start, start + BATCH_ROWS))
    b.feed_ended()
    return b


def check(b: PaperBroker, with_brackets: int, ticks: int) -> None:
    orders = asyncio.run(b.orders())
    done = [o for o in orders if o.status is OrderStatus.COMPLETE]
    assert len(done) == with_brackets  # the entries filled; stops and targets never reached
    resting = [o.status for o in orders if o not in done]
    assert resting.count(OrderStatus.TRIGGER_PENDING) == resting.count(OrderStatus.OPEN)
    assert len(resting) == 2 * with_brackets
    assert b.now_ns >= OPEN_NS + (ticks // N_INSTRUMENTS - 1) * SEC


def run(benchmark: Any, fn: Callable[[], PaperBroker]) -> PaperBroker:
    result: PaperBroker = benchmark.pedantic(fn, rounds=3, iterations=1, warmup_rounds=0)
    return result


@pytest.mark.parametrize("with_brackets", [0, 10, 100])
def test_full_day_100_instruments_columnar(benchmark: Any, day: Day, with_brackets: int) -> None:
    """2.25 M ticks through ``on_ticks``; brackets on 0, 10 or all 100 instruments."""
    brokers = iter([broker_with_brackets(with_brackets) for _ in range(4)])
    b = run(benchmark, lambda: replay_columnar(next(brokers), day))
    check(b, with_brackets, len(day))


def test_tenth_of_a_day_per_tick(benchmark: Any, day: Day) -> None:
    """225,000 ticks through ``on_tick`` (the live path), brackets on 10 instruments."""
    part = day.rows(0, len(day) // 10)
    ticks = [
        Tick(*row)
        for row in zip(
            part.token.tolist(),
            part.ts_ns.tolist(),
            part.last_price.tolist(),
            part.last_qty.tolist(),
            part.volume.tolist(),
            part.bid.tolist(),
            part.ask.tolist(),
            strict=True,
        )
    ]
    brokers = iter([broker_with_brackets(10) for _ in range(4)])

    def replay() -> PaperBroker:
        b = next(brokers)
        for t in ticks:
            b.on_tick(t)
        b.feed_ended()
        return b

    check(run(benchmark, replay), 10, len(part))
