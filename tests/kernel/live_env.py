"""A LIVE kernel session against the in-memory fake broker, without a database
or a network: :class:`LiveKernelDriver` executes the kernel's commands on
``FakeBroker`` (strict as Kite: tags, market protection, 25 modifications,
refusals of finished orders) and feeds its order stream back into the kernel.

Prices are SYNTHETIC (never market data): a V, down 20 ticks of 0.50 and up
again by 1.00, makes EmaCross 3/6 cross up and open one long bracket per
instrument; its entry, stop and target are read from the kernel's decision.
"""

from __future__ import annotations

import asyncio
import copy
import time as wall
from dataclasses import dataclass, field
from datetime import date, time
from typing import Any, cast
from uuid import uuid4

from aitrapp._core import Instrument, LiveKernel
from aitrapp.bus import InProcessBus
from aitrapp.calendar import ist_ns
from aitrapp.config import EngineConfig
from aitrapp.kernel.events import EventBatch, extend, rows
from aitrapp.kernel.live import LiveKernelDriver
from aitrapp.metrics import Metrics
from fakes import FakeBroker

SEC = 1_000_000_000
MIN = 60 * SEC
DAY = date(2026, 1, 5)  # a Monday
T0 = ist_ns(DAY, time(10, 0))
TOKENS = (738561, 738562, 738563)
# Down 20 ticks of 0.50, then up by 1.00: the 3/6 cross comes on the way up.
V_PRICES = [1450 - 0.5 * i for i in range(20)] + [1440.5 + 1.0 * i for i in range(20)]
# Up 20 ticks of 0.50, then down by 1.00: the cross comes on the way down (a short).
A_PRICES = [1430 + 0.5 * i for i in range(20)] + [1439.5 - 1.0 * i for i in range(20)]


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


def engine_config(tp_ticks: int = 60) -> EngineConfig:
    """EmaCross 3/6 alone, the stop 60 ticks away, limits opened."""
    return EngineConfig.parse(
        {
            "risk": {
                "daily_loss_stop_pct": 100.0,
                "cooldown_seconds": 0,
                "max_trades_per_day": 1000,
                "max_open_positions": 50,
                "max_portfolio_heat_pct": 100.0,
                "max_gross_exposure_pct": 1000.0,
            },
            "strategies": {
                "orb": {"enabled": False},
                "trend_pullback": {"enabled": False},
                "vwap_reversion": {"enabled": False},
                "ema_cross": {
                    "enabled": True,
                    "fast_period": 3,
                    "slow_period": 6,
                    "stop_ticks": 60,
                    "tp_ticks": tp_ticks,
                },
            },
        }
    )


