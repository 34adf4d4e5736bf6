"""The live Kite ticker as the feed of a trading session.

What a session on the live feed needs besides :class:`KiteFeed`:

- access: ``KITE_API_KEY``/``KITE_API_SECRET`` and the token file written by
  ``aitrapp kite login`` (it must belong to that api_key and not be expired);
  ``KITE_API_ROOT``/``KITE_WS_ROOT`` point at another Kite (tests: a fake);
- the universe: only rows whose ``instrument_token`` is Kite's own
  (``token_source = 'kite'``); index futures carry synthetic tokens that
  Kite would never stream, so asking for one is refused, not ignored;
- an end: a live feed never runs out by itself, so :class:`ClosingFeed` stops
  it at the NSE close (15:30 IST) or after a requested duration, and the
  session then ends the same way a replay does (``feed_done``, COMPLETED).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aitrapp._core import Instrument
from aitrapp.calendar import MARKET_CLOSE, is_trading_day
from aitrapp.exceptions import ConfigError
from aitrapp.feeds.base import Feed, FeedKind, TickBatch
from aitrapp.feeds.kite import KiteFeed
from aitrapp.kite.auth import (
    ENV_API_ROOT,
    IST,
    Secret,
    TokenStore,
    credentials_from_env,
)
from aitrapp.kite.ticker_codec import Mode
from aitrapp.kite.ws import DEFAULT_WS_ROOT
from aitrapp.ticks import Tick
from aitrapp.universe import Universe

if TYPE_CHECKING:
    from aitrapp.brokers.kite import KiteBroker

log = logging.getLogger(__name__)

ENV_WS_ROOT = "KITE_WS_ROOT"  # tests point this at a fake ticker

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class KiteAccess:
    """Everything needed to talk to Kite as the logged-in user."""

    api_key: str
    access_token: Secret
    user_id: str
    api_root: str | None  # None: the real Kite REST root
    ws_root: str


def kite_access_from_env(env: Mapping[str, str] | None = None, *, now: datetime) -> KiteAccess:
    """Credentials and a valid stored token, or a ConfigError that says what to do."""
    source = os.environ if env is None else env
    creds = credentials_from_env(source)
    session = TokenStore.from_env(source).load_valid(api_key=creds.api_key, now=now)
    return KiteAccess(
        api_key=creds.api_key,
        access_token=session.access_token,
        user_id=session.user_id,
        api_root=source.get(ENV_API_ROOT) or None,
        ws_root=source.get(ENV_WS_ROOT) or DEFAULT_WS_ROOT,
    )


def kite_universe(universe: Universe, symbols: Sequence[str] = ()) -> Universe:
    """The instruments the live feed can stream: requested ones (each must carry a
    Kite token) or the default selection without the synthetic-token rows."""
    if symbols:
        chosen = universe.select(symbols)
        synthetic = [e.symbol for e in chosen if e.token_source != "kite"]
        if synthetic:
            raise ConfigError(
                f"symbols: {', '.join(synthetic)} has a synthetic instrument_token, not "
                "Kite's; the live Kite feed cannot stream it (drop it from --symbols)"
            )
        return chosen
    live = [e for e in universe.defaults() if e.token_source == "kite"]
    if not live:
        raise ConfigError("symbols: the default selection has no instrument with a Kite token")
    return Universe(live)


def live_trading_day(now: datetime) -> date:
    """A live session trades the current IST date."""
    return now.astimezone(IST).date()


def session_end(day: date, *, now: datetime, duration_s: float | None = None) -> datetime:
    """When the live feed of ``day``'s session stops.

    The NSE close (15:30 IST), or ``duration_s`` after ``now`` if that is
    earlier. When the market is closed (after the close, or not a trading
    day) only an explicit duration is accepted: a connectivity check or a
    run against a fake Kite, not a trading session.
    """
    close = datetime.combine(day, MARKET_CLOSE, IST)
    if duration_s is not None:
        if not (math.isfinite(duration_s) and duration_s > 0):
            raise ConfigError(f"duration: expected a positive number of seconds, got {duration_s}")
        end = now + timedelta(seconds=duration_s)
        return min(end, close) if now < close else end
    if not is_trading_day(day):
        raise ConfigError(f"{day} is not an NSE trading day: the live feed has nothing to stream")
    if now >= close:
        raise ConfigError(
            f"the NSE session of {day} closed at {MARKET_CLOSE:%H:%M} IST: the live feed has "
            "nothing to stream (give a duration to connect anyway)"
        )
    return close


class ClosingFeed:
    """A live feed that stops itself at ``ends_at`` (wall clock), ending the session."""

    kind: FeedKind = "kite"

    def __init__(self, inner: KiteFeed, *, ends_at: datetime, clock: Clock = _utc_now) -> None:
        if ends_at.tzinfo is None:
            raise ValueError("ends_at must be timezone-aware")
        self.inner = inner
        self.name = inner.name
        self.ends_at = ends_at
        self._clock = clock
        self._started_at: datetime | None = None
        self._timer: asyncio.Task[None] | None = None
        self.closed_on_time = False  # True when the deadline (not a stop) ended the feed

    def __repr__(self) -> str:
        return f"ClosingFeed({self.inner!r}, ends_at={self.ends_at.isoformat()})"

    @property
    def is_synthetic(self) -> bool:
        return False

    @property
    def label(self) -> str:
        return f"{self.inner.label}, until {self.ends_at.astimezone(IST):%H:%M:%S} IST"

    @property
    def instruments(self) -> Sequence[Instrument]:
        return self.inner.instruments

    @property
    def connected(self) -> bool:
        return self.inner.connected

    @property
    def stats(self) -> dict[str, int]:
        return self.inner.stats

    def progress(self) -> float:
        """The share of the wall-clock span from start to ``ends_at`` already gone."""
        if self.closed_on_time:
            return 1.0
        start = self._started_at
        if start is None:
            return 0.0
        span = (self.ends_at - start).total_seconds()
        if span <= 0:
            return 1.0
        return min(1.0, max(0.0, (self._clock() - start).total_seconds() / span))

    async def start(self) -> None:
        await self.inner.start()
        self._started_at = self._clock()
        if self._timer is None or self._timer.done():
            self._timer = asyncio.create_task(self._close_on_time(), name=f"{self.name}-close")

    async def stop(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer
        await self.inner.stop()

    async def _close_on_time(self) -> None:
        # Sleep in slices and re-read the wall clock: the loop's monotonic clock
        # drifts from wall time over a trading day (NTP steps, suspend).
        while True:
            left = (self.ends_at - self._clock()).total_seconds()
            if left <= 0:
                break
            await asyncio.sleep(min(left, 1.0))
        log.info("%s: session end %s reached, stopping the feed", self.name, self.ends_at)
        self.closed_on_time = True
        await self.inner.stop()

    def ticks(self) -> AsyncIterator[Tick]:
        return self.inner.ticks()

    def batches(
        self, max_rows: int = 65536, *, max_span_ns: int | None = None
    ) -> AsyncIterator[TickBatch]:
        return self.inner.batches(max_rows, max_span_ns=max_span_ns)


def kite_feed_factory(
    access: KiteAccess,
    *,
    mode: Mode | str = Mode.QUOTE,
    duration_s: float | None = None,
    clock: Clock = _utc_now,
    **feed_options: Any,
) -> Callable[[Universe, date], Feed]:
    """A ``RuntimeOptions.feed_factory`` for the live ticker of ``day``'s session.

    ``feed_options`` go to :class:`KiteFeed` (backoff, queue size, ...). The
    end time is fixed when the runtime builds the feed.
    """
    Mode(mode)  # a bad mode fails here, before any database work

    def build(universe: Universe, day: date) -> Feed:
        synthetic = [e.symbol for e in universe if e.token_source != "kite"]
        if synthetic:
            raise ConfigError(
                f"symbols: {', '.join(synthetic)} has a synthetic instrument_token; "
                "the live Kite feed cannot stream it"
            )
        ends_at = session_end(day, now=clock(), duration_s=duration_s)
        inner = KiteFeed(
            api_key=access.api_key,
            access_token=access.access_token,
            instruments=universe.instruments,
            mode=mode,
            root=access.ws_root,
            **feed_options,
        )
        return ClosingFeed(inner, ends_at=ends_at, clock=clock)

    return build


def kite_broker(
    access: KiteAccess, instruments: Sequence[Instrument], **broker_options: Any
) -> KiteBroker:
    """The real-money broker for a LIVE session (the caller starts and stops it)."""
    from aitrapp.brokers.kite import KiteBroker  # imports the Kite REST client

    return KiteBroker(
        api_key=access.api_key,
        access_token=access.access_token,
        instruments={i.instrument_token: i for i in instruments},
        api_root=access.api_root,
        ws_root=access.ws_root,
        **broker_options,
    )


__all__ = [
    "ENV_WS_ROOT",
    "ClosingFeed",
    "KiteAccess",
    "kite_access_from_env",
    "kite_broker",
    "kite_feed_factory",
    "kite_universe",
    "live_trading_day",
    "session_end",
]
