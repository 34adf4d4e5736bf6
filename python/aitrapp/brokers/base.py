"""The `Broker` protocol the write-ahead journal and the live kernel shell use.

PAPER and LIVE implement the same protocol and emit the same updates,
shaped like Kite Connect's order updates, so everything above the broker
treats them alike.

Contract:
- ``place_order`` returns the broker order id once the broker has the order.
  A *business* reject (bad price, over freeze qty, rate limit ...) is not an
  exception: it arrives as an ``OrderUpdate`` with status REJECTED and a
  Kite-like ``status_message``. ``BrokerError`` means the outcome is
  unknown or the call failed in transport; the caller must look the order up
  by ``tag`` (``find_by_tag``) before placing it again, never blindly retry.
- Updates carry *cumulative* ``filled_quantity`` and ``average_price``; an
  OPEN order with ``filled_quantity > 0`` is partially filled. Consumers
  must tolerate duplicated and reordered updates (compare filled_quantity).
- Prices on requests are integer paise (``*_paise``): floats never decide
  prices. Updates carry rupee floats exactly as Kite reports them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal, Protocol, runtime_checkable

Side = Literal["BUY", "SELL"]


class OrderType(StrEnum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"
    SL = "SL"  # stop-limit: triggers, then rests as a LIMIT at `price`
    SLM = "SL-M"  # stop-market: triggers, then fills as MARKET


class Product(StrEnum):
    MIS = "MIS"
    NRML = "NRML"
    CNC = "CNC"


class Validity(StrEnum):
    DAY = "DAY"
    IOC = "IOC"


class OrderStatus(StrEnum):
    """Kite's terminal and main statuses; interim ones map to PENDING."""

    PENDING = "PENDING"  # PUT ORDER REQ RECEIVED, VALIDATION PENDING, OPEN PENDING, ...
    OPEN = "OPEN"
    TRIGGER_PENDING = "TRIGGER PENDING"
    COMPLETE = "COMPLETE"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"

    @property
    def is_terminal(self) -> bool:
        return self in (OrderStatus.COMPLETE, OrderStatus.CANCELLED, OrderStatus.REJECTED)


@dataclass(frozen=True, slots=True)
class OrderRequest:
    client_order_id: str  # "{plan_id}:{TAG}"
    tag: str  # broker_tag(client_order_id), <= 20 chars
    exchange: str
    tradingsymbol: str
    instrument_token: int
    side: Side
    quantity: int
    order_type: OrderType
    product: Product = Product.MIS
    validity: Validity = Validity.DAY
    price_paise: int | None = None  # LIMIT and SL
    trigger_paise: int | None = None  # SL and SL-M
    # Percent band for MARKET / SL-M (Kite rejects API market orders without it
    # since April 2026); -1 asks Kite for its automatic band.
    market_protection: float | None = None


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    order_id: str  # broker order id
    client_order_id: str | None  # resolved from the tag; None for unknown orders
    tag: str | None
    status: OrderStatus
    exchange: str
    tradingsymbol: str
    instrument_token: int
    side: Side
    order_type: OrderType
    quantity: int
    filled_quantity: int
    pending_quantity: int
    cancelled_quantity: int
    average_price: float  # rupees, cumulative average over fills
    price: float | None = None
    trigger_price: float | None = None
    status_message: str | None = None
    exchange_timestamp: datetime | None = None
    order_timestamp: datetime | None = None
    raw_status: str | None = None  # the broker's own status string
    # The last fill's own quantity and price when the broker knows them
    # (paper always does); otherwise derive from the cumulative fields.
    last_fill_qty: int = 0
    last_fill_price: float | None = None
    extra: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BrokerPosition:
    exchange: str
    tradingsymbol: str
    instrument_token: int
    product: Product
    quantity: int  # net, signed: > 0 long, < 0 short
    average_price: float
    pnl: float = 0.0


# The order id a broker adapter gives a placement it refused itself, before any
# request (a bad tag, a local check): "REJECTED:<tag>", never a real broker id.
LOCAL_REJECT_PREFIX = "REJECTED:"


class BrokerError(Exception):
    """Transport failure or unknown outcome; look the order up by tag before retrying."""

    def __init__(self, message: str, *, retryable: bool = False, code: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.code = code


@runtime_checkable
class Broker(Protocol):
    name: str

    async def place_order(self, req: OrderRequest) -> str: ...

    async def modify_order(
        self,
        order_id: str,
        *,
        quantity: int | None = None,
        price_paise: int | None = None,
        trigger_paise: int | None = None,
        order_type: OrderType | None = None,
    ) -> None: ...

    async def cancel_order(self, order_id: str) -> None: ...

    def updates(self) -> AsyncIterator[OrderUpdate]:
        """Order updates as they happen (one consumer: the live kernel shell)."""
        ...

    async def orders(self) -> list[OrderUpdate]:
        """Current state of every order of the day (polling and reconciliation)."""
        ...

    async def find_by_tag(self, tag: str) -> OrderUpdate | None: ...

    async def positions(self) -> list[BrokerPosition]: ...
