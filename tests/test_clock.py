"""Clocks: replay time follows the feed and is paced against (fake) wall time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest

from aitrapp.clock import (
    MAX_SPEED,
    REAL_TIME,
    Clock,
    ReplayClock,
    Speed,
    WallClock,
    clock_for,
    paced,
)
from aitrapp.exceptions import ConfigError
from aitrapp.feeds import OI_ABSENT, TickBatch
from aitrapp.ticks import Tick

S = 1_000_000_000
T0 = 1_767_584_700 * S  # 2026-01-05 09:15 IST


class FakeTime:
    """A monotonic/wall clock that only moves when the code under test sleeps."""

    def __init__(self, start_ns: int = 0) -> None:
        self.now = start_ns
        self.sleeps: list[float] = []

    def ns(self) -> int:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += round(seconds * 1e9)


@pytest.mark.parametrize(
    ("text", "factor"),
    [("1x", 1.0), ("10x", 10.0), ("0.5x", 0.5), (" 60X ", 60.0), ("25", 25.0), (4, 4.0)],
)
def test_speed_parses_multiples(text: str | float, factor: float) -> None:
    assert Speed.parse(text).factor == factor


@pytest.mark.parametrize("text", ["max", "MAX", "inf", float("inf")])
def test_speed_parses_max(text: str | float) -> None:
    assert Speed.parse(text).is_max
    assert str(Speed.parse(text)) == "max"


@pytest.mark.parametrize("bad", ["fast", "0x", "-2x", "", "nanx", 0, -1.0, True, float("nan")])
def test_bad_speeds_name_the_key(bad: str | float) -> None:
    with pytest.raises(ConfigError, match="speed"):
        Speed.parse(bad)


def test_speed_str_round_trips() -> None:
    assert str(Speed.parse("10x")) == "10x"
    assert Speed.parse(str(Speed.parse("2.5x"))) == Speed(2.5)


async def test_replay_clock_follows_the_feed_and_never_runs_backwards() -> None:
    clock = ReplayClock(start_ns=T0 - 60 * S)
    assert clock.is_replay and isinstance(clock, Clock)
    assert clock.now_ns() == T0 - 60 * S
    await clock.pace(T0)
    assert clock.now_ns() == T0
    await clock.pace(T0 - S)  # a late tick does not rewind time
    assert clock.now_ns() == T0
    clock.advance(T0 + 5 * S)
    assert clock.now_ns() == T0 + 5 * S


async def test_sleep_until_wakes_when_feed_time_passes() -> None:
    clock = ReplayClock(start_ns=T0)
    woke: list[str] = []

    async def waiter(name: str, at: int) -> None:
        await clock.sleep_until(at)
        woke.append(name)

    tasks = [
        asyncio.create_task(waiter("squareoff", T0 + 300 * S)),
        asyncio.create_task(waiter("close", T0 + 600 * S)),
    ]
    await asyncio.sleep(0)
    assert clock.pending_sleepers() == 2
    clock.advance(T0 + 299 * S)
    await asyncio.sleep(0)
    assert woke == []
    clock.advance(T0 + 300 * S)
    await asyncio.sleep(0)
    assert woke == ["squareoff"]
    clock.advance(T0 + 10_000 * S)
    await asyncio.gather(*tasks)
    assert woke == ["squareoff", "close"]
    await clock.sleep_until(T0)  # the past returns at once


async def test_cancelled_sleeper_is_skipped() -> None:
    clock = ReplayClock(start_ns=T0)
    task = asyncio.create_task(clock.sleep_until(T0 + S))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert clock.pending_sleepers() == 0
    clock.advance(T0 + 2 * S)  # must not try to wake the cancelled future


async def test_max_speed_never_sleeps() -> None:
    fake = FakeTime()
    clock = ReplayClock(MAX_SPEED, monotonic_ns=fake.ns, sleep=fake.sleep)
    for k in range(100):
        await clock.pace(T0 + k * 60 * S)
    assert fake.sleeps == []
    assert clock.now_ns() == T0 + 99 * 60 * S


async def test_nx_paces_feed_time_against_wall_time() -> None:
    fake = FakeTime(start_ns=5 * S)
    clock = ReplayClock("10x", monotonic_ns=fake.ns, sleep=fake.sleep)
    await clock.pace(T0)  # anchors: no wait for the first tick
    await clock.pace(T0 + 10 * S)  # 10 s of feed time at 10x = 1 s of wall time
    await clock.pace(T0 + 30 * S)
    assert fake.sleeps == pytest.approx([1.0, 2.0])
    fake.now += 5 * S  # processing fell behind by 5 s: no extra wait, no burst
    await clock.pace(T0 + 40 * S)
    assert fake.sleeps == pytest.approx([1.0, 2.0])
    await clock.pace(T0 + 100 * S)  # schedule: anchor + 10 s; we are at anchor + 8 s
    assert fake.sleeps[-1] == pytest.approx(2.0)


async def test_real_time_and_speed_change_reanchor() -> None:
    fake = FakeTime()
    clock = ReplayClock(REAL_TIME, monotonic_ns=fake.ns, sleep=fake.sleep)
    await clock.pace(T0)
    await clock.pace(T0 + 3 * S)
    assert fake.sleeps == pytest.approx([3.0])
    clock.set_speed("max")
    await clock.pace(T0 + 3600 * S)
    assert len(fake.sleeps) == 1
    clock.set_speed("2x")
    await clock.pace(T0 + 3700 * S)  # re-anchored here: no catch-up wait
    await clock.pace(T0 + 3710 * S)
    assert fake.sleeps == pytest.approx([3.0, 5.0])
    assert str(clock.speed) == "2x"


async def test_wall_clock_sleeps_in_slices_until_the_moment() -> None:
    fake = FakeTime(start_ns=T0)
    clock = WallClock(time_ns=fake.ns, sleep=fake.sleep)
    assert not clock.is_replay and isinstance(clock, Clock)
    await clock.sleep_until(T0 + 75 * S)
    assert fake.sleeps == pytest.approx([30.0, 30.0, 15.0])
    assert clock.now_ns() == T0 + 75 * S
    await clock.sleep_until(T0)
    assert len(fake.sleeps) == 3


async def test_wall_clock_records_feed_lag() -> None:
    fake = FakeTime(start_ns=T0 + 2 * S)
    clock = WallClock(time_ns=fake.ns, sleep=fake.sleep)
    assert clock.feed_lag_ns is None
    await clock.pace(T0)
    assert clock.feed_lag_ns == 2 * S
    assert fake.sleeps == []


def test_clock_for_feed_kind() -> None:
    assert isinstance(clock_for("kite"), WallClock)
    assert isinstance(clock_for("kite", "1x"), WallClock)
    replay = clock_for("replay", "10x", start_ns=T0)
    assert isinstance(replay, ReplayClock)
    assert replay.speed == Speed(10.0)
    assert replay.now_ns() == T0
    assert isinstance(clock_for("synthetic"), ReplayClock)
    with pytest.raises(ConfigError, match="speed"):
        clock_for("kite", "10x")


async def test_paced_moves_the_clock_with_ticks_and_batches() -> None:
    async def ticks() -> AsyncIterator[Tick]:
        for k in range(3):
            yield Tick(1, T0 + k * S, 100.0)

    fake = FakeTime()
    clock = ReplayClock("1x", monotonic_ns=fake.ns, sleep=fake.sleep)
    seen = []
    async for t in paced(ticks(), clock):
        assert clock.now_ns() == t.ts_ns  # the clock is at the tick being handed out
        seen.append(t.ts_ns)
    assert seen == [T0, T0 + S, T0 + 2 * S]
    assert fake.sleeps == pytest.approx([1.0, 1.0])

    async def batches() -> AsyncIterator[TickBatch]:
        ts = np.array([T0 + 10 * S, T0 + 15 * S], np.int64)
        yield TickBatch(
            token=np.ones(2, np.uint32),
            ts_ns=ts,
            last_price=np.full(2, 100.0),
            last_qty=np.ones(2, np.int64),
            volume=np.ones(2, np.int64),
            bid=np.full(2, np.nan),
            ask=np.full(2, np.nan),
            oi=np.full(2, OI_ABSENT, np.int64),
        )

    async for b in paced(batches(), clock):
        assert clock.now_ns() == b.last_ts_ns
    assert fake.sleeps[-1] == pytest.approx(13.0)  # 15 s of feed time since T0+2 s at 1x
