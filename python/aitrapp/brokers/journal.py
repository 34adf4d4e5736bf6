"""Write-ahead order journal: the order row exists before the broker hears of it.

``JournaledBroker`` wraps any ``Broker``. ``place_order`` first inserts the
order row (status NEW) with ``ON CONFLICT (client_order_id) DO NOTHING``:

- inserted -> call the broker, then record its order id;
- already there -> this client id was attempted before (a retry, a duplicate
  decision, a restart): return the known broker order id, or find the order
  at the broker by its tag; only if the broker has never seen it is it placed.

So a duplicated message or a retried plan can never become a second order.

A client id names one order for good: if the broker already has an order
under its tag that is over without filling (CANCELLED, or REJECTED after it
was accepted), a second call is still a duplicate, so nothing is placed; but
it is not handed back as if it were a working order either:
``OrderFinishedError`` carries the broker's report so the caller learns the
order is dead. A protective order placed again (a stop lost while no process
watched) therefore needs a new client id, and gets one (STOP1, STOP2, ...).
If the database is unreachable an ENTRY is refused (``EntryRefusedError``): no new
risk without a journal. Protective orders (STOP, TP, EXIT) are never held back
by a database outage: they are journalled through the writer's retained queue
and placed, with an in-process set of client ids as the duplicate guard.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

import asyncpg

from aitrapp import parse_order_client_id
from aitrapp.brokers.base import (
    Broker,
    BrokerPosition,
    OrderRequest,
    OrderStatus,
    OrderType,
    OrderUpdate,
)
from aitrapp.db import repo
from aitrapp.db.pool import Pool
from aitrapp.db.repo import OrderAck, OrderRow
from aitrapp.db.writer import DbWriter
from aitrapp.exceptions import AitrappError
from aitrapp.logs import order_log

log = logging.getLogger(__name__)

_DB_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)
# Over without a fill (a partly filled order that was cancelled counts as placed).
_DEAD = (OrderStatus.CANCELLED, OrderStatus.REJECTED)


class EntryRefusedError(AitrappError):
    """A new entry was not placed because it could not be journalled first."""


class ClientIdTakenError(AitrappError):
    """The client id belongs to an order the broker does not have; placing it would
    create a second order under one journal row."""


class PlacementInFlightError(AitrappError):
    """The same client id is being placed right now; the second call must not place it."""


class OrderFinishedError(AitrappError):
    """The client id was placed before and its order is over at the broker without a
    fill (cancelled or rejected): not placed again, and no working order to return.
    ``order`` is the broker's report of it."""

    def __init__(self, message: str, order: OrderUpdate) -> None:
        super().__init__(message)
        self.order = order


def _rupees(paise: int | None) -> Decimal | None:
    return None if paise is None else repo.rupees(paise)