class Clock:
    """Exchange time (UTC ns), moved by the test."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


class Writer:
    """The writer's tick-path API: takes every batch (``down``: refuses it, as a
    full queue does; ``broken``: raises, as a bug would)."""

    def __init__(self) -> None:
        self.batches = 0
        self.down = False
        self.broken: Exception | None = None

    def _take(self) -> bool:
        if self.broken is not None:
            raise self.broken
        self.batches += not self.down
        return not self.down

    def submit(self, _write: object) -> bool:
        return self._take()

    def submit_many(self, writes: list[object], *, atomic: bool = False) -> int:
        return len(writes) if self._take() else 0

    def submit_batch(self, _bulk: object) -> bool:
        return self._take()

    async def flush(self) -> None:
        return None


class RecordingDriver(LiveKernelDriver):
    """The production driver; every event batch it absorbs is kept (with the
    number of broker placements made before it, for write-ahead checks)."""

    def __init__(self, *args: Any, broker: FakeBroker, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.events: EventBatch = {}
        self.requests_at: list[tuple[EventBatch, int]] = []
        self._broker = broker

    def absorb(self, ev: EventBatch | None) -> None:
        if ev:
            kept = copy.deepcopy(ev)
            extend(self.events, kept)
            self.requests_at.append((kept, len(self._broker.requests)))
        super().absorb(ev)


@dataclass
class Env:
    broker: FakeBroker
    driver: RecordingDriver
    clock: Clock
    writer: Writer
    bus: InProcessBus
    metrics: Metrics
    plans: dict[int, dict[str, Any]] = field(default_factory=dict)  # token -> decision

    @property
    def kernel(self) -> LiveKernel:
        return self.driver.live

    @property
    def events(self) -> EventBatch:
        return self.driver.events

    async def settle(self) -> None:
        """Until every command ran and every report was read and acted on."""
        for _ in range(1000):
            await self.driver.drain()
            await self.broker.settled()
            if not self.driver.commands_in_flight and not self.broker.undelivered():
                return
        raise AssertionError("the session did not settle")

    def tick(self, token: int, rupees: float, *, dt_s: float = 1.0) -> None:
        """One feed tick (a 0.05 spread around it), ``dt_s`` after the last."""
        self.clock.now += int(dt_s * SEC)
        self.driver.on_tick(
            token,
            self.clock.now,
            rupees,
            10,
            0,
            rupees - 0.05,
            rupees + 0.05,
            None,
            wall.perf_counter_ns(),
        )

    async def advance(self, ns: int) -> None:
        """Exchange time moves on with no tick (timers fire at their own time)."""
        self.clock.now += ns
        self.driver.advance_time(self.clock.now)
        await self.settle()

    async def open(
        self, token: int = TOKENS[0], *, settle: bool = True, prices: list[float] = V_PRICES
    ) -> dict[str, Any]:
        """Ticks the V on ``token`` until its bracket's entry is sent; returns the
        decision (plan_id, side, entry, stop, tp, qty; prices in paise)."""
        before = len(rows(self.events, "decisions"))
        for p in prices:
            self.tick(token, p)
            decided = rows(self.events, "decisions")[before:]
            if decided:
                break
        else:
            raise AssertionError("the V did not open a bracket")
        (d,) = decided
        self.plans[token] = d
        await (self.settle() if settle else self.driver.drain())
        return d

    def rows(self, table: str, plan_id: str | None = None) -> list[dict[str, Any]]:
        out = rows(self.events, table)
        return out if plan_id is None else [r for r in out if r["plan_id"] == plan_id]

    def codes(self) -> list[tuple[str, str]]:
        return [(a["severity"], a["code"]) for a in rows(self.events, "alerts")]

    def state(self, plan_id: str) -> str:
        walk = self.rows("transitions", plan_id)
        return str(walk[-1]["to"]) if walk else "NEW"

    async def close(self) -> None:
        await self.driver.stop()


def cid(plan_id: str, tag: str) -> str:
    return f"{plan_id}:{tag}"


async def make_env(
    *,
    bracket: str = "{}",
    broker: FakeBroker | None = None,
    start: int = T0,
    tp_ticks: int = 60,
) -> Env:
    clock = Clock(start)
    broker = broker or FakeBroker(clock=clock)
    writer, bus, metrics = Writer(), InProcessBus(), Metrics()
    instruments = {t: instrument(t) for t in TOKENS}
    kernel = LiveKernel(
        engine_config(tp_ticks).to_core_json(), list(instruments.values()), "{}", bracket
    )
    driver = RecordingDriver(
        kernel,
        broker=broker,
        journal=cast(Any, broker),  # the journal's Broker API, played by the fake
        start_ns=start,
        clock=clock,
        writer=cast(Any, writer),
        bus=bus,
        metrics=metrics,
        session_id=uuid4(),
        instruments=instruments,
        fill_scope="live:test",
    )
    driver.lookup_delay_s = 0.0
    driver.cancel_retry.backoff_s = 0.0
    driver.start()
    await asyncio.sleep(0)
    return Env(broker, driver, clock, writer, bus, metrics)
