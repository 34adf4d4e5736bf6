"""TickBatch and the shared array-feed machinery: order, batching, progress, stop."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pytest

from aitrapp import Instrument
from aitrapp.feeds import OI_ABSENT, ArrayFeed, Feed, FeedError, TickBatch
from aitrapp.ticks import Tick

S = 1_000_000_000


def _batch(
    tokens: Sequence[int], ts: Sequence[int], prices: Sequence[float] | None = None
) -> TickBatch:
    n = len(tokens)
    return TickBatch(
        token=np.array(tokens, np.uint32),
        ts_ns=np.array(ts, np.int64),
        last_price=np.array(prices if prices is not None else [100.0 + i for i in range(n)]),
        last_qty=np.ones(n, np.int64),
        volume=np.arange(1, n + 1, dtype=np.int64),
        bid=np.full(n, np.nan),
        ask=np.full(n, 101.0),
        oi=np.full(n, OI_ABSENT, np.int64),
    )


def test_batch_validates_dtypes_and_lengths() -> None:
    good = _batch([1, 2], [10, 20])
    with pytest.raises(TypeError, match="ts_ns"):
        replace(good, ts_ns=good.ts_ns.astype(np.float64))
    with pytest.raises(ValueError, match="bid has 1 rows"):
        replace(good, bid=good.bid[:1])
    with pytest.raises(TypeError, match="token"):
        replace(good, token=[1, 2])  # type: ignore[arg-type]


def test_rows_turn_absent_values_into_none() -> None:
    b = _batch([7], [5])
    b.oi[0] = 1300
    (tick,) = b.to_ticks()
    assert tick == Tick(7, 5, 100.0, 1, 1, None, 101.0, 1300, 0)
    b.oi[0] = OI_ABSENT
    assert next(iter(b.rows()))[7] is None


def test_from_ticks_round_trip() -> None:
    ticks = [
        Tick(1, 10, 5.5, 2, 2, 5.45, None, None, 99),
        Tick(2, 11, 7.0, 1, 1, None, 7.05, 65, 98),
    ]
    b = TickBatch.from_ticks(ticks)
    assert b.recv_ns == 98
    assert [t for t in b.to_ticks()] == [
        Tick(1, 10, 5.5, 2, 2, 5.45, None, None, 98),
        Tick(2, 11, 7.0, 1, 1, None, 7.05, 65, 98),
    ]
    assert len(TickBatch.from_ticks([])) == 0


def test_merge_orders_by_time_then_token_then_sequence() -> None:
    a = _batch([20, 20, 20], [1, 2, 2], [1.0, 2.0, 3.0])
    b = _batch([10, 10], [2, 3], [4.0, 5.0])
    mixed = _batch([30, 10], [2, 2], [6.0, 7.0])  # one part holding two instruments
    out = TickBatch.merge([a, mixed, b])
    pairs = list(zip(out.ts_ns.tolist(), out.token.tolist(), out.last_price.tolist(), strict=True))
    assert pairs == [
        (1, 20, 1.0),
        (2, 10, 4.0),  # ties at t=2: token 10 first, parts in token order ...
        (2, 10, 7.0),
        (2, 20, 2.0),  # ... and each instrument keeps its own sequence
        (2, 20, 3.0),
        (2, 30, 6.0),
        (3, 10, 5.0),
    ]
    again = TickBatch.merge([b, mixed, a])
    assert again.last_price.tobytes() == out.last_price.tobytes()  # input order irrelevant
    assert len(TickBatch.merge([])) == 0


class _Fixed(ArrayFeed):
    def __init__(self, batch: TickBatch, span: tuple[int, int]) -> None:
        inst = Instrument(
            exchange="NSE",
            tradingsymbol="X",
            instrument_token=1,
            segment="EQ",
            tick_size="0.05",
            lot_size=1,
            freeze_qty=10,
        )
        super().__init__(name="fixed", kind="replay", instruments=[inst], synthetic=False)
        self._batch, self._fixed_span = batch, span
        self.loads = 0

    def _load(self) -> tuple[TickBatch, tuple[int, int]]:
        self.loads += 1
        return self._batch, self._fixed_span


def _day(n: int = 1000) -> TickBatch:
    return _batch([1 + i % 3 for i in range(n)], [i * S // 2 for i in range(n)])


async def test_batches_cover_every_row_once_in_order() -> None:
    data = _day()
    feed = _Fixed(data, (0, 500 * S))
    assert isinstance(feed, Feed)
    seen: list[TickBatch] = []
    async for b in feed.batches(max_rows=128):
        assert 1 <= len(b) <= 128
        assert b.recv_ns > 0
        seen.append(b)
    joined = np.concatenate([b.ts_ns for b in seen])
    assert joined.tobytes() == data.ts_ns.tobytes()
    assert feed.progress() == 1.0
    assert feed.loads == 1


async def test_batches_respect_max_span() -> None:
    feed = _Fixed(_day(), (0, 500 * S))
    sizes = []
    async for b in feed.batches(max_rows=10_000, max_span_ns=10 * S):
        assert b.last_ts_ns - b.first_ts_ns < 10 * S
        sizes.append(len(b))
    assert sum(sizes) == 1000
    assert max(sizes) == 20  # two ticks a second, ten seconds


async def test_progress_follows_feed_time() -> None:
    feed = _Fixed(_day(), (0, 500 * S))
    assert feed.progress() == 0.0
    progress = []
    async for _ in feed.batches(max_rows=250):
        progress.append(feed.progress())
    assert progress == sorted(progress)
    assert progress[0] == pytest.approx(249 / 2 / 500)
    assert feed.progress() == 1.0


async def test_ticks_match_batches_and_stamp_recv_time() -> None:
    data = _day(50)
    feed = _Fixed(data, (0, 25 * S))
    ticks = [t async for t in feed.ticks()]
    assert [t.ts_ns for t in ticks] == data.ts_ns.tolist()
    assert [t.instrument_token for t in ticks] == data.token.tolist()
    recv = [t.recv_ns for t in ticks]
    assert recv == sorted(recv) and recv[0] > 0


async def test_stop_ends_iteration_early() -> None:
    feed = _Fixed(_day(), (0, 500 * S))
    n = 0
    async for _ in feed.ticks():
        n += 1
        if n == 10:
            await feed.stop()
    assert n == 10
    assert feed.progress() == 1.0


async def test_two_concurrent_iterations_are_refused() -> None:
    feed = _Fixed(_day(), (0, 500 * S))
    first = feed.batches(max_rows=10)
    await first.__anext__()
    with pytest.raises(FeedError, match="already being iterated"):
        await feed.batches().__anext__()
    await first.aclose()
    async for _ in feed.batches(max_rows=500):  # free again after close
        pass


async def test_start_is_idempotent_and_data_needs_start() -> None:
    feed = _Fixed(_day(), (0, 500 * S))
    with pytest.raises(FeedError, match="start"):
        _ = feed.data
    await asyncio.gather(feed.start(), feed.start())
    assert feed.loads == 1
    assert feed.span_ns == (0, 500 * S)
    assert feed.label == "fixed" and not feed.is_synthetic
    with pytest.raises(ValueError, match="read-only"):
        feed.data.last_price[0] = 1.0  # loaded rows are frozen


async def test_bad_batch_arguments() -> None:
    feed = _Fixed(_day(), (0, 500 * S))
    with pytest.raises(ValueError, match="max_rows"):
        await feed.batches(0).__anext__()
    with pytest.raises(ValueError, match="max_span_ns"):
        await feed.batches(10, max_span_ns=0).__anext__()
