"""What every feed offers: the `Feed` protocol and the columnar `TickBatch`.

A feed yields ticks one at a time (`ticks()`, the live path) or as columnar
batches (`batches()`, the fast replay path: the Rust engine takes arrays).
Both forms carry the same rows in the same order: merged across instruments
by exchange time, ties broken by instrument token, then by the instrument's
own sequence, so a replay is deterministic.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from aitrapp._core import Instrument
from aitrapp.ticks import Tick

FeedKind = Literal["synthetic", "replay", "kite"]

U32 = npt.NDArray[np.uint32]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

OI_ABSENT = -1  # `oi` value for instruments without open interest (cash equity)

# Ticks handed out between two yields to the event loop on the per-tick path.
_TICKS_PER_YIELD = 4096


@dataclass(frozen=True, slots=True, eq=False)
class TickBatch:
    """A run of ticks as parallel numpy arrays (one row = one tick).

    Prices are rupees (float64) exactly as a feed reports them; ``bid``/``ask``
    are NaN when absent and ``oi`` is ``OI_ABSENT`` (-1) when the instrument
    has no open interest. ``recv_ns`` is the monotonic time at which the batch
    entered the process (``time.perf_counter_ns``), the start of the
    tick-to-decision latency for every row. ``synthetic`` labels generated data.
    """

    token: U32
    ts_ns: I64
    last_price: F64
    last_qty: I64
    volume: I64
    bid: F64
    ask: F64
    oi: I64
    recv_ns: int = 0
    synthetic: bool = False

    def __post_init__(self) -> None:
        n = len(self.token)
        for name, dtype in _COLUMNS:
            arr = getattr(self, name)
            if not isinstance(arr, np.ndarray) or arr.dtype != dtype or arr.ndim != 1:
                raise TypeError(f"TickBatch.{name} must be a 1-d numpy {dtype} array")
            if len(arr) != n:
                raise ValueError(f"TickBatch.{name} has {len(arr)} rows, token has {n}")

    def __len__(self) -> int:
        return len(self.token)

    @property
    def first_ts_ns(self) -> int:
        return int(self.ts_ns[0])

    @property
    def last_ts_ns(self) -> int:
        return int(self.ts_ns[-1])

    def slice(self, start: int, stop: int, *, recv_ns: int | None = None) -> TickBatch:
        """Rows ``start:stop`` as views (no copy)."""
        return TickBatch(
            token=self.token[start:stop],
            ts_ns=self.ts_ns[start:stop],
            last_price=self.last_price[start:stop],
            last_qty=self.last_qty[start:stop],
            volume=self.volume[start:stop],
            bid=self.bid[start:stop],
            ask=self.ask[start:stop],
            oi=self.oi[start:stop],
            recv_ns=self.recv_ns if recv_ns is None else recv_ns,
            synthetic=self.synthetic,
        )

    def take(self, index: npt.NDArray[np.intp]) -> TickBatch:
        """The rows at ``index`` (a copy), in that order."""
        return TickBatch(
            token=self.token[index],
            ts_ns=self.ts_ns[index],
            last_price=self.last_price[index],
            last_qty=self.last_qty[index],
            volume=self.volume[index],
            bid=self.bid[index],
            ask=self.ask[index],
            oi=self.oi[index],
            recv_ns=self.recv_ns,
            synthetic=self.synthetic,
        )

    def rows(
        self,
    ) -> Iterator[tuple[int, int, float, int, int, float | None, float | None, int | None]]:
        """Rows as plain Python tuples in `Tick` field order (NaN/-1 become None)."""
        bid = _with_none(self.bid, np.isnan(self.bid))
        ask = _with_none(self.ask, np.isnan(self.ask))
        oi = _with_none(self.oi, self.oi == OI_ABSENT)
        return zip(
            self.token.tolist(),
            self.ts_ns.tolist(),
            self.last_price.tolist(),
            self.last_qty.tolist(),
            self.volume.tolist(),
            bid,
            ask,
            oi,
            strict=True,
        )

    def to_ticks(self) -> list[Tick]:
        """The rows as `Tick` objects, all stamped with this batch's ``recv_ns``."""
        return [Tick(*row, recv_ns=self.recv_ns) for row in self.rows()]

    @staticmethod
    def empty(*, synthetic: bool = False) -> TickBatch:
        return TickBatch(
            token=np.empty(0, np.uint32),
            ts_ns=np.empty(0, np.int64),
            last_price=np.empty(0, np.float64),
            last_qty=np.empty(0, np.int64),
            volume=np.empty(0, np.int64),
            bid=np.empty(0, np.float64),
            ask=np.empty(0, np.float64),
            oi=np.empty(0, np.int64),
            synthetic=synthetic,
        )

    @staticmethod
    def from_ticks(ticks: Sequence[Tick], *, synthetic: bool = False) -> TickBatch:
        """Columnar form of `ticks` (e.g. to hand a live burst to the engine at once)."""
        nan = float("nan")
        return TickBatch(
            token=np.fromiter((t.instrument_token for t in ticks), np.uint32, len(ticks)),
            ts_ns=np.fromiter((t.ts_ns for t in ticks), np.int64, len(ticks)),
            last_price=np.fromiter((t.last_price for t in ticks), np.float64, len(ticks)),
            last_qty=np.fromiter((t.last_qty for t in ticks), np.int64, len(ticks)),
            volume=np.fromiter((t.volume for t in ticks), np.int64, len(ticks)),
            bid=np.fromiter((nan if t.bid is None else t.bid for t in ticks), np.float64),
            ask=np.fromiter((nan if t.ask is None else t.ask for t in ticks), np.float64),
            oi=np.fromiter((OI_ABSENT if t.oi is None else t.oi for t in ticks), np.int64),
            recv_ns=min((t.recv_ns for t in ticks), default=0),
            synthetic=synthetic,
        )

    @staticmethod
    def merge(parts: Sequence[TickBatch]) -> TickBatch:
        """One batch in feed order: by time, then token, then each part's own order.

        Parts are usually one instrument each. The sort is stable over parts
        concatenated in token order, so equal (time, token) rows keep their
        original sequence: the same input always gives the same output.
        """
        if not parts:
            return TickBatch.empty()
        ordered = sorted(parts, key=lambda p: int(p.token[0]) if len(p) else -1)
        cat = TickBatch(
            token=np.concatenate([p.token for p in ordered]),
            ts_ns=np.concatenate([p.ts_ns for p in ordered]),
            last_price=np.concatenate([p.last_price for p in ordered]),
            last_qty=np.concatenate([p.last_qty for p in ordered]),
            volume=np.concatenate([p.volume for p in ordered]),
            bid=np.concatenate([p.bid for p in ordered]),
            ask=np.concatenate([p.ask for p in ordered]),
            oi=np.concatenate([p.oi for p in ordered]),
            synthetic=any(p.synthetic for p in parts),
        )
        # lexsort: last key is primary. Token as secondary key keeps ties
        # deterministic even when a part mixes instruments.
        order = np.lexsort((cat.token, cat.ts_ns))
        return cat.take(order)


