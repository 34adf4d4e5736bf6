"""Broker reports the live kernel does not act on, kept as evidence.

Kite's order stream repeats, reorders and sometimes reports orders the kernel
does not manage: one this process never placed (a manual order in the same
account, another app), an order the kernel was told was never placed that
turned up after all, or the market order that squared it. The kernel ignores
what changes nothing, but the history is evidence: every report becomes an
``order_events`` row, and the fills of unmanaged orders are recorded (keyed by
the broker's order id and cumulative quantity, as every fill is), so the
account's executions add up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

from aitrapp.brokers.base import OrderUpdate
from aitrapp.db.repo import FillRow, OrderEventRow, Write
from aitrapp.db.writer import DbWriter
from aitrapp.logs import order_log

log = logging.getLogger(__name__)

_PRICE = Decimal("0.0001")


def _money(value: float | None) -> Decimal | None:
    if value is None or value <= 0:
        return None
    return Decimal(repr(value)).quantize(_PRICE, rounding=ROUND_HALF_UP)


def event_row(u: OrderUpdate, client_order_id: str | None = None) -> OrderEventRow:
    """The report as received (append-only history)."""
    return OrderEventRow(
        ts=u.exchange_timestamp or datetime.now(UTC),
        status=u.status.value,
        client_order_id=client_order_id or u.client_order_id,
        broker_order_id=u.order_id,
        filled_qty=u.filled_quantity,
        pending_qty=u.pending_quantity,
        avg_price=_money(u.average_price),
        payload={
            "raw_status": u.raw_status,
            "message": u.status_message,
            "tag": u.tag,
            "last_fill_qty": u.last_fill_qty,
            "last_fill_price": u.last_fill_price,
            "ignored": True,  # the kernel did not act on it
        },
    )


@dataclass(slots=True)
class _Seen:
    filled: int = 0
    avg_price: float = 0.0


class ReportEvidence:
    """Writes what the kernel ignores; one per live session (broker account)."""

    def __init__(self, writer: DbWriter, fill_scope: str) -> None:
        self.writer = writer
        self.fill_scope = fill_scope
        self._foreign: dict[str, _Seen] = {}  # broker order id -> what it filled so far
        self.ignored = 0
        self.foreign = 0

    def ignored_report(self, u: OrderUpdate, client_order_id: str | None = None) -> None:
        """A repeat, a stale report (reordered behind a newer one), a report after
        the order ended, a report of an earlier process's order: kept, nothing else."""
        self.ignored += 1
        self.writer.submit(event_row(u, client_order_id))

    def unmanaged_report(self, u: OrderUpdate, client_order_id: str | None = None) -> None:
        """An order the kernel does not manage (``client_order_id`` None: one this
        process did not place): kept, and its fills recorded (derived from the
        cumulative figures, as Kite reports them)."""
        self.foreign += client_order_id is None
        rows: list[Write] = [event_row(u, client_order_id)]
        seen = self._foreign.setdefault(u.order_id, _Seen())
        if u.filled_quantity > seen.filled:
            fill = self._fill(u, seen, client_order_id)
            if fill is not None:
                rows.append(fill)
        if client_order_id is None and (self.foreign == 1 or u.status.is_terminal):
            order_log(log, f"broker:{u.order_id}", order_id=u.order_id).warning(
                "report of an order this process did not place (%s, %d filled): recorded",
                u.status.value,
                u.filled_quantity,
            )
        self.writer.submit_many(rows, atomic=True)

    def _fill(self, u: OrderUpdate, seen: _Seen, client_order_id: str | None) -> FillRow | None:
        qty = u.filled_quantity - seen.filled
        if u.last_fill_qty == qty and u.last_fill_price:
            price = Decimal(repr(u.last_fill_price))
        else:  # this fill's price from the change of the cumulative average
            now = Decimal(repr(u.average_price)) * u.filled_quantity
            before = Decimal(repr(seen.avg_price)) * seen.filled
            price = (now - before) / qty
        seen.filled, seen.avg_price = u.filled_quantity, u.average_price
        if price <= 0:
            log.error("fill with a non-positive price ignored: %s", u)
            return None
        return FillRow(
            fill_scope=self.fill_scope,
            broker_fill_key=f"{u.order_id}:{u.filled_quantity}",
            qty=qty,
            price=price.quantize(_PRICE, rounding=ROUND_HALF_UP),
            ts=u.exchange_timestamp or datetime.now(UTC),
            client_order_id=client_order_id,
            broker_order_id=u.order_id,
        )
