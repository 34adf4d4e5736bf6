"""The live broker: Zerodha Kite Connect behind the `Broker` protocol.

Placing (variety ``regular``):

- Prices arrive in paise, leave as rupees with exactly two decimals, rounded
  to the instrument's tick (a limit never worse than asked: BUY down, SELL
  up; a trigger to the nearest tick). MARKET and SL-M always carry
  ``market_protection`` (the request's, else the configured default, -1 =
  Kite's automatic band): Kite rejects API market orders without it.
- Quantities must be whole lots and at most the freeze quantity. Larger
  orders are *refused* here, not sliced: every slice would need its own
  client id and the OCO bookkeeping assumes one order per role; the risk gate
  already keeps plans under the freeze quantity.
- The tag is the plan's broker tag (1-20 letters/digits); Kite rejects
  longer tags, and so do we, before sending.
- ``RateLimiter`` keeps order requests (place, modify, cancel) within 10/s
  and 400/min and every other request within 10/s, counting each request
  until it completes (Kite counts arrivals: a request stamped when sent has
  no margin). Stops and exits go ahead of queued entries and cancels. A 429
  is retried with backoff (the order was not accepted); so is a read.
  Everything else with an unknown outcome (timeouts, 5xx, network) is never
  retried blindly: the tag is looked up in ``orders()`` and the order found
  there is the answer; if it is not there, ``BrokerError`` tells the caller.
- One client id is never placed twice: the registry of this process, seeded
  at start from the day's order book and kept current by every update, is
  consulted first.
- Business rejects (Kite 4xx InputException/OrderException, or our own
  checks) come back as a REJECTED ``OrderUpdate`` on ``updates()``, with the
  reason in ``status_message``; ``place_order`` then returns a local id
  ``"REJECTED:<tag>"`` that no broker order will ever have.

Updates come from Kite's websocket order messages and, as a fallback that
also catches anything missed, from polling ``orders()`` every few seconds;
both pass one filter that drops duplicates and stale reorders, so the stream
carries each change once, shaped exactly like the paper broker's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from aitrapp import Instrument, Price, parse_order_client_id
from aitrapp.brokers.base import (
    LOCAL_REJECT_PREFIX,
    BrokerError,
    BrokerPosition,
    OrderRequest,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
)
from aitrapp.exceptions import AitrappError
from aitrapp.kite.auth import Secret, redact
from aitrapp.kite.client import KiteRest
from aitrapp.kite.errors import (
    KiteApiError,
    KiteRateLimitError,
    KiteRejectedError,
    KiteTokenError,
    KiteUnavailableError,
)
from aitrapp.kite.mapping import KitePayloadError, map_status, to_position, to_update
from aitrapp.kite.rate_limit import (
    KITE_MARGIN_S,
    KITE_ORDER_LIMITS,
    KITE_OTHER_LIMITS,
    Priority,
    RateLimiter,
)
from aitrapp.kite.ws import DEFAULT_WS_ROOT, KiteWebSocket

log = logging.getLogger(__name__)
T = TypeVar("T")

VARIETY = "regular"
TAG_MAX = 20
MAX_MODIFICATIONS = 25  # Kite refuses the 26th modification of an order
TOKEN_ERROR_POLL_INTERVAL = 30.0  # seconds between polls while the session is dead
_TAG_RE = re.compile(r"[A-Za-z0-9]{1,20}")
_MARKET_TYPES = (OrderType.MARKET, OrderType.SLM)
_STOP_TYPES = (OrderType.SL, OrderType.SLM)
# How far along an order is; an interim status after a main one carries nothing new.
_RANK = {
    OrderStatus.PENDING: 0,
    OrderStatus.TRIGGER_PENDING: 1,
    OrderStatus.OPEN: 2,
    OrderStatus.COMPLETE: 3,
    OrderStatus.CANCELLED: 3,
    OrderStatus.REJECTED: 3,
}

InstrumentLookup = Callable[[int], Instrument] | Mapping[int, Instrument]


def rupees(paise: int) -> str:
    """Kite's price field: rupees with exactly two decimals, never a float."""
    if paise < 0:
        raise ValueError("prices are positive")
    return f"{paise // 100}.{paise % 100:02d}"


