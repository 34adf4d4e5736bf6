"""Session time: it follows the feed.

Replayed and synthetic data run on a `ReplayClock` whose time is the exchange
time of the ticks delivered so far; a replay is paced against wall time at 1x,
Nx or as fast as possible (max). A live feed runs on the `WallClock`. Code
that waits for a moment of the session (square-off at 15:20, the close) calls
``await clock.sleep_until(ts_ns)`` and works the same on both.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar, runtime_checkable

from aitrapp.exceptions import ConfigError
from aitrapp.feeds.base import FeedKind, TickBatch
from aitrapp.ticks import Tick

Sleep = Callable[[float], Awaitable[None]]
Item = TypeVar("Item", Tick, TickBatch)

# A wall clock can jump (NTP): long waits are cut into slices and re-checked.
_WALL_SLICE_S = 30.0
# Pacing delays shorter than this are skipped; the next tick catches up.
_MIN_PACE_SLEEP_S = 0.0005


@runtime_checkable
class Clock(Protocol):
    @property
    def is_replay(self) -> bool: ...

    def now_ns(self) -> int:
        """The session's current time, UTC nanoseconds."""
        ...

    async def sleep_until(self, ts_ns: int) -> None:
        """Returns once session time has reached `ts_ns` (at once if it already has)."""
        ...

    async def pace(self, ts_ns: int) -> None:
        """Call before processing a tick or batch stamped `ts_ns` (its exchange time).

        A replay clock waits here as the speed demands, then moves to `ts_ns`;
        the wall clock only records how far the feed lags.
        """
        ...


@dataclass(frozen=True, slots=True)
class Speed:
    """Replay pacing: ``factor`` x real time, or as fast as possible (``factor`` None)."""

    factor: float | None

    @staticmethod
    def parse(value: Speed | str | float) -> Speed:
        """'1x', '10x', '0.5x', '10', 10, 'max'; errors name the `speed` key."""
        if isinstance(value, Speed):
            return value
        if isinstance(value, str):
            text = value.strip().lower()
            if text in ("max", "maximum", "inf"):
                return Speed(None)
            text = text.removesuffix("x")
            try:
                factor = float(text)
            except ValueError:
                raise ConfigError(
                    f"speed: {value!r} is not a speed; use 1x, Nx (e.g. 10x) or max"
                ) from None
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"speed: {value!r} is not a speed; use 1x, Nx (e.g. 10x) or max")
        else:
            factor = float(value)
        if math.isinf(factor) and factor > 0:
            return Speed(None)
        if not math.isfinite(factor) or factor <= 0:
            raise ConfigError(f"speed: must be a positive multiple of real time, got {value!r}")
        return Speed(factor)

    @property
    def is_max(self) -> bool:
        return self.factor is None

    def __str__(self) -> str:
        if self.factor is None:
            return "max"
        return f"{self.factor:g}x"


MAX_SPEED = Speed(None)
REAL_TIME = Speed(1.0)


