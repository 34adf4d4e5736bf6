"""The order-rate limiter on virtual time: never more than N in any window."""

from __future__ import annotations

import asyncio

import pytest

from aitrapp.kite.rate_limit import RateLimiter


class VirtualTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def max_in_window(stamps: list[float], period: float) -> int:
    best = 0
    for i, start in enumerate(stamps):
        best = max(best, sum(1 for t in stamps[i:] if t < start + period - 1e-9))
    return best


async def test_ten_per_second_in_any_window() -> None:
    vt = VirtualTime()
    rl = RateLimiter(clock=vt.clock, sleep=vt.sleep)
    stamps = []
    for _ in range(35):
        await rl.acquire()
        stamps.append(vt.now)
    assert max_in_window(stamps, 1.0) == 10
    assert stamps[9] == 0.0 and stamps[10] == pytest.approx(1.0)
    assert stamps[-1] == pytest.approx(3.0)
    assert rl.waits > 0


async def test_four_hundred_per_minute() -> None:
    vt = VirtualTime()
    rl = RateLimiter(clock=vt.clock, sleep=vt.sleep)
    stamps = []
    for _ in range(450):
        await rl.acquire()
        stamps.append(vt.now)
    assert max_in_window(stamps[:], 60.0) == 400
    assert max_in_window(stamps, 1.0) <= 10
    # the 401st waits for the first minute to roll over
    assert stamps[400] == pytest.approx(60.0)


async def test_penalty_holds_everyone_back() -> None:
    vt = VirtualTime()
    rl = RateLimiter(clock=vt.clock, sleep=vt.sleep)
    await rl.acquire()
    rl.penalize(2.5)
    assert not rl.try_acquire()
    await rl.acquire()
    assert vt.now == pytest.approx(2.5)


async def test_waiters_are_served_in_order() -> None:
    vt = VirtualTime()
    rl = RateLimiter([(2, 1.0)], clock=vt.clock, sleep=vt.sleep)
    order: list[int] = []

    async def take(i: int) -> None:
        await rl.acquire()
        order.append(i)

    await asyncio.gather(*(take(i) for i in range(6)))
    assert order == list(range(6))


def test_try_acquire_counts_only_when_it_fits() -> None:
    t = [0.0]
    rl = RateLimiter([(3, 1.0)], clock=lambda: t[0])
    assert [rl.try_acquire() for _ in range(4)] == [True, True, True, False]
    assert rl.in_window() == 3
    t[0] = 1.0
    assert rl.try_acquire()


@pytest.mark.parametrize("limits", [[], [(0, 1.0)], [(5, 0.0)]])
def test_bad_limits_are_refused(limits: list[tuple[int, float]]) -> None:
    with pytest.raises(ValueError, match="limits"):
        RateLimiter(limits)