def valid_market_protection(value: float) -> bool:
    return value == -1 or 0 < value <= 100


@dataclass(slots=True)
class _Known:
    """What we remember about one broker order (for dedup, modify and cancel)."""

    exchange: str
    tradingsymbol: str
    instrument_token: int
    side: Side
    order_type: OrderType
    quantity: int
    tag: str | None
    variety: str = VARIETY
    status: OrderStatus = OrderStatus.PENDING
    filled: int = 0
    average_price: float = 0.0
    signature: tuple[object, ...] = ()
    shape: tuple[object, ...] = ()
    modifications: int = 0


class _RejectError(Exception):
    """A request we refuse before it reaches Kite (becomes a REJECTED update)."""


class KiteBroker:
    name = "kite"

    def __init__(
        self,
        *,
        api_key: str,
        access_token: Secret | str,
        instruments: InstrumentLookup,
        api_root: str | None = None,
        ws_root: str | None = DEFAULT_WS_ROOT,
        order_stream: bool = True,
        market_protection: float = -1,
        limiter: RateLimiter | None = None,
        read_limiter: RateLimiter | None = None,
        resolver: Callable[[str], str | None] | None = None,
        poll_interval: float | None = 3.0,
        rate_limit_retries: int = 3,
        retry_backoff: float = 0.5,
        confirm_attempts: int = 2,
        confirm_delay: float = 0.5,
        http_timeout: float = 7.0,
        ws_backoff_initial: float = 0.5,
        ws_stale_after: float = 15.0,
    ) -> None:
        if not valid_market_protection(market_protection):
            raise ValueError(
                f"market_protection must be -1 (automatic) or in (0, 100], got {market_protection}"
            )
        token = access_token if isinstance(access_token, Secret) else Secret(access_token)
        self._rest = KiteRest(api_key, token, root=api_root, timeout=http_timeout)
        self._ws = (
            KiteWebSocket(
                api_key=api_key,
                access_token=token,
                root=ws_root or DEFAULT_WS_ROOT,
                on_order=self.ingest_order_update,
                backoff_initial=ws_backoff_initial,
                stale_after=ws_stale_after,
                name="kite-orders",
            )
            if order_stream
            else None
        )
        self._instruments = instruments
        self.market_protection = market_protection
        self._limiter = limiter or RateLimiter(KITE_ORDER_LIMITS, margin_s=KITE_MARGIN_S)
        self._reads = read_limiter or RateLimiter(KITE_OTHER_LIMITS, margin_s=KITE_MARGIN_S)
        self._resolver = resolver
        self._poll_interval = poll_interval
        self._rl_retries = rate_limit_retries
        self._backoff = retry_backoff
        self._confirm_attempts = max(1, confirm_attempts)
        self._confirm_delay = confirm_delay
        self._queue: asyncio.Queue[OrderUpdate] = asyncio.Queue()
        self._known: dict[str, _Known] = {}  # broker order id -> state
        self._by_tag: dict[str, list[str]] = {}  # tag -> broker order ids, oldest first
        self._cids: dict[str, str] = {}  # tag -> client order id (placed by this process)
        self._placed: dict[str, str] = {}  # client order id -> broker order id
        self._cid_locks: dict[str, asyncio.Lock] = {}
        self._poll_task: asyncio.Task[None] | None = None
        self._poll_now = asyncio.Event()
        self._started = False
        self.stats: dict[str, int] = {
            "placed": 0,
            "rejected": 0,
            "rate_limited": 0,
            "unknown_outcome": 0,
            "polls": 0,
            "poll_errors": 0,
            "updates": 0,
        }
        self.last_error: str | None = None

    def __repr__(self) -> str:
        return f"KiteBroker(root={self._rest.root!r}, orders_known={len(self._known)})"

    # ---- lifecycle ----

    async def start(self) -> None:
        """Recover the day's orders (registry + one replay on updates), then listen."""
        if self._started:
            return
        self._started = True
        await self._poll_once()
        if self._ws is not None:
            await self._ws.start()
        if self._poll_interval:
            self._poll_task = asyncio.create_task(self._poll_loop(), name="kite-order-poll")

    async def stop(self) -> None:
        self._started = False
        task, self._poll_task = self._poll_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._ws is not None:
            await self._ws.stop()
        self._rest.close()

    @property
    def stream_connected(self) -> bool:
        return self._ws is not None and self._ws.connected

    @property
    def order_stream(self) -> KiteWebSocket | None:
        return self._ws

    # ---- the Broker protocol ----

    async def place_order(self, req: OrderRequest) -> str:
        lock = self._cid_locks.setdefault(req.client_order_id, asyncio.Lock())
        async with lock:
            done = self._placed.get(req.client_order_id)
            if done is not None:
                return done
            existing = self._live_or_done(req.tag)
            if existing is not None:
                log.warning(
                    "%s already at the broker as order %s: not placed again",
                    req.client_order_id,
                    existing,
                )
                self._remember_placed(req, existing)
                return existing
            try:
                params = self._params(req)
            except _RejectError as exc:
                return self._reject(req, str(exc))
            self._cids[req.tag] = req.client_order_id  # updates may beat the HTTP answer
            return await self._send(req, params)

    @staticmethod
    def _placement_priority(req: OrderRequest) -> Priority:
        """Stops and exits protect an open position: they go first."""
        try:
            role = parse_order_client_id(req.client_order_id)[1]
        except AitrappError:
            return Priority.NORMAL
        return Priority.PROTECTIVE if role.startswith(("STOP", "EXIT")) else Priority.NORMAL

    def _modify_priority(self, known: _Known, order_type: OrderType | None) -> Priority:
        """Turning an order into a market exit, or moving a stop, protects a position."""
        if order_type is OrderType.MARKET or known.order_type in _STOP_TYPES:
            return Priority.PROTECTIVE
        cid = self._cids.get(known.tag or "")
        if cid is not None:
            try:
                role = parse_order_client_id(cid)[1]
            except AitrappError:
                return Priority.NORMAL
            if role.startswith(("STOP", "EXIT")):  # STOPn: a lost stop placed again
                return Priority.PROTECTIVE
        return Priority.NORMAL

    async def _send(self, req: OrderRequest, params: dict[str, Any]) -> str:
        before = frozenset(self._by_tag.get(req.tag, ()))  # earlier (rejected) orders of the tag
        priority = self._placement_priority(req)
        attempt = 0
        while True:
            try:
                async with self._limiter.permit(priority):
                    order_id = await self._rest.place_order(**params)
            except KiteRateLimitError as exc:
                self.stats["rate_limited"] += 1
                delay = self._backoff * 2**attempt
                self._limiter.penalize(delay)
                if attempt < self._rl_retries:
                    attempt += 1
                    log.warning(
                        "place %s: 429, retry %d in %.2fs", req.client_order_id, attempt, delay
                    )
                    await asyncio.sleep(delay)
                    continue
                return await self._resolve_unknown(req, exc, before)
            except KiteRejectedError as exc:
                return self._reject(req, f"{exc.error_type}: {exc.message}", code=exc.code)
            except KiteUnavailableError as exc:
                return await self._resolve_unknown(req, exc, before)
            self.stats["placed"] += 1
            self._remember_placed(req, order_id)
            return order_id

    async def _resolve_unknown(
        self, req: OrderRequest, exc: KiteApiError, before: frozenset[str]
    ) -> str:
        """The outcome is unknown: the order book decides, never a blind retry.

        An order under the tag that was not there before this request is its
        result; if Kite recorded it as REJECTED, that update is already on the
        stream (``orders()`` feeds it) and its id is the answer all the same.
        """
        self.stats["unknown_outcome"] += 1
        for i in range(self._confirm_attempts):
            if i:
                await asyncio.sleep(self._confirm_delay)
            try:
                book = await self.orders()
            except KiteTokenError:
                raise
            except BrokerError:
                continue
            new = [o for o in book if o.tag == req.tag and o.order_id not in before]
            if new:
                found = new[-1]
                log.warning(
                    "place %s: %s, but the order is at the broker as %s (%s)",
                    req.client_order_id,
                    exc,
                    found.order_id,
                    found.status.value,
                )
                if found.status is not OrderStatus.REJECTED:
                    self._remember_placed(req, found.order_id)
                    self.stats["placed"] += 1
                return found.order_id
        raise BrokerError(
            f"place {req.client_order_id}: outcome unknown ({type(exc).__name__}: {exc}); "
            f"tag {req.tag} not in the order book: look it up again before re-placing",
            retryable=True,
            code=exc.code,
        )

    async def modify_order(
        self,
        order_id: str,
        *,
        quantity: int | None = None,
        price_paise: int | None = None,
        trigger_paise: int | None = None,
        order_type: OrderType | None = None,
    ) -> None:
        known = await self._known_order(order_id)
        if known.modifications >= MAX_MODIFICATIONS:
            raise BrokerError(
                f"modify {order_id}: Kite allows at most {MAX_MODIFICATIONS} modifications",
                retryable=False,
            )
        new_type = order_type or known.order_type
        params: dict[str, Any] = {}
        try:
            inst = self._instrument(known.instrument_token)
            if quantity is not None:
                self._check_quantity(quantity, inst)
                if quantity <= known.filled:
                    raise _RejectError(f"quantity {quantity} must exceed the filled {known.filled}")
                params["quantity"] = quantity
            if price_paise is not None:
                params["price"] = rupees(self._round_price(price_paise, inst, known.side))
            if trigger_paise is not None:
                params["trigger_price"] = rupees(self._round_trigger(trigger_paise, inst))
        except _RejectError as exc:
            raise BrokerError(f"modify {order_id}: {exc}", retryable=False) from None
        if order_type is not None:
            params["order_type"] = order_type.value
        if new_type in _MARKET_TYPES:
            params["market_protection"] = self.market_protection
        if not params:
            return
        await self._mutate(
            f"modify {order_id}",
            self._modify_priority(known, order_type),
            self._rest.modify_order,
            known.variety,
            order_id,
            **params,
        )
        known.modifications += 1

    async def cancel_order(self, order_id: str) -> None:
        known = await self._known_order(order_id)
        try:
            await self._mutate(
                f"cancel {order_id}",
                Priority.NORMAL,
                self._rest.cancel_order,
                known.variety,
                order_id,
            )
        except BrokerError as exc:
            if not exc.retryable or isinstance(exc, KiteTokenError):
                raise
            # Unknown outcome: the order book says whether the cancel happened.
            await self._poll_once()
            if self._known.get(order_id, known).status is OrderStatus.CANCELLED:
                return
            raise

    async def _mutate(
        self, what: str, priority: Priority, fn: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> None:
        attempt = 0
        while True:
            try:
                async with self._limiter.permit(priority):
                    await fn(*args, **kwargs)
                return
            except KiteRateLimitError as exc:
                self.stats["rate_limited"] += 1
                delay = self._backoff * 2**attempt
                self._limiter.penalize(delay)
                if attempt < self._rl_retries:
                    attempt += 1
                    await asyncio.sleep(delay)
                    continue
                raise BrokerError(
                    f"{what}: rate limited ({exc})", retryable=True, code=429
                ) from None
            except KiteRejectedError as exc:
                raise BrokerError(
                    f"{what}: {exc.error_type}: {exc.message}", retryable=False, code=exc.code
                ) from None
            except KiteUnavailableError as exc:
                raise BrokerError(
                    f"{what}: outcome unknown ({exc})", retryable=True, code=exc.code
                ) from None

    async def updates(self) -> AsyncIterator[OrderUpdate]:
        while True:
            yield await self._queue.get()

    async def orders(self) -> list[OrderUpdate]:
        rows = await self._fetch_orders(Priority.NORMAL)
        out = []
        for doc in rows:
            self._ingest(doc, source="poll")
            try:
                status = map_status(str(doc.get("status") or "")) or OrderStatus.PENDING
                out.append(to_update(doc, status=status, resolve=self._resolve))
            except KitePayloadError as exc:
                log.warning("orders(): skipped a malformed order: %s", exc)
        return out

    async def find_by_tag(self, tag: str) -> OrderUpdate | None:
        matches = [o for o in await self.orders() if o.tag == tag]
        if not matches:
            return None
        # Kite records RMS rejections as orders: an accepted order under the tag wins.
        accepted = [o for o in matches if o.status is not OrderStatus.REJECTED]
        return (accepted or matches)[-1]

    async def positions(self) -> list[BrokerPosition]:
        try:
            data = await self._read(self._rest.positions, Priority.NORMAL)
        except KiteTokenError:
            raise
        except KiteApiError as exc:
            raise BrokerError(f"positions: {exc}", retryable=True, code=exc.code) from None
        net = data.get("net", [])
        if not isinstance(net, list):
            raise BrokerError("positions: 'net' is not a list", retryable=False)
        try:
            return [to_position(row) for row in net if isinstance(row, dict)]
        except KitePayloadError as exc:
            raise BrokerError(str(exc), retryable=False) from None

    # ---- order updates: websocket + polling, one filter ----

    def ingest_order_update(self, doc: Mapping[str, Any]) -> None:
        """A websocket order message (also callable by a feed sharing its socket)."""
        self._ingest(doc, source="ws")

    def _ingest(self, doc: Mapping[str, Any], *, source: str) -> None:
        raw = str(doc.get("status") or "")
        status = map_status(raw)
        if status is None:
            if source == "ws":  # "UPDATE" and the like: read the real state from the book
                self._poll_now.set()
                return
            log.warning(
                "order %s: unknown Kite status %r treated as pending", doc.get("order_id"), raw
            )
            status = OrderStatus.PENDING
        order_id = str(doc.get("order_id") or "")
        if not order_id:
            log.warning("order update without order_id ignored")
            return
        try:
            filled = int(doc.get("filled_quantity") or 0)
            pending = int(doc.get("pending_quantity") or 0)
            cancelled = int(doc.get("cancelled_quantity") or 0)
            avg = float(doc.get("average_price") or 0.0)
            shape = (
                str(doc.get("order_type")),
                int(doc.get("quantity") or 0),
                float(doc.get("price") or 0.0),
                float(doc.get("trigger_price") or 0.0),
            )
        except (TypeError, ValueError):
            log.warning("order %s: malformed quantities/prices, ignored", order_id)
            return
        signature = (status, filled, avg, pending, cancelled, shape)
        prev = self._known.get(order_id)
        if prev is not None:
            if prev.status.is_terminal or filled < prev.filled:
                return  # terminal is final; fewer fills is an old message
            if signature == prev.signature:
                return
            if filled == prev.filled and _RANK[status] < _RANK[prev.status] and shape == prev.shape:
                return  # an interim/older status after a newer one
        prev_filled = prev.filled if prev else 0
        prev_avg = prev.average_price if prev else 0.0
        delta = filled - prev_filled
        last_price = None
        if delta > 0 and avg > 0:
            last_price = round((avg * filled - prev_avg * prev_filled) / delta, 2)
        try:
            update = to_update(
                doc,
                status=status,
                resolve=self._resolve,
                last_fill_qty=max(0, delta),
                last_fill_price=last_price,
            )
        except KitePayloadError as exc:
            log.warning("order %s: %s", order_id, exc)
            return
        known = prev or _Known(
            exchange=update.exchange,
            tradingsymbol=update.tradingsymbol,
            instrument_token=update.instrument_token,
            side=update.side,
            order_type=update.order_type,
            quantity=update.quantity,
            tag=update.tag,
            variety=str(doc.get("variety") or VARIETY),
        )
        known.status, known.filled, known.average_price = status, filled, avg
        known.order_type, known.quantity = update.order_type, update.quantity
        known.signature, known.shape = signature, shape
        self._known[order_id] = known
        if update.tag:
            ids = self._by_tag.setdefault(update.tag, [])
            if order_id not in ids:
                ids.append(order_id)
        self.stats["updates"] += 1
        self._queue.put_nowait(update)

    async def _read(self, fn: Callable[[], Awaitable[T]], priority: Priority) -> T:
        """One GET within Kite's rate; a 429 (nothing happened) is retried with backoff."""
        attempt = 0
        while True:
            try:
                async with self._reads.permit(priority):
                    return await fn()
            except KiteRateLimitError:
                self.stats["rate_limited"] += 1
                delay = self._backoff * 2**attempt
                self._reads.penalize(delay)
                if attempt >= self._rl_retries:
                    raise
                attempt += 1
                await asyncio.sleep(delay)

    async def _fetch_orders(self, priority: Priority = Priority.BACKGROUND) -> list[dict[str, Any]]:
        try:
            return await self._read(self._rest.orders, priority)
        except KiteTokenError:
            raise
        except KiteApiError as exc:
            raise BrokerError(f"orders: {exc}", retryable=True, code=exc.code) from None

    async def _poll_once(self, priority: Priority = Priority.NORMAL) -> None:
        self.stats["polls"] += 1
        for doc in await self._fetch_orders(priority):
            self._ingest(doc, source="poll")

    async def _poll_loop(self) -> None:
        assert self._poll_interval
        wait = self._poll_interval
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._poll_now.wait()
            self._poll_now.clear()
            wait = self._poll_interval
            try:
                await self._poll_once(Priority.BACKGROUND)
                self.last_error = None
            except Exception as exc:  # the poller must outlive any one bad answer
                self.stats["poll_errors"] += 1
                if isinstance(exc, KiteTokenError):  # nothing works until a new login
                    wait = max(wait, TOKEN_ERROR_POLL_INTERVAL)
                message = redact(f"{type(exc).__name__}: {exc}")
                if message != self.last_error:
                    level = logging.ERROR if isinstance(exc, KiteTokenError) else logging.WARNING
                    log.log(level, "order poll failed: %s", message)
                self.last_error = message

    # ---- helpers ----

    def _resolve(self, tag: str) -> str | None:
        cid = self._cids.get(tag)
        if cid is not None or self._resolver is None:
            return cid
        try:
            return self._resolver(tag)
        except Exception:
            log.exception("tag resolver failed for %s", tag)
            return None

    def _live_or_done(self, tag: str) -> str | None:
        """A non-rejected broker order already carrying ``tag``."""
        for order_id in self._by_tag.get(tag, ()):
            if self._known[order_id].status is not OrderStatus.REJECTED:
                return order_id
        return None

    def _remember_placed(self, req: OrderRequest, order_id: str) -> None:
        self._placed[req.client_order_id] = order_id
        self._cids[req.tag] = req.client_order_id
        ids = self._by_tag.setdefault(req.tag, [])
        if order_id not in ids:
            ids.append(order_id)
        self._known.setdefault(
            order_id,
            _Known(
                exchange=req.exchange,
                tradingsymbol=req.tradingsymbol,
                instrument_token=req.instrument_token,
                side=req.side,
                order_type=req.order_type,
                quantity=req.quantity,
                tag=req.tag,
            ),
        )

    async def _known_order(self, order_id: str) -> _Known:
        known = self._known.get(order_id)
        if known is None:
            await self._poll_once()
            known = self._known.get(order_id)
        if known is None:
            raise BrokerError(f"order {order_id} is not in the order book", retryable=False)
        return known

    def _instrument(self, token: int) -> Instrument:
        try:
            if isinstance(self._instruments, Mapping):
                return self._instruments[token]
            return self._instruments(token)
        except (KeyError, AitrappError) as exc:
            raise _RejectError(
                f"instrument_token {token} is not in the instruments master"
            ) from exc

    def _check_quantity(self, quantity: int, inst: Instrument) -> None:
        if quantity <= 0:
            raise _RejectError(f"quantity must be positive, got {quantity}")
        if quantity % inst.lot_size:
            raise _RejectError(
                f"quantity {quantity} is not a whole number of lots of {inst.lot_size}"
            )
        if quantity > inst.max_order_qty():
            raise _RejectError(
                f"quantity {quantity} exceeds the freeze quantity of {inst.tradingsymbol} "
                f"(at most {inst.max_order_qty()} per order); split the plan upstream"
            )

    def _round_price(self, paise: int, inst: Instrument, side: str) -> int:
        if paise <= 0:
            raise _RejectError(f"price must be positive, got {paise} paise")
        mode = "down" if side == "BUY" else "up"  # never a worse limit than asked
        return self._on_tick(paise, inst, mode, "price")

    def _round_trigger(self, paise: int, inst: Instrument) -> int:
        if paise <= 0:
            raise _RejectError(f"trigger_price must be positive, got {paise} paise")
        return self._on_tick(paise, inst, "nearest", "trigger_price")

    @staticmethod
    def _on_tick(paise: int, inst: Instrument, mode: str, field: str) -> int:
        rounded: int = Price(paise).round_to_tick(Price(inst.tick_paise), mode).paise
        if rounded != paise:
            log.warning(
                "%s %s of %s rounded to the tick %s: %s",
                field,
                rupees(paise),
                inst.tradingsymbol,
                rupees(inst.tick_paise),
                rupees(rounded),
            )
        if rounded <= 0:
            raise _RejectError(
                f"{field} {rupees(paise)} rounds to zero on tick {rupees(inst.tick_paise)}"
            )
        return rounded

    def _params(self, req: OrderRequest) -> dict[str, Any]:
        """Kite's form fields for ``req``, or _RejectError naming the bad field."""
        if not _TAG_RE.fullmatch(req.tag or ""):
            raise _RejectError(
                f"tag {req.tag!r} must be 1-{TAG_MAX} letters/digits (Kite rejects longer tags)"
            )
        if req.side not in ("BUY", "SELL"):
            raise _RejectError(f"side must be BUY or SELL, got {req.side!r}")
        inst = self._instrument(req.instrument_token)
        if (req.exchange, req.tradingsymbol) != (inst.exchange, inst.tradingsymbol):
            raise _RejectError(
                f"exchange/tradingsymbol {req.exchange}:{req.tradingsymbol} do not match "
                f"instrument_token {req.instrument_token} ({inst.exchange}:{inst.tradingsymbol})"
            )
        self._check_quantity(req.quantity, inst)
        ot = req.order_type
        params: dict[str, Any] = {
            "variety": VARIETY,
            "exchange": req.exchange,
            "tradingsymbol": req.tradingsymbol,
            "transaction_type": req.side,
            "quantity": req.quantity,
            "product": req.product.value,
            "order_type": ot.value,
            "validity": req.validity.value,
            "tag": req.tag,
        }
        needs_price = ot in (OrderType.LIMIT, OrderType.SL)
        needs_trigger = ot in (OrderType.SL, OrderType.SLM)
        if needs_price != (req.price_paise is not None):
            raise _RejectError(
                f"price_paise is {'required' if needs_price else 'not allowed'} for {ot}"
            )
        if needs_trigger != (req.trigger_paise is not None):
            raise _RejectError(
                f"trigger_paise is {'required' if needs_trigger else 'not allowed'} for {ot}"
            )
        price = trigger = None
        if req.price_paise is not None:
            price = self._round_price(req.price_paise, inst, req.side)
            params["price"] = rupees(price)
        if req.trigger_paise is not None:
            trigger = self._round_trigger(req.trigger_paise, inst)
            params["trigger_price"] = rupees(trigger)
        if ot is OrderType.SL and price is not None and trigger is not None:
            if req.side == "BUY" and price < trigger:
                raise _RejectError(
                    f"a BUY SL needs price >= trigger_price ({rupees(price)} < {rupees(trigger)})"
                )
            if req.side == "SELL" and price > trigger:
                raise _RejectError(
                    f"a SELL SL needs price <= trigger_price ({rupees(price)} > {rupees(trigger)})"
                )
        if ot in _MARKET_TYPES:
            mp = self.market_protection if req.market_protection is None else req.market_protection
            if not valid_market_protection(mp):
                raise _RejectError(f"market_protection must be -1 or in (0, 100], got {mp}")
            params["market_protection"] = int(mp) if float(mp).is_integer() else mp
        return params

    def _reject(self, req: OrderRequest, message: str, *, code: int | None = None) -> str:
        self.stats["rejected"] += 1
        order_id = f"{LOCAL_REJECT_PREFIX}{req.tag}"
        log.warning("place %s rejected: %s", req.client_order_id, message)
        self._queue.put_nowait(
            OrderUpdate(
                order_id=order_id,
                client_order_id=req.client_order_id,
                tag=req.tag,
                status=OrderStatus.REJECTED,
                exchange=req.exchange,
                tradingsymbol=req.tradingsymbol,
                instrument_token=req.instrument_token,
                side=req.side,
                order_type=req.order_type,
                quantity=req.quantity,
                filled_quantity=0,
                pending_quantity=0,
                cancelled_quantity=0,
                average_price=0.0,
                price=req.price_paise / 100 if req.price_paise else None,
                trigger_price=req.trigger_paise / 100 if req.trigger_paise else None,
                status_message=message,
                raw_status="REJECTED",
                extra={"http_code": code} if code is not None else {},
            )
        )
        return order_id
