"""A fake Kite Connect on 127.0.0.1: REST (form-encoded in, JSON envelope out) + ticker websocket.

REST speaks what the official ``kiteconnect`` client expects: routes
``/orders/{variety}`` (POST place, PUT/DELETE ``/{order_id}``), ``/orders``,
``/orders/{id}``, ``/portfolio/positions``, ``/instruments[/{exchange}]``
(CSV), ``/session/token``, ``/user/profile``; answers
``{"status": "success", "data": ...}`` or ``{"status": "error",
"error_type": ..., "message": ...}`` with Kite's HTTP codes. It validates
the way Kite does (auth header, tag <= 20, market_protection on MARKET/SL-M,
tick multiples, lot multiples, freeze quantity, the trigger side of a stop
against the last price, at most 25 modifications of an order).

Rate limits are counted like Kite counts them: by request *arrival*, in a
sliding window. Order requests (POST/PUT/DELETE under ``/orders/``) may
arrive at most 10 in any 1 s, 400 in any minute and 5,000 a day; every other
request at most 10 in any 1 s. Over the rate the answer is HTTP 429
(NetworkException, "Too many requests"), and the refused arrival counts too.
``too_many`` lists every 429 served, ``arrivals`` every counted request;
``ingress_delay`` holds requests back before they arrive (network delay).

Matching, where the last price is known (``set_ltp``): a MARKET order, or a
stop modified to MARKET, fills at once at the last price; a LIMIT order that
is marketable when it arrives fills at once at the last price (an exchange
never lets a crossing limit rest).

The websocket checks ``api_key``/``access_token`` in the query, records
subscribe/mode messages, sends binary tick frames (ticker_codec) in each
client's subscribed mode, heartbeats, and text order updates whenever an
order changes (not on placement, as Kite).

Test controls: ``fill``, ``trigger``, ``rms_reject``, ``set_ltp``, ``modifications``,
``fail_next`` (scripted HTTP failures, optionally after the action happened),
``drop_websockets``, ``expire_token``, ``broadcast_ticks``.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import dataclasses
import hashlib
import io
import itertools
import json
import logging
import re
import time
from bisect import bisect_right
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from aitrapp.kite.ticker_codec import (
    HEARTBEAT,
    Mode,
    TickPacket,
    encode_frame,
    order_update_message,
)

IST = timezone(timedelta(hours=5, minutes=30))
KITE_ORDER_RATE: tuple[tuple[int, float], ...] = ((10, 1.0), (400, 60.0), (5000, 86_400.0))
KITE_OTHER_RATE: tuple[tuple[int, float], ...] = ((10, 1.0),)
MAX_MODIFICATIONS = 25
_STOP_TYPES = ("SL", "SL-M")
_MARKET_TYPES = ("MARKET", "SL-M")


@dataclass
class FakeInstrument:
    instrument_token: int
    exchange: str
    tradingsymbol: str
    name: str
    tick_paise: int
    lot_size: int
    freeze_qty: int
    instrument_type: str = "EQ"
    segment: str = "NSE"
    expiry: str = ""
    strike: str = "0"


@dataclass
class ScriptedFailure:
    method: str
    path: str  # prefix
    status: int
    error_type: str
    message: str
    accept: bool = False  # perform the action, then answer with the error
    drop: bool = False  # perform (if accept) and close the connection without an answer


@dataclass
class WsClient:
    conn: ServerConnection
    modes: dict[int, str] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Arrival:
    t: float  # the fake's clock when the whole request had arrived
    method: str
    path: str
    kind: str  # "order" (place/modify/cancel) or "other"


class _Window:
    """Arrivals of one kind; refuses one that makes any window exceed its limit."""

    def __init__(self, limits: Sequence[tuple[int, float]]) -> None:
        self.limits = tuple(limits)
        self._longest = max((p for _, p in self.limits), default=0.0)
        self._stamps: list[float] = []

    def admit(self, t: float) -> bool:
        del self._stamps[: bisect_right(self._stamps, t - self._longest)]
        self._stamps.append(t)  # a refused arrival is counted as well
        return all(
            len(self._stamps) - bisect_right(self._stamps, t - period) <= limit
            for limit, period in self.limits
        )


class KiteError(Exception):
    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message


def default_instruments() -> list[FakeInstrument]:
    return [
        FakeInstrument(738561, "NSE", "RELIANCE", "RELIANCE INDUSTRIES", 10, 1, 10_000),
        FakeInstrument(
            13_238_786,
            "NFO",
            "NIFTY26JANFUT",
            "NIFTY",
            10,
            65,
            1800,
            instrument_type="FUT",
            segment="NFO-FUT",
            expiry="2026-01-27",
        ),
        FakeInstrument(
            256_265, "NSE", "NIFTY 50", "NIFTY 50", 5, 1, 1, instrument_type="EQ", segment="INDICES"
        ),
    ]


class FakeKite:
    def __init__(
        self,
        *,
        api_key: str = "fakeapikey",
        api_secret: str = "fakesecret0123456789",
        access_token: str = "fakeaccesstoken0123456789",
        request_token: str = "fakerequesttoken42",
        instruments: Sequence[FakeInstrument] | None = None,
        heartbeat_interval: float = 0.5,
        order_rate: Sequence[tuple[int, float]] = KITE_ORDER_RATE,
        other_rate: Sequence[tuple[int, float]] = KITE_OTHER_RATE,
        max_modifications: int = MAX_MODIFICATIONS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api_key = api_key
        self.api_secret = api_secret
        self.access_token = access_token
        self.request_token = request_token
        self.instruments = {i.instrument_token: i for i in (instruments or default_instruments())}
        self.heartbeat_interval = heartbeat_interval
        self.orders: dict[str, dict[str, Any]] = {}
        self.ltp: dict[int, Decimal] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.arrivals: list[Arrival] = []
        self.too_many: list[Arrival] = []  # every request answered with HTTP 429
        self.max_modifications = max_modifications
        self.modifications: dict[str, int] = defaultdict(int)  # order id -> accepted modifies
        self._clock = clock
        self._windows = {"order": _Window(order_rate), "other": _Window(other_rate)}
        # Network delay on the way in: seconds a request takes to "arrive" once sent.
        self.ingress_delay: Callable[[str, str], float] | None = None
        self.failures: deque[ScriptedFailure] = deque()
        self.rms_reject_next: str | None = None
        self.ws_clients: list[WsClient] = []
        self.ws_connects = 0
        self.ws_refused = 0
        self._ids = itertools.count(260_101_000_000_001)
        self._positions: dict[tuple[str, str, str], dict[str, Decimal]] = {}
        self._http: asyncio.Server | None = None
        self._ws: Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._hb_task: asyncio.Task[None] | None = None
        self.http_port = 0
        self.ws_port = 0

    # ---- lifecycle ----

    @property
    def rest_root(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def ws_root(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}"

    async def start(self) -> None:
        self._http = await asyncio.start_server(self._serve_http, "127.0.0.1", 0)
        self.http_port = self._http.sockets[0].getsockname()[1]
        self._ws = await serve(
            self._serve_ws,
            "127.0.0.1",
            0,
            process_request=self._ws_handshake,
            logger=logging.getLogger("fake_kite.ws"),
        )
        self.ws_port = next(iter(self._ws.sockets)).getsockname()[1]
        self._hb_task = asyncio.create_task(self._heartbeats())

    async def stop(self) -> None:
        if self._hb_task:
            self._hb_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._hb_task
        if self._ws:
            self._ws.close()
            await self._ws.wait_closed()
        if self._http:
            self._http.close()
            for w in list(self._writers):
                w.close()
            await self._http.wait_closed()

    async def __aenter__(self) -> FakeKite:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---- controls ----

    def fail_next(
        self,
        method: str,
        path: str,
        *,
        status: int = 500,
        error_type: str = "GeneralException",
        message: str = "Something went wrong",
        accept: bool = False,
        drop: bool = False,
        times: int = 1,
    ) -> None:
        for _ in range(times):
            self.failures.append(
                ScriptedFailure(method, path, status, error_type, message, accept, drop)
            )

    def expire_token(self) -> None:
        self.access_token = "revoked-" + self.access_token

    def set_ltp(self, token: int, price: str) -> None:
        self.ltp[token] = Decimal(price)

    def order(self, order_id: str) -> dict[str, Any]:
        return self.orders[order_id]

    def by_tag(self, tag: str) -> list[dict[str, Any]]:
        return [o for o in self.orders.values() if o["tag"] == tag]

    def placed(self) -> list[dict[str, str]]:
        """Form fields of every POST /orders/regular that reached the server."""
        return [
            form for m, path, form in self.requests if m == "POST" and path == "/orders/regular"
        ]

    async def fill(
        self, order_id: str, quantity: int | None = None, price: str | None = None
    ) -> None:
        o = self.orders[order_id]
        assert o["status"] in ("OPEN", "TRIGGER PENDING"), o["status"]
        qty = quantity if quantity is not None else o["pending_quantity"]
        assert 0 < qty <= o["pending_quantity"]
        px = Decimal(price) if price is not None else Decimal(str(o["price"] or o["trigger_price"]))
        filled = o["filled_quantity"] + qty
        avg = (Decimal(str(o["average_price"])) * o["filled_quantity"] + px * qty) / filled
        o["average_price"] = float(avg.quantize(Decimal("0.0001")))
        o["filled_quantity"] = filled
        o["pending_quantity"] -= qty
        o["status"] = "COMPLETE" if o["pending_quantity"] == 0 else "OPEN"
        self._book(o, qty, px)
        self._touch(o)
        await self._push(o)

    async def trigger(self, order_id: str) -> None:
        o = self.orders[order_id]
        assert o["status"] == "TRIGGER PENDING"
        o["status"] = "OPEN"
        self._touch(o)
        await self._push(o)

    async def rms_reject(self, order_id: str, message: str) -> None:
        o = self.orders[order_id]
        o["status"] = "REJECTED"
        o["status_message"] = message
        o["pending_quantity"] = 0
        self._touch(o)
        await self._push(o)

    async def push_raw(self, data: dict[str, Any]) -> None:
        """Send an arbitrary order-update text message to every client."""
        await self._broadcast_text(order_update_message(data))

    async def broadcast_ticks(self, packets: Sequence[TickPacket]) -> int:
        """Send the packets to each client subscribed to them, in its mode; frames sent."""
        sent = 0
        for client in list(self.ws_clients):
            mine = [
                dataclasses.replace(p, mode=Mode(client.modes[p.instrument_token]))
                for p in packets
                if p.instrument_token in client.modes
            ]
            if mine:
                with contextlib.suppress(Exception):
                    await client.conn.send(encode_frame(mine))
                    sent += 1
        return sent

    def drop_websockets(self) -> None:
        """Cut every websocket TCP connection without a close handshake."""
        for client in list(self.ws_clients):
            client.conn.transport.abort()

    # ---- REST ----

    async def _serve_http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                method, target, _ = line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while True:
                    h = await reader.readline()
                    if h in (b"\r\n", b"\n", b""):
                        break
                    k, v = h.decode("latin-1").split(":", 1)
                    headers[k.strip().lower()] = v.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                url = urlsplit(target)
                params = {k: v[-1] for k, v in parse_qs(url.query).items()}
                if body:
                    params.update({k: v[-1] for k, v in parse_qs(body.decode()).items()})
                if self.ingress_delay is not None:
                    await asyncio.sleep(self.ingress_delay(method, url.path))
                arrival = self._arrive(method, url.path)
                self.requests.append((method, url.path, params))
                status, ctype, payload, drop = await self._dispatch(
                    method, url.path, params, headers, arrival
                )
                if drop:
                    writer.transport.abort()
                    return
                head = (
                    f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
                    f"Content-Type: {ctype}\r\nContent-Length: {len(payload)}\r\n"
                    "Connection: keep-alive\r\n\r\n"
                )
                writer.write(head.encode() + payload)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        except asyncio.CancelledError:
            # Python 3.11's start_server logs a cancelled handler as an error: end quietly.
            return
        finally:
            self._writers.discard(writer)
            writer.close()

    def _arrive(self, method: str, path: str) -> Arrival:
        is_order = method in ("POST", "PUT", "DELETE") and path.startswith("/orders/")
        arrival = Arrival(self._clock(), method, path, "order" if is_order else "other")
        self.arrivals.append(arrival)
        return arrival

    def order_arrivals(self) -> list[float]:
        """Arrival times of every order request (place, modify, cancel)."""
        return [a.t for a in self.arrivals if a.kind == "order"]

    def _scripted(self, method: str, path: str) -> ScriptedFailure | None:
        for f in self.failures:
            if f.method == method and path.startswith(f.path):
                self.failures.remove(f)
                return f
        return None

    async def _dispatch(
        self,
        method: str,
        path: str,
        params: dict[str, str],
        headers: dict[str, str],
        arrival: Arrival,
    ) -> tuple[int, str, bytes, bool]:
        if not self._windows[arrival.kind].admit(arrival.t):
            self.too_many.append(arrival)
            return self._error(KiteError(429, "NetworkException", "Too many requests"))
        failure = self._scripted(method, path)
        if failure is not None and not failure.accept:
            if failure.drop:
                return 0, "", b"", True
            return self._error(KiteError(failure.status, failure.error_type, failure.message))
        try:
            if path != "/session/token":
                self._auth(headers)
            result = await self._route(method, path, params)
        except KiteError as exc:
            return self._error(exc)
        if failure is not None:  # the action happened; the answer is lost or wrong
            if failure.drop:
                return 0, "", b"", True
            return self._error(KiteError(failure.status, failure.error_type, failure.message))
        if isinstance(result, bytes):
            return 200, "text/csv", result, False
        body = json.dumps({"status": "success", "data": result}).encode()
        return 200, "application/json", body, False

    @staticmethod
    def _error(exc: KiteError) -> tuple[int, str, bytes, bool]:
        body = {
            "status": "error",
            "error_type": exc.error_type,
            "message": exc.message,
            "data": None,
        }
        return exc.status, "application/json", json.dumps(body).encode(), False

    def _auth(self, headers: dict[str, str]) -> None:
        want = f"token {self.api_key}:{self.access_token}"
        if headers.get("authorization") != want:
            raise KiteError(403, "TokenException", "Incorrect `api_key` or `access_token`.")

    async def _route(self, method: str, path: str, p: dict[str, str]) -> Any:
        if method == "POST" and path == "/session/token":
            return self._session(p)
        if method == "GET" and path == "/user/profile":
            return {"user_id": "AB1234", "user_name": "Fake Trader"}
        if method == "GET" and path == "/orders":
            return list(self.orders.values())
        if method == "GET" and path == "/portfolio/positions":
            return {"net": self._position_rows(), "day": self._position_rows()}
        if method == "GET" and (path == "/instruments" or path.startswith("/instruments/")):
            exchange = path.removeprefix("/instruments").strip("/") or None
            return self._instruments_csv(exchange)
        m = re.fullmatch(r"/orders/([^/]+)", path)
        if m and method == "GET":
            o = self.orders.get(m.group(1))
            if o is None:
                raise KiteError(400, "InputException", "Invalid `order_id`.")
            return [o]
        if m and method == "POST":
            return {"order_id": await self._place(m.group(1), p)}
        m = re.fullmatch(r"/orders/([^/]+)/([^/]+)", path)
        if m and method == "PUT":
            return {"order_id": await self._modify(m.group(2), p)}
        if m and method == "DELETE":
            return {"order_id": await self._cancel(m.group(2))}
        raise KiteError(404, "GeneralException", f"Route not found: {method} {path}")

    def _session(self, p: dict[str, str]) -> dict[str, Any]:
        want = hashlib.sha256(
            (self.api_key + self.request_token + self.api_secret).encode()
        ).hexdigest()
        if p.get("api_key") != self.api_key or p.get("request_token") != self.request_token:
            raise KiteError(403, "TokenException", "Token is invalid or has expired.")
        if p.get("checksum") != want:
            raise KiteError(403, "TokenException", "Invalid checksum")
        return {
            "user_id": "AB1234",
            "user_name": "Fake Trader",
            "access_token": self.access_token,
            "public_token": "pub",
            "refresh_token": "",
            "api_key": self.api_key,
            "login_time": datetime.now(IST).strftime("%Y-%m-%d %H:%M:%S"),
        }

    def _instrument(self, exchange: str, symbol: str) -> FakeInstrument:
        for inst in self.instruments.values():
            if (inst.exchange, inst.tradingsymbol) == (exchange, symbol):
                return inst
        raise KiteError(400, "InputException", "Invalid `tradingsymbol`.")

    def _price(self, raw: str, inst: FakeInstrument, what: str) -> Decimal:
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise KiteError(400, "InputException", f"Invalid `{what}`.") from None
        paise = value * 100
        if value <= 0 or paise != paise.to_integral_value() or int(paise) % inst.tick_paise:
            tick = Decimal(inst.tick_paise) / 100
            raise KiteError(
                400,
                "InputException",
                f"Tick size for this script is {tick}. Kindly enter {what} in the multiple of "
                "tick size for this script",
            )
        return value

    async def _place(self, variety: str, p: dict[str, str]) -> str:
        for key in (
            "exchange",
            "tradingsymbol",
            "transaction_type",
            "quantity",
            "product",
            "order_type",
        ):
            if not p.get(key):
                raise KiteError(400, "InputException", f"Missing `{key}`.")
        if variety != "regular":
            raise KiteError(400, "InputException", "Invalid `variety`.")
        tag = p.get("tag", "")
        if len(tag) > 20:
            raise KiteError(400, "InputException", "Tag length should not exceed 20 characters.")
        inst = self._instrument(p["exchange"], p["tradingsymbol"])
        qty = int(p["quantity"])
        if qty <= 0 or qty % inst.lot_size:
            raise KiteError(400, "InputException", "Quantity should be in multiples of lot size.")
        if qty > inst.freeze_qty:
            raise KiteError(400, "InputException", "Quantity exceeds the freeze limit.")
        ot = p["order_type"]
        if ot not in ("MARKET", "LIMIT", "SL", "SL-M"):
            raise KiteError(400, "InputException", "Invalid `order_type`.")
        if ot in _MARKET_TYPES:
            self._check_protection(p)
        for key, needed in (("price", ("LIMIT", "SL")), ("trigger_price", ("SL", "SL-M"))):
            if ot in needed and not p.get(key):
                raise KiteError(400, "InputException", f"Missing `{key}`.")
        price = self._price(p["price"], inst, "price") if ot in ("LIMIT", "SL") else None
        trig = (
            self._price(p["trigger_price"], inst, "trigger_price") if ot in ("SL", "SL-M") else None
        )
        self._check_stop_limit(ot, p["transaction_type"], price, trig)
        order_id = str(next(self._ids))
        o = {
            "order_id": order_id,
            "exchange_order_id": None,
            "parent_order_id": None,
            "placed_by": "AB1234",
            "variety": variety,
            "status": "TRIGGER PENDING" if ot in ("SL", "SL-M") else "OPEN",
            "status_message": None,
            "tradingsymbol": inst.tradingsymbol,
            "exchange": inst.exchange,
            "instrument_token": inst.instrument_token,
            "transaction_type": p["transaction_type"],
            "order_type": ot,
            "product": p["product"],
            "validity": p.get("validity", "DAY"),
            "quantity": qty,
            "price": float(price) if price is not None else 0,
            "trigger_price": float(trig) if trig is not None else 0,
            "average_price": 0,
            "filled_quantity": 0,
            "pending_quantity": qty,
            "cancelled_quantity": 0,
            "market_protection": float(p.get("market_protection", 0)),
            "tag": tag or None,
            "tags": [tag] if tag else [],
            "order_timestamp": "",
            "exchange_timestamp": None,
        }
        self._touch(o)
        self.orders[order_id] = o
        if self.rms_reject_next is not None:
            message, self.rms_reject_next = self.rms_reject_next, None
            await self.rms_reject(order_id, message)
        elif (wrong_side := self._trigger_side_error(o)) is not None:
            # Kite records this one as an order rejected by its RMS, not as an HTTP error.
            await self.rms_reject(order_id, wrong_side)
        else:
            await self._match(o)
        return order_id

    def _trigger_side_error(self, o: dict[str, Any]) -> str | None:
        """A stop that would trigger at once: SELL needs trigger < LTP, BUY trigger > LTP."""
        ltp = self.ltp.get(o["instrument_token"])
        if o["order_type"] not in _STOP_TYPES or o["status"] != "TRIGGER PENDING" or ltp is None:
            return None
        trig = Decimal(str(o["trigger_price"]))
        if o["transaction_type"] == "SELL" and trig >= ltp:
            return (
                "Trigger price for stoploss sell orders should be lower than the last traded price."
            )
        if o["transaction_type"] == "BUY" and trig <= ltp:
            return (
                "Trigger price for stoploss buy orders should be higher than the last traded price."
            )
        return None

    async def _match(self, o: dict[str, Any]) -> None:
        """Fill at the last price what would trade at once: MARKET, or a crossing LIMIT."""
        ltp = self.ltp.get(o["instrument_token"])
        if ltp is None or o["status"] != "OPEN":
            return
        buy = o["transaction_type"] == "BUY"
        limit = Decimal(str(o["price"]))
        crossing = o["order_type"] == "LIMIT" and (limit >= ltp if buy else limit <= ltp)
        if o["order_type"] == "MARKET" or crossing:
            await self.fill(o["order_id"], price=str(ltp))

    @staticmethod
    def _check_protection(p: dict[str, str]) -> None:
        mp = p.get("market_protection")
        try:
            ok = mp is not None and (float(mp) == -1 or 0 < float(mp) <= 100)
        except ValueError:
            ok = False
        if not ok:
            raise KiteError(
                400,
                "InputException",
                "Market orders without market protection are not allowed via API.",
            )

    @staticmethod
    def _check_stop_limit(
        order_type: str, side: str, price: Decimal | None, trig: Decimal | None
    ) -> None:
        """A stop-limit's limit must let it fill once triggered."""
        if order_type != "SL" or price is None or trig is None:
            return
        if side == "SELL" and price > trig:
            raise KiteError(
                400,
                "InputException",
                "Trigger price for stoploss sell orders should be higher than the limit price.",
            )
        if side == "BUY" and price < trig:
            raise KiteError(
                400,
                "InputException",
                "Trigger price for stoploss buy orders should be lower than the limit price.",
            )

    async def _modify(self, order_id: str, p: dict[str, str]) -> str:
        o = self.orders.get(order_id)
        if o is None:
            raise KiteError(400, "InputException", "Invalid `order_id`.")
        if o["status"] in ("COMPLETE", "CANCELLED", "REJECTED"):
            raise KiteError(
                400, "InputException", f"Order cannot be modified as it is {o['status'].lower()}."
            )
        if self.modifications[order_id] >= self.max_modifications:
            raise KiteError(400, "InputException", "Maximum allowed order modifications exceeded.")
        inst = self.instruments[o["instrument_token"]]
        ot = p.get("order_type", o["order_type"])
        if ot not in ("MARKET", "LIMIT", "SL", "SL-M"):
            raise KiteError(400, "InputException", "Invalid `order_type`.")
        if ot in _MARKET_TYPES:
            self._check_protection(p)
        new = dict(o)
        if "quantity" in p:
            qty = int(p["quantity"])
            if qty % inst.lot_size or qty <= o["filled_quantity"]:
                raise KiteError(400, "InputException", "Invalid `quantity`.")
            if qty > inst.freeze_qty:
                raise KiteError(400, "InputException", "Quantity exceeds the freeze limit.")
            new["quantity"] = qty
            new["pending_quantity"] = qty - o["filled_quantity"]
        if "price" in p and ot in ("LIMIT", "SL"):
            new["price"] = float(self._price(p["price"], inst, "price"))
        if "trigger_price" in p and ot in _STOP_TYPES:
            new["trigger_price"] = float(self._price(p["trigger_price"], inst, "trigger_price"))
        if ot in ("LIMIT", "SL") and not new["price"]:
            raise KiteError(400, "InputException", "Missing `price`.")
        if ot in _STOP_TYPES and not new["trigger_price"]:
            raise KiteError(400, "InputException", "Missing `trigger_price`.")
        new["order_type"] = ot
        if ot not in ("LIMIT", "SL"):
            new["price"] = 0
        if ot not in _STOP_TYPES:
            new["trigger_price"] = 0
            if new["status"] == "TRIGGER PENDING":
                new["status"] = "OPEN"  # a stop turned into MARKET or LIMIT works at once
        elif o["order_type"] not in _STOP_TYPES:
            raise KiteError(400, "InputException", "An open order cannot become a stoploss order.")
        price = Decimal(str(new["price"])) if new["price"] else None
        trig = Decimal(str(new["trigger_price"])) if new["trigger_price"] else None
        self._check_stop_limit(ot, o["transaction_type"], price, trig)
        if (wrong_side := self._trigger_side_error(new)) is not None:
            raise KiteError(400, "InputException", wrong_side)
        if ot in _MARKET_TYPES:
            new["market_protection"] = float(p["market_protection"])
        o.update(new)
        self.modifications[order_id] += 1
        self._touch(o)
        await self._push(o, status="UPDATE")
        await self._match(o)
        return order_id

    async def _cancel(self, order_id: str) -> str:
        o = self.orders.get(order_id)
        if o is None:
            raise KiteError(400, "InputException", "Invalid `order_id`.")
        if o["status"] in ("COMPLETE", "CANCELLED", "REJECTED"):
            raise KiteError(
                400, "InputException", f"Order cannot be cancelled as it is {o['status'].lower()}."
            )
        o["cancelled_quantity"] = o["quantity"] - o["filled_quantity"]
        o["pending_quantity"] = 0
        o["status"] = "CANCELLED"
        self._touch(o)
        await self._push(o)
        return order_id

    def _touch(self, o: dict[str, Any]) -> None:
        now = datetime.now(IST).strftime("%Y-%m-%d %H:%M:%S")
        o["order_timestamp"] = o["order_timestamp"] or now
        o["exchange_timestamp"] = now

    def _book(self, o: dict[str, Any], qty: int, price: Decimal) -> None:
        key = (o["exchange"], o["tradingsymbol"], o["product"])
        pos = self._positions.setdefault(
            key,
            {"buy_qty": Decimal(0), "buy_value": Decimal(0), "sell_qty": Decimal(0),
             "sell_value": Decimal(0), "last": price},
        )  # fmt: skip
        side = "buy" if o["transaction_type"] == "BUY" else "sell"
        pos[f"{side}_qty"] += qty
        pos[f"{side}_value"] += price * qty
        pos["last"] = price

    def _position_rows(self) -> list[dict[str, Any]]:
        rows = []
        for (exchange, symbol, product), pos in self._positions.items():
            qty = int(pos["buy_qty"] - pos["sell_qty"])
            if qty > 0:
                avg = pos["buy_value"] / pos["buy_qty"]
            elif qty < 0:
                avg = pos["sell_value"] / pos["sell_qty"]
            else:
                avg = Decimal(0)
            pnl = pos["sell_value"] - pos["buy_value"] + qty * pos["last"]
            inst = self._instrument(exchange, symbol)
            rows.append(
                {
                    "tradingsymbol": symbol,
                    "exchange": exchange,
                    "instrument_token": inst.instrument_token,
                    "product": product,
                    "quantity": qty,
                    "average_price": float(avg),
                    "last_price": float(pos["last"]),
                    "pnl": float(pnl),
                    "buy_quantity": int(pos["buy_qty"]),
                    "sell_quantity": int(pos["sell_qty"]),
                }
            )
        return rows

    def _instruments_csv(self, exchange: str | None) -> bytes:
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(
            ["instrument_token", "exchange_token", "tradingsymbol", "name", "last_price", "expiry",
             "strike", "tick_size", "lot_size", "instrument_type", "segment", "exchange"]
        )  # fmt: skip
        for i in self.instruments.values():
            if exchange and i.exchange != exchange:
                continue
            tick = Decimal(i.tick_paise) / 100
            w.writerow(
                [i.instrument_token, i.instrument_token >> 8, i.tradingsymbol, i.name, 0,
                 i.expiry, i.strike, tick, i.lot_size, i.instrument_type, i.segment, i.exchange]
            )  # fmt: skip
        return out.getvalue().encode()

    # ---- websocket ----

    def _ws_handshake(self, conn: ServerConnection, request: Request) -> Response | None:
        q = parse_qs(urlsplit(request.path).query)
        if q.get("api_key") != [self.api_key] or q.get("access_token") != [self.access_token]:
            self.ws_refused += 1
            return conn.respond(HTTPStatus.FORBIDDEN, "invalid token\n")
        return None

    async def _serve_ws(self, conn: ServerConnection) -> None:
        client = WsClient(conn)
        self.ws_clients.append(client)
        self.ws_connects += 1
        try:
            async for message in conn:
                if isinstance(message, bytes):
                    continue
                doc = json.loads(message)
                client.messages.append(doc)
                action, value = doc.get("a"), doc.get("v")
                if action == "subscribe":
                    for t in value:
                        client.modes.setdefault(int(t), "quote")
                elif action == "unsubscribe":
                    for t in value:
                        client.modes.pop(int(t), None)
                elif action == "mode":
                    mode, tokens = value
                    for t in tokens:
                        client.modes[int(t)] = mode
        except Exception:  # a dropped client is the point of some tests
            pass
        finally:
            self.ws_clients.remove(client)

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            for client in list(self.ws_clients):
                with contextlib.suppress(Exception):
                    await client.conn.send(HEARTBEAT)

    async def _broadcast_text(self, text: str) -> None:
        for client in list(self.ws_clients):
            with contextlib.suppress(Exception):
                await client.conn.send(text)

    async def _push(self, o: dict[str, Any], *, status: str | None = None) -> None:
        data = dict(o)
        if status is not None:
            data["status"] = status
        data["unfilled_quantity"] = data["pending_quantity"]
        data["user_id"] = "AB1234"
        await self._broadcast_text(order_update_message(data))
