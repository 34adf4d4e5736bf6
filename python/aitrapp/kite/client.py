"""An asyncio face on the official (synchronous) ``kiteconnect.KiteConnect``.

Every call runs in a worker thread (``asyncio.to_thread``) so the event loop
never blocks on HTTP, and every failure comes out classified (see
``aitrapp.kite.errors``). The client never logs requests: kiteconnect's debug
mode would print the Authorization header.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import kiteconnect  # type: ignore[import-untyped]
from kiteconnect import exceptions as kex

from aitrapp.kite.auth import Secret, redact
from aitrapp.kite.errors import (
    KiteRateLimitError,
    KiteRejectedError,
    KiteTokenError,
    KiteUnavailableError,
)

log = logging.getLogger(__name__)

DEFAULT_API_ROOT = "https://api.kite.trade"
T = TypeVar("T")


def classify(exc: BaseException) -> Exception:
    """The classified error for one failed kiteconnect call."""
    if isinstance(exc, kex.KiteException):
        code = getattr(exc, "code", None)
        kind = type(exc).__name__
        message = redact(str(exc))
        if code == 429:
            return KiteRateLimitError(message, error_type=kind, code=code)
        if isinstance(exc, kex.TokenException):
            return KiteTokenError(f"Kite session invalid ({kind} {code}): {message}", code=code)
        if isinstance(code, int) and 400 <= code < 500:
            return KiteRejectedError(message, error_type=kind, code=code)
        return KiteUnavailableError(message, error_type=kind, code=code)
    # requests' ConnectionError / Timeout and anything unexpected: outcome unknown.
    return KiteUnavailableError(f"{type(exc).__name__}: {redact(str(exc))}", error_type=None)


class KiteRest:
    """The REST calls AITRAPP needs, async and classified."""

    def __init__(
        self,
        api_key: str,
        access_token: Secret | str | None,
        *,
        root: str | None = None,
        timeout: float = 7.0,
    ) -> None:
        token = access_token.reveal() if isinstance(access_token, Secret) else access_token
        self.api_key = api_key
        self.root = root or DEFAULT_API_ROOT
        self._kite = kiteconnect.KiteConnect(
            api_key, access_token=token, root=self.root, timeout=timeout
        )

    def __repr__(self) -> str:
        return f"KiteRest(api_key={self.api_key!r}, root={self.root!r})"

    def close(self) -> None:
        """Drop pooled HTTP connections (the client reconnects if used again)."""
        self._kite.reqsession.close()

    async def _call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except Exception as exc:
            raise classify(exc) from None

    async def place_order(self, **params: Any) -> str:
        order_id = await self._call(self._kite.place_order, **params)
        return str(order_id)

    async def modify_order(self, variety: str, order_id: str, **params: Any) -> str:
        return str(await self._call(self._kite.modify_order, variety, order_id, **params))

    async def cancel_order(self, variety: str, order_id: str) -> str:
        return str(await self._call(self._kite.cancel_order, variety, order_id))

    async def orders(self) -> list[dict[str, Any]]:
        data = await self._call(self._kite.orders)
        return _list_of_dicts(data, "orders")

    async def order_history(self, order_id: str) -> list[dict[str, Any]]:
        data = await self._call(self._kite.order_history, order_id)
        return _list_of_dicts(data, "order_history")

    async def positions(self) -> dict[str, Any]:
        data = await self._call(self._kite.positions)
        if not isinstance(data, dict):
            raise KiteUnavailableError("positions: expected an object with 'net' and 'day'")
        return data

    async def instruments(self, exchange: str) -> list[dict[str, Any]]:
        data = await self._call(self._kite.instruments, exchange)
        return _list_of_dicts(data, "instruments")

    async def profile(self) -> dict[str, Any]:
        data = await self._call(self._kite.profile)
        if not isinstance(data, dict):
            raise KiteUnavailableError("profile: expected an object")
        return data


def _list_of_dicts(data: object, what: str) -> list[dict[str, Any]]:
    if not isinstance(data, list) or not all(isinstance(x, dict) for x in data):
        raise KiteUnavailableError(f"{what}: expected a list of objects")
    return data
