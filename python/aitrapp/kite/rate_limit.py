"""Request-rate limiting for Kite, with margin: Kite counts arrivals, we count completions.

Kite allows 10 order requests (place, modify, cancel) in any second and 400
in any minute, and 10 other requests a second; it counts them as they
*arrive*, in a sliding window, and answers HTTP 429 over the rate. A client
that stamps its requests when it sends them has no margin: a request delayed
on the way arrives later than stamped, and the next window's first request
can land inside it.

So a :meth:`RateLimiter.permit` takes a slot when the request is sent and
keeps it *in flight* (counted in every window, never expiring) until the
request completes; the slot then expires one window after the completion.
A request's arrival lies between its send and its completion, so the next
request (sent at the earliest one window after that completion) always
arrives more than one window after it. ``margin_s`` adds a little more for
clock granularity.

Waiters are served by priority, then in arrival order: protective requests
(a stop, an exit, turning a stop into a market exit) go ahead of queued
entries and cancels. After a 429, :meth:`RateLimiter.penalize` holds every
caller back for a while, since Kite counts refused requests too.

The clock and the sleep are injectable so tests run on virtual time.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import IntEnum

KITE_ORDER_LIMITS: tuple[tuple[int, float], ...] = ((10, 1.0), (400, 60.0))
KITE_OTHER_LIMITS: tuple[tuple[int, float], ...] = ((10, 1.0),)
KITE_MARGIN_S = 0.02  # beyond the completion stamp: clock granularity, scheduling jitter


class Priority(IntEnum):
    """Lower goes first."""

    PROTECTIVE = 0  # stops and exits: an open position waits on them
    NORMAL = 1  # entries, targets, cancels, look-ups
    BACKGROUND = 2  # order-book polling


@dataclass(frozen=True, slots=True)
class _Window:
    limit: int
    period: float


class _Slot:
    """One request's place in the windows: in flight (``t`` infinite) until it completes."""

    __slots__ = ("t",)

    def __init__(self, t: float = math.inf) -> None:
        self.t = t


class RateLimiter:
    def __init__(
        self,
        limits: Sequence[tuple[int, float]] = KITE_ORDER_LIMITS,
        *,
        margin_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not limits:
            raise ValueError("limits: at least one (count, seconds) pair is required")
        windows = []
        for count, period in limits:
            if count < 1 or period <= 0:
                raise ValueError(f"limits: need count >= 1 and seconds > 0, got {(count, period)}")
            windows.append(_Window(int(count), float(period)))
        if margin_s < 0:
            raise ValueError(f"margin_s must not be negative, got {margin_s}")
        self._windows = tuple(windows)
        self._slots: tuple[list[_Slot], ...] = tuple([] for _ in windows)
        self._margin = float(margin_s)
        self._clock = clock
        self._sleep = sleep
        self._waiters: list[tuple[int, int]] = []  # heap of (priority, arrival number)
        self._numbers = itertools.count()
        self._changed = asyncio.Event()
        self._blocked_until = 0.0
        self.waits = 0  # acquisitions that had to wait (a metric)
        self.in_flight = 0

    # ---- the windows ----

    def _delay(self, now: float) -> float | None:
        """Seconds until one more request fits every window; None while only a
        completion can make room (every counted request is still in flight)."""
        wait = self._blocked_until - now
        for window, slots in zip(self._windows, self._slots, strict=True):
            expiry = window.period + self._margin
            slots[:] = [s for s in slots if s.t + expiry > now]
            excess = len(slots) - window.limit  # this many must expire first, plus one
            if excess < 0:
                continue
            done = sorted(s.t for s in slots if s.t != math.inf)
            if excess >= len(done):
                return None
            wait = max(wait, done[excess] + expiry - now)
        return wait

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait(self, delay: float | None) -> None:
        """Until ``delay`` has passed (None: forever) or something changed."""
        changed = self._changed
        if delay is None:
            await changed.wait()
            return
        sleeper = asyncio.ensure_future(self._sleep(delay))
        waiter = asyncio.ensure_future(changed.wait())
        try:
            await asyncio.wait({sleeper, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waiter.cancel()

    async def _take(self, priority: Priority) -> _Slot:
        key = (int(priority), next(self._numbers))
        heapq.heappush(self._waiters, key)
        if self._waiters[0] == key:
            self._notify()  # an earlier head may be sleeping: it is no longer first
        waited = False
        try:
            while True:
                if self._waiters[0] != key:
                    waited = True
                    await self._wait(None)
                    continue
                delay = self._delay(self._clock())
                if delay is not None and delay <= 0:
                    heapq.heappop(self._waiters)
                    slot = _Slot()
                    for slots in self._slots:
                        slots.append(slot)
                    self.in_flight += 1
                    self.waits += waited
                    self._notify()  # the next waiter is now first
                    return slot
                waited = True
                await self._wait(delay)
        except BaseException:
            if key in self._waiters:
                self._waiters.remove(key)
                heapq.heapify(self._waiters)
                self._notify()
            raise

    def _complete(self, slot: _Slot) -> None:
        if slot.t == math.inf:
            slot.t = self._clock()
            self.in_flight -= 1
            self._notify()

    # ---- the interface ----

    @asynccontextmanager
    async def permit(self, priority: Priority = Priority.NORMAL) -> AsyncIterator[None]:
        """Send one request inside this block; it counts from now until one window
        after the block ends (when its answer, or its failure, is in)."""
        slot = await self._take(priority)
        try:
            yield
        finally:
            self._complete(slot)

    async def acquire(self, priority: Priority = Priority.NORMAL) -> None:
        """Wait until one more request fits, then count it as completed now.

        For callers that cannot say when their request completes; such a
        stamp has no margin against a server counting arrivals (use
        :meth:`permit`)."""
        self._complete(await self._take(priority))

    def try_acquire(self) -> bool:
        """Count one request (completed now) if it fits now; never waits."""
        if self._waiters:
            return False
        now = self._clock()
        delay = self._delay(now)
        if delay is None or delay > 0:
            return False
        slot = _Slot(now)
        for slots in self._slots:
            slots.append(slot)
        return True

    def penalize(self, seconds: float) -> None:
        """Hold every caller back for ``seconds`` (after a 429)."""
        self._blocked_until = max(self._blocked_until, self._clock() + max(0.0, seconds))

    def in_window(self, index: int = 0) -> int:
        """Requests counted in window ``index`` right now, in flight included."""
        self._delay(self._clock())
        return len(self._slots[index])

    @property
    def queued(self) -> int:
        """Callers waiting for a slot."""
        return len(self._waiters)
