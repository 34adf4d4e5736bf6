"""KiteFeed against the fake ticker: subscription, ticks, reconnect, order messages."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from aitrapp import Instrument
from aitrapp.feeds.base import Feed, TickBatch
from aitrapp.feeds.kite import KiteFeed
from aitrapp.kite.ticker_codec import DepthLevel, Mode, TickPacket
from aitrapp.ticks import Tick

from .conftest import NIFTY_FUT, RELIANCE, eventually
from .fake_kite import FakeKite

CLOCK_NS = 1_767_240_000_123_000_000
TS = 1_767_240_000


def make_feed(fake: FakeKite, instruments: dict[int, Instrument], **kw: Any) -> KiteFeed:
    settings: dict[str, Any] = {
        "api_key": fake.api_key,
        "access_token": fake.access_token,
        "instruments": [instruments[RELIANCE], instruments[NIFTY_FUT]],
        "root": fake.ws_root,
        "clock_ns": lambda: CLOCK_NS,
        "backoff_initial": 0.02,
        "stale_after": 5.0,
    }
    settings.update(kw)
    return KiteFeed(**settings)


@pytest.fixture
async def feed(fake: FakeKite, instruments: dict[int, Instrument]) -> AsyncIterator[KiteFeed]:
    f = make_feed(fake, instruments)
    await f.start()
    await eventually(
        lambda: f.connected and bool(fake.ws_clients) and bool(fake.ws_clients[0].modes)
    )
    yield f
    await f.stop()


async def next_ticks(feed: KiteFeed, n: int) -> list[Tick]:
    out: list[Tick] = []
    async with asyncio.timeout(5):
        async for t in feed.ticks():
            out.append(t)
            if len(out) == n:
                break
    return out


def quote(token: int, ltp: float, volume: int = 1000) -> TickPacket:
    return TickPacket(token, Mode.QUOTE, ltp, last_quantity=5, average_price=ltp, volume=volume,
                      open=ltp, high=ltp, low=ltp, close=ltp)  # fmt: skip


async def test_is_a_feed(feed: KiteFeed) -> None:
    assert isinstance(feed, Feed)
    assert feed.kind == "kite" and not feed.is_synthetic
    assert "fakeaccesstoken" not in repr(feed) + feed.label


async def test_subscribes_the_universe_in_quote_mode(fake: FakeKite, feed: KiteFeed) -> None:
    (client,) = fake.ws_clients
    assert client.modes == {RELIANCE: "quote", NIFTY_FUT: "quote"}
    assert client.messages[0] == {"a": "subscribe", "v": [RELIANCE, NIFTY_FUT]}
    assert client.messages[1] == {"a": "mode", "v": ["quote", [RELIANCE, NIFTY_FUT]]}


async def test_quote_ticks(fake: FakeKite, feed: KiteFeed) -> None:
    await fake.broadcast_ticks([quote(RELIANCE, 2500.5, 1200), quote(NIFTY_FUT, 26010.0, 65)])
    a, b = await next_ticks(feed, 2)
    assert (a.instrument_token, a.last_price, a.volume, a.last_qty) == (RELIANCE, 2500.5, 1200, 5)
    assert a.ts_ns == CLOCK_NS  # quote packets carry no exchange time
    assert a.bid is None and a.oi is None and a.recv_ns > 0
    assert (b.instrument_token, b.last_price) == (NIFTY_FUT, 26010.0)


async def test_full_mode_ticks_carry_time_depth_and_oi(
    fake: FakeKite, instruments: dict[int, Instrument]
) -> None:
    feed = make_feed(fake, instruments, mode="full")
    await feed.start()
    try:
        await eventually(lambda: bool(fake.ws_clients) and bool(fake.ws_clients[0].modes))
        assert set(fake.ws_clients[0].modes.values()) == {"full"}
        depth_bid = (DepthLevel(130, 26009.9, 2),)
        depth_ask = (DepthLevel(65, 26010.1, 1),)
        packets = [
            TickPacket(NIFTY_FUT, Mode.FULL, 26010.0, volume=650, oi=1_000_000,
                       exchange_timestamp=TS, bids=depth_bid, asks=depth_ask),
            TickPacket(RELIANCE, Mode.FULL, 2500.0, volume=9, exchange_timestamp=TS + 1,
                       bids=(DepthLevel(0, 0.0, 0),)),
        ]  # fmt: skip
        await fake.broadcast_ticks(packets)
        fut, eq = await next_ticks(feed, 2)
        assert fut.ts_ns == TS * 1_000_000_000
        assert (fut.bid, fut.ask, fut.oi) == (26009.9, 26010.1, 1_000_000)
        assert eq.ts_ns == (TS + 1) * 1_000_000_000
        assert eq.bid is None and eq.oi is None  # empty depth level, cash equity
    finally:
        await feed.stop()


async def test_dropped_websocket_reconnects_and_resubscribes(
    fake: FakeKite, feed: KiteFeed
) -> None:
    await fake.broadcast_ticks([quote(RELIANCE, 2500.0)])
    await next_ticks(feed, 1)
    fake.drop_websockets()
    await eventually(
        lambda: fake.ws_connects == 2 and bool(fake.ws_clients) and bool(fake.ws_clients[0].modes)
    )
    assert fake.ws_clients[0].modes == {RELIANCE: "quote", NIFTY_FUT: "quote"}
    assert feed.connection.disconnects == 1
    await fake.broadcast_ticks([quote(RELIANCE, 2501.0)])
    (t,) = await next_ticks(feed, 1)
    assert t.last_price == 2501.0


async def test_heartbeats_and_bad_frames_make_no_ticks(fake: FakeKite, feed: KiteFeed) -> None:
    await eventually(lambda: feed.connection.heartbeats >= 1)
    await fake.ws_clients[0].conn.send(b"\x00\x01\x00\xff\x00")  # declares 255 bytes, has 1
    await fake.broadcast_ticks([quote(RELIANCE, 2502.0)])
    (t,) = await next_ticks(feed, 1)
    assert t.last_price == 2502.0
    assert feed.stats["bad_frames"] == 1 and feed.connected


async def test_batches(fake: FakeKite, feed: KiteFeed) -> None:
    await fake.broadcast_ticks([quote(RELIANCE, 2500.0), quote(NIFTY_FUT, 26000.0)])
    await eventually(lambda: feed.stats["ticks"] >= 2)
    async with asyncio.timeout(5):
        async for batch in feed.batches(max_rows=10):
            assert isinstance(batch, TickBatch)
            assert batch.token.tolist() == [RELIANCE, NIFTY_FUT]
            assert batch.last_price.tolist() == [2500.0, 26000.0]
            break


async def test_stop_ends_the_iterator(fake: FakeKite, instruments: dict[int, Instrument]) -> None:
    feed = make_feed(fake, instruments)
    await feed.start()
    got: list[Tick] = []

    async def consume() -> None:
        async for t in feed.ticks():
            got.append(t)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    await feed.stop()
    async with asyncio.timeout(5):
        await task
    assert feed.progress() == 1.0


async def test_order_messages_are_forwarded(
    fake: FakeKite, instruments: dict[int, Instrument]
) -> None:
    received: list[Mapping[str, Any]] = []
    feed = make_feed(fake, instruments, on_order_update=received.append)
    await feed.start()
    try:
        await eventually(lambda: feed.connected)
        await fake.push_raw({"order_id": "1", "status": "COMPLETE"})
        await eventually(lambda: bool(received))
        assert received[0]["order_id"] == "1"
    finally:
        await feed.stop()


async def test_refused_token_keeps_retrying_without_leaking_it(
    fake: FakeKite, instruments: dict[int, Instrument], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # websockets logs the request line, token included
    feed = make_feed(fake, instruments, access_token="wrong-token-123456789")
    await feed.start()
    try:
        await eventually(lambda: fake.ws_refused >= 2)
        assert not feed.connected
        assert feed.connection.last_error == "handshake refused: HTTP 403"
    finally:
        await feed.stop()
    ours = "\n".join(
        r.getMessage() for r in caplog.records if not r.name.startswith("fake_kite")
    )  # the fake server logs what it received; only our side must stay clean
    assert "wrong-token-123456789" not in ours
    assert "access_token=***" in ours  # the request line was logged, redacted


async def test_too_many_tokens_for_one_connection(
    fake: FakeKite, instruments: dict[int, Instrument]
) -> None:
    feed = make_feed(fake, instruments)
    with pytest.raises(ValueError, match="3000 per connection"):
        await feed.connection.subscribe(range(1, 3002))
