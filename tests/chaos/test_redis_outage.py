"""Redis killed mid-session and started again: trading goes on, /health says so.

The bus is best effort: while Redis is down events are dropped and counted,
/health shows the bus component down (and ``trader_bus_up`` 0), orders are
still placed and filled; once Redis answers again the bus is up by itself
and the ``orders`` topic carries the placements again.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from aitrapp.bus import BusEvent
from aitrapp.db.embedded import free_port
from aitrapp.feeds.base import TickBatch
from aitrapp.runtime import Runtime, start_runtime
from conftest import RedisLauncher
from sessions.helpers import BUSY_ENGINE, SteppedFeed, metric, options, settings_for, stepped

pytestmark = pytest.mark.integration

DOWN_S = 3.0  # wall time Redis stays dead (the bus notices within about a second)


@dataclass
class Outage:
    rt: Runtime
    launcher: RedisLauncher
    port: int
    proc: subprocess.Popen[bytes]
    phase: str = "before"
    t0: float = 0.0
    placed_at_kill: float = 0.0
    placed_while_down: float = 0.0
    health_down: dict[str, bool] = field(default_factory=dict)
    state_down: str = ""
    health_after: dict[str, bool] = field(default_factory=dict)

    def _placed(self) -> float:
        return metric(self.rt, "trader_orders_placed_total")

    async def step(self, _batch: TickBatch) -> None:
        rt = self.rt
        if self.phase == "before":
            if self._placed() < 2:
                return
            self.placed_at_kill = self._placed()
            self.proc.kill()
            await asyncio.to_thread(self.proc.wait)
            self.t0 = time.monotonic()
            self.phase = "down"
            return
        if self.phase != "down":
            return
        if time.monotonic() - self.t0 < DOWN_S:
            if not rt.bus.healthy and not self.health_down:
                self.health_down = {k: c.ok for k, c in rt.health().items()}
                self.state_down = rt.trading_state
            # Spread over session time: the feed hands the kernel a minute per batch.
            await asyncio.sleep(DOWN_S / 50)
            return
        self.placed_while_down = self._placed() - self.placed_at_kill
        self.proc = await asyncio.to_thread(self.launcher.start, self.port)
        async with asyncio.timeout(30):
            while not rt.bus.healthy:  # noqa: ASYNC110 - health is state
                await asyncio.sleep(0.02)
        self.health_after = {k: c.ok for k, c in rt.health().items()}
        self.phase = "after"


async def _collect(rt: Runtime, into: list[BusEvent]) -> None:
    sub = await rt.bus.subscribe(["orders"])
    try:
        async for event in sub:
            into.append(event)
    finally:
        await sub.close()


async def test_trading_goes_on_while_redis_is_down(
    db_url: str, tmp_path: Path, redis_launcher: RedisLauncher
) -> None:
    port = free_port()
    proc = await asyncio.to_thread(redis_launcher.start, port)
    settings = settings_for(db_url, tmp_path, redis_url=f"redis://127.0.0.1:{port}/0")
    rt = await start_runtime(
        settings,
        options(engine=BUSY_ENGINE, start_feed=False, feed_factory=SteppedFeed.factory()),
    )
    outage = Outage(rt, redis_launcher, port, proc)
    stepped(rt).between = outage.step
    events: list[BusEvent] = []
    collector = asyncio.create_task(_collect(rt, events))
    try:
        await asyncio.sleep(0.2)  # the subscription reads from the streams' current ends
        rt.start_feed()
        async with asyncio.timeout(180):
            await rt.wait_feed()
        await rt.stop_trading()
        await asyncio.sleep(1.5)  # the last events reach the subscriber
    finally:
        collector.cancel()
        await asyncio.gather(collector, return_exceptions=True)
        await rt.stop()
    assert outage.phase == "after", outage.phase
    # Degraded while down: the bus only; trading went on.
    assert outage.health_down["bus"] is False
    assert outage.health_down["database"] is True and outage.health_down["feed"] is True
    assert outage.state_down == "ACTIVE"
    assert outage.placed_while_down >= 1, "no order was placed while Redis was down"
    assert rt.book().counters["trades"] > 0
    # Recovered by itself.
    assert outage.health_after["bus"] is True
    assert metric(rt, "trader_bus_up") == 1.0
    assert metric(rt, "trader_bus_publish_failures_total") > 0  # what was lost is counted
    # The orders topic carries the placements (those published while Redis was up).
    # (Each order command is published; its action says which.)
    placed = metric(rt, "trader_orders_placed_total")
    placements = [e for e in events if e.data["action"] == "PLACE"]
    assert 0 < len(placements) < placed
    roles = {e.data["role"] for e in placements}
    assert "ENTRY" in roles and roles <= {"ENTRY", "STOP", "TP", "EXIT"} | roles
    assert all(e.data["client_order_id"].endswith(":" + e.data["role"]) for e in placements)
