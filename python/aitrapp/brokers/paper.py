"""The paper broker: Kite's order behaviour simulated against the feed's ticks.

PAPER must behave like LIVE as far as a simulator can, so that a burn-in in
PAPER means something. Every order rule (types, validity, latency, partial
fills, no-tick fills, slippage, market protection, Kite's validation and
REJECTED messages, the order-rate and modification limits, order ids) lives
in one place, the Rust paper venue ``aitrapp._core.SimVenue``
(``core-rs/aitrapp-core/src/venue``), which the trading kernel uses too.
This module is the `Broker` protocol around it: it converts requests and
Kite-shaped updates, keeps positions and prices each executed order's
contract note (charges stay in Python).

Requests carry integer paise; updates are shaped like Kite's order updates
(OPEN, TRIGGER PENDING, COMPLETE, CANCELLED, REJECTED; OPEN with a filled
quantity is a partial fill) and business rejects arrive as REJECTED updates
with Kite-like messages, never as exceptions.

Time is the feed's: the driver calls ``on_tick`` / ``on_ticks`` with every
tick (and ``advance_time`` when a live feed is quiet, ``feed_ended`` when a
replay is over). An order is acknowledged ``ack_latency_ns`` after its
request and may fill on ticks from ``fill_latency_ns`` after that; every
update is stamped with the simulated time of the tick (or timer) that caused
it. Nothing reads the wall clock except the order-rate clock, and only while
simulated time stands still.

Modifying or cancelling an order that is already terminal (or unknown) raises
`BrokerError` (code 400, not retryable) with a Kite-like message, as Kite's
API answers an InputException: look the order up (``find_by_tag``) to see why.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Protocol

import numpy as np
import numpy.typing as npt

from aitrapp._core import Instrument, SimVenue, VenueError, VenueUpdate
from aitrapp.brokers.base import (
    BrokerError,
    BrokerPosition,
    OrderRequest,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Product,
)
from aitrapp.brokers.paper_config import PaperConfig
from aitrapp.charges import (
    ChargeBreakdown,
    ChargeSchedule,
    ChargesError,
    ExecutedOrder,
    contract_note_charges,
)
from aitrapp.ticks import Tick

__all__ = ["PaperBroker", "PaperConfig", "TickColumns"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_IST = timedelta(hours=5, minutes=30)
_SECOND_NS = 1_000_000_000
_I64 = 2**63 - 1

# Kite's raw status for an order the OMS has but the exchange has not acknowledged.
_RAW_PENDING = "OPEN PENDING"
_STATUS = {s.value: s for s in OrderStatus} | {_RAW_PENDING: OrderStatus.PENDING}


class TickColumns(Protocol):
    """Columnar ticks (e.g. `aitrapp.feeds.base.TickBatch`): parallel 1-d arrays."""

    @property
    def token(self) -> npt.NDArray[np.uint32]: ...
    @property
    def ts_ns(self) -> npt.NDArray[np.int64]: ...
    @property
    def last_price(self) -> npt.NDArray[np.float64]: ...
    @property
    def last_qty(self) -> npt.NDArray[np.int64]: ...
    @property
    def volume(self) -> npt.NDArray[np.int64]: ...
    @property
    def bid(self) -> npt.NDArray[np.float64]: ...
    @property
    def ask(self) -> npt.NDArray[np.float64]: ...


def _utc(ns: int) -> datetime | None:
    return _EPOCH + timedelta(microseconds=ns // 1000) if ns > 0 else None


def _ist_date(ns: int) -> date:
    return (_EPOCH + timedelta(microseconds=ns // 1000) + _IST).date()


def _i64(x: object) -> int:
    """An integer request field for the venue (out of range: clamped, then refused there)."""
    if isinstance(x, bool) or not isinstance(x, int):
        return 0
    return max(-_I64, min(x, _I64))


def _paise(x: object) -> int | None:
    return None if x is None else _i64(x)


def _protection(mp: object) -> float | None:
    if isinstance(mp, bool) or not isinstance(mp, int | float):
        return None if mp is None else float("nan")  # a non-number is refused as invalid
    return float(mp)


@dataclass(slots=True)
class _Record:
    """What the broker keeps per order besides the venue's state."""

    order_id: str
    req: OrderRequest
    order_ns: int  # request time; a modification's arrival time once it takes effect
    last: OrderUpdate | None = None
    charges: ChargeBreakdown | None = None
    charges_error: str | None = None