class ReplayClock:
    """Time is the feed's: it moves only when ticks (or the runner) move it.

    Never runs backwards: a late tick does not rewind it. Pacing anchors the
    first paced tick to "now" on the monotonic clock and then keeps feed time
    ``factor`` times faster than wall time; a speed change re-anchors.
    """

    def __init__(
        self,
        speed: Speed | str | float = MAX_SPEED,
        *,
        start_ns: int = 0,
        monotonic_ns: Callable[[], int] = time.monotonic_ns,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._speed = Speed.parse(speed)
        self._now = start_ns
        self._monotonic_ns = monotonic_ns
        self._sleep = sleep
        self._anchor: tuple[int, int] | None = None  # (feed ts, monotonic ns)
        self._sleepers: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    @property
    def is_replay(self) -> bool:
        return True

    @property
    def speed(self) -> Speed:
        return self._speed

    def set_speed(self, speed: Speed | str | float) -> None:
        self._speed = Speed.parse(speed)
        self._anchor = None  # the next paced tick starts a new schedule

    def now_ns(self) -> int:
        return self._now

    def advance(self, ts_ns: int) -> None:
        """Moves session time forward to `ts_ns` and wakes the sleepers now due.

        The runner also calls it at the end of a replay (e.g. with the close)
        so that waits for moments after the last tick complete.
        """
        if ts_ns <= self._now:
            return
        self._now = ts_ns
        while self._sleepers and self._sleepers[0][0] <= ts_ns:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)

    async def pace(self, ts_ns: int) -> None:
        factor = self._speed.factor
        if factor is not None:
            mono = self._monotonic_ns()
            if self._anchor is None:
                self._anchor = (ts_ns, mono)
            feed0, mono0 = self._anchor
            due = mono0 + (ts_ns - feed0) / factor
            delay_s = (due - mono) / 1e9
            if delay_s >= _MIN_PACE_SLEEP_S:
                await self._sleep(delay_s)
        self.advance(ts_ns)

    async def sleep_until(self, ts_ns: int) -> None:
        if ts_ns <= self._now:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (ts_ns, next(self._seq), fut))
        await fut

    def pending_sleepers(self) -> int:
        """Waits not yet due (cancelled ones excluded)."""
        return sum(1 for _, _, f in self._sleepers if not f.done())


class WallClock:
    """Live time: the system's UTC clock."""

    def __init__(
        self,
        *,
        time_ns: Callable[[], int] = time.time_ns,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._time_ns = time_ns
        self._sleep = sleep
        self._feed_lag_ns: int | None = None

    @property
    def is_replay(self) -> bool:
        return False

    def now_ns(self) -> int:
        return self._time_ns()

    async def sleep_until(self, ts_ns: int) -> None:
        while True:
            remaining_s = (ts_ns - self._time_ns()) / 1e9
            if remaining_s <= 0:
                return
            await self._sleep(min(remaining_s, _WALL_SLICE_S))

    async def pace(self, ts_ns: int) -> None:
        self._feed_lag_ns = self._time_ns() - ts_ns

    @property
    def feed_lag_ns(self) -> int | None:
        """Wall time minus the exchange time of the last paced tick (None before any)."""
        return self._feed_lag_ns


# The live exchange clock runs this far behind now: Kite stamps ticks in whole
# seconds and they arrive late, so a tick stamped before the clock must still
# land in its bar.
EXCHANGE_CLOCK_LAG_NS = 2_000_000_000


class ExchangeClock:
    """Exchange time now (UTC ns) for a live session's kernel: the wall clock read
    once, then moved by the monotonic clock (a stepped system clock cannot move it
    back or jump it), ``lag_ns`` behind."""

    def __init__(self, lag_ns: int = EXCHANGE_CLOCK_LAG_NS) -> None:
        self._anchor = time.time_ns() - lag_ns
        self._mono = time.monotonic_ns()

    def __call__(self) -> int:
        return self._anchor + time.monotonic_ns() - self._mono


def clock_for(
    kind: FeedKind, speed: Speed | str | float = MAX_SPEED, *, start_ns: int = 0
) -> ReplayClock | WallClock:
    """The clock a feed of `kind` runs on: wall time for a live feed, feed time otherwise."""
    parsed = Speed.parse(speed)
    if kind == "kite":
        if parsed != REAL_TIME and not parsed.is_max:
            raise ConfigError(f"speed: a live feed runs in real time; {parsed} applies to replays")
        return WallClock()
    return ReplayClock(parsed, start_ns=start_ns)


async def paced(items: AsyncIterable[Item], clock: Clock) -> AsyncIterator[Item]:
    """Hands out a feed's ticks or batches as `clock` allows; the clock follows them.

    A batch is paced to its last tick, so session time never lags the data
    being processed; keep batches short in exchange time (``max_span_ns``)
    when timers must fire close to their moment.
    """
    async for item in items:
        await clock.pace(item.last_ts_ns if isinstance(item, TickBatch) else item.ts_ns)
        yield item
