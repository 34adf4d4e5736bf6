"""The paper broker: Kite's order behaviour simulated against the feed's ticks.

PAPER must behave like LIVE as far as a simulator can, so that a burn-in in
PAPER means something. The broker implements the `Broker` protocol exactly:
requests carry integer paise, updates are shaped like Kite's order updates
(OPEN, TRIGGER PENDING, COMPLETE, CANCELLED, REJECTED; OPEN with a filled
quantity is a partial fill) and business rejects arrive as REJECTED updates
with Kite-like messages, never as exceptions.

Time is the feed's: the driver calls ``on_tick`` / ``on_ticks`` with every
tick (and ``advance_time`` when a live feed is quiet, ``feed_ended`` when a
replay is over). Simulated time is the ticks' exchange timestamp; an order is
acknowledged ``ack_latency_ns`` after its request and may fill on ticks from
``fill_latency_ns`` after that. Every update is stamped with the simulated
time of the tick (or timer) that caused it. Nothing reads the wall clock
except the order-rate limiter, and only while simulated time stands still.

The fill rules live in `paper_rules`, the validation in `paper_validation`
and the settings in `paper_config`.

Order lifecycle (internal status -> update):
    request --ack--> OPEN | TRIGGER PENDING --trigger--> OPEN --fill--> COMPLETE
    request --invalid--> REJECTED (at once, with the reason)
    OPEN / TRIGGER PENDING --cancel or IOC remainder or expiry--> CANCELLED

Modifying or cancelling an order that is already terminal (or unknown) raises
`BrokerError` (code 400, not retryable) with a Kite-like message, as Kite's
API answers an InputException: look the order up (``find_by_tag``) to see why.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Protocol

import numpy as np
import numpy.typing as npt

from aitrapp._core import Instrument
from aitrapp.brokers.base import (
    BrokerError,
    BrokerPosition,
    OrderRequest,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Product,
    Validity,
)
from aitrapp.brokers.paper_config import PaperConfig
from aitrapp.brokers.paper_rules import (
    bps_to_ppm,
    limit_fill_price,
    market_fill_price,
    pct_to_ppm,
    protection_price,
    to_paise,
    touches,
    traded_quantity,
)
from aitrapp.brokers.paper_rules import (
    participation_quantity as _participation_quantity,
)
from aitrapp.brokers.paper_validation import (
    PRICED_TYPES,
    STOP_TYPES,
    PaperInstrument,
    check_new_order,
    check_prices,
    check_protection,
    check_quantity,
)
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

# Timer kinds, fired in (due, sequence) order.
_ACK, _QUIET, _MODIFY, _CANCEL = 0, 1, 2, 3

_PENDING = OrderStatus.PENDING
_OPEN = OrderStatus.OPEN
_TRIGGER_PENDING = OrderStatus.TRIGGER_PENDING
_COMPLETE = OrderStatus.COMPLETE
_CANCELLED = OrderStatus.CANCELLED
_REJECTED = OrderStatus.REJECTED

# Kite's raw status for an order the OMS has but the exchange has not acknowledged.
_RAW_PENDING = "OPEN PENDING"

_TERMINAL_WORDS = {_COMPLETE: "completed", _CANCELLED: "cancelled", _REJECTED: "rejected"}

_IOC_MESSAGE = "IOC order cancelled by the exchange: the quantity could not be filled at once."
_EXPIRED_MESSAGE = "Order expired at the end of the trading day."

# One row of the quote kept per instrument: (ts_ns, last, bid, ask, volume, last_qty),
# prices in rupees as the feed gave them (bid/ask may be None or NaN).
_Quote = tuple[int, float, float | None, float | None, int, int]


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


class _Order:
    """Mutable simulator state of one order (never leaves this module)."""

    __slots__ = (
        "arrived",
        "cancel_requested",
        "cancelled",
        "cap",
        "charges",
        "charges_error",
        "eligible_ns",
        "filled",
        "inst",
        "is_buy",
        "is_market",
        "last_update",
        "modifications",
        "order_id",
        "order_ns",
        "order_type",
        "price",
        "product",
        "quantity",
        "quiet_gen",
        "req",
        "status",
        "status_message",
        "trigger",
        "triggered",
        "validity",
        "value",
    )

    def __init__(
        self, order_id: str, req: OrderRequest, inst: PaperInstrument | None, now: int
    ) -> None:
        self.order_id = order_id
        self.req = req
        self.inst = inst
        self.is_buy = req.side == "BUY"
        self.order_ns = now
        self.status = _PENDING
        self.status_message: str | None = None
        # Normalised after validation; the raw request values until then.
        self.order_type = OrderType.MARKET
        self.product = Product.MIS
        self.validity = Validity.DAY
        self.quantity = req.quantity if isinstance(req.quantity, int) else 0
        # As requested (a REJECTED update shows them); normalised after validation.
        self.price: int | None = req.price_paise if isinstance(req.price_paise, int) else None
        self.trigger: int | None = req.trigger_paise if isinstance(req.trigger_paise, int) else None
        self.is_market = False
        self.cap: int | None = None  # market-protection limit (paise), MARKET and triggered SL-M
        self.triggered = False
        self.arrived = False  # has the order had its first look at the market?
        self.eligible_ns = 0
        self.filled = 0
        self.value = 0  # sum of fill qty x fill price, paise
        self.cancelled = 0
        self.cancel_requested = False
        self.modifications = 0
        self.quiet_gen = 0
        self.charges: ChargeBreakdown | None = None
        self.charges_error: str | None = None
        self.last_update: OrderUpdate | None = None


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


_Timer = tuple[int, int, int, _Order, object]


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
        self._instruments = {i.instrument_token: PaperInstrument.of(i) for i in instruments}
        cfg = self.config
        self._ack_ns = cfg.ack_latency_ns
        self._fill_ns = cfg.fill_latency_ns
        self._wait_ns = cfg.no_tick_wait_ns
        self._slip_ppm = bps_to_ppm(cfg.slippage_bps)
        self._share_ppm = (
            pct_to_ppm(cfg.participation_pct) if cfg.participation_pct is not None else None
        )
        self._next_id = cfg.order_id_start
        self._orders: dict[str, _Order] = {}
        self._by_tag: dict[str, _Order] = {}
        self._working: dict[int, list[_Order]] = {}  # token -> acknowledged, not terminal
        self._quotes: dict[int, _Quote] = {}
        self._positions: dict[tuple[int, Product], _Position] = {}
        self._timers: list[_Timer] = []
        self._timer_seq = 0
        self._now = 0  # simulated ns: ticks, advance_time and fired timers
        self._feed_now = 0  # simulated ns from the feed alone (rate limiting)
        self._ended = False
        # Order-rate clock: simulated time, plus wall time while simulated time stands still.
        self._rate_sim = -1
        self._rate_wall = 0
        self._rate_last = 0
        self._recent: deque[int] = deque()
        self._queue: asyncio.Queue[OrderUpdate] = asyncio.Queue()
        self._consuming = False
        self.bad_ticks = 0  # ticks dropped: non-positive/NaN price or older than the last one

    # ------------------------------------------------------------------ driving

    @property
    def now_ns(self) -> int:
        """Simulated time (UTC ns) of the latest tick, time advance or fired timer."""
        return self._now

    def on_tick(self, tick: Tick) -> None:
        """One tick from the feed: fires due timers, then matches the instrument's orders."""
        self._on_quote(
            tick.instrument_token,
            tick.ts_ns,
            tick.last_price,
            tick.bid,
            tick.ask,
            tick.volume,
            tick.last_qty,
        )

    def on_ticks(self, batch: TickColumns) -> None:
        """Columnar ticks in time order (the replay path): the same result as calling
        ``on_tick`` per row, but rows of instruments without working orders are
        only folded into the last known quote, with numpy."""
        ts = batch.ts_ns
        n = len(ts)
        if n == 0:
            return
        if n > 1 and not bool(np.all(ts[1:] >= ts[:-1])):
            self._rows(batch, np.arange(n))  # out of time order: row by row, as on_tick would
            return
        start = 0
        while start < n:
            if self._timers and self._timers[0][0] <= ts[start]:
                # A timer falls due at or before this row: the row takes the per-tick
                # path, which fires the timer first, exactly as on_tick would.
                self._rows(batch, np.arange(start, start + 1))
                start += 1
                continue
            end = int(np.searchsorted(ts, self._timers[0][0], "left")) if self._timers else n
            self._segment(batch, start, end)
            start = end

    def advance_time(self, ts_ns: int) -> None:
        """Simulated time moved to ``ts_ns`` without a tick (a quiet live feed):
        acknowledgements, delayed cancels and no-tick fills that fall due happen."""
        self._ended = False
        self._advance(ts_ns)
        self._fire_timers(ts_ns)

    def feed_ended(self) -> None:
        """No more ticks will come: everything pending happens now, in time order
        (a MARKET order fills at the last known bid/ask plus slippage)."""
        self._ended = True
        self._settle()

    def expire_open_orders(self) -> None:
        """The trading day is over: every order that is still open is CANCELLED."""
        for o in list(self._orders.values()):
            if not o.status.is_terminal:
                self._cancel_now(o, self._now, _EXPIRED_MESSAGE)

    def drain_updates(self) -> list[OrderUpdate]:
        """Every queued update, without waiting (replay drivers and tests)."""
        out: list[OrderUpdate] = []
        while not self._queue.empty():
            out.append(self._queue.get_nowait())
        return out

    def order_charges(self, order_id: str) -> ChargeBreakdown | None:
        """Charges of an executed order once it is terminal (None before, or if unfilled)."""
        o = self._orders.get(order_id)
        return o.charges if o is not None else None

    # ------------------------------------------------------------------ Broker protocol

    async def place_order(self, req: OrderRequest) -> str:
        return self.submit(req)

    def submit(self, req: OrderRequest) -> str:
        """`place_order` without the coroutine: returns the broker order id."""
        order_id = str(self._next_id)
        self._next_id += 1
        inst = self._instruments.get(req.instrument_token)
        o = _Order(order_id, req, inst, self._now)
        self._orders[order_id] = o
        if isinstance(req.tag, str):
            self._by_tag[req.tag] = o
        msg = self._rate_limited()
        if msg is None:
            msg = check_new_order(req, inst, self._ltp(req.instrument_token))
        if msg is not None:
            self._reject(o, msg)
            return order_id
        o.order_type = OrderType(req.order_type)
        o.product = Product(req.product)
        o.validity = Validity(req.validity)
        o.price = req.price_paise if o.order_type in PRICED_TYPES else None
        o.trigger = req.trigger_paise if o.order_type in STOP_TYPES else None
        o.is_market = o.order_type is OrderType.MARKET
        self._push(self._now + self._ack_ns, _ACK, o, None)
        self._settle()
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
        o = self._live_order(order_id, "modified")
        if o.modifications >= self.config.max_modifications:
            raise BrokerError(
                f"Maximum allowed order modifications ({self.config.max_modifications}) "
                f"exceeded for order {order_id}.",
                code=400,
            )
        assert o.inst is not None  # only validated orders are live
        if order_type is not None:
            try:
                new_type = OrderType(order_type)
            except ValueError:
                raise BrokerError(f"Invalid `order_type` {order_type!r}.", code=400) from None
        else:
            new_type = o.order_type
        if o.triggered and new_type in STOP_TYPES and new_type is not o.order_type:
            raise BrokerError(
                "The stoploss has already triggered: its order type can only change to "
                "LIMIT or MARKET.",
                code=400,
            )
        new_qty = o.quantity if quantity is None else quantity
        new_price = price_paise if price_paise is not None else o.price
        new_trigger = trigger_paise if trigger_paise is not None else o.trigger
        if new_type not in PRICED_TYPES:
            new_price = None
        if new_type not in STOP_TYPES:
            new_trigger = None
        msg = (
            check_quantity(new_qty, o.inst)
            or check_prices(
                new_type,
                o.is_buy,
                new_price,
                new_trigger,
                o.inst,
                self._ltp(o.inst.token),
                check_trigger_side=not o.triggered,
            )
            or check_protection(new_type, o.req.market_protection)
        )
        if msg is None and new_qty < o.filled:
            msg = f"Quantity {new_qty} is below the filled quantity ({o.filled})."
        if msg is not None:
            raise BrokerError(msg, code=400)
        o.modifications += 1
        self._push(
            self._now + self._ack_ns, _MODIFY, o, (new_qty, new_type, new_price, new_trigger)
        )
        self._settle()

    async def cancel_order(self, order_id: str) -> None:
        o = self._live_order(order_id, "cancelled")
        if o.cancel_requested:
            return  # already on its way: a repeated cancel changes nothing
        o.cancel_requested = True
        self._push(self._now + self._ack_ns, _CANCEL, o, None)
        self._settle()

    async def updates(self) -> AsyncGenerator[OrderUpdate, None]:
        """Order updates as they happen. One consumer at a time (the OrderWatcher)."""
        if self._consuming:
            raise RuntimeError("PaperBroker.updates() already has a consumer")
        self._consuming = True
        try:
            while True:
                yield await self._queue.get()
        finally:
            self._consuming = False

    async def orders(self) -> list[OrderUpdate]:
        return [self._current(o) for o in self._orders.values()]

    async def find_by_tag(self, tag: str) -> OrderUpdate | None:
        o = self._by_tag.get(tag)
        return self._current(o) if o is not None else None

    async def positions(self) -> list[BrokerPosition]:
        out = []
        for p in self._positions.values():
            net = p.buy_qty - p.sell_qty
            pnl = p.sell_value - p.buy_value
            if net:
                pnl += net * self._ltp_or(p.token, 0)
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

    # ------------------------------------------------------------------ ticks

    def _on_quote(
        self,
        token: int,
        ts: int,
        last: float,
        bid: float | None,
        ask: float | None,
        volume: int,
        last_qty: int,
    ) -> None:
        if not 0.0 < last < math.inf:
            self.bad_ticks += 1
            return
        if ts > self._feed_now:
            self._feed_now = ts
            if ts > self._now:  # noqa: PLR1730  (per-tick path: a compare is cheaper than max())
                self._now = ts
        self._ended = False
        if self._timers and self._timers[0][0] <= ts:
            self._fire_timers(ts)
        prev = self._quotes.get(token)
        if prev is not None and ts < prev[0]:
            self.bad_ticks += 1  # never fill against an older price than already seen
            return
        self._quotes[token] = (ts, last, bid, ask, volume, last_qty)
        orders = self._working.get(token)
        if orders:
            traded = (
                0
                if self._share_ppm is None
                else traded_quantity(volume, prev[4] if prev is not None else None, last_qty)
            )
            self._match(orders, ts, round(last * 100), bid, ask, traded)

    def _match(
        self,
        orders: list[_Order],
        ts: int,
        last: int,
        bid: float | None,
        ask: float | None,
        traded: int,
    ) -> None:
        buy_touch = sell_touch = -1  # computed on first need: a pending stop needs only `last`
        for o in orders[:]:
            if ts < o.eligible_ns:
                continue
            is_buy = o.is_buy
            if o.status is _TRIGGER_PENDING:
                assert o.trigger is not None
                if (last < o.trigger) if is_buy else (last > o.trigger):
                    continue
                self._trigger(o, ts)
            if buy_touch < 0:
                inst = o.inst
                assert inst is not None
                buy_touch, sell_touch = touches(last, bid, ask, inst.tick)
            if o.arrived and not o.is_market:
                # Most ticks leave a resting limit where it was: skip the full rule.
                limit = o.price
                assert limit is not None
                if (
                    (buy_touch > limit and last >= limit)
                    if is_buy
                    else (sell_touch < limit and last <= limit)
                ):
                    continue
            self._execute(o, ts, last, buy_touch if is_buy else sell_touch, traded, quiet=False)

    def _trigger(self, o: _Order, ts: int) -> None:
        """The last price crossed the trigger: SL-M becomes a protected MARKET order,
        SL a LIMIT; either takes its first look at the market on this very tick."""
        o.triggered = True
        o.status = _OPEN
        o.arrived = False
        if o.order_type is OrderType.SLM:
            assert o.trigger is not None
            o.is_market = True
            o.cap = self._protection(o, o.trigger)
            self._arm_quiet(o, ts + self._wait_ns)
        self._emit(o, ts, extra={"triggered": True})

    def _execute(
        self, o: _Order, ts: int, last: int, touch: int, traded: int, *, quiet: bool
    ) -> None:
        """The order looks at the market: fill what the rules allow, then cancel an
        IOC remainder or keep a MARKET remainder's no-progress timer running."""
        inst = o.inst
        assert inst is not None
        resting = o.arrived
        o.arrived = True
        if o.is_market:
            if o.cap is None:
                o.cap = self._protection(o, last)
            px = market_fill_price(o.is_buy, touch, o.cap, self._slip_ppm, inst.tick)
        else:
            assert o.price is not None
            px = limit_fill_price(o.is_buy, o.price, touch, last, resting)
        filled = 0
        if px is not None:
            qty = o.quantity - o.filled
            if self._share_ppm is not None and not quiet:
                qty = _participation_quantity(qty, traded, self._share_ppm, inst.lot)
            if qty > 0:
                self._fill(o, qty, px, ts)
                filled = qty
        if o.status.is_terminal:
            return
        if o.validity is Validity.IOC:
            self._cancel_now(o, ts, _IOC_MESSAGE)
        elif o.is_market and filled and not quiet:
            self._arm_quiet(o, ts + self._wait_ns)

    def _fill(self, o: _Order, qty: int, px: int, ts: int) -> None:
        inst = o.inst
        assert inst is not None
        o.filled += qty
        o.value += qty * px
        key = (inst.token, o.product)
        pos = self._positions.get(key)
        if pos is None:
            pos = _Position(inst.exchange, inst.tradingsymbol, inst.token, o.product)
            self._positions[key] = pos
        if o.is_buy:
            pos.buy_qty += qty
            pos.buy_value += qty * px
        else:
            pos.sell_qty += qty
            pos.sell_value += qty * px
        if o.filled >= o.quantity:
            o.status = _COMPLETE
            self._retire(o, ts)
        else:
            o.status = _OPEN
        self._emit(o, ts, fill_qty=qty, fill_px=px)

    # ------------------------------------------------------------------ timers

    def _push(self, due: int, kind: int, o: _Order, arg: object) -> None:
        self._timer_seq += 1
        heapq.heappush(self._timers, (due, self._timer_seq, kind, o, arg))

    def _arm_quiet(self, o: _Order, due: int) -> None:
        o.quiet_gen += 1
        self._push(due, _QUIET, o, o.quiet_gen)

    def _settle(self) -> None:
        """Fires what is due now; after the feed ended, everything, in time order."""
        self._fire_timers(math.inf if self._ended else self._now)

    def _fire_timers(self, limit: float) -> None:
        timers = self._timers
        while timers and timers[0][0] <= limit:
            due, _, kind, o, arg = heapq.heappop(timers)
            self._now = max(self._now, due)
            if kind == _ACK:
                self._on_ack(o, due)
            elif kind == _QUIET:
                self._on_quiet(o, due, arg)
            elif kind == _MODIFY:
                self._on_modify(o, due, arg)
            else:
                self._on_cancel(o, due)

    def _on_ack(self, o: _Order, due: int) -> None:
        if o.status is not _PENDING:
            return
        inst = o.inst
        assert inst is not None
        o.status = _TRIGGER_PENDING if o.order_type in STOP_TYPES else _OPEN
        o.eligible_ns = due + self._fill_ns
        self._working.setdefault(inst.token, []).append(o)
        if o.is_market:
            ltp = self._ltp(inst.token)
            if ltp is not None:
                o.cap = self._protection(o, ltp)  # Kite converts at the LTP it knows
        self._emit(o, due)
        if o.status is _OPEN:
            self._arm_quiet(o, o.eligible_ns + self._wait_ns)

    def _on_quiet(self, o: _Order, due: int, gen: object) -> None:
        """No tick (or, for MARKET, no progress) for ``no_tick_wait_ns``: trade against
        the last known quote, without a participation limit."""
        if gen != o.quiet_gen or o.status is not _OPEN or (o.arrived and not o.is_market):
            return
        inst = o.inst
        assert inst is not None
        q = self._quotes.get(inst.token)
        if q is None:
            return  # no price known at all: the first tick decides
        last = to_paise(q[1])
        buy_touch, sell_touch = touches(last, q[2], q[3], inst.tick)
        self._execute(o, due, last, buy_touch if o.is_buy else sell_touch, 0, quiet=True)

    def _on_modify(self, o: _Order, due: int, arg: object) -> None:
        if o.status.is_terminal:
            return  # filled or cancelled before the modification reached the exchange
        assert isinstance(arg, tuple)
        qty, new_type, price, trigger = arg
        o.quantity = max(qty, o.filled)
        o.order_type = new_type
        o.price = price
        o.trigger = trigger
        o.order_ns = due
        if new_type in STOP_TYPES and not o.triggered:
            o.status = _TRIGGER_PENDING
            o.is_market = False
            o.cap = None
        elif new_type not in STOP_TYPES:
            o.status = _OPEN
            was_market = o.is_market
            o.is_market = new_type is OrderType.MARKET
            if not o.is_market:
                o.cap = None
            elif not was_market:
                ltp = self._ltp(o.req.instrument_token)
                o.cap = self._protection(o, ltp) if ltp is not None else None
        o.arrived = False
        o.eligible_ns = due + self._fill_ns
        if o.filled >= o.quantity:
            o.status = _COMPLETE
            self._retire(o, due)
            self._emit(o, due, extra={"modified": True})
            return
        self._emit(o, due, extra={"modified": True})
        if o.status is _OPEN:
            self._arm_quiet(o, o.eligible_ns + self._wait_ns)

    def _on_cancel(self, o: _Order, due: int) -> None:
        if not o.status.is_terminal:
            self._cancel_now(o, due, None)

    # ------------------------------------------------------------------ helpers

    def _segment(self, batch: TickColumns, start: int, end: int) -> None:
        """Rows ``start:end``, before which no timer falls due: rows of instruments
        with working orders go through the per-tick path, the rest are folded."""
        if self._working:
            live = np.fromiter(self._working, np.int64, len(self._working))
            hit = np.isin(batch.token[start:end], live)
            if hit.any():
                self._rows(batch, np.flatnonzero(hit) + start)
                rest = np.flatnonzero(~hit) + start
                if len(rest):
                    self._fold(batch, rest)
                return
        self._fold(batch, np.arange(start, end))

    def _rows(self, batch: TickColumns, idx: npt.NDArray[np.intp]) -> None:
        """Rows one by one through the per-tick path."""
        bid = batch.bid[idx].tolist()
        ask = batch.ask[idx].tolist()
        for t, ts, lp, b, a, v, lq in zip(
            batch.token[idx].tolist(),
            batch.ts_ns[idx].tolist(),
            batch.last_price[idx].tolist(),
            bid,
            ask,
            batch.volume[idx].tolist(),
            batch.last_qty[idx].tolist(),
            strict=True,
        ):
            self._on_quote(t, ts, lp, b, a, v, lq)

    def _fold(self, batch: TickColumns, idx: npt.NDArray[np.intp]) -> None:
        """Rows of instruments with no working order: only the last valid row of each
        instrument matters (it becomes the last known quote)."""
        last = batch.last_price[idx]
        ok = (last > 0.0) & np.isfinite(last)
        n_bad = int(len(idx) - np.count_nonzero(ok))
        if n_bad:
            self.bad_ticks += n_bad
            idx = idx[ok]
            if len(idx) == 0:
                return
        tok = batch.token[idx]
        # The last row of each token: unique over the reversed rows gives first positions.
        _, first_rev = np.unique(tok[::-1], return_index=True)
        rows = idx[len(idx) - 1 - first_rev]
        ts_max = int(batch.ts_ns[idx[-1]])
        if ts_max > self._feed_now:
            self._feed_now = ts_max
            self._now = max(self._now, ts_max)
        self._ended = False
        quotes = self._quotes
        for t, ts, lp, b, a, v, lq in zip(
            batch.token[rows].tolist(),
            batch.ts_ns[rows].tolist(),
            batch.last_price[rows].tolist(),
            batch.bid[rows].tolist(),
            batch.ask[rows].tolist(),
            batch.volume[rows].tolist(),
            batch.last_qty[rows].tolist(),
            strict=True,
        ):
            prev = quotes.get(t)
            if prev is not None and ts < prev[0]:
                self.bad_ticks += 1
                continue
            quotes[t] = (ts, lp, b, a, v, lq)

    def _advance(self, ts: int) -> None:
        self._feed_now = max(self._feed_now, ts)
        self._now = max(self._now, ts)

    def _ltp(self, token: int) -> int | None:
        q = self._quotes.get(token)
        return to_paise(q[1]) if q is not None else None

    def _ltp_or(self, token: int, default: int) -> int:
        ltp = self._ltp(token)
        return default if ltp is None else ltp

    def _protection(self, o: _Order, reference: int) -> int:
        inst = o.inst
        assert inst is not None
        mp = o.req.market_protection
        assert mp is not None
        pct = self.config.auto_protection_pct(inst.segment, reference) if mp == -1 else mp
        return protection_price(o.is_buy, reference, pct_to_ppm(pct), inst.tick)

    def order_rate_clock_ns(self) -> int:
        """The clock the order-rate limit is counted on: simulated time, moved on by
        wall time while simulated time stands still. Callers pace against it."""
        wall = self._wall_ns()
        if self._feed_now != self._rate_sim:
            self._rate_sim = self._feed_now
            self._rate_wall = wall
        return max(self._feed_now + (wall - self._rate_wall), self._rate_last)

    def _rate_limited(self) -> str | None:
        """Kite's order-rate limit, counted on the simulated clock; while simulated
        time stands still (feed paused or ended) wall time moves the window on, so a
        caller that paces its retries gets through, as it would on Kite."""
        limit = self.config.max_orders_per_second
        if limit is None:
            return None
        now = self.order_rate_clock_ns()
        self._rate_last = now
        recent = self._recent
        while recent and recent[0] <= now - _SECOND_NS:
            recent.popleft()
        if len(recent) >= limit:
            return f"Too many requests: at most {limit} orders per second are allowed."
        recent.append(now)
        return None

    def _live_order(self, order_id: str, verb: str) -> _Order:
        o = self._orders.get(order_id)
        if o is None:
            raise BrokerError(f"Invalid `order_id`: no order {order_id!r}.", code=400)
        if o.status.is_terminal:
            raise BrokerError(
                f"Order {order_id} cannot be {verb} as it is {_TERMINAL_WORDS[o.status]}. "
                "Check the order status.",
                code=400,
            )
        return o

    def _reject(self, o: _Order, msg: str) -> None:
        o.status = _REJECTED
        o.status_message = msg
        self._emit(o, self._now)

    def _cancel_now(self, o: _Order, ts: int, message: str | None) -> None:
        o.cancelled = o.quantity - o.filled
        o.status = _CANCELLED
        o.status_message = message
        self._retire(o, ts)
        self._emit(o, ts)

    def _retire(self, o: _Order, ts: int) -> None:
        """The order is terminal: off the book, and priced if anything executed."""
        inst = o.inst
        if inst is not None:
            orders = self._working.get(inst.token)
            if orders is not None and o in orders:
                orders.remove(o)
                if not orders:
                    del self._working[inst.token]
        if o.filled and inst is not None:
            try:
                o.charges = contract_note_charges(
                    inst.segment,
                    [ExecutedOrder(o.req.side, o.filled, Decimal(o.value) / 100)],
                    _ist_date(ts),
                    inst.exchange,
                    product=o.product.value,
                    schedule=self._charges,
                )
            except ChargesError as e:  # a gap in the rate data must not stop matching
                o.charges_error = str(e)

    def _emit(
        self,
        o: _Order,
        ts: int,
        *,
        fill_qty: int = 0,
        fill_px: int = 0,
        extra: dict[str, object] | None = None,
    ) -> None:
        upd = self._snapshot(o, ts, fill_qty, fill_px, extra)
        o.last_update = upd
        self._queue.put_nowait(upd)

    def _current(self, o: _Order) -> OrderUpdate:
        return o.last_update if o.last_update is not None else self._snapshot(o, 0, 0, 0, None)

    def _snapshot(
        self,
        o: _Order,
        ts: int,
        fill_qty: int,
        fill_px: int,
        extra: dict[str, object] | None,
    ) -> OrderUpdate:
        req = o.req
        status = o.status
        info: dict[str, object] = {"exchange_ts_ns": ts}
        if o.cap is not None and o.is_market:
            info["protection_price"] = o.cap / 100
        if o.charges is not None:
            info["charges"] = o.charges.as_dict()
        elif o.charges_error is not None:
            info["charges_error"] = o.charges_error
        if extra:
            info.update(extra)
        try:
            order_type = OrderType(req.order_type) if status is _REJECTED else o.order_type
        except ValueError:
            order_type = OrderType.MARKET  # an unparsable type was rejected; say so in the message
        return OrderUpdate(
            order_id=o.order_id,
            client_order_id=req.client_order_id,
            tag=req.tag,
            status=status,
            exchange=req.exchange,
            tradingsymbol=req.tradingsymbol,
            instrument_token=req.instrument_token,
            side=req.side,
            order_type=order_type,
            quantity=o.quantity,
            filled_quantity=o.filled,
            pending_quantity=0 if status.is_terminal else o.quantity - o.filled,
            cancelled_quantity=o.cancelled,
            average_price=o.value / o.filled / 100 if o.filled else 0.0,
            price=o.price / 100 if o.price is not None else None,
            trigger_price=o.trigger / 100 if o.trigger is not None else None,
            status_message=o.status_message,
            exchange_timestamp=_utc(ts),
            order_timestamp=_utc(o.order_ns),
            raw_status=_RAW_PENDING if status is _PENDING else status.value,
            last_fill_qty=fill_qty,
            last_fill_price=fill_px / 100 if fill_qty else None,
            extra=info,
        )
