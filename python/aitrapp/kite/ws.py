"""An asyncio client for the Kite ticker websocket (market data + order updates).

Speaks the protocol ``kiteconnect.KiteTicker`` speaks (URL
``{root}?api_key=..&access_token=..``, JSON ``subscribe``/``mode`` messages,
binary tick frames, JSON text order updates) on the ``websockets`` package
instead of Twisted, so it lives on the application's event loop and can be
started and stopped any number of times in one process (Twisted's reactor
cannot be restarted).

Reconnects forever with capped exponential backoff and jitter, re-sends the
subscriptions after every reconnect, and treats a connection that has been
silent for ``stale_after`` seconds (Kite sends a heartbeat every second) as
dead. The URL carries the access token: it is never logged, and every log
line from here and from the websockets library is redacted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from aitrapp.kite.auth import RedactingFilter, Secret, redact
from aitrapp.kite.ticker_codec import (
    Mode,
    TickCodecError,
    decode_text,
    mode_message,
    subscribe_message,
    unsubscribe_message,
)

log = logging.getLogger(__name__)
_wire_log = logging.getLogger("aitrapp.kite.ws.wire")
_wire_log.addFilter(RedactingFilter())  # websockets logs the request line (with the token)

DEFAULT_WS_ROOT = "wss://ws.kite.trade"
MAX_TOKENS_PER_CONNECTION = 3000
SUBSCRIBE_CHUNK = 500

BinaryHandler = Callable[[bytes, int], None]  # frame, recv_ns (perf_counter_ns)
OrderHandler = Callable[[Mapping[str, Any]], None]


class KiteWebSocket:
    def __init__(
        self,
        *,
        api_key: str,
        access_token: Secret | str,
        root: str = DEFAULT_WS_ROOT,
        on_binary: BinaryHandler | None = None,
        on_order: OrderHandler | None = None,
        on_connect: Callable[[], None] | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 60.0,
        stale_after: float = 15.0,
        open_timeout: float = 10.0,
        rng: random.Random | None = None,
        name: str = "kite-ws",
    ) -> None:
        if backoff_initial <= 0 or backoff_max < backoff_initial:
            raise ValueError("backoff_initial must be > 0 and <= backoff_max")
        self._token = access_token if isinstance(access_token, Secret) else Secret(access_token)
        self._api_key = api_key
        self.root = root
        self._on_binary = on_binary
        self._on_order = on_order
        self._on_connect = on_connect
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._stale_after = stale_after
        self._open_timeout = open_timeout
        self._rng = rng or random.Random()
        self.name = name
        self._modes: dict[int, Mode] = {}
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._connected = asyncio.Event()
        # Counters (metrics and tests).
        self.connects = 0
        self.disconnects = 0
        self.frames = 0
        self.heartbeats = 0
        self.bad_messages = 0
        self.last_error: str | None = None

    def __repr__(self) -> str:
        return f"KiteWebSocket({self.name}, root={self.root!r}, connected={self.connected})"

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def subscriptions(self) -> dict[int, Mode]:
        return dict(self._modes)

    def _url(self) -> str:
        query = urlencode({"api_key": self._api_key, "access_token": self._token.reveal()})
        return f"{self.root}?{query}"

    # ---- lifecycle ----

    async def start(self) -> None:
        if self._task is not None and not self._task.done():
            return
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        self._stopping = True
        task, self._task = self._task, None
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._connected.clear()

    async def wait_connected(self) -> None:
        """Until the socket is up (wrap in ``asyncio.timeout`` to bound it)."""
        await self._connected.wait()

    # ---- subscriptions ----

    async def subscribe(self, tokens: Iterable[int], mode: Mode = Mode.QUOTE) -> None:
        wanted = [int(t) for t in tokens]
        total = len(set(self._modes) | set(wanted))
        if total > MAX_TOKENS_PER_CONNECTION:
            raise ValueError(
                f"tokens: {total} exceed Kite's {MAX_TOKENS_PER_CONNECTION} per connection"
            )
        for t in wanted:
            self._modes[t] = mode
        ws = self._ws
        if ws is not None and wanted:
            await self._send_modes(ws, {mode: wanted})

    async def unsubscribe(self, tokens: Iterable[int]) -> None:
        gone = [t for t in (int(x) for x in tokens) if self._modes.pop(t, None) is not None]
        ws = self._ws
        if ws is not None and gone:
            for chunk in _chunks(gone):
                await ws.send(unsubscribe_message(chunk))

    async def _send_modes(self, ws: ClientConnection, groups: Mapping[Mode, list[int]]) -> None:
        for mode, tokens in groups.items():
            for chunk in _chunks(tokens):
                await ws.send(subscribe_message(chunk))
                await ws.send(mode_message(mode, chunk))

    async def _resubscribe(self, ws: ClientConnection) -> None:
        groups: dict[Mode, list[int]] = {}
        for token, mode in self._modes.items():
            groups.setdefault(mode, []).append(token)
        await self._send_modes(ws, groups)

    # ---- the connection loop ----

    async def _run(self) -> None:
        attempt = 0
        while not self._stopping:
            try:
                async with connect(
                    self._url(),
                    additional_headers={"X-Kite-Version": "3"},
                    user_agent_header="aitrapp",
                    open_timeout=self._open_timeout,
                    max_size=8 * 1024 * 1024,
                    logger=_wire_log,
                ) as ws:
                    self._ws = ws
                    self.connects += 1
                    attempt = 0
                    await self._resubscribe(ws)
                    self._connected.set()
                    log.info("%s connected (connect #%d)", self.name, self.connects)
                    self._notify_connect()
                    await self._read(ws)
            except asyncio.CancelledError:
                raise
            except InvalidStatus as exc:
                code = exc.response.status_code
                self.last_error = f"handshake refused: HTTP {code}"
                hint = (
                    " (token invalid or expired: run `aitrapp kite login`)" if code == 403 else ""
                )
                log.error("%s: %s%s", self.name, self.last_error, hint)
            except Exception as exc:
                self.last_error = redact(f"{type(exc).__name__}: {exc}")
                log.warning("%s: connection lost: %s", self.name, self.last_error)
            finally:
                if self._ws is not None:
                    self.disconnects += 1
                self._ws = None
                self._connected.clear()
            if self._stopping:
                break
            delay = min(self._backoff_max, self._backoff_initial * 2**attempt)
            delay *= self._rng.uniform(0.5, 1.0)  # jitter: reconnecting clients do not stampede
            attempt = min(attempt + 1, 30)
            log.info("%s: reconnecting in %.2fs", self.name, delay)
            await asyncio.sleep(delay)

    async def _read(self, ws: ClientConnection) -> None:
        while True:
            try:
                message = await asyncio.wait_for(ws.recv(), self._stale_after)
            except TimeoutError:
                log.warning("%s: no data for %.1fs, reconnecting", self.name, self._stale_after)
                await ws.close()
                return
            recv_ns = time.perf_counter_ns()
            if isinstance(message, bytes):
                if len(message) < 2:
                    self.heartbeats += 1
                    continue
                self.frames += 1
                if self._on_binary is not None:
                    try:
                        self._on_binary(message, recv_ns)
                    except Exception:
                        self.bad_messages += 1
                        log.exception("%s: tick frame handler failed", self.name)
            else:
                self._text(message)

    def _text(self, text: str) -> None:
        try:
            msg = decode_text(text)
        except TickCodecError as exc:
            self.bad_messages += 1
            log.warning("%s: ignored text message: %s", self.name, exc)
            return
        if msg.type == "order":
            if not isinstance(msg.data, dict):
                self.bad_messages += 1
                log.warning("%s: order update without an object in 'data'", self.name)
                return
            if self._on_order is not None:
                try:
                    self._on_order(msg.data)
                except Exception:
                    self.bad_messages += 1
                    log.exception("%s: order update handler failed", self.name)
        elif msg.type == "error":
            log.warning("%s: Kite error message: %s", self.name, redact(str(msg.data)))
        else:
            log.info("%s: Kite %s message: %s", self.name, msg.type, redact(str(msg.data)))

    def _notify_connect(self) -> None:
        if self._on_connect is not None:
            try:
                self._on_connect()
            except Exception:
                log.exception("%s: on_connect handler failed", self.name)


def _chunks(tokens: list[int]) -> Iterable[list[int]]:
    for i in range(0, len(tokens), SUBSCRIBE_CHUNK):
        yield tokens[i : i + SUBSCRIBE_CHUNK]
