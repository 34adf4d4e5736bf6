"""The event bus: in-process fan-out, and Redis Streams against a real redis-server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest
import redis.asyncio as aioredis

from aitrapp.bus import TOPICS, BusEvent, InProcessBus, RedisStreamsBus, make_bus
from aitrapp.db.embedded import free_port
from aitrapp.metrics import Metrics
from aitrapp.settings import load_settings

if TYPE_CHECKING:
    from conftest import RedisLauncher


async def wait_until(cond: Callable[[], bool], limit_s: float = 30.0) -> None:
    async with asyncio.timeout(limit_s):
        while not cond():  # noqa: ASYNC110 - the bus exposes counters, not events
            await asyncio.sleep(0.01)


async def take(sub: object, n: int) -> list[BusEvent]:
    async with asyncio.timeout(30):
        return [await sub.__anext__() for _ in range(n)]  # type: ignore[attr-defined]


def test_topics_are_the_contract() -> None:
    assert set(TOPICS) == {
        "signals", "decisions", "orders", "order_updates", "trades", "risk", "mode",
    }  # fmt: skip


# ---- in-process ----
async def test_in_process_fan_out_with_topic_filter() -> None:
    bus = InProcessBus()
    everything = await bus.subscribe()
    orders_only = await bus.subscribe(["orders"])
    bus.publish("signals", {"symbol": "RELIANCE", "entry": Decimal("2500.05")})
    bus.publish("orders", {"client_order_id": "p:ENTRY", "qty": 24})
    got = await take(everything, 2)
    assert [(e.topic, e.data) for e in got] == [
        ("signals", {"symbol": "RELIANCE", "entry": "2500.05"}),
        ("orders", {"client_order_id": "p:ENTRY", "qty": 24}),
    ]
    assert int(got[1].id) > int(got[0].id)
    assert [e.data["client_order_id"] for e in await take(orders_only, 1)] == ["p:ENTRY"]
    await bus.close()
    with pytest.raises(StopAsyncIteration):
        await everything.__anext__()


async def test_in_process_failures_are_counted_not_raised() -> None:
    metrics = Metrics()
    bus = InProcessBus(metrics=metrics)
    sub = await bus.subscribe()
    bus.publish("orders", {"bad": object()})  # not JSON
    bus.publish("nope", {})  # type: ignore[arg-type]
    bus.publish("risk", {"nan": float("nan")})  # JSON has no NaN
    assert bus.failures == 3
    assert "trader_bus_publish_failures_total 3.0" in metrics.render()
    bus.publish("risk", {"ok": True})
    assert [e.data for e in await take(sub, 1)] == [{"ok": True}]
    with pytest.raises(ValueError, match="topics"):
        await bus.subscribe(["nope"])  # type: ignore[list-item]


async def test_slow_subscriber_loses_oldest_and_is_counted() -> None:
    metrics = Metrics()
    bus = InProcessBus(metrics=metrics)
    slow = await bus.subscribe(maxsize=3)
    for i in range(5):
        bus.publish("trades", {"i": i})
    assert [e.data["i"] for e in await take(slow, 3)] == [2, 3, 4]
    assert bus.subscriber_drops == 2
    assert bus.failures == 0  # the publisher did not fail
    assert "trader_bus_subscriber_drops_total 2.0" in metrics.render()


def test_make_bus_follows_redis_url() -> None:
    assert isinstance(make_bus(load_settings(redis_url=None)), InProcessBus)
    bus = make_bus(load_settings(redis_url="redis://127.0.0.1:1/0", bus_stream_prefix="x"))
    assert isinstance(bus, RedisStreamsBus)
    assert bus.stream_key("orders") == "x:orders"


# ---- Redis Streams ----
integration = pytest.mark.integration


@integration
async def test_redis_publish_and_subscribe(redis_url: str) -> None:
    prefix = "t1"
    bus = RedisStreamsBus(redis_url, prefix=prefix)
    await bus.start()
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        bus.publish("orders", {"before": True})
        await wait_until(lambda: bus.published == 1)
        sub = await bus.subscribe(["orders", "trades"])
        bus.publish("orders", {"client_order_id": "p:STOP", "px": Decimal("2480.00")})
        bus.publish("trades", {"net": Decimal("825.22")})
        bus.publish("signals", {"not": "subscribed"})
        got = await take(sub, 2)
        assert [(e.topic, e.data) for e in got] == [
            ("orders", {"client_order_id": "p:STOP", "px": "2480.00"}),
            ("trades", {"net": "825.22"}),
        ]  # only what came after subscribe(), only the chosen topics
        assert got[0].id.count("-") == 1
        assert got[0].ts.endswith("+00:00")
        entries = await client.xrange(f"{prefix}:orders")
        assert len(entries) == 2
        assert entries[0][1]["data"] == '{"before":true}'
        await sub.close()
    finally:
        await bus.close()
        await client.aclose()
    assert bus.failures == 0


@integration
async def test_redis_streams_are_trimmed_approximately(redis_url: str) -> None:
    bus = RedisStreamsBus(redis_url, prefix="t2", maxlen=10)
    await bus.start()
    for i in range(2000):
        bus.publish("signals", {"i": i})
    await bus.close(grace_s=30)
    client = aioredis.Redis.from_url(redis_url)
    try:
        length = await client.xlen("t2:signals")
    finally:
        await client.aclose()
    assert bus.published == 2000
    assert 10 <= length < 1000  # MAXLEN ~ trims whole nodes, never below the cap


@integration
async def test_dead_redis_never_blocks_or_raises() -> None:
    metrics = Metrics()
    bus = RedisStreamsBus(
        f"redis://127.0.0.1:{free_port()}/0", socket_timeout_s=0.5, metrics=metrics
    )
    await bus.start()
    for i in range(100):
        bus.publish("risk", {"i": i})  # returns at once: nothing is listening
    await wait_until(lambda: bus.failures == 100)
    assert bus.published == 0
    assert "trader_bus_publish_failures_total 100.0" in metrics.render()
    await bus.close()


@integration
async def test_redis_restart_mid_session(redis_launcher: RedisLauncher) -> None:
    port = free_port()
    proc = await asyncio.to_thread(redis_launcher.start, port)
    bus = RedisStreamsBus(f"redis://127.0.0.1:{port}/0", socket_timeout_s=0.5)
    await bus.start()
    try:
        bus.publish("mode", {"mode": "PAPER"})
        await wait_until(lambda: bus.published == 1)
        proc.kill()
        await asyncio.to_thread(proc.wait)
        bus.publish("mode", {"mode": "PAUSED"})  # lost while Redis is down, and counted
        await wait_until(lambda: bus.failures == 1)
        await asyncio.to_thread(redis_launcher.start, port)
        bus.publish("mode", {"mode": "ACTIVE"})
        await wait_until(lambda: bus.published == 2)
        assert bus.failures == 1
    finally:
        await bus.close()


@integration
async def test_redis_health_follows_redis_even_when_idle(redis_launcher: RedisLauncher) -> None:
    """/health's bus component: down while Redis is, up again when it answers, with
    nothing published meanwhile (the idle publisher pings)."""
    port = free_port()
    proc = await asyncio.to_thread(redis_launcher.start, port)
    metrics = Metrics()
    bus = RedisStreamsBus(
        f"redis://127.0.0.1:{port}/0", socket_timeout_s=0.5, probe_interval_s=0.1, metrics=metrics
    )
    await bus.start()
    try:
        await wait_until(lambda: bus.healthy)
        assert "trader_bus_up 1.0" in metrics.render()
        proc.kill()
        await asyncio.to_thread(proc.wait)
        await wait_until(lambda: not bus.healthy)
        assert "DOWN" in bus.status
        assert "trader_bus_up 0.0" in metrics.render()
        await asyncio.to_thread(redis_launcher.start, port)
        await wait_until(lambda: bus.healthy)
        assert bus.status.startswith("redis up")
        assert "trader_bus_up 1.0" in metrics.render()
    finally:
        await bus.close()


async def test_in_process_bus_is_always_healthy() -> None:
    metrics = Metrics()
    bus = InProcessBus(metrics=metrics)
    assert bus.healthy and "in-process" in bus.status
    assert "trader_bus_up 1.0" in metrics.render()