class JournaledBroker:
    """A ``Broker`` whose orders are journalled in PostgreSQL before placement."""

    def __init__(
        self,
        inner: Broker,
        *,
        pool: Pool,
        writer: DbWriter,
        session_id: UUID,
        now: Callable[[], datetime] | None = None,
        db_timeout_s: float = 2.0,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self._pool = pool
        self._writer = writer
        self._session_id = session_id
        self._now = now or (lambda: datetime.now(UTC))
        self._db_timeout_s = db_timeout_s
        # client_order_id -> broker order id (None while the call is in flight)
        self._placed: dict[str, str | None] = {}

    def broker_order_id(self, client_order_id: str) -> str | None:
        return self._placed.get(client_order_id)

    def _row(self, req: OrderRequest) -> OrderRow:
        plan_id, role = parse_order_client_id(req.client_order_id)
        now = self._now()
        return OrderRow(
            session_id=self._session_id,
            client_order_id=req.client_order_id,
            plan_id=plan_id,
            tag=req.tag,
            role=role,
            exchange=req.exchange,
            tradingsymbol=req.tradingsymbol,
            instrument_token=req.instrument_token,
            side=req.side,
            order_type=req.order_type.value,
            product=req.product.value,
            qty=req.quantity,
            price=_rupees(req.price_paise),
            trigger_price=_rupees(req.trigger_paise),
            created_at=now,
            updated_at=now,
        )

    async def _journal(self, req: OrderRequest, row: OrderRow) -> bool:
        """True when this call owns the placement; False when it was attempted before."""
        try:
            if not self._writer.database_ok:
                # Known down (or hung): do not make the tick path wait for it again.
                raise ConnectionError(self._writer.last_error or "database unavailable")
            return await asyncio.wait_for(
                repo.insert_order_new(self._pool, row), timeout=self._db_timeout_s
            )
        except _DB_ERRORS as exc:
            if row.role == "ENTRY":
                # The writer may not have noticed the outage yet: the caller records
                # the refusal like the ones made up front (DB_UNAVAILABLE).
                reason = f"database unavailable, entry {req.client_order_id} not placed: {exc}"
                raise EntryRefusedError(reason) from exc
            # Exits protect an open position: journal through the retained queue.
            self._writer.submit(row)
            order_log(log, req.client_order_id).warning(
                "database unavailable: %s journalled through the writer queue", row.role
            )
            return req.client_order_id not in self._placed

    async def _known_order_id(self, req: OrderRequest) -> str | None:
        """The broker's id for a client id journalled before, or None if the broker
        never got it (then placing it now is the first placement).

        The broker is the truth: a row from an earlier session that the broker does
        not know is a replay of the same day and config into the same database
        (same deterministic ids), not a retry; placing would alias two orders on
        one journal row, so it is refused."""
        known = self._placed.get(req.client_order_id)
        if known:
            return known
        found = await self.inner.find_by_tag(req.tag)
        if found is not None:
            if found.status in _DEAD and found.filled_quantity == 0:
                # The same id again is the same order: never a second one. But a
                # dead order is no answer to "place this order": say what it is.
                raise OrderFinishedError(
                    f"{req.client_order_id} is already at the broker as {found.order_id}, "
                    f"{found.status.value}: not placed again (a new order needs a new client id)",
                    found,
                )
            return found.order_id
        try:
            row = await repo.get_order(self._pool, req.client_order_id)
        except _DB_ERRORS:
            row = None
        if row is not None and row.session_id != self._session_id:
            raise ClientIdTakenError(
                f"{req.client_order_id} is already journalled by session {row.session_id} "
                "and the broker does not have it: this replays the same day, feed and config "
                "into the same database (client ids are deterministic). Use another --date or "
                "--seed, or a fresh data dir (AITRAPP_DATA_DIR)."
            )
        if row is not None and row.broker_order_id:
            raise ClientIdTakenError(
                f"{req.client_order_id} was acknowledged as {row.broker_order_id} but the "
                "broker no longer lists it: not placing it again (reconcile first)"
            )
        return None

    async def place_order(self, req: OrderRequest) -> str:
        if req.order_type in (OrderType.MARKET, OrderType.SLM) and req.market_protection is None:
            raise ValueError(f"{req.client_order_id}: MARKET/SL-M orders need market_protection")
        row = self._row(req)
        olog = order_log(log, req.client_order_id, tag=req.tag, role=row.role)
        if not await self._journal(req, row):
            known = await self._known_order_id(req)
            if known is not None:
                olog.warning("duplicate placement suppressed; broker order %s", known)
                return known
            settled = self._placed.get(req.client_order_id, "")
            if settled is None:
                raise PlacementInFlightError(f"{req.client_order_id} placement already in flight")
            if settled:  # a concurrent call placed it while this one looked it up
                olog.warning("duplicate placement suppressed; broker order %s", settled)
                return settled
            olog.warning("journalled before but never reached the broker: placing now")
        self._placed[req.client_order_id] = None
        try:
            order_id = await self.inner.place_order(req)
        except BaseException:
            # Unknown outcome: leave the id unset so a retry looks the tag up first.
            self._placed.pop(req.client_order_id, None)
            raise
        self._placed[req.client_order_id] = order_id
        self._writer.submit(
            OrderAck(client_order_id=req.client_order_id, broker_order_id=order_id, ts=self._now())
        )
        olog.info(
            "placed %s %s %s x%d -> %s",
            req.order_type.value,
            req.side,
            req.tradingsymbol,
            req.quantity,
            order_id,
        )
        return order_id

    async def modify_order(
        self,
        order_id: str,
        *,
        quantity: int | None = None,
        price_paise: int | None = None,
        trigger_paise: int | None = None,
        order_type: OrderType | None = None,
    ) -> None:
        await self.inner.modify_order(
            order_id,
            quantity=quantity,
            price_paise=price_paise,
            trigger_paise=trigger_paise,
            order_type=order_type,
        )

    async def cancel_order(self, order_id: str) -> None:
        await self.inner.cancel_order(order_id)

    def updates(self) -> AsyncIterator[OrderUpdate]:
        return self.inner.updates()

    async def orders(self) -> list[OrderUpdate]:
        return await self.inner.orders()

    async def find_by_tag(self, tag: str) -> OrderUpdate | None:
        return await self.inner.find_by_tag(tag)

    async def positions(self) -> list[BrokerPosition]:
        return await self.inner.positions()
