"""The ticker codec agrees with kiteconnect's own KiteTicker._parse_binary, byte for byte."""

from __future__ import annotations

import json
import struct

import pytest
from kiteconnect import KiteTicker

from aitrapp.kite.ticker_codec import (
    HEARTBEAT,
    LEN_FULL,
    LEN_INDEX_FULL,
    LEN_INDEX_QUOTE,
    LEN_LTP,
    LEN_QUOTE,
    DepthLevel,
    Mode,
    TickCodecError,
    TickPacket,
    decode_frame,
    decode_text,
    encode_frame,
    encode_packet,
    mode_message,
    order_update_message,
    price_divisor,
    subscribe_message,
)

NSE_TOKEN = 738561  # low byte 1: NSE
NFO_TOKEN = 13_238_786  # low byte 2: NFO
INDEX_TOKEN = 256_265  # low byte 9: indices
CDS_TOKEN = (1234 << 8) | 3
BCD_TOKEN = (5678 << 8) | 6

TS = 1_767_240_000  # 2026-01-01 04:00 UTC


@pytest.fixture(scope="module")
def kite_ticker() -> KiteTicker:
    # Constructed, never connected: _parse_binary is a pure method.
    return KiteTicker("key", "token", root="ws://127.0.0.1:9")


def full_packet(token: int, ltp: float = 2501.35) -> TickPacket:
    return TickPacket(
        instrument_token=token,
        mode=Mode.FULL,
        last_price=ltp,
        last_quantity=25,
        average_price=2499.8,
        volume=1_234_567,
        buy_quantity=50_000,
        sell_quantity=61_000,
        open=2490.0,
        high=2510.5,
        low=2488.1,
        close=2485.0,
        last_trade_time=TS - 1,
        oi=9_876_500,
        oi_day_high=9_900_000,
        oi_day_low=9_800_000,
        exchange_timestamp=TS,
        bids=tuple(DepthLevel(100 * (i + 1), round(2501.3 - 0.05 * i, 2), i + 1) for i in range(5)),
        asks=tuple(DepthLevel(90 * (i + 1), round(2501.4 + 0.05 * i, 2), i + 2) for i in range(5)),
    )


def test_lengths_match_the_kite_layout() -> None:
    p = full_packet(NSE_TOKEN)
    assert len(encode_packet(p)) == LEN_FULL
    assert len(encode_packet(TickPacket(NSE_TOKEN, Mode.QUOTE, 1.0))) == LEN_QUOTE
    assert len(encode_packet(TickPacket(NSE_TOKEN, Mode.LTP, 1.0))) == LEN_LTP
    assert len(encode_packet(TickPacket(INDEX_TOKEN, Mode.QUOTE, 1.0))) == LEN_INDEX_QUOTE
    assert len(encode_packet(TickPacket(INDEX_TOKEN, Mode.FULL, 1.0))) == LEN_INDEX_FULL


def test_divisors_by_segment() -> None:
    assert price_divisor(NSE_TOKEN) == 100
    assert price_divisor(NFO_TOKEN) == 100
    assert price_divisor(CDS_TOKEN) == 10_000_000
    assert price_divisor(BCD_TOKEN) == 10_000


def test_full_mode_round_trip_and_kiteticker_agrees(kite_ticker: KiteTicker) -> None:
    p = full_packet(NSE_TOKEN)
    frame = encode_frame([p])
    (ours,) = decode_frame(frame)
    assert ours == p
    (theirs,) = kite_ticker._parse_binary(frame)
    assert theirs["mode"] == "full" and theirs["tradable"] is True
    assert theirs["instrument_token"] == ours.instrument_token
    assert theirs["last_price"] == ours.last_price
    assert theirs["last_traded_quantity"] == ours.last_quantity
    assert theirs["average_traded_price"] == ours.average_price
    assert theirs["volume_traded"] == ours.volume
    assert theirs["total_buy_quantity"] == ours.buy_quantity
    assert theirs["total_sell_quantity"] == ours.sell_quantity
    assert theirs["ohlc"] == {
        "open": ours.open,
        "high": ours.high,
        "low": ours.low,
        "close": ours.close,
    }
    assert theirs["oi"] == ours.oi
    assert theirs["oi_day_high"] == ours.oi_day_high
    assert theirs["oi_day_low"] == ours.oi_day_low
    assert theirs["exchange_timestamp"].timestamp() == ours.exchange_timestamp
    assert theirs["last_trade_time"].timestamp() == ours.last_trade_time
    assert [(d["quantity"], d["price"], d["orders"]) for d in theirs["depth"]["buy"]] == [
        (d.quantity, d.price, d.orders) for d in ours.bids
    ]
    assert [(d["quantity"], d["price"], d["orders"]) for d in theirs["depth"]["sell"]] == [
        (d.quantity, d.price, d.orders) for d in ours.asks
    ]


