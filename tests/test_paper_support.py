"""Shared builders for the paper-broker tests (no tests of its own)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from aitrapp import Instrument
from aitrapp.brokers.base import OrderRequest, OrderType, OrderUpdate, Product, Validity
from aitrapp.brokers.paper import PaperBroker, PaperConfig
from aitrapp.ticks import Tick

SEC = 1_000_000_000
MS = 1_000_000
# 2026-05-04 09:15:00 IST, a Monday: the market opens.
T0 = int(datetime(2026, 5, 4, 3, 45, tzinfo=UTC).timestamp()) * SEC

EQ = 1  # RELIANCE-like cash equity, tick 0.05, lot 1
FUT = 2  # NIFTY future, tick 0.10, lot 65, freeze 1800
OPT = 3  # NIFTY option, tick 0.05, lot 65
IDX = 4  # NIFTY 50 index: ticks, no orders
PENNY = 5  # a cheap stock, tick 0.01


def instruments() -> list[Instrument]:
    def mk(
        token: int, exchange: str, symbol: str, segment: str, tick: str, lot: int, freeze: int
    ) -> Instrument:
        return Instrument(
            exchange=exchange,
            tradingsymbol=symbol,
            instrument_token=token,
            segment=segment,
            tick_size=tick,
            lot_size=lot,
            freeze_qty=freeze,
        )

    return [
        mk(EQ, "NSE", "RELIANCE", "EQ", "0.05", 1, 100_000),
        mk(FUT, "NFO", "NIFTY26MAYFUT", "FUT", "0.10", 65, 1800),
        mk(OPT, "NFO", "NIFTY26MAY24000CE", "OPT", "0.05", 65, 1800),
        mk(IDX, "NSE", "NIFTY 50", "IDX", "0.05", 1, 1),
        mk(PENNY, "NSE", "IDEA", "EQ", "0.01", 1, 100_000),
    ]


SYMBOLS = {i.instrument_token: (i.exchange, i.tradingsymbol) for i in instruments()}


class FakeWall:
    """A wall clock the test moves by hand (the rate limiter reads it)."""

    def __init__(self) -> None:
        self.ns = 5 * SEC

    def __call__(self) -> int:
        return self.ns


def broker(wall: FakeWall | None = None, **cfg: Any) -> PaperBroker:
    """A broker with test-friendly defaults: 50 ms ack, no fill latency, 2 s no-tick wait."""
    cfg.setdefault("ack_latency_ns", 50 * MS)
    return PaperBroker(instruments(), PaperConfig(**cfg), wall_clock_ns=wall or FakeWall())


_ids = itertools.count(1)


def req(
    side: str,
    qty: int,
    order_type: OrderType | str,
    *,
    price: int | None = None,
    trigger: int | None = None,
    mp: float | None = None,
    token: int = EQ,
    validity: Validity | str = Validity.DAY,
    product: Product | str = Product.MIS,
    tag: str | None = None,
    **over: Any,
) -> OrderRequest:
    """An order request; prices in paise, ``mp`` the market protection."""
    n = next(_ids)
    exchange, symbol = SYMBOLS.get(token, ("NSE", f"T{token}"))
    fields: dict[str, Any] = {
        "client_order_id": f"{n:024x}:ENTRY",
        "tag": tag if tag is not None else f"tag{n}",
        "exchange": exchange,
        "tradingsymbol": symbol,
        "instrument_token": token,
        "side": side,
        "quantity": qty,
        "order_type": order_type,
        "product": product,
        "validity": validity,
        "price_paise": price,
        "trigger_paise": trigger,
        "market_protection": mp,
    }
    fields.update(over)
    return OrderRequest(**fields)


def tick(
    b: PaperBroker,
    ts: int,
    last: float,
    bid: float | None = None,
    ask: float | None = None,
    *,
    volume: int = 0,
    last_qty: int = 0,
    token: int = EQ,
) -> list[OrderUpdate]:
    """Feeds one tick and returns the updates it caused."""
    b.on_tick(Tick(token, ts, last, last_qty, volume, bid, ask))
    return b.drain_updates()


def brief(u: OrderUpdate) -> tuple[str, int, int, float, int, float | None]:
    """(status, filled, pending, average, last fill qty, last fill price)."""
    return (
        u.status.value,
        u.filled_quantity,
        u.pending_quantity,
        round(u.average_price, 4),
        u.last_fill_qty,
        u.last_fill_price,
    )


def ts_of(u: OrderUpdate) -> int:
    ns = u.extra["exchange_ts_ns"]
    assert isinstance(ns, int)
    return ns


@dataclass(frozen=True)
class Columns:
    """Columnar ticks for `PaperBroker.on_ticks` (the shape of the feeds' TickBatch)."""

    token: npt.NDArray[np.uint32]
    ts_ns: npt.NDArray[np.int64]
    last_price: npt.NDArray[np.float64]
    last_qty: npt.NDArray[np.int64]
    volume: npt.NDArray[np.int64]
    bid: npt.NDArray[np.float64]
    ask: npt.NDArray[np.float64]

    @staticmethod
    def of(ticks: list[Tick]) -> Columns:
        nan = float("nan")
        return Columns(
            token=np.array([t.instrument_token for t in ticks], np.uint32),
            ts_ns=np.array([t.ts_ns for t in ticks], np.int64),
            last_price=np.array([t.last_price for t in ticks], np.float64),
            last_qty=np.array([t.last_qty for t in ticks], np.int64),
            volume=np.array([t.volume for t in ticks], np.int64),
            bid=np.array([nan if t.bid is None else t.bid for t in ticks], np.float64),
            ask=np.array([nan if t.ask is None else t.ask for t in ticks], np.float64),
        )
