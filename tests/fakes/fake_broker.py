"""An in-memory `Broker` for tests: fills on demand, and an update stream that
can reorder, duplicate, delay and reject.

Faithful to the protocol in ``aitrapp/brokers/base.py`` and to Kite's habits:

- ``place_order`` returns a broker order id. A business reject (bad price,
  missing market protection, a rule set with ``reject_when``) is not an
  exception: it arrives as a REJECTED update with a ``status_message``.
- ``modify_order`` / ``cancel_order`` of a finished order raise
  ``BrokerError(code=400)`` ("... cannot be cancelled as it is completed"),
  as Kite does; so do a 26th modification and a modify to MARKET/SL-M of an
  order without market protection. An order modified to MARKET fills at
  the last price. A repeated client id is *not* deduplicated (Kite does not
  either): ``placements(cid)`` lets a test prove nothing was placed twice.
- Updates are snapshots with cumulative ``filled_quantity`` and
  ``average_price`` (rupees), OPEN or TRIGGER PENDING while working.

Fills happen when the test says so (``fill``), or by matching a price set
with ``set_price`` (resting LIMIT/SL/SL-M orders; MARKET orders fill at the
last price, at once when ``auto_fill_market``).

Chaos, deterministic for a seed:

- ``hold()`` / ``release()``: delay delivery, then deliver everything held
  (shuffled when ``reorder``), as a burst.
- ``reorder``: updates waiting to be read leave in random order.
- ``duplicate_rate``: an update is delivered once more, later (so it also
  arrives *stale*, after newer snapshots of the same order).
- ``fail_next(op, applied=...)``: the next call of ``place``/``modify``/
  ``cancel``/``find_by_tag`` raises ``BrokerError``; with ``applied=True``
  the action happened anyway (an unknown outcome).
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from aitrapp.brokers.base import (
    BrokerError,
    BrokerPosition,
    OrderRequest,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Product,
)

_TAG = re.compile(r"[A-Za-z0-9]{1,20}")
_STOPS = (OrderType.SL, OrderType.SLM)
_PRICED = (OrderType.LIMIT, OrderType.SL)
_WORDS = {
    OrderStatus.COMPLETE: "completed",
    OrderStatus.CANCELLED: "cancelled",
    OrderStatus.REJECTED: "rejected",
}
Op = str  # "place" | "modify" | "cancel" | "find_by_tag"
MAX_MODIFICATIONS = 25  # Kite refuses the 26th modification of an order


@dataclass(slots=True)
class FakeOrder:
    order_id: str
    req: OrderRequest
    status: OrderStatus
    quantity: int
    price_paise: int | None
    trigger_paise: int | None
    filled: int = 0
    value_paise: int = 0  # sum of price x qty over fills
    cancelled: int = 0
    triggered: bool = False
    message: str | None = None
    modifications: int = 0
    updated_ns: int = 0
    fills: list[tuple[int, int]] = field(default_factory=list)  # (qty, price_paise)

    @property
    def remaining(self) -> int:
        return self.quantity - self.filled

    @property
    def is_live(self) -> bool:
        return not self.status.is_terminal

    def snapshot(self) -> OrderUpdate:
        last_qty, last_px = self.fills[-1] if self.fills else (0, 0)
        return OrderUpdate(
            order_id=self.order_id,
            client_order_id=self.req.client_order_id,
            tag=self.req.tag,
            status=self.status,
            exchange=self.req.exchange,
            tradingsymbol=self.req.tradingsymbol,
            instrument_token=self.req.instrument_token,
            side=self.req.side,
            order_type=self.req.order_type,
            quantity=self.quantity,
            filled_quantity=self.filled,
            pending_quantity=0 if self.status.is_terminal else self.remaining,
            cancelled_quantity=self.cancelled,
            average_price=self.value_paise / self.filled / 100 if self.filled else 0.0,
            price=self.price_paise / 100 if self.price_paise is not None else None,
            trigger_price=self.trigger_paise / 100 if self.trigger_paise is not None else None,
            status_message=self.message,
            exchange_timestamp=datetime.fromtimestamp(self.updated_ns / 1e9, UTC),
            raw_status=self.status.value,
            last_fill_qty=last_qty,
            last_fill_price=last_px / 100 if last_qty else None,
        )


@dataclass(slots=True)
class _Failure:
    op: Op
    applied: bool
    message: str
    code: int | None = None


class FakeBroker:
    name = "fake"

    def __init__(
        self,
        *,
        seed: int = 0,
        reorder: bool = False,
        duplicate_rate: float = 0.0,
        auto_fill_market: bool = True,
        require_market_protection: bool = True,
        emit_pending: bool = False,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.rng = random.Random(seed)
        self.reorder = reorder
        self.duplicate_rate = duplicate_rate
        self.auto_fill_market = auto_fill_market
        self.require_market_protection = require_market_protection
        self.emit_pending = emit_pending
        self._clock = clock or (lambda: 0)
        self.orders_by_id: dict[str, FakeOrder] = {}
        self.requests: list[OrderRequest] = []  # every place_order call, in order
        self.emitted: list[OrderUpdate] = []  # every snapshot, in the order it happened
        self.delivered: list[OrderUpdate] = []
        self.calls: list[tuple[Op, str]] = []
        self._ltp: dict[int, int] = {}
        self._next_id = 1
        self._queue: asyncio.Queue[OrderUpdate] = asyncio.Queue()
        self._waiting: list[OrderUpdate] = []  # emitted, not yet handed to the reader
        self._late: list[OrderUpdate] = []  # duplicates to deliver after newer updates
        self._held: list[OrderUpdate] | None = None
        self._failures: list[_Failure] = []
        self._rejects: list[tuple[Callable[[OrderRequest], bool], str, int]] = []
        self._modify_rejects: list[tuple[Callable[[FakeOrder], bool], str]] = []
        self._reading = False
        self._flush_scheduled = False

    # ------------------------------------------------------------------ test controls

    def set_price(self, token: int, price_paise: int, *, match_resting: bool = True) -> None:
        """Last traded price of `token`; working orders that it crosses fill."""
        self._ltp[token] = price_paise
        for o in list(self.orders_by_id.values()):
            ours = o.is_live and o.req.instrument_token == token
            if ours and (o.req.order_type is OrderType.MARKET or match_resting):
                self._match(o, price_paise)

    def fill(self, ref: str, qty: int | None = None, price_paise: int | None = None) -> FakeOrder:
        """Fills a working order (by client id, broker id or tag): all of it by
        default, at its limit / trigger / the last price unless given."""
        o = self.order(ref)
        if not o.is_live:
            raise AssertionError(f"{ref} is {o.status}, cannot fill")
        q = o.remaining if qty is None else qty
        if not 0 < q <= o.remaining:
            raise AssertionError(f"fill of {q} for {ref} with {o.remaining} remaining")
        px = price_paise if price_paise is not None else self._natural_price(o)
        self._execute(o, q, px)
        return o

    def cancel_externally(self, ref: str, message: str = "Cancelled by the exchange") -> None:
        o = self.order(ref)
        o.message = message
        self._cancel(o)

    def reject_when(
        self, predicate: Callable[[OrderRequest], bool], message: str, times: int = 1
    ) -> None:
        """The next `times` placements matching `predicate` are rejected (REJECTED update)."""
        self._rejects.append((predicate, message, times))

    def reject_modify_when(self, predicate: Callable[[FakeOrder], bool], message: str) -> None:
        self._modify_rejects.append((predicate, message))

    def clear_rules(self) -> None:
        """Forget every pending reject rule and scheduled failure."""
        self._rejects.clear()
        self._modify_rejects.clear()
        self._failures.clear()

    def fail_next(
        self, op: Op, *, applied: bool = False, message: str = "timeout", code: int | None = None
    ) -> None:
        """The next `op` call raises BrokerError; `applied`: it happened anyway;
        `code`: the HTTP status it carries (429: refused on arrival, as Kite does)."""
        if op not in ("place", "modify", "cancel", "find_by_tag"):
            raise ValueError(f"unknown op {op!r}")
        self._failures.append(_Failure(op, applied, message, code))

    def hold(self) -> None:
        """Delay delivery of every update from now on until `release`."""
        if self._held is None:
            self._held = []

    def release(self) -> None:
        held, self._held = self._held or [], None
        if self.reorder:
            self.rng.shuffle(held)
        for u in held:
            self._stage(u)

    def undelivered(self) -> int:
        return self._queue.qsize() + len(self._waiting) + len(self._late) + len(self._held or [])

    @property
    def reader_idle(self) -> bool:
        """The reader waits for updates and none is on its way."""
        return self._reading and self.undelivered() == 0

    async def settled(self, *, quiet_turns: int = 10, max_turns: int = 200_000) -> None:
        """Returns once every update has been read (and acted on: the reader
        is waiting again) for `quiet_turns` turns of the loop in a row."""
        quiet = 0
        for _ in range(max_turns):
            await asyncio.sleep(0)
            quiet = quiet + 1 if self.reader_idle else 0
            if quiet >= quiet_turns:
                return
        raise AssertionError(f"updates did not settle: {self.undelivered()} undelivered")

    def order(self, ref: str) -> FakeOrder:
        if ref in self.orders_by_id:
            return self.orders_by_id[ref]
        matches = [
            o for o in self.orders_by_id.values() if ref in (o.req.client_order_id, o.req.tag)
        ]
        if not matches:
            raise KeyError(f"no order {ref!r}")
        return matches[-1]

    def placements(self, client_order_id: str) -> int:
        return sum(1 for r in self.requests if r.client_order_id == client_order_id)

    def live_orders(self) -> list[FakeOrder]:
        return [o for o in self.orders_by_id.values() if o.is_live]

    def net_position(self, token: int) -> int:
        net = 0
        for o in self.orders_by_id.values():
            if o.req.instrument_token == token:
                net += o.filled if o.req.side == "BUY" else -o.filled
        return net

    def gross_pnl_paise(self, token: int) -> int:
        """Sells minus buys over every fill of `token` (flat position: realized PnL)."""
        pnl = 0
        for o in self.orders_by_id.values():
            if o.req.instrument_token == token:
                pnl += o.value_paise if o.req.side == "SELL" else -o.value_paise
        return pnl

    # ------------------------------------------------------------------ Broker protocol

    async def place_order(self, req: OrderRequest) -> str:
        self.calls.append(("place", req.client_order_id))
        failure = self._take_failure("place")
        if failure is not None and not failure.applied:
            raise BrokerError(
                f"place {req.tag}: {failure.message}", retryable=True, code=failure.code
            )
        self.requests.append(req)
        order_id = f"F{self._next_id}"
        self._next_id += 1
        o = FakeOrder(
            order_id,
            req,
            OrderStatus.PENDING,
            req.quantity,
            req.price_paise if req.order_type in _PRICED else None,
            req.trigger_paise if req.order_type in _STOPS else None,
            updated_ns=self._clock(),
        )
        self.orders_by_id[order_id] = o
        reason = self._check(req)
        if reason is not None:
            o.status, o.message = OrderStatus.REJECTED, reason
            self._emit(o)
        else:
            if self.emit_pending:
                self._emit(o)
            o.status = OrderStatus.TRIGGER_PENDING if req.order_type in _STOPS else OrderStatus.OPEN
            self._emit(o)
            ltp = self._ltp.get(req.instrument_token)
            if ltp is not None and (
                req.order_type is not OrderType.MARKET or self.auto_fill_market
            ):
                self._match(o, ltp)
        if failure is not None:
            raise BrokerError(f"place {req.tag}: {failure.message}", retryable=True)
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
        self.calls.append(("modify", order_id))
        failure = self._take_failure("modify")
        if failure is not None and not failure.applied:
            raise BrokerError(f"modify {order_id}: {failure.message}", retryable=True)
        o = self._live(order_id, "modified")
        for predicate, message in self._modify_rejects:
            if predicate(o):
                raise BrokerError(message, code=400)
        if o.modifications >= MAX_MODIFICATIONS:
            raise BrokerError("Maximum allowed order modifications exceeded.", code=400)
        new_qty = o.quantity if quantity is None else quantity
        if new_qty <= o.filled:
            raise BrokerError(
                f"Quantity {new_qty} must exceed the filled quantity {o.filled}.", code=400
            )
        if (
            self.require_market_protection
            and order_type in (OrderType.MARKET, OrderType.SLM)
            and not o.req.market_protection
        ):
            # Kite takes the band with the modify; the Broker protocol carries the
            # order's own, and a stop-limit placed without one has none.
            raise BrokerError(
                "Market orders without market protection are not allowed via API.", code=400
            )
        if order_type is not None and order_type is not o.req.order_type:
            o.req = replace(o.req, order_type=order_type)
        o.quantity = new_qty
        if price_paise is not None:
            o.price_paise = price_paise
        if trigger_paise is not None:
            o.trigger_paise = trigger_paise
        o.modifications += 1
        self._emit(o)
        ltp = self._ltp.get(o.req.instrument_token)
        if ltp is not None and (o.req.order_type is not OrderType.MARKET or self.auto_fill_market):
            self._match(o, ltp)
        if failure is not None:
            raise BrokerError(f"modify {order_id}: {failure.message}", retryable=True)

    async def cancel_order(self, order_id: str) -> None:
        self.calls.append(("cancel", order_id))
        failure = self._take_failure("cancel")
        if failure is not None and not failure.applied:
            raise BrokerError(f"cancel {order_id}: {failure.message}", retryable=True)
        o = self._live(order_id, "cancelled")
        self._cancel(o)
        if failure is not None:
            raise BrokerError(f"cancel {order_id}: {failure.message}", retryable=True)

    async def updates(self) -> AsyncIterator[OrderUpdate]:
        while True:
            self._reading = True
            try:
                update = await self._queue.get()
            finally:
                self._reading = False
            self.delivered.append(update)
            yield update

    async def orders(self) -> list[OrderUpdate]:
        return [o.snapshot() for o in self.orders_by_id.values()]

    async def find_by_tag(self, tag: str) -> OrderUpdate | None:
        self.calls.append(("find_by_tag", tag))
        failure = self._take_failure("find_by_tag")
        if failure is not None:
            raise BrokerError(f"orders: {failure.message}", retryable=True)
        matches = [o for o in self.orders_by_id.values() if o.req.tag == tag]
        accepted = [o for o in matches if o.status is not OrderStatus.REJECTED]
        found = (accepted or matches)[-1:] if matches else []
        return found[0].snapshot() if found else None

    async def positions(self) -> list[BrokerPosition]:
        out: dict[int, BrokerPosition] = {}
        for o in self.orders_by_id.values():
            if not o.filled:
                continue
            t = o.req.instrument_token
            signed = o.filled if o.req.side == "BUY" else -o.filled
            prev = out.get(t)
            qty = signed + (prev.quantity if prev else 0)
            out[t] = BrokerPosition(
                o.req.exchange, o.req.tradingsymbol, t, Product(o.req.product), qty, 0.0
            )
        return list(out.values())

    # ------------------------------------------------------------------ internals

    def _check(self, req: OrderRequest) -> str | None:
        for i, (predicate, message, times) in enumerate(self._rejects):
            if predicate(req):
                if times <= 1:
                    del self._rejects[i]
                else:
                    self._rejects[i] = (predicate, message, times - 1)
                return message
        if not _TAG.fullmatch(req.tag):
            return f"Invalid `tag` {req.tag!r}: 1-20 letters or digits."
        if req.quantity <= 0:
            return f"Invalid quantity {req.quantity}."
        if req.order_type in _PRICED and not (req.price_paise or 0) > 0:
            return "A positive `price` is required for LIMIT and SL orders."
        if req.order_type in _STOPS and not (req.trigger_paise or 0) > 0:
            return "A positive `trigger_price` is required for SL and SL-M orders."
        if (
            self.require_market_protection
            and req.order_type in (OrderType.MARKET, OrderType.SLM)
            and not req.market_protection
        ):
            return "Market orders without market protection are not allowed via API."
        return None

    def _live(self, order_id: str, verb: str) -> FakeOrder:
        o = self.orders_by_id.get(order_id)
        if o is None:
            raise BrokerError(f"Invalid `order_id` {order_id!r}.", code=400)
        if not o.is_live:
            raise BrokerError(
                f"Order {order_id} cannot be {verb} as it is {_WORDS[o.status]}.", code=400
            )
        return o

    def _take_failure(self, op: Op) -> _Failure | None:
        for i, f in enumerate(self._failures):
            if f.op == op:
                return self._failures.pop(i)
        return None

    def _natural_price(self, o: FakeOrder) -> int:
        if o.req.order_type is OrderType.LIMIT and o.price_paise is not None:
            return o.price_paise
        if o.req.order_type in _STOPS and o.trigger_paise is not None and not o.triggered:
            return o.trigger_paise
        if o.req.order_type is OrderType.SL and o.price_paise is not None:
            return o.price_paise
        ltp = self._ltp.get(o.req.instrument_token)
        if ltp is None:
            raise AssertionError(f"no price to fill {o.req.client_order_id} at: set_price first")
        return ltp

    def _match(self, o: FakeOrder, ltp: int) -> None:
        buy = o.req.side == "BUY"
        kind = o.req.order_type
        if kind in _STOPS and not o.triggered:
            hit = ltp >= (o.trigger_paise or 0) if buy else ltp <= (o.trigger_paise or 0)
            if not hit:
                return
            o.triggered = True
        if kind in (OrderType.MARKET, OrderType.SLM):
            self._execute(o, o.remaining, ltp)
        elif o.price_paise is not None and (ltp <= o.price_paise if buy else ltp >= o.price_paise):
            self._execute(o, o.remaining, o.price_paise)

    def _execute(self, o: FakeOrder, qty: int, price_paise: int) -> None:
        o.filled += qty
        o.value_paise += qty * price_paise
        o.fills.append((qty, price_paise))
        if o.filled == o.quantity:
            o.status = OrderStatus.COMPLETE
        elif o.req.order_type in _STOPS:
            o.status = OrderStatus.OPEN  # triggered and partly filled
        self._emit(o)

    def _cancel(self, o: FakeOrder) -> None:
        o.status = OrderStatus.CANCELLED
        o.cancelled = o.remaining
        self._emit(o)

    def _emit(self, o: FakeOrder) -> None:
        o.updated_ns = self._clock()
        u = o.snapshot()
        self.emitted.append(u)
        if self._held is not None:
            self._held.append(u)
        else:
            self._stage(u)

    def _stage(self, u: OrderUpdate) -> None:
        self._waiting.append(u)
        if self.rng.random() < self.duplicate_rate:
            self._late.append(u)
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        # Everything emitted in one turn of the loop leaves together (so it can
        # be shuffled); outside a loop (a sync test) it leaves at once.
        if self._flush_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._flush()
            return
        self._flush_scheduled = True
        loop.call_soon(self._flush)

    def _flush(self) -> None:
        """Hands what is waiting to the reader (shuffled when reordering). Late
        duplicates go a turn later, behind newer updates: they arrive stale."""
        self._flush_scheduled = False
        batch, self._waiting = self._waiting, []
        if not batch:
            batch, self._late = self._late, []
        elif self._late:
            self._schedule_flush()
        if self.reorder:
            self.rng.shuffle(batch)
        for u in batch:
            self._queue.put_nowait(u)
