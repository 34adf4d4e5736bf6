"""The live feed: Kite's ticker websocket turned into the engine's ticks.

Subscribes the configured universe in ``quote`` or ``full`` mode, decodes
each binary frame (``aitrapp.kite.ticker_codec``) into :class:`Tick`
objects and hands them out through ``ticks()`` or ``batches()``. The
connection reconnects with backoff and resubscribes by itself
(``aitrapp.kite.ws``). ``recv_ns`` is stamped when the frame arrives, so
tick-to-decision latency includes decoding.

Time: full-mode packets carry the exchange timestamp, which becomes
``ts_ns``; quote and ltp packets carry none, so those ticks are stamped with
the injected wall clock at receipt. ``bid``/``ask`` come from full mode's
depth; ``oi`` is set for derivatives in full mode.

If the consumer falls behind, the oldest queued ticks are dropped (and
counted in ``stats["dropped"]``): a stale price is worth less than the
socket staying drained, and blocking the reader would stall order updates
that share the connection.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from aitrapp._core import Instrument
from aitrapp.feeds.base import FeedError, FeedKind, TickBatch
from aitrapp.kite.auth import Secret
from aitrapp.kite.ticker_codec import Mode, TickCodecError, TickPacket, decode_frame
from aitrapp.kite.ws import DEFAULT_WS_ROOT, KiteWebSocket
from aitrapp.ticks import Tick

log = logging.getLogger(__name__)

_DERIVATIVES = frozenset({"FUT", "OPT"})
_END = None  # queue sentinel: the feed stopped


class KiteFeed:
    kind: FeedKind = "kite"

    def __init__(
        self,
        *,
        api_key: str,
        access_token: Secret | str,
        instruments: Sequence[Instrument],
        mode: Mode | str = Mode.QUOTE,
        root: str = DEFAULT_WS_ROOT,
        clock_ns: Callable[[], int] = time.time_ns,
        on_order_update: Callable[[Mapping[str, Any]], None] | None = None,
        queue_size: int = 200_000,
        backoff_initial: float = 0.5,
        backoff_max: float = 60.0,
        stale_after: float = 15.0,
        name: str = "kite",
    ) -> None:
        self.mode = Mode(mode)
        if self.mode is Mode.LTP:
            log.warning("kite feed in ltp mode: ticks carry no volume, depth or exchange time")
        self.name = name
        self._instruments = tuple(instruments)
        self._segments = {i.instrument_token: i.segment for i in self._instruments}
        if len(self._segments) != len(self._instruments):
            raise ValueError("instruments: the same instrument_token is listed twice")
        self._clock_ns = clock_ns
        self._queue: asyncio.Queue[Tick | None] = asyncio.Queue(maxsize=queue_size)
        self._ws = KiteWebSocket(
            api_key=api_key,
            access_token=access_token,
            root=root,
            on_binary=self._on_frame,
            on_order=on_order_update,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
            stale_after=stale_after,
            name=f"{name}-ticker",
        )
        self._stopped = False
        self._iterating = False
        self._carry: Tick | None = None
        self.stats: dict[str, int] = {"frames": 0, "ticks": 0, "dropped": 0, "bad_frames": 0}

    def __repr__(self) -> str:
        return f"KiteFeed({self.name}, {len(self._instruments)} instruments, mode={self.mode})"

    # ---- Feed protocol ----

    @property
    def is_synthetic(self) -> bool:
        return False

    @property
    def label(self) -> str:
        return f"{self.name} (live Kite ticker, {self.mode} mode)"

    @property
    def instruments(self) -> Sequence[Instrument]:
        return self._instruments

    @property
    def connection(self) -> KiteWebSocket:
        return self._ws

    @property
    def connected(self) -> bool:
        return self._ws.connected

    def progress(self) -> float:
        return 1.0 if self._stopped else 0.0  # a live session has no known end

    async def start(self) -> None:
        if self._stopped:  # restarted after stop(): forget the end marker
            while not self._queue.empty():
                self._queue.get_nowait()
            self._carry = None
        self._stopped = False
        await self._ws.subscribe(self._segments, self.mode)
        await self._ws.start()

    async def stop(self) -> None:
        self._stopped = True
        await self._ws.stop()
        self._put(_END)

    async def subscribe(self, instruments: Sequence[Instrument]) -> None:
        """Add instruments to the live subscription (kept across reconnects)."""
        for inst in instruments:
            self._segments[inst.instrument_token] = inst.segment
        self._instruments = (*self._instruments, *instruments)
        await self._ws.subscribe([i.instrument_token for i in instruments], self.mode)

    async def ticks(self) -> AsyncIterator[Tick]:
        self._claim()
        try:
            while True:
                tick = await self._queue.get()
                if tick is None:
                    self._put(_END)  # leave the sentinel for any later iterator
                    return
                yield tick
        finally:
            self._iterating = False

    async def batches(
        self, max_rows: int = 65536, *, max_span_ns: int | None = None
    ) -> AsyncIterator[TickBatch]:
        """Whatever has arrived, at most ``max_rows`` per batch (waits for the first)."""
        if max_rows < 1:
            raise ValueError(f"max_rows must be at least 1, got {max_rows}")
        self._claim()
        try:
            while True:
                first = self._carry if self._carry is not None else await self._queue.get()
                self._carry = None
                if first is None:
                    self._put(_END)
                    return
                rows = [first]
                end = False
                while len(rows) < max_rows and not self._queue.empty():
                    nxt = self._queue.get_nowait()
                    if nxt is None:
                        end = True
                        break
                    if max_span_ns is not None and nxt.ts_ns - first.ts_ns > max_span_ns:
                        self._carry = nxt  # opens the next batch
                        break
                    rows.append(nxt)
                yield TickBatch.from_ticks(rows)
                if end:
                    self._put(_END)
                    return
        finally:
            self._iterating = False

    # ---- frames -> ticks ----

    def _on_frame(self, frame: bytes, recv_ns: int) -> None:
        self.stats["frames"] += 1
        try:
            packets = decode_frame(frame)
        except TickCodecError as exc:
            self.stats["bad_frames"] += 1
            log.warning("%s: bad tick frame dropped: %s", self.name, exc)
            return
        for p in packets:
            self._put(self._tick(p, recv_ns))

    def _tick(self, p: TickPacket, recv_ns: int) -> Tick:
        ts = p.exchange_timestamp
        ts_ns = ts * 1_000_000_000 if ts else self._clock_ns()
        bid = p.bids[0].price if p.bids and p.bids[0].quantity > 0 else None
        ask = p.asks[0].price if p.asks and p.asks[0].quantity > 0 else None
        derivative = self._segments.get(p.instrument_token) in _DERIVATIVES
        return Tick(
            instrument_token=p.instrument_token,
            ts_ns=ts_ns,
            last_price=p.last_price,
            last_qty=p.last_quantity,
            volume=p.volume,
            bid=bid,
            ask=ask,
            oi=p.oi if derivative and p.mode is Mode.FULL else None,
            recv_ns=recv_ns,
        )

    def _put(self, item: Tick | None) -> None:
        if item is not None:
            self.stats["ticks"] += 1
        while True:
            try:
                self._queue.put_nowait(item)
                return
            except asyncio.QueueFull:
                dropped = self._queue.get_nowait()
                if dropped is None:  # never drop the end marker
                    self._queue.put_nowait(None)
                    return
                self.stats["dropped"] += 1
                if self.stats["dropped"] % 10_000 == 1:
                    log.warning(
                        "%s: consumer behind, %d tick(s) dropped", self.name, self.stats["dropped"]
                    )

    def _claim(self) -> None:
        if self._iterating:
            raise FeedError(f"feed {self.name!r} is already being iterated")
        self._iterating = True
