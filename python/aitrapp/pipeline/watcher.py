"""OrderWatcher: every broker update is deduplicated, journalled, published and dispatched.

The broker's update stream (paper or Kite) may repeat or reorder messages.
An update is new when its (order id, status, filled quantity) was not seen;
a stale one (lower filled quantity, or anything after a terminal status) is
still appended to ``order_events`` (history is evidence) but is not
dispatched. Fills are derived from the growth of the cumulative
``filled_quantity`` and keyed by ``order id + cumulative qty`` within the
broker account (``fill_scope``: a paper session is its own account, its order
ids restart with the process), so a repeated fill lands once in ``fills``. An
order's new status and its fill are written in one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

from aitrapp.brokers.base import Broker, OrderStatus, OrderUpdate
from aitrapp.bus import EventBus
from aitrapp.db.repo import FillRow, OrderEventRow, OrderStatusUpdate, Write
from aitrapp.db.writer import DbWriter
from aitrapp.logs import order_log
from aitrapp.metrics import Metrics

log = logging.getLogger(__name__)

UpdateSink = Callable[[OrderUpdate], Awaitable[None]]
_ACKED = (OrderStatus.OPEN, OrderStatus.TRIGGER_PENDING, OrderStatus.COMPLETE)


def _money(value: float | None) -> Decimal | None:
    if value is None or value <= 0:
        return None
    return Decimal(repr(value)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


@dataclass(slots=True)
class _Seen:
    filled: int = 0
    avg_price: float = 0.0
    terminal: bool = False
    acked: bool = False


class OrderWatcher:
    """Consumes ``broker.updates()``; one instance per broker."""

    def __init__(
        self,
        broker: Broker,
        *,
        writer: DbWriter,
        bus: EventBus,
        metrics: Metrics,
        sink: UpdateSink,
        fill_scope: str,
        on_ack: Callable[[str, int], None] | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        if not fill_scope:
            raise ValueError("fill_scope: the broker account (or paper session) is required")
        self._broker = broker
        self._fill_scope = fill_scope
        self._writer = writer
        self._bus = bus
        self._metrics = metrics
        self._sink = sink
        self._on_ack = on_ack
        self._now = now or (lambda: datetime.now(UTC))
        self._seen: dict[str, _Seen] = {}
        self._keys: set[tuple[str, str, int]] = set()
        self._task: asyncio.Task[None] | None = None
        self.processed = 0
        self.duplicates = 0
        self.error: BaseException | None = None

    # ---- lifecycle ----
    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="order-watcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        try:
            async for update in self._broker.updates():
                await self.handle(update)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # shown in /health, never silent
            self.error = exc
            log.exception("order watcher stopped")
            raise

    # ---- one update ----
    async def handle(self, u: OrderUpdate) -> None:
        """Journal, publish and dispatch one update (idempotent).

        Everything the update causes (its order's status and fill, and what the
        OCO manager and the orchestrator record in turn: children, position,
        trade) is written in one transaction, so a killed process never leaves
        fills that its positions do not explain."""
        with self._writer.grouped():
            await self._handle(u)

    async def _handle(self, u: OrderUpdate) -> None:
        key = (u.order_id, u.status.value, u.filled_quantity)
        ts = u.exchange_timestamp or self._now()
        self._writer.submit(
            OrderEventRow(
                ts=ts,
                status=u.status.value,
                client_order_id=u.client_order_id,
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
                },
            )
        )
        if key in self._keys:
            self.duplicates += 1
            return
        self._keys.add(key)
        seen = self._seen.setdefault(u.order_id, _Seen())
        if seen.terminal or u.filled_quantity < seen.filled:
            self.duplicates += 1  # stale: reordered behind a newer update
            return
        olog = order_log(log, u.client_order_id or f"broker:{u.order_id}", order_id=u.order_id)
        rows: list[Write] = []
        if u.client_order_id is not None:
            rows.append(
                OrderStatusUpdate(
                    client_order_id=u.client_order_id,
                    status=u.status.value,
                    filled_qty=u.filled_quantity,
                    avg_price=_money(u.average_price),
                    broker_order_id=u.order_id,
                    status_message=u.status_message,
                    ts=ts,
                )
            )
        if u.filled_quantity > seen.filled:
            fill = self._fill(u, seen, ts)
            if fill is not None:
                rows.append(fill)
        # The order's filled quantity and the fills that make it up land together.
        self._writer.submit_many(rows, atomic=True)
        if not seen.acked and u.status in _ACKED:
            seen.acked = True
            if self._on_ack is not None and u.client_order_id is not None:
                self._on_ack(u.client_order_id, time.perf_counter_ns())
        if u.status.is_terminal:
            seen.terminal = True
            if u.status is OrderStatus.COMPLETE:
                self._metrics.orders_filled.inc()
            if u.status is OrderStatus.REJECTED:
                olog.warning("order rejected: %s", u.status_message)
        self.processed += 1
        self._bus.publish(
            "order_updates",
            {
                "order_id": u.order_id,
                "client_order_id": u.client_order_id,
                "status": u.status.value,
                "filled_quantity": u.filled_quantity,
                "pending_quantity": u.pending_quantity,
                "average_price": u.average_price,
                "message": u.status_message,
            },
        )
        await self._sink(u)

    def _fill(self, u: OrderUpdate, seen: _Seen, ts: datetime) -> FillRow | None:
        qty = u.filled_quantity - seen.filled
        if u.last_fill_qty == qty and u.last_fill_price:
            price = Decimal(repr(u.last_fill_price))
        else:
            # Derive this fill's price from the change of the cumulative average.
            total_now = Decimal(repr(u.average_price)) * u.filled_quantity
            total_before = Decimal(repr(seen.avg_price)) * seen.filled
            price = (total_now - total_before) / qty
        seen.filled = u.filled_quantity
        seen.avg_price = u.average_price
        if price <= 0:
            log.error("fill with non-positive price ignored: %s", u)
            return None
        return FillRow(
            fill_scope=self._fill_scope,
            broker_fill_key=f"{u.order_id}:{u.filled_quantity}",
            qty=qty,
            price=price.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP),
            ts=ts,
            client_order_id=u.client_order_id,
            broker_order_id=u.order_id,
        )