@dataclass(slots=True)
class _Position:
    exchange: str
    tradingsymbol: str
    token: int
    product: Product
    buy_qty: int = 0
    buy_value: int = 0  # paise
    sell_qty: int = 0
    sell_value: int = 0


class PaperBroker:
    """Simulated Kite broker driven by the feed. See the module docstring."""

    name = "paper"

    def __init__(
        self,
        instruments: Iterable[Instrument],
        config: PaperConfig | None = None,
        *,
        charges: ChargeSchedule | None = None,
        wall_clock_ns: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self.config = config or PaperConfig()
        self._charges = charges or ChargeSchedule.default()
        self._wall_ns = wall_clock_ns
        # One instrument per token (a later definition replaces an earlier one).
        self._instruments = {i.instrument_token: i for i in instruments}
        self._venue = SimVenue(self.config.to_json(), list(self._instruments.values()))
        self._orders: dict[str, _Record] = {}
        self._by_tag: dict[str, _Record] = {}
        self._positions: dict[tuple[int, Product], _Position] = {}
        self._feed_now = 0  # simulated ns from the feed alone (rate limiting)
        # Order-rate clock: simulated time, plus wall time while simulated time stands still.
        self._rate_sim = -1
        self._rate_wall = 0
        self._rate_last = 0
        self._queue: asyncio.Queue[OrderUpdate] = asyncio.Queue()
        self._consuming = False

    # ------------------------------------------------------------------ driving

    @property
    def now_ns(self) -> int:
        """Simulated time (UTC ns) of the latest tick, time advance or fired timer."""
        return self._venue.clock_ns

    @property
    def bad_ticks(self) -> int:
        """Ticks dropped: no positive finite price, or older than the instrument's last one."""
        return self._venue.bad_quotes

    def on_tick(self, tick: Tick) -> None:
        """One tick from the feed: fires due timers, then matches the instrument's orders."""
        self._feed_now = max(self._feed_now, tick.ts_ns)
        ups = self._venue.on_quote(
            tick.instrument_token,
            tick.ts_ns,
            tick.last_price,
            tick.last_qty,
            tick.volume,
            tick.bid,
            tick.ask,
        )
        if ups:
            self._deliver(ups)

    def on_ticks(self, batch: TickColumns) -> None:
        """Columnar ticks (the replay path): exactly ``on_tick`` per row, in one call."""
        ts = batch.ts_ns
        if len(ts) == 0:
            return
        ups = self._venue.on_quotes(
            batch.token, ts, batch.last_price, batch.last_qty, batch.volume, batch.bid, batch.ask
        )
        self._feed_now = max(self._feed_now, int(np.max(ts)))
        if ups:
            self._deliver(ups)

    def advance_time(self, ts_ns: int) -> None:
        """Simulated time moved to ``ts_ns`` without a tick (a quiet live feed):
        acknowledgements, delayed cancels and no-tick fills that fall due happen."""
        self._feed_now = max(self._feed_now, ts_ns)
        self._deliver(self._venue.advance_to(ts_ns))

    def feed_ended(self) -> None:
        """No more ticks will come: everything pending happens now, in time order
        (a MARKET order fills at the last known bid/ask plus slippage)."""
        self._deliver(self._venue.feed_ended(self._venue.clock_ns))

    def expire_open_orders(self) -> None:
        """The trading day is over: every order that is still open is CANCELLED."""
        self._deliver(self._venue.expire_open_orders(self._venue.clock_ns))

    def drain_updates(self) -> list[OrderUpdate]:
        """Every queued update, without waiting (replay drivers and tests)."""
        out: list[OrderUpdate] = []
        while not self._queue.empty():
            out.append(self._queue.get_nowait())
        return out

    def order_charges(self, order_id: str) -> ChargeBreakdown | None:
        """Charges of an executed order once it is terminal (None before, or if unfilled)."""
        rec = self._orders.get(order_id)
        return rec.charges if rec is not None else None

    # ------------------------------------------------------------------ Broker protocol

    async def place_order(self, req: OrderRequest) -> str:
        return self.submit(req)

    def submit(self, req: OrderRequest) -> str:
        """`place_order` without the coroutine: returns the broker order id."""
        now = self._venue.clock_ns
        rate_now = now if self.config.max_orders_per_second is None else self._rate_clock()
        oid, ups = self._venue.submit(
            now,
            rate_now,
            client_order_id=req.client_order_id,
            tag=req.tag,
            exchange=req.exchange,
            tradingsymbol=req.tradingsymbol,
            token=_i64(req.instrument_token),
            side=str(req.side),
            order_type=str(req.order_type),
            product=str(req.product),
            validity=str(req.validity),
            qty=_i64(req.quantity),
            price_paise=_paise(req.price_paise),
            trigger_paise=_paise(req.trigger_paise),
            market_protection=_protection(req.market_protection),
        )
        order_id = str(oid)
        rec = _Record(order_id, req, now)
        self._orders[order_id] = rec
        self._by_tag[req.tag] = rec
        self._deliver(ups)
        self._deliver(self._venue.settle())
        return order_id

    async def modify_order(
        self,
        order_id: str,
        *,
        quantity: int | None = None,
        price_paise: int | None = None,
        trigger_paise: int | None = None,
        order_type: OrderType | None = None,
    ) -> None:
        self._record(order_id)
        try:
            self._venue.modify(
                self._venue.clock_ns,
                int(order_id),
                qty=None if quantity is None else max(_i64(quantity), 0),
                price_paise=_paise(price_paise),
                trigger_paise=_paise(trigger_paise),
                order_type=None if order_type is None else str(order_type),
            )
        except VenueError as e:
            raise BrokerError(str(e), code=400) from None
        self._deliver(self._venue.settle())

    async def cancel_order(self, order_id: str) -> None:
        self._record(order_id)
        try:
            self._venue.cancel(self._venue.clock_ns, int(order_id))
        except VenueError as e:
            raise BrokerError(str(e), code=400) from None
        self._deliver(self._venue.settle())

    async def updates(self) -> AsyncGenerator[OrderUpdate, None]:
        """Order updates as they happen. One consumer at a time."""
        if self._consuming:
            raise RuntimeError("PaperBroker.updates() already has a consumer")
        self._consuming = True
        try:
            while True:
                yield await self._queue.get()
        finally:
            self._consuming = False

    async def orders(self) -> list[OrderUpdate]:
        return [self._current(rec) for rec in self._orders.values()]

    async def find_by_tag(self, tag: str) -> OrderUpdate | None:
        rec = self._by_tag.get(tag)
        return self._current(rec) if rec is not None else None

    async def positions(self) -> list[BrokerPosition]:
        out = []
        for p in self._positions.values():
            net = p.buy_qty - p.sell_qty
            pnl = p.sell_value - p.buy_value
            if net:
                pnl += net * (self._venue.last_price_paise(p.token) or 0)
            if net > 0:
                avg = p.buy_value / p.buy_qty / 100
            elif net < 0:
                avg = p.sell_value / p.sell_qty / 100
            else:
                avg = 0.0
            out.append(
                BrokerPosition(
                    exchange=p.exchange,
                    tradingsymbol=p.tradingsymbol,
                    instrument_token=p.token,
                    product=p.product,
                    quantity=net,
                    average_price=avg,
                    pnl=pnl / 100,
                )
            )
        return out

    # ------------------------------------------------------------------ helpers

    def order_rate_clock_ns(self) -> int:
        """The clock the order-rate limit is counted on: simulated time, moved on by
        wall time while simulated time stands still. Callers pace against it."""
        wall = self._wall_ns()
        if self._feed_now != self._rate_sim:
            self._rate_sim = self._feed_now
            self._rate_wall = wall
        return max(self._feed_now + (wall - self._rate_wall), self._rate_last)

    def _rate_clock(self) -> int:
        """The rate clock for one request; it never runs backwards."""
        self._rate_last = self.order_rate_clock_ns()
        return self._rate_last

    def _record(self, order_id: str) -> _Record:
        rec = self._orders.get(order_id)
        if rec is None:
            raise BrokerError(f"Invalid `order_id`: no order {order_id!r}.", code=400)
        return rec

    def _deliver(self, ups: list[VenueUpdate]) -> None:
        """Venue updates -> positions, contract notes, `OrderUpdate`s on the queue."""
        for u in ups:
            rec = self._orders[str(u.order_id)]
            if u.modified:
                rec.order_ns = u.ts_ns
            if u.last_fill_qty:
                self._book_fill(rec.req, u.last_fill_qty, u.last_fill_price_paise)
            status = _STATUS[u.status]
            if status.is_terminal and u.filled_qty:
                self._price_contract_note(rec, u)
            upd = self._snapshot(rec, u)
            rec.last = upd
            self._queue.put_nowait(upd)

    def _book_fill(self, req: OrderRequest, qty: int, px: int) -> None:
        product = Product(req.product)
        key = (req.instrument_token, product)
        pos = self._positions.get(key)
        if pos is None:
            pos = _Position(req.exchange, req.tradingsymbol, req.instrument_token, product)
            self._positions[key] = pos
        if req.side == "BUY":
            pos.buy_qty += qty
            pos.buy_value += qty * px
        else:
            pos.sell_qty += qty
            pos.sell_value += qty * px

    def _price_contract_note(self, rec: _Record, u: VenueUpdate) -> None:
        req = rec.req
        inst = self._instruments[req.instrument_token]
        try:
            rec.charges = contract_note_charges(
                inst.segment,
                [ExecutedOrder(req.side, u.filled_qty, Decimal(u.filled_value_paise) / 100)],
                _ist_date(u.ts_ns),
                inst.exchange,
                product=Product(req.product).value,
                schedule=self._charges,
            )
        except ChargesError as e:  # a gap in the rate data must not stop matching
            rec.charges_error = str(e)

    def _current(self, rec: _Record) -> OrderUpdate:
        if rec.last is not None:
            return rec.last
        snap = self._venue.order(int(rec.order_id))
        assert snap is not None  # every recorded order is the venue's
        return self._snapshot(rec, snap)

    def _snapshot(self, rec: _Record, u: VenueUpdate) -> OrderUpdate:
        req = rec.req
        status = _STATUS[u.status]
        ts = 0 if status is OrderStatus.PENDING else u.ts_ns  # not yet at the exchange
        info: dict[str, object] = {"exchange_ts_ns": ts}
        if u.protection_price_paise is not None:
            info["protection_price"] = u.protection_price_paise / 100
        if rec.charges is not None:
            info["charges"] = rec.charges.as_dict()
        elif rec.charges_error is not None:
            info["charges_error"] = rec.charges_error
        if u.triggered:
            info["triggered"] = True
        if u.modified:
            info["modified"] = True
        filled, qty = u.filled_qty, u.qty
        return OrderUpdate(
            order_id=rec.order_id,
            client_order_id=req.client_order_id,
            tag=req.tag,
            status=status,
            exchange=req.exchange,
            tradingsymbol=req.tradingsymbol,
            instrument_token=req.instrument_token,
            side=req.side,
            order_type=OrderType(u.order_type),
            quantity=qty,
            filled_quantity=filled,
            pending_quantity=0 if status.is_terminal else qty - filled,
            cancelled_quantity=qty - filled if status is OrderStatus.CANCELLED else 0,
            average_price=u.filled_value_paise / filled / 100 if filled else 0.0,
            price=u.price_paise / 100 if u.price_paise is not None else None,
            trigger_price=u.trigger_paise / 100 if u.trigger_paise is not None else None,
            status_message=u.message,
            exchange_timestamp=_utc(ts),
            order_timestamp=_utc(rec.order_ns),
            raw_status=u.status,
            last_fill_qty=u.last_fill_qty,
            last_fill_price=u.last_fill_price_paise / 100 if u.last_fill_qty else None,
            extra=info,
        )
