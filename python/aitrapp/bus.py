"""The event bus: JSON events on a few fixed topics, best effort.

Two implementations of one protocol:

- :class:`RedisStreamsBus` (``REDIS_URL`` set): ``XADD`` to the stream
  ``<prefix>:<topic>`` with an approximate ``MAXLEN``, from a background task.
- :class:`InProcessBus` (no Redis): fan-out to bounded per-subscriber queues,
  e.g. for the API's ``/events`` stream.

``publish()`` is synchronous, never blocks and never raises: the database is
the system of record, the bus is for watchers. An event that cannot be
published (not JSON-serialisable, queue full, Redis down) is dropped and
counted (``failures`` and ``trader_bus_publish_failures_total``).

``healthy`` says whether the bus can publish right now: the Redis bus learns it
from every write and, when idle, from a ``PING`` each second, so ``/health``
shows it degraded while Redis is down (trading goes on) and well again once
Redis answers (``trader_bus_up``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, Self, cast, get_args

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from aitrapp.db.pool import json_dumps
from aitrapp.metrics import Metrics
from aitrapp.settings import AppSettings

log = logging.getLogger(__name__)

Topic = Literal["signals", "decisions", "orders", "order_updates", "trades", "risk", "mode"]
TOPICS: tuple[Topic, ...] = get_args(Topic)


@dataclass(frozen=True, slots=True)
class BusEvent:
    topic: str
    id: str  # stream entry id (Redis) or a sequence number (in-process)
    ts: str  # publish time, ISO 8601 UTC
    data: dict[str, Any]  # shared between subscribers: treat as read-only


class Subscription(Protocol):
    def __aiter__(self) -> Self: ...
    async def __anext__(self) -> BusEvent: ...
    async def close(self) -> None: ...


class EventBus(Protocol):
    failures: int

    @property
    def healthy(self) -> bool:
        """Whether events can be published right now."""
        ...

    @property
    def status(self) -> str:
        """One line for /health."""
        ...

    def publish(self, topic: Topic, payload: Mapping[str, Any]) -> None:
        """Queue an event; never blocks, never raises."""
        ...

    def listens(self, topic: Topic) -> bool:
        """Whether an event on ``topic`` would reach anyone: a publisher may skip
        building events nobody receives (False only when that is certain)."""
        ...

    async def subscribe(
        self, topics: Iterable[Topic] | None = None, *, maxsize: int = 1000
    ) -> Subscription:
        """Events published after this call returns, on ``topics`` (default: all)."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _topics(topics: Iterable[Topic] | None) -> tuple[Topic, ...]:
    chosen = tuple(topics) if topics is not None else TOPICS
    unknown = [t for t in chosen if t not in TOPICS]
    if unknown:
        raise ValueError(f"topics: unknown {unknown}; known: {list(TOPICS)}")
    return chosen


class _Counting:
    """Failure accounting shared by both buses (rate-limited warning)."""

    failures: int
    _metrics: Metrics | None
    _last_warn: float

    def _fail(self, n: int, reason: str) -> None:
        self.failures += n
        if self._metrics is not None:
            self._metrics.bus_publish_failures.inc(n)
        now = time.monotonic()
        if now - self._last_warn >= 5.0:
            self._last_warn = now
            log.warning("bus events dropped: %s", reason, extra={"dropped_total": self.failures})

    def _encode(self, topic: str, payload: Mapping[str, Any]) -> str | None:
        if topic not in TOPICS:
            self._fail(1, f"unknown topic {topic!r}")
            return None
        try:
            return json_dumps(payload)
        except (TypeError, ValueError) as exc:
            self._fail(1, f"payload on {topic!r} is not JSON: {exc}")
            return None


# ---- in-process ----
class _LocalSubscription:
    def __init__(self, bus: InProcessBus, topics: tuple[Topic, ...], maxsize: int) -> None:
        self._bus = bus
        self.topics = frozenset(topics)
        self._items: deque[BusEvent] = deque()
        self._maxsize = maxsize
        self._ready = asyncio.Event()
        self._closed = False

    def offer(self, event: BusEvent) -> None:
        if len(self._items) >= self._maxsize:
            self._items.popleft()  # a slow watcher loses the oldest, not the newest
            self._bus.subscriber_drops += 1
            if self._bus._metrics is not None:
                self._bus._metrics.bus_subscriber_drops.inc()
        self._items.append(event)
        self._ready.set()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> BusEvent:
        while not self._items:
            if self._closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()

    async def close(self) -> None:
        self._closed = True
        self._ready.set()
        self._bus._subs.discard(self)


