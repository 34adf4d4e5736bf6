"""Order-rate limiting for Kite: at most 10 order requests a second and 400 a minute.

Each limit is a bucket of N tokens where a spent token comes back exactly one
window after it was spent (a sliding-window log). A classic refilling bucket
of capacity N would admit up to 2N requests inside some one-second window
(a full bucket plus a second's refill), which is what Kite's 429 punishes;
this one never admits more than N in any window. Waiters are served in
arrival order. After a 429, :meth:`RateLimiter.penalize` holds every caller
back for a while, since Kite counts refused requests too.

The clock and the sleep are injectable so tests run on virtual time.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

KITE_ORDER_LIMITS: tuple[tuple[int, float], ...] = ((10, 1.0), (400, 60.0))


@dataclass(frozen=True, slots=True)
class _Window:
    limit: int
    period: float


class RateLimiter:
    def __init__(
        self,
        limits: Sequence[tuple[int, float]] = KITE_ORDER_LIMITS,
        *,
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
        self._windows = tuple(windows)
        self._spent: tuple[deque[float], ...] = tuple(deque() for _ in windows)
        self._clock = clock
        self._sleep = sleep
        self._lock = asyncio.Lock()
        self._blocked_until = 0.0
        self.waits = 0  # acquisitions that had to wait (a metric)

    def _delay(self, now: float) -> float:
        wait = self._blocked_until - now
        for window, spent in zip(self._windows, self._spent, strict=True):
            while spent and spent[0] <= now - window.period:
                spent.popleft()
            if len(spent) >= window.limit:
                wait = max(wait, spent[0] + window.period - now)
        return wait

    async def acquire(self) -> None:
        """Wait until one more request fits every window, then count it."""
        async with self._lock:  # FIFO: the first waiter goes first
            waited = False
            while True:
                now = self._clock()
                delay = self._delay(now)
                if delay <= 0:
                    for spent in self._spent:
                        spent.append(now)
                    if waited:
                        self.waits += 1
                    return
                waited = True
                await self._sleep(delay)

    def try_acquire(self) -> bool:
        """Count one request if it fits now; never waits."""
        if self._lock.locked():
            return False
        now = self._clock()
        if self._delay(now) > 0:
            return False
        for spent in self._spent:
            spent.append(now)
        return True

    def penalize(self, seconds: float) -> None:
        """Hold every caller back for ``seconds`` (after a 429)."""
        self._blocked_until = max(self._blocked_until, self._clock() + max(0.0, seconds))

    def in_window(self, index: int = 0) -> int:
        """Requests counted in window ``index`` right now (tests, metrics)."""
        self._delay(self._clock())
        return len(self._spent[index])