def test_quote_ltp_and_index_packets_agree_with_kiteticker(kite_ticker: KiteTicker) -> None:
    packets = [
        TickPacket(NFO_TOKEN, Mode.QUOTE, 26_010.5, last_quantity=65, average_price=26_001.25,
                   volume=99_000, buy_quantity=1, sell_quantity=2, open=25_990.0, high=26_020.0,
                   low=25_980.0, close=26_000.0),
        TickPacket(NSE_TOKEN, Mode.LTP, 2500.05),
        TickPacket(INDEX_TOKEN, Mode.QUOTE, 26_001.85, tradable=False, open=25_950.0,
                   high=26_050.0, low=25_900.0, close=25_975.5),
        TickPacket(INDEX_TOKEN, Mode.FULL, 26_001.85, tradable=False, open=25_950.0,
                   high=26_050.0, low=25_900.0, close=25_975.5, exchange_timestamp=TS),
    ]  # fmt: skip
    frame = encode_frame(packets)
    ours = decode_frame(frame)
    assert ours == packets
    theirs = kite_ticker._parse_binary(frame)
    assert [t["mode"] for t in theirs] == ["quote", "ltp", "quote", "full"]
    assert [t["tradable"] for t in theirs] == [True, True, False, False]
    for o, t in zip(ours, theirs, strict=True):
        assert t["instrument_token"] == o.instrument_token
        assert t["last_price"] == o.last_price
        if o.mode is not Mode.LTP:
            assert t["ohlc"] == {"open": o.open, "high": o.high, "low": o.low, "close": o.close}
    assert theirs[0]["volume_traded"] == 99_000
    assert theirs[3]["exchange_timestamp"].timestamp() == TS


@pytest.mark.parametrize(
    ("token", "price"), [(CDS_TOKEN, 83.1234567), (BCD_TOKEN, 83.1234), (NSE_TOKEN, 83.12)]
)
def test_currency_divisors_agree_with_kiteticker(
    kite_ticker: KiteTicker, token: int, price: float
) -> None:
    frame = encode_frame([TickPacket(token, Mode.QUOTE, price, close=price)])
    (ours,) = decode_frame(frame)
    (theirs,) = kite_ticker._parse_binary(frame)
    assert ours.last_price == theirs["last_price"] == pytest.approx(price, abs=1e-9)


def test_heartbeat_and_unknown_lengths() -> None:
    assert decode_frame(HEARTBEAT) == []
    assert decode_frame(b"") == []
    odd = struct.pack(">I", NSE_TOKEN) + b"\x00" * 8  # 12 bytes: no such mode
    assert decode_frame(encode_frame([odd, TickPacket(NSE_TOKEN, Mode.LTP, 1.0)])) == [
        TickPacket(NSE_TOKEN, Mode.LTP, 1.0)
    ]


def test_truncated_frame_is_a_clear_error() -> None:
    frame = encode_frame([full_packet(NSE_TOKEN)])
    with pytest.raises(TickCodecError, match="truncated: packet 1 of 1"):
        decode_frame(frame[:100])
    with pytest.raises(TickCodecError, match="has no length"):
        decode_frame(
            struct.pack(">H", 2) + encode_frame([TickPacket(NSE_TOKEN, Mode.LTP, 1.0)])[2:]
        )


def test_builder_refuses_prices_that_do_not_fit() -> None:
    with pytest.raises(TickCodecError, match="32-bit"):
        encode_packet(TickPacket(NSE_TOKEN, Mode.LTP, -1.0))


def test_text_messages() -> None:
    order = {"order_id": "1", "status": "COMPLETE", "tag": "abc"}
    msg = decode_text(order_update_message(order))
    assert msg.type == "order" and msg.data == order
    assert decode_text('{"type": "error", "data": "bad"}').data == "bad"
    with pytest.raises(TickCodecError, match="not JSON"):
        decode_text("{nope")
    with pytest.raises(TickCodecError, match="'type'"):
        decode_text('{"data": 1}')
    assert json.loads(subscribe_message([1, 2])) == {"a": "subscribe", "v": [1, 2]}
    assert json.loads(mode_message(Mode.FULL, [3])) == {"a": "mode", "v": ["full", [3]]}


def test_kiteticker_text_parser_accepts_our_order_message(kite_ticker: KiteTicker) -> None:
    got = []
    kite_ticker.on_order_update = lambda _ws, data: got.append(data)
    kite_ticker._parse_text_message(order_update_message({"order_id": "9", "status": "OPEN"}))
    assert got == [{"order_id": "9", "status": "OPEN"}]
