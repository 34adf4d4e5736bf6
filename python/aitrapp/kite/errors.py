"""How a Kite REST call failed, sorted by what the caller may safely do next.

kiteconnect raises one class per Kite ``error_type`` with ``.code`` = HTTP
status, and lets ``requests`` errors through. Order code needs a different
cut: was the request refused for good (reject), refused before it counted
(rate limit: retry later), refused because the session is gone (log in
again), or is its outcome unknown (look the order up before anything else)?
"""

from __future__ import annotations

from aitrapp.brokers.base import BrokerError


class KiteApiError(Exception):
    """Base of the classified failures of one REST call."""

    def __init__(self, message: str, *, error_type: str | None = None, code: int | None = None):
        super().__init__(message)
        self.message = message
        self.error_type = error_type
        self.code = code


class KiteRejectedError(KiteApiError):
    """A 4xx business or input error (InputException, OrderException, ...): final."""


class KiteRateLimitError(KiteApiError):
    """HTTP 429: the request was refused before it was acted upon; safe to retry later."""


class KiteUnavailableError(KiteApiError):
    """5xx, timeout, network or unparsable answer: the outcome is unknown."""


class KiteTokenError(BrokerError):
    """The access token is missing, expired or revoked: run ``aitrapp kite login``.

    A ``BrokerError`` so callers of the Broker protocol see it, but never
    retryable: nothing works until the operator logs in again.
    """

    def __init__(self, message: str, *, code: int | None = 403) -> None:
        super().__init__(message, retryable=False, code=code)
