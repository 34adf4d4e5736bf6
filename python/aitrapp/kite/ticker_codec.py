"""Kite ticker wire format: binary market-data frames and text messages.

A binary frame is big-endian: ``u16`` packet count, then for each packet a
``u16`` length followed by the packet. The packet length says the mode:

==========  =====  ==========================================================
length      mode   fields (offsets in bytes)
==========  =====  ==========================================================
8           ltp    token 0, last price 4
28 / 32     index  token, ltp, high, low, open, close (+ exchange ts 28)
44          quote  token, ltp, last qty, avg price, volume, buy qty, sell qty,
                   open, high, low, close
184         full   quote fields, last trade time 44, oi 48, oi day high 52,
                   oi day low 56, exchange ts 60, 10 depth entries from 64
                   (u32 qty, u32 price, u16 orders, 2 bytes padding;
                   5 bids then 5 asks)
==========  =====  ==========================================================

Prices are unsigned integers in the segment's unit (``token & 0xff``): paise
(/100) for most, /1e7 for CDS and /1e4 for BCD and NCO. Frames shorter than two
bytes are heartbeats. Text frames are JSON: ``{"type": "order", "data": ...}``
carries an order update (the postback payload), ``"error"`` and ``"message"``
carry notices from Kite.

The builders (``encode_*``) exist for the fake Kite used in tests and are the
exact inverse of the parser.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

# Segment codes carried in the low byte of an instrument token.
SEGMENT_NSE = 1
SEGMENT_NFO = 2
SEGMENT_CDS = 3
SEGMENT_BSE = 4
SEGMENT_BFO = 5
SEGMENT_BCD = 6
SEGMENT_MCX = 7
SEGMENT_MCXSX = 8
SEGMENT_INDICES = 9
SEGMENT_NCO = 12

LEN_LTP = 8
LEN_INDEX_QUOTE = 28
LEN_INDEX_FULL = 32
LEN_QUOTE = 44
LEN_FULL = 184
DEPTH_LEVELS = 5

_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")
_QUOTE = struct.Struct(">11I")  # token .. close
_INDEX = struct.Struct(">6I")  # token, ltp, high, low, open, close
_FULL_EXTRA = struct.Struct(">5I")  # last trade time, oi, oi high, oi low, exchange ts
_DEPTH = struct.Struct(">IIH2x")
_FULL = struct.Struct(">16I" + "IIH2x" * (2 * 5))  # the whole 184-byte packet


class TickCodecError(ValueError):
    """A frame or message does not follow the Kite ticker format."""


class Mode(StrEnum):
    LTP = "ltp"
    QUOTE = "quote"
    FULL = "full"


def price_divisor(instrument_token: int) -> int:
    """Raw integer price units per rupee for the token's segment."""
    segment = instrument_token & 0xFF
    if segment == SEGMENT_CDS:
        return 10_000_000
    if segment in (SEGMENT_BCD, SEGMENT_NCO):
        return 10_000
    return 100


@dataclass(frozen=True, slots=True)
class DepthLevel:
    quantity: int
    price: float
    orders: int


@dataclass(frozen=True, slots=True)
class TickPacket:
    """One decoded packet; fields a mode does not carry are zero / None / empty."""

    instrument_token: int
    mode: Mode
    last_price: float
    tradable: bool = True
    last_quantity: int = 0
    average_price: float = 0.0
    volume: int = 0
    buy_quantity: int = 0
    sell_quantity: int = 0
    open: float = 0.0
    high: float = 0.0
    low: float = 0.0
    close: float = 0.0
    last_trade_time: int | None = None  # epoch seconds
    oi: int = 0
    oi_day_high: int = 0
    oi_day_low: int = 0
    exchange_timestamp: int | None = None  # epoch seconds
    bids: tuple[DepthLevel, ...] = ()
    asks: tuple[DepthLevel, ...] = ()

    @property
    def is_index(self) -> bool:
        return (self.instrument_token & 0xFF) == SEGMENT_INDICES


def is_heartbeat(frame: bytes) -> bool:
    return len(frame) < 2


def split_packets(frame: bytes) -> Iterator[bytes]:
    """The packets of one binary frame (none for a heartbeat)."""
    if is_heartbeat(frame):
        return
    (count,) = _U16.unpack_from(frame, 0)
    pos = 2
    for i in range(count):
        if pos + 2 > len(frame):
            raise TickCodecError(
                f"frame truncated: packet {i + 1} of {count} has no length ({len(frame)} bytes)"
            )
        (length,) = _U16.unpack_from(frame, pos)
        pos += 2
        if pos + length > len(frame):
            raise TickCodecError(
                f"frame truncated: packet {i + 1} of {count} declares {length} bytes, "
                f"{len(frame) - pos} left"
            )
        yield frame[pos : pos + length]
        pos += length