class InProcessBus(_Counting):
    def __init__(self, *, metrics: Metrics | None = None) -> None:
        self.failures = 0
        self.subscriber_drops = 0
        self._metrics = metrics
        self._last_warn = 0.0
        self._subs: set[_LocalSubscription] = set()
        self._seq = itertools.count(1)
        if metrics is not None:
            metrics.bus_up.set(1)

    @property
    def healthy(self) -> bool:
        return True

    @property
    def status(self) -> str:
        return f"in-process, failures={self.failures}"

    def listens(self, topic: Topic) -> bool:
        return any(topic in sub.topics for sub in self._subs)

    def publish(self, topic: Topic, payload: Mapping[str, Any]) -> None:
        try:
            if not self._subs:  # nobody listens in this process: only the topic is checked
                if topic not in TOPICS:
                    self._fail(1, f"unknown topic {topic!r}")
                return
            text = self._encode(topic, payload)
            if text is None:
                return
            event = BusEvent(topic, str(next(self._seq)), _now_iso(), json.loads(text))
            for sub in self._subs:
                if topic in sub.topics:
                    sub.offer(event)
        except Exception as exc:  # publishing must never fail trading
            self._fail(1, f"{type(exc).__name__}: {exc}")

    async def subscribe(
        self, topics: Iterable[Topic] | None = None, *, maxsize: int = 1000
    ) -> _LocalSubscription:
        sub = _LocalSubscription(self, _topics(topics), maxsize)
        self._subs.add(sub)
        return sub

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        for sub in list(self._subs):
            await sub.close()


