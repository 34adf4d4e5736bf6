"""The notifier: a bounded queue of notices sent by a background task.

``submit()`` is synchronous and never blocks or raises, so it is safe on the
tick path. The task sends through a :class:`Sender` (Apprise in production):

- **coalescing**: a notice waits ``coalesce_s`` before it is sent; notices
  with the same key that arrive meanwhile become one message with a count;
- **deduplication**: after a key was sent, more of it within
  ``repeat_window_s`` are counted and sent as one follow-up at the end of
  the window (a flapping alert is one message, then one with the count);
- **rate limit**: at most ``burst`` messages at once and ``rate_per_min``
  per minute; the most urgent level goes first;
- **bounded**: at most ``queue_max`` distinct keys wait; beyond that the
  least urgent, oldest one is dropped. Drops and failed sends are counted
  (``trader_notify_failures_total{reason}``) and logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from aitrapp.metrics import Metrics
from aitrapp.notify.notice import LEVEL_RANK, Level, Notice

log = logging.getLogger(__name__)

MAX_SUBJECTS = 10  # subjects listed in a merged message; the count is always complete


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """Services that did not take the message (their privacy-safe names)."""

    failed: tuple[str, ...] = ()


class Sender(Protocol):
    async def send(self, title: str, body: str, level: Level) -> SendOutcome:
        """Deliver one message to every configured service; never raises for a
        service that fails (it is named in the outcome)."""
        ...


@dataclass(slots=True)
class _Pending:
    notice: Notice  # the latest occurrence: its text is sent
    first_at: float  # wall clock of the first occurrence counted here
    due: float  # monotonic time when it may be sent
    count: int = 1
    subjects: list[str] = field(default_factory=list)
    level: Level = "INFO"  # the most urgent level among the occurrences


@dataclass(slots=True)
class NotifierStats:
    submitted: int = 0
    sent: int = 0  # messages handed to every service successfully
    failed: int = 0  # messages at least one service refused
    dropped: int = 0  # notices lost to a full queue or to shutdown
    merged: int = 0  # occurrences folded into another message


class Notifier:
    def __init__(
        self,
        sender: Sender,
        *,
        metrics: Metrics | None = None,
        coalesce_s: float = 0.5,
        repeat_window_s: float = 60.0,
        rate_per_min: float = 20.0,
        burst: int = 10,
        queue_max: int = 256,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if coalesce_s < 0:
            raise ValueError(f"coalesce_s: must be >= 0, got {coalesce_s}")
        if repeat_window_s < coalesce_s:
            raise ValueError(f"repeat_window_s: must be >= coalesce_s, got {repeat_window_s}")
        if rate_per_min <= 0:
            raise ValueError(f"rate_per_min: must be > 0, got {rate_per_min}")
        if burst < 1:
            raise ValueError(f"burst: must be >= 1, got {burst}")
        if queue_max < 1:
            raise ValueError(f"queue_max: must be >= 1, got {queue_max}")
        self._sender = sender
        self._metrics = metrics
        self._coalesce_s = coalesce_s
        self._window_s = repeat_window_s
        self._refill_s = 60.0 / rate_per_min  # one token per this many seconds
        self._burst = burst
        self._queue_max = queue_max
        self._clock = clock
        self._tokens = float(burst)
        self._tokens_at = clock()
        self._pending: dict[str, _Pending] = {}
        self._sent_at: dict[str, float] = {}  # key -> monotonic time of its last message
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._last_warn = 0.0
        self.stats = NotifierStats()

    # ------------------------------------------------------------------ intake
    def submit(self, notice: Notice) -> None:
        """Queue a notice; never blocks, never raises."""
        try:
            self._submit(notice)
        except Exception as exc:  # a notification must never fail trading
            self._drop(1, f"{type(exc).__name__}: {exc}")

    def _submit(self, notice: Notice) -> None:
        if self._closing:
            self._drop(1, "notifier is closed")
            return
        self.stats.submitted += 1
        now = self._clock()
        entry = self._pending.get(notice.key)
        if entry is not None:
            entry.count += 1
            entry.notice = notice
            if LEVEL_RANK[notice.level] < LEVEL_RANK[entry.level]:
                entry.level = notice.level
            if notice.subject and notice.subject not in entry.subjects:
                entry.subjects.append(notice.subject)
            self.stats.merged += 1
            return
        if len(self._pending) >= self._queue_max:
            self._evict()
        last = self._sent_at.get(notice.key)
        due = now + self._coalesce_s
        if last is not None and now - last < self._window_s:
            due = last + self._window_s  # sent a moment ago: count, send once at the window's end
        self._pending[notice.key] = _Pending(
            notice=notice,
            first_at=time.time(),
            due=due,
            subjects=[notice.subject] if notice.subject else [],
            level=notice.level,
        )
        self._wake.set()

    def _evict(self) -> None:
        victim = max(self._pending.values(), key=lambda p: (LEVEL_RANK[p.level], -p.first_at))
        del self._pending[victim.notice.key]
        self._drop(victim.count, f"queue full ({self._queue_max} keys waiting)")

    def _drop(self, n: int, reason: str) -> None:
        self.stats.dropped += n
        if self._metrics is not None:
            self._metrics.notify_failures.labels(reason="dropped").inc(n)
        now = time.monotonic()
        if now - self._last_warn >= 5.0:
            self._last_warn = now
            log.warning("notifications dropped: %s", reason, extra={"dropped": self.stats.dropped})

    # ------------------------------------------------------------------ the task
    async def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("Notifier already started")
        self._task = asyncio.create_task(self._run(), name="notifier")

    async def close(self, grace_s: float = 5.0) -> None:
        """Send what waits (windows and the rate limit are ignored) within ``grace_s``."""
        if self._closing:
            return
        self._closing = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), grace_s)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
        if self._pending:
            lost = sum(p.count for p in self._pending.values())
            self._pending.clear()
            self._drop(lost, "shutting down before they were sent")

    @property
    def queue_depth(self) -> int:
        return len(self._pending)

    def _refill(self, now: float) -> None:
        self._tokens = min(self._burst, self._tokens + (now - self._tokens_at) / self._refill_s)
        self._tokens_at = now

    def _next(self, now: float) -> tuple[_Pending | None, float | None]:
        """The entry to send now, else how long to wait (None: until woken)."""
        if not self._pending:
            return None, None
        if self._closing:
            ready = list(self._pending.values())
        else:
            ready = [p for p in self._pending.values() if p.due <= now]
        if not ready:
            return None, min(p.due for p in self._pending.values()) - now
        if not self._closing:
            self._refill(now)
            if self._tokens < 1.0:
                return None, (1.0 - self._tokens) * self._refill_s
            self._tokens -= 1.0
        best = min(ready, key=lambda p: (LEVEL_RANK[p.level], p.due))
        del self._pending[best.notice.key]
        return best, 0.0

    async def _run(self) -> None:
        while True:
            now = self._clock()
            entry, wait = self._next(now)
            if entry is not None:
                await self._send(entry)
                continue
            if self._closing:
                return
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    async def _send(self, entry: _Pending) -> None:
        n = entry.notice
        title, body = render(entry.level, n, entry.count, entry.first_at, entry.subjects)
        self._sent_at[n.key] = self._clock()
        self._forget_old(self._clock())
        try:
            outcome = await self._sender.send(title, body, entry.level)
        except Exception as exc:  # a broken sender is counted, never fatal
            outcome = SendOutcome(failed=(f"{type(exc).__name__}: {exc}",))
        if outcome.failed:
            self.stats.failed += 1
            if self._metrics is not None:
                self._metrics.notify_failures.labels(reason="send").inc(len(outcome.failed))
            log.warning(
                "notification not delivered to %s: %s",
                ", ".join(outcome.failed),
                title,
                extra={"notify_key": n.key},
            )
        else:
            self.stats.sent += 1
            if self._metrics is not None:
                self._metrics.notify_sent.inc()

    def _forget_old(self, now: float) -> None:
        if len(self._sent_at) > 4 * self._queue_max:
            self._sent_at = {k: t for k, t in self._sent_at.items() if now - t < self._window_s}


def render(
    level: Level, n: Notice, count: int, first_at: float, subjects: list[str]
) -> tuple[str, str]:
    """Title and body of one message (a merged one says how many and since when)."""
    title = f"AITRAPP {level}: {n.title}"
    body = n.body
    if count > 1:
        since = datetime.fromtimestamp(first_at, UTC).strftime("%H:%M:%S UTC")
        title += f" (x{count})"
        body += f"\n\nrepeated {count} times since {since}"
        if subjects:
            shown = ", ".join(subjects[:MAX_SUBJECTS])
            more = (
                f" and {len(subjects) - MAX_SUBJECTS} more" if len(subjects) > MAX_SUBJECTS else ""
            )
            body += f"; about: {shown}{more}"
    return title, body