def decode_packet(packet: bytes) -> TickPacket | None:
    """One packet; None for a length this codec does not know (Kite may add modes)."""
    n = len(packet)
    if n < 4:
        return None
    (token,) = _U32.unpack_from(packet, 0)
    div = price_divisor(token)
    tradable = (token & 0xFF) != SEGMENT_INDICES
    if n == LEN_LTP:
        (ltp,) = _U32.unpack_from(packet, 4)
        return TickPacket(token, Mode.LTP, ltp / div, tradable=tradable)
    if n in (LEN_INDEX_QUOTE, LEN_INDEX_FULL):
        _, ltp, high, low, open_, close = _INDEX.unpack_from(packet, 0)
        ts = _U32.unpack_from(packet, 28)[0] if n == LEN_INDEX_FULL else None
        return TickPacket(
            token,
            Mode.QUOTE if n == LEN_INDEX_QUOTE else Mode.FULL,
            ltp / div,
            tradable=tradable,
            open=open_ / div,
            high=high / div,
            low=low / div,
            close=close / div,
            exchange_timestamp=ts,
        )
    if n == LEN_QUOTE:
        (_, ltp, ltq, atp, vol, buy_q, sell_q, open_, high, low, close) = _QUOTE.unpack(packet)
        return TickPacket(
            token,
            Mode.QUOTE,
            ltp / div,
            tradable,
            ltq,
            atp / div,
            vol,
            buy_q,
            sell_q,
            open_ / div,
            high / div,
            low / div,
            close / div,
        )
    if n == LEN_FULL:
        f = _FULL.unpack(packet)  # 16 header fields, then (qty, price, orders) x 10
        levels = [DepthLevel(f[i], f[i + 1] / div, f[i + 2]) for i in range(16, 46, 3)]
        return TickPacket(
            token,
            Mode.FULL,
            f[1] / div,
            tradable,
            f[2],
            f[3] / div,
            f[4],
            f[5],
            f[6],
            f[7] / div,
            f[8] / div,
            f[9] / div,
            f[10] / div,
            f[11],
            f[12],
            f[13],
            f[14],
            f[15],
            tuple(levels[:DEPTH_LEVELS]),
            tuple(levels[DEPTH_LEVELS:]),
        )
    return None


def decode_frame(frame: bytes) -> list[TickPacket]:
    """Every known packet of a binary frame; [] for a heartbeat."""
    out = []
    for packet in split_packets(frame):
        decoded = decode_packet(packet)
        if decoded is not None:
            out.append(decoded)
    return out


# ---- text messages ----


@dataclass(frozen=True, slots=True)
class TextMessage:
    type: str  # "order", "error", "message" or whatever else Kite sends
    data: Any


def decode_text(text: str | bytes) -> TextMessage:
    try:
        doc = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise TickCodecError(f"text message is not JSON: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("type"), str):
        raise TickCodecError("text message has no string field 'type'")
    return TextMessage(doc["type"], doc.get("data"))


def order_update_message(order: Mapping[str, Any]) -> str:
    """The text frame Kite sends for an order update (tests, fake Kite)."""
    return json.dumps({"type": "order", "id": "", "data": dict(order)}, default=str)


def subscribe_message(tokens: Sequence[int]) -> str:
    return json.dumps({"a": "subscribe", "v": list(tokens)})


def unsubscribe_message(tokens: Sequence[int]) -> str:
    return json.dumps({"a": "unsubscribe", "v": list(tokens)})


def mode_message(mode: Mode, tokens: Sequence[int]) -> str:
    return json.dumps({"a": "mode", "v": [str(mode), list(tokens)]})


# ---- builders (inverse of the parser) ----


def _raw(price: float, div: int) -> int:
    value = round(price * div)
    if not 0 <= value < 2**32:
        raise TickCodecError(f"price {price} does not fit an unsigned 32-bit field")
    return value


def encode_packet(p: TickPacket) -> bytes:
    """The bytes of one packet in the mode (and index/tradable shape) of ``p``."""
    div = price_divisor(p.instrument_token)
    if p.mode is Mode.LTP:
        return _U32.pack(p.instrument_token) + _U32.pack(_raw(p.last_price, div))
    if p.is_index:
        body = _INDEX.pack(
            p.instrument_token,
            _raw(p.last_price, div),
            _raw(p.high, div),
            _raw(p.low, div),
            _raw(p.open, div),
            _raw(p.close, div),
        ) + _U32.pack(0)  # 4 bytes Kite leaves for "change"
        if p.mode is Mode.FULL:
            body += _U32.pack(p.exchange_timestamp or 0)
        return body
    body = _QUOTE.pack(
        p.instrument_token,
        _raw(p.last_price, div),
        p.last_quantity,
        _raw(p.average_price, div),
        p.volume,
        p.buy_quantity,
        p.sell_quantity,
        _raw(p.open, div),
        _raw(p.high, div),
        _raw(p.low, div),
        _raw(p.close, div),
    )
    if p.mode is Mode.QUOTE:
        return body
    body += _FULL_EXTRA.pack(
        p.last_trade_time or 0, p.oi, p.oi_day_high, p.oi_day_low, p.exchange_timestamp or 0
    )
    empty = DepthLevel(0, 0.0, 0)
    for side in (p.bids, p.asks):
        if len(side) > DEPTH_LEVELS:
            raise TickCodecError(f"at most {DEPTH_LEVELS} depth levels per side")
        for level in (*side, *([empty] * (DEPTH_LEVELS - len(side)))):
            body += _DEPTH.pack(level.quantity, _raw(level.price, div), level.orders)
    return body


def encode_frame(packets: Sequence[TickPacket | bytes]) -> bytes:
    """A binary frame holding ``packets`` (already-encoded bytes pass through)."""
    out = bytearray(_U16.pack(len(packets)))
    for p in packets:
        raw = p if isinstance(p, bytes) else encode_packet(p)
        out += _U16.pack(len(raw))
        out += raw
    return bytes(out)


HEARTBEAT = b"\x00"
