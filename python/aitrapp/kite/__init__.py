"""Zerodha Kite Connect: wire formats, login, rate limits, instruments, reconciliation.

Modules:

- ``ticker_codec``: binary tick frames and text messages of the ticker websocket
- ``ws``: an asyncio websocket client for the ticker (reconnects, resubscribes)
- ``client``: the official REST client run off the event loop, errors classified
- ``mapping``: Kite order/position payloads -> the Broker protocol's dataclasses
- ``auth``: login URL, request_token exchange, the 0600 token file, redaction
- ``rate_limit``: the order-rate limiter (10/s, 400/min)
- ``instruments``: the instruments master and its daily cache
- ``reconcile``: start-up comparison of our brackets with the broker's book

The broker lives in ``aitrapp.brokers.kite`` and the feed in
``aitrapp.feeds.kite``. This package does not import ``kiteconnect`` at
import time; ``client`` does.
"""

from aitrapp.kite.auth import KiteSession, Secret, TokenStore, redact
from aitrapp.kite.rate_limit import RateLimiter
from aitrapp.kite.reconcile import (
    LocalBracket,
    LocalOrder,
    ReconcileReport,
    apply,
    reconcile,
    reconcile_and_repair,
)

__all__ = [
    "KiteSession",
    "LocalBracket",
    "LocalOrder",
    "RateLimiter",
    "ReconcileReport",
    "Secret",
    "TokenStore",
    "apply",
    "reconcile",
    "reconcile_and_repair",
    "redact",
]
