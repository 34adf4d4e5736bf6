"""The order-rate limiter on virtual time: never more than N in any window."""

from __future__ import annotations

import asyncio

import pytest

from aitrapp.kite.rate_limit import Priority, RateLimiter


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


async def test_a_permit_counts_until_the_request_completes() -> None:
    """In flight, a request holds its slot; it expires one window after it completes."""
    vt = VirtualTime()
    rl = RateLimiter([(2, 1.0)], clock=vt.clock, sleep=vt.sleep)
    release = asyncio.Event()
    started: list[float] = []

    async def slow() -> None:
        async with rl.permit():
            started.append(vt.now)
            await release.wait()

    holders = [asyncio.create_task(slow()) for _ in range(2)]
    await asyncio.sleep(0)
    third = asyncio.create_task(rl.acquire())
    for _ in range(5):
        await asyncio.sleep(0)
    assert not third.done() and rl.in_flight == 2 and rl.queued == 1
    vt.now = 0.4  # both answers come in at 0.4 s
    release.set()
    await asyncio.gather(*holders)
    await third
    assert started == [0.0, 0.0]
    assert vt.now == pytest.approx(1.4)  # one window after the completion, not the send
    assert rl.in_flight == 0


async def test_margin_adds_to_every_window() -> None:
    vt = VirtualTime()
    rl = RateLimiter([(1, 1.0)], margin_s=0.05, clock=vt.clock, sleep=vt.sleep)
    for _ in range(3):
        async with rl.permit():
            pass
    assert vt.now == pytest.approx(2.1)


async def test_protective_requests_go_ahead_of_queued_ones() -> None:
    vt = VirtualTime()
    rl = RateLimiter([(1, 1.0)], clock=vt.clock, sleep=vt.sleep)
    await rl.acquire()  # the window is full until t = 1
    order: list[str] = []

    async def take(name: str, priority: Priority) -> None:
        async with rl.permit(priority):
            order.append(name)

    tasks = [asyncio.create_task(take(f"entry{i}", Priority.NORMAL)) for i in range(3)]
    await asyncio.sleep(0)
    tasks.append(asyncio.create_task(take("poll", Priority.BACKGROUND)))
    await asyncio.sleep(0)
    tasks.append(asyncio.create_task(take("stop", Priority.PROTECTIVE)))
    await asyncio.gather(*tasks)
    assert order == ["stop", "entry0", "entry1", "entry2", "poll"]


async def test_a_cancelled_waiter_leaves_the_queue() -> None:
    vt = VirtualTime()
    rl = RateLimiter([(1, 1.0)], clock=vt.clock, sleep=vt.sleep)
    await rl.acquire()
    gone = asyncio.create_task(rl.acquire(Priority.PROTECTIVE))
    await asyncio.sleep(0)
    assert rl.queued == 1
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert rl.queued == 0
    await rl.acquire()
    assert vt.now == pytest.approx(1.0)


def test_negative_margin_is_refused() -> None:
    with pytest.raises(ValueError, match="margin_s"):
        RateLimiter(margin_s=-0.1)