# ---- Redis Streams ----
class _RedisSubscription:
    def __init__(
        self, client: aioredis.Redis, keys: Mapping[str, str], last_ids: dict[str, str]
    ) -> None:
        self._client = client
        self._topic_of = {key: topic for topic, key in keys.items()}
        self._last = last_ids  # stream key -> last id seen
        self._items: deque[BusEvent] = deque()
        self._closed = False

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> BusEvent:
        backoff = 0.1
        while not self._items:
            if self._closed:
                raise StopAsyncIteration
            try:
                raw = await self._client.xread(self._last, count=100, block=1000)  # type: ignore[arg-type]
                resp = cast(
                    "list[tuple[bytes | str, list[tuple[bytes | str, dict[Any, Any]]]]]", raw
                )
            except (RedisError, OSError) as exc:
                log.warning("bus subscription read failed: %s", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            backoff = 0.1
            for raw_key, entries in resp or []:
                key = _text(raw_key)
                for entry_id, fields in entries:
                    eid = _text(entry_id)
                    self._last[key] = eid
                    self._items.append(_decode_entry(self._topic_of[key], eid, fields))
        return self._items.popleft()

    async def close(self) -> None:
        self._closed = True
        with contextlib.suppress(RedisError, OSError):
            await self._client.aclose()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _decode_entry(topic: str, entry_id: str, fields: Mapping[Any, Any]) -> BusEvent:
    norm = {_text(k): _text(v) for k, v in fields.items()}
    return BusEvent(topic, entry_id, norm.get("ts", ""), json.loads(norm.get("data", "{}")))


class RedisStreamsBus(_Counting):
    """Publishes from a background task; Redis being down costs counted drops only."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "aitrapp",
        maxlen: int = 100_000,
        queue_max: int = 10_000,
        batch_max: int = 256,
        socket_timeout_s: float = 2.0,
        probe_interval_s: float = 1.0,
        metrics: Metrics | None = None,
    ) -> None:
        self.failures = 0
        self.published = 0
        self._up = True  # until a write or a ping says otherwise
        self._last_error: str | None = None
        self._probe_interval = probe_interval_s
        self._url = url
        self._prefix = prefix
        self._maxlen = maxlen
        self._queue_max = queue_max
        self._batch_max = batch_max
        self._socket_timeout = socket_timeout_s
        self._metrics = metrics
        self._last_warn = 0.0
        self._buf: deque[tuple[str, str, str]] = deque()
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._client: aioredis.Redis | None = None

    def stream_key(self, topic: str) -> str:
        return f"{self._prefix}:{topic}"

    @property
    def queue_depth(self) -> int:
        return len(self._buf)

    @property
    def healthy(self) -> bool:
        return self._up

    @property
    def status(self) -> str:
        state = "up" if self._up else f"DOWN ({self._last_error})"
        return f"redis {state}, failures={self.failures}, queued={len(self._buf)}"

    def _set_up(self, up: bool, error: str | None = None) -> None:
        self._last_error = error
        if self._metrics is not None:
            self._metrics.bus_up.set(1 if up else 0)
        if up == self._up:
            return
        self._up = up
        if up:
            log.warning("bus: redis reachable again")
        else:
            log.error("bus: redis unreachable (%s): events dropped, trading goes on", error)

    def listens(self, topic: Topic) -> bool:
        return True  # the streams' readers are other processes: every event is written

    def publish(self, topic: Topic, payload: Mapping[str, Any]) -> None:
        try:
            if self._closing:
                self._fail(1, "bus is closed")
                return
            text = self._encode(topic, payload)
            if text is None:
                return
            if len(self._buf) >= self._queue_max:
                self._fail(1, f"publish queue full ({self._queue_max})")
                return
            self._buf.append((self.stream_key(topic), text, _now_iso()))
            self._wake.set()
        except Exception as exc:  # publishing must never fail trading
            self._fail(1, f"{type(exc).__name__}: {exc}")

    def _new_client(self, socket_timeout: float | None) -> aioredis.Redis:
        return aioredis.Redis.from_url(
            self._url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=self._socket_timeout,
            retry_on_timeout=False,
        )

    async def start(self) -> None:
        """Starts the publisher; does not require Redis to be up."""
        if self._task is not None:
            raise RuntimeError("RedisStreamsBus already started")
        self._client = self._new_client(self._socket_timeout)
        if self._metrics is not None:
            self._metrics.bus_up.set(1)
        self._task = asyncio.create_task(self._run(), name="bus-publisher")

    async def _run(self) -> None:
        assert self._client is not None
        backoff = 0.05
        while True:
            if not self._buf:
                if self._closing:
                    return
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), self._probe_interval)
                except TimeoutError:
                    await self._ping()
                continue
            n = min(len(self._buf), self._batch_max)
            batch = [self._buf.popleft() for _ in range(n)]
            try:
                pipe = self._client.pipeline(transaction=False)
                for key, text, ts in batch:
                    pipe.xadd(key, {"data": text, "ts": ts}, maxlen=self._maxlen, approximate=True)
                results = await pipe.execute(raise_on_error=False)
            except (RedisError, OSError, TimeoutError) as exc:
                self._set_up(False, f"{type(exc).__name__}: {exc}")
                self._fail(len(batch), f"redis unreachable: {exc}")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            self._set_up(True)
            backoff = 0.05
            errors = sum(isinstance(r, Exception) for r in results)
            self.published += len(batch) - errors
            if errors:
                first = next(r for r in results if isinstance(r, Exception))
                self._fail(errors, f"XADD failed: {first}")

    async def _ping(self) -> None:
        assert self._client is not None
        try:
            await asyncio.wait_for(self._client.ping(), self._socket_timeout)
        except (RedisError, OSError, TimeoutError) as exc:
            self._set_up(False, f"{type(exc).__name__}: {exc}")
        else:
            self._set_up(True)

    async def subscribe(
        self, topics: Iterable[Topic] | None = None, *, maxsize: int = 1000
    ) -> _RedisSubscription:
        """Reads from the entries that follow the streams' current ends.

        ``maxsize`` bounds one read (Redis keeps the backlog, up to MAXLEN).
        """
        keys: dict[str, str] = {t: self.stream_key(t) for t in _topics(topics)}
        client = self._new_client(socket_timeout=self._socket_timeout + 5.0)
        last: dict[str, str] = {}
        try:
            for key in keys.values():
                tail = cast("list[tuple[bytes | str, Any]]", await client.xrevrange(key, count=1))
                last[key] = _text(tail[0][0]) if tail else "0-0"
        except BaseException:
            await client.aclose()
            raise
        return _RedisSubscription(client, keys, last)

    async def close(self, grace_s: float = 2.0) -> None:
        """Flush what is queued (up to ``grace_s``), then disconnect."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), grace_s)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
                if self._buf:
                    self._fail(len(self._buf), "bus closed before Redis took the events")
                    self._buf.clear()
            self._task = None
        if self._client is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._client.aclose()
            self._client = None


def make_bus(settings: AppSettings, metrics: Metrics | None = None) -> EventBus:
    """Redis Streams when ``REDIS_URL`` is set, the in-process bus otherwise."""
    url = settings.redis_dsn()
    if url is None:
        return InProcessBus(metrics=metrics)
    return RedisStreamsBus(
        url,
        prefix=settings.bus_stream_prefix,
        maxlen=settings.bus_maxlen,
        queue_max=settings.bus_queue_max,
        metrics=metrics,
    )
