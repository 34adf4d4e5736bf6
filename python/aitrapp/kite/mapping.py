"""Kite order and position payloads -> the Broker protocol's dataclasses.

REST ``orders()`` rows and websocket order-update messages share one shape
(kiteconnect turns the REST timestamps into naive IST datetimes; the
websocket sends ``"YYYY-MM-DD HH:MM:SS"`` strings). A malformed payload is
a :class:`KitePayloadError` naming the field, never a crash further down.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, cast

from aitrapp.brokers.base import BrokerPosition, OrderStatus, OrderType, OrderUpdate, Product, Side
from aitrapp.kite.auth import IST

# Kite's interim statuses: the order is on its way, nothing decided yet.
INTERIM_STATUSES = frozenset(
    {
        "PUT ORDER REQ RECEIVED",
        "VALIDATION PENDING",
        "OPEN PENDING",
        "MODIFY VALIDATION PENDING",
        "MODIFY PENDING",
        "CANCEL PENDING",
        "AMO REQ RECEIVED",
    }
)
_MAIN_STATUSES = {
    "OPEN": OrderStatus.OPEN,
    "TRIGGER PENDING": OrderStatus.TRIGGER_PENDING,
    "COMPLETE": OrderStatus.COMPLETE,
    "CANCELLED": OrderStatus.CANCELLED,
    "REJECTED": OrderStatus.REJECTED,
}
# Websocket-only pseudo status: "this order changed" (modified, partly filled);
# the state must be read from the order book.
STATUS_UPDATE = "UPDATE"


class KitePayloadError(ValueError):
    """A Kite order or position payload lacks a field or has a bad value."""


def map_status(raw: str) -> OrderStatus | None:
    """The protocol status of a Kite status; None when the string is not a state."""
    status = raw.strip().upper()
    if status in _MAIN_STATUSES:
        return _MAIN_STATUSES[status]
    if status in INTERIM_STATUSES:
        return OrderStatus.PENDING
    if status.startswith("CANCELLED"):  # e.g. "CANCELLED AMO"
        return OrderStatus.CANCELLED
    return None


def _field(doc: Mapping[str, Any], key: str) -> Any:
    if key not in doc or doc[key] is None:
        raise KitePayloadError(f"order payload: missing field {key!r}")
    return doc[key]


def _int(doc: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = doc.get(key)
    if value is None or value == "":
        if default is None:
            raise KitePayloadError(f"order payload: missing field {key!r}")
        return default
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise KitePayloadError(f"order payload: {key!r} is not an integer: {value!r}") from exc


def _float(doc: Mapping[str, Any], key: str) -> float | None:
    value = doc.get(key)
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise KitePayloadError(f"order payload: {key!r} is not a number: {value!r}") from exc


def parse_timestamp(value: object) -> datetime | None:
    """Kite timestamps are IST wall time; returns an aware datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=IST) if value.tzinfo is None else value
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed.replace(tzinfo=IST) if parsed.tzinfo is None else parsed
    return None


def order_tag(doc: Mapping[str, Any]) -> str | None:
    tag = doc.get("tag")
    if isinstance(tag, str) and tag:
        return tag
    tags = doc.get("tags")
    if isinstance(tags, list) and tags and isinstance(tags[0], str):
        return tags[0]
    return None


def to_update(
    doc: Mapping[str, Any],
    *,
    status: OrderStatus,
    resolve: Callable[[str], str | None],
    last_fill_qty: int = 0,
    last_fill_price: float | None = None,
) -> OrderUpdate:
    """One OrderUpdate from a Kite order payload whose status is already decided."""
    side = str(_field(doc, "transaction_type")).upper()
    if side not in ("BUY", "SELL"):
        raise KitePayloadError(f"order payload: 'transaction_type' is {side!r}, not BUY/SELL")
    try:
        order_type = OrderType(str(_field(doc, "order_type")).upper())
    except ValueError as exc:
        raise KitePayloadError(
            f"order payload: unknown 'order_type' {doc['order_type']!r}"
        ) from exc
    tag = order_tag(doc)
    quantity = _int(doc, "quantity")
    filled = _int(doc, "filled_quantity", 0)
    cancelled = _int(doc, "cancelled_quantity", 0)
    pending_default = 0 if status.is_terminal else max(0, quantity - filled - cancelled)
    price = _float(doc, "price")
    trigger = _float(doc, "trigger_price")
    extra: dict[str, object] = {}
    for key in ("product", "variety", "exchange_order_id", "parent_order_id", "validity"):
        if doc.get(key) not in (None, ""):
            extra[key] = doc[key]
    return OrderUpdate(
        order_id=str(_field(doc, "order_id")),
        client_order_id=resolve(tag) if tag else None,
        tag=tag,
        status=status,
        exchange=str(_field(doc, "exchange")),
        tradingsymbol=str(_field(doc, "tradingsymbol")),
        instrument_token=_int(doc, "instrument_token", 0),
        side=cast(Side, side),
        order_type=order_type,
        quantity=quantity,
        filled_quantity=filled,
        pending_quantity=_int(doc, "pending_quantity", pending_default),
        cancelled_quantity=cancelled,
        average_price=_float(doc, "average_price") or 0.0,
        price=price if price else None,
        trigger_price=trigger if trigger else None,
        status_message=(str(doc["status_message"]) if doc.get("status_message") else None),
        exchange_timestamp=parse_timestamp(doc.get("exchange_timestamp")),
        order_timestamp=parse_timestamp(doc.get("order_timestamp")),
        raw_status=str(doc.get("status") or ""),
        last_fill_qty=last_fill_qty,
        last_fill_price=last_fill_price,
        extra=extra,
    )


def to_position(row: Mapping[str, Any]) -> BrokerPosition:
    product_raw = str(row.get("product") or "")
    try:
        product = Product(product_raw)
    except ValueError as exc:
        raise KitePayloadError(
            f"position payload: product {product_raw!r} of "
            f"{row.get('exchange')}:{row.get('tradingsymbol')} is not one of "
            f"{', '.join(p.value for p in Product)}"
        ) from exc
    for key in ("exchange", "tradingsymbol"):
        if not row.get(key):
            raise KitePayloadError(f"position payload: missing field {key!r}")
    try:
        return BrokerPosition(
            exchange=str(row["exchange"]),
            tradingsymbol=str(row["tradingsymbol"]),
            instrument_token=int(row.get("instrument_token") or 0),
            product=product,
            quantity=int(row.get("quantity") or 0),
            average_price=float(row.get("average_price") or 0.0),
            pnl=float(row.get("pnl") or 0.0),
        )
    except (TypeError, ValueError) as exc:
        raise KitePayloadError(f"position payload: bad number in {dict(row)!r}: {exc}") from exc