def _with_none(values: npt.NDArray[np.generic], absent: npt.NDArray[np.bool_]) -> list[Any]:
    out: list[Any] = values.tolist()
    if absent.any():
        for i in np.flatnonzero(absent).tolist():
            out[i] = None
    return out


_COLUMNS: tuple[tuple[str, type[np.generic]], ...] = (
    ("token", np.uint32),
    ("ts_ns", np.int64),
    ("last_price", np.float64),
    ("last_qty", np.int64),
    ("volume", np.int64),
    ("bid", np.float64),
    ("ask", np.float64),
    ("oi", np.int64),
)


@runtime_checkable
class Feed(Protocol):
    """A source of ticks for one session.

    ``kind`` says where ticks come from; ``is_synthetic`` and ``label`` say
    whether they are real (UI, logs and reports show ``label``; it contains
    ``SYNTHETIC`` for generated data). ``progress()`` is the fraction of the
    session already delivered (0.0 .. 1.0) for progress bars.
    """

    name: str
    kind: FeedKind

    @property
    def is_synthetic(self) -> bool: ...

    @property
    def label(self) -> str: ...

    @property
    def instruments(self) -> Sequence[Instrument]: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def ticks(self) -> AsyncIterator[Tick]: ...

    def batches(
        self, max_rows: int = 65536, *, max_span_ns: int | None = None
    ) -> AsyncIterator[TickBatch]: ...

    def progress(self) -> float: ...


class FeedError(RuntimeError):
    """A feed was used out of order (e.g. iterated twice concurrently)."""


class ArrayFeed(ABC):
    """A feed whose whole session is known in advance as one merged `TickBatch`.

    Subclasses implement `_load()`: it runs in a worker thread (CPU and file
    bound) and returns the rows and the session span used by `progress()`.
    The rows are frozen (read-only arrays) once loaded.
    """

    name: str
    kind: FeedKind

    def __init__(
        self,
        *,
        name: str,
        kind: FeedKind,
        instruments: Sequence[Instrument],
        synthetic: bool,
    ) -> None:
        self.name = name
        self.kind = kind
        self._instruments = tuple(instruments)
        self._synthetic = synthetic
        self._data: TickBatch | None = None
        self._span: tuple[int, int] | None = None
        self._lock = asyncio.Lock()
        self._stopped = False
        self._iterating = False
        self._last_ts: int | None = None
        self._done = False

    # -- labels ---------------------------------------------------------------
    @property
    def is_synthetic(self) -> bool:
        return self._synthetic

    @property
    def label(self) -> str:
        return f"{self.name} [SYNTHETIC]" if self._synthetic else self.name

    @property
    def instruments(self) -> Sequence[Instrument]:
        return self._instruments

    # -- lifecycle ------------------------------------------------------------
    @abstractmethod
    def _load(self) -> tuple[TickBatch, tuple[int, int]]:
        """The merged rows and the (start_ns, end_ns) span of the session."""

    async def start(self) -> None:
        """Load or generate the session's ticks (idempotent; off the event loop)."""
        async with self._lock:
            if self._data is None:
                data, self._span = await asyncio.to_thread(self._load)
                for name, _ in _COLUMNS:
                    getattr(data, name).flags.writeable = False
                self._data = data

    async def stop(self) -> None:
        """Ends running iterators at their next row; `progress()` then reads 1.0."""
        self._stopped = True

    @property
    def data(self) -> TickBatch:
        """Every row of the session (after `start()`)."""
        if self._data is None:
            raise FeedError(f"feed {self.name!r}: call start() first")
        return self._data

    @property
    def span_ns(self) -> tuple[int, int]:
        """(start, end) of the session in UTC ns (after `start()`)."""
        if self._span is None:
            raise FeedError(f"feed {self.name!r}: call start() first")
        return self._span

    def progress(self) -> float:
        if self._done or self._stopped:
            return 1.0
        if self._span is None or self._last_ts is None:
            return 0.0
        start, end = self._span
        if end <= start:
            return 0.0
        return min(1.0, max(0.0, (self._last_ts - start) / (end - start)))

    # -- iteration ------------------------------------------------------------
    async def batches(
        self, max_rows: int = 65536, *, max_span_ns: int | None = None
    ) -> AsyncGenerator[TickBatch, None]:
        """The session as batches of at most ``max_rows`` rows.

        With ``max_span_ns`` a batch also never spans more exchange time than
        that, so a paced replay (1x, Nx) advances smoothly.
        """
        if max_rows < 1:
            raise ValueError(f"max_rows must be at least 1, got {max_rows}")
        if max_span_ns is not None and max_span_ns < 1:
            raise ValueError(f"max_span_ns must be positive, got {max_span_ns}")
        await self.start()
        data = self.data
        self._claim()
        try:
            n = len(data)
            pos = 0
            while pos < n and not self._stopped:
                stop = min(n, pos + max_rows)
                if max_span_ns is not None:
                    limit = int(data.ts_ns[pos]) + max_span_ns
                    stop = min(stop, int(np.searchsorted(data.ts_ns, limit, side="left")))
                    stop = max(stop, pos + 1)
                batch = data.slice(pos, stop, recv_ns=time.perf_counter_ns())
                pos = stop
                self._last_ts = batch.last_ts_ns
                yield batch
                await asyncio.sleep(0)  # let the rest of the process breathe between batches
            self._done = pos >= n
        finally:
            self._iterating = False

    async def ticks(self) -> AsyncGenerator[Tick, None]:
        """The session one `Tick` at a time; ``recv_ns`` is stamped at hand-out."""
        await self.start()
        data = self.data
        self._claim()
        try:
            n = len(data)
            pos = 0
            while pos < n and not self._stopped:
                chunk = data.slice(pos, min(n, pos + _TICKS_PER_YIELD))
                for row in chunk.rows():
                    if self._stopped:
                        break
                    self._last_ts = row[1]
                    pos += 1
                    yield Tick(*row, recv_ns=time.perf_counter_ns())
                await asyncio.sleep(0)
            self._done = pos >= n
        finally:
            self._iterating = False

    def _claim(self) -> None:
        if self._iterating:
            raise FeedError(f"feed {self.name!r} is already being iterated")
        self._iterating = True
