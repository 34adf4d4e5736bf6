"""OrderWatcher: repeated, reordered and partial broker updates against a real database.

Each update is appended to ``order_events``; only news (a larger cumulative
fill, a new status before the terminal one) reaches the OCO manager, the
``orders`` row and ``fills``. A fill's own price is taken from the update when
the broker gives it, else derived from the change of the cumulative average.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio

from aitrapp import broker_tag, order_client_id
from aitrapp.brokers.base import OrderStatus, OrderType, OrderUpdate
from aitrapp.brokers.paper import PaperBroker
from aitrapp.bus import InProcessBus
from aitrapp.db import repo
from aitrapp.db.pool import Pool
from aitrapp.db.repo import OrderRow, SessionRow
from aitrapp.db.writer import DbWriter
from aitrapp.metrics import Metrics
from aitrapp.pipeline.watcher import OrderWatcher

from .helpers import TEST_DAY, plan_id, reliance

pytestmark = pytest.mark.integration

BROKER_ID = "250304000000001"
CID = order_client_id("ENTRY", plan_id())
TS0 = datetime(2026, 3, 4, 4, 0, tzinfo=UTC)


def update(
    status: str,
    filled: int,
    avg: float = 0.0,
    *,
    qty: int = 10,
    last_fill_qty: int = 0,
    last_fill_price: float | None = None,
    cid: str | None = CID,
    order_id: str = BROKER_ID,
    seconds: int = 0,
) -> OrderUpdate:
    """A Kite-shaped update: cumulative ``filled`` and ``avg`` over all fills so far."""
    inst = reliance()
    st = OrderStatus(status)
    return OrderUpdate(
        order_id=order_id,
        client_order_id=cid,
        tag=broker_tag(cid) if cid else None,
        status=st,
        exchange=inst.exchange,
        tradingsymbol=inst.tradingsymbol,
        instrument_token=inst.instrument_token,
        side="BUY",
        order_type=OrderType.LIMIT,
        quantity=qty,
        filled_quantity=filled,
        pending_quantity=0 if st.is_terminal else qty - filled,
        cancelled_quantity=qty - filled if st is OrderStatus.CANCELLED else 0,
        average_price=avg,
        price=1450.0,
        status_message="rejected: margin" if st is OrderStatus.REJECTED else None,
        exchange_timestamp=TS0 + timedelta(seconds=seconds),
        last_fill_qty=last_fill_qty,
        last_fill_price=last_fill_price,
    )


@dataclass
class Rig:
    pool: Pool
    writer: DbWriter
    watcher: OrderWatcher
    dispatched: list[OrderUpdate] = field(default_factory=list)
    acks: list[str] = field(default_factory=list)

    async def feed(self, *updates: OrderUpdate) -> None:
        for u in updates:
            await self.watcher.handle(u)
        async with asyncio.timeout(10):
            await self.writer.flush()

    async def fills(self, cid: str = CID) -> list[tuple[int, Decimal]]:
        return [(f.qty, f.price) for f in await repo.list_fills(self.pool, client_order_id=cid)]

    async def order(self, cid: str = CID) -> OrderRow:
        row = await repo.get_order(self.pool, cid)
        assert row is not None
        return row

    def new_watcher(self) -> OrderWatcher:
        """Another instance over the same database (a restarted process)."""

        async def sink(u: OrderUpdate) -> None:
            self.dispatched.append(u)

        return OrderWatcher(
            PaperBroker([reliance()]),
            writer=self.writer,
            bus=InProcessBus(),
            metrics=Metrics(),
            sink=sink,
            on_ack=lambda cid, _ns: self.acks.append(cid),
            fill_scope="paper:test-session",
        )


async def _order_row(session_id: Any, cid: str = CID) -> OrderRow:
    inst = reliance()
    pid, role = cid.split(":")
    return OrderRow(
        session_id=session_id,
        client_order_id=cid,
        plan_id=pid,
        tag=broker_tag(cid),
        role=role,
        exchange=inst.exchange,
        tradingsymbol=inst.tradingsymbol,
        instrument_token=inst.instrument_token,
        side="BUY",
        order_type="LIMIT",
        product="MIS",
        qty=10,
        price=Decimal("1450"),
        created_at=TS0,
        updated_at=TS0,
    )


@pytest_asyncio.fixture
async def rig(db_pool: Pool) -> AsyncIterator[Rig]:
    session = SessionRow(
        trading_date=TEST_DAY, mode="PAPER", feed="synthetic", started_at=datetime.now(UTC)
    )
    await repo.create_session(db_pool, session)
    await repo.insert_order_new(db_pool, await _order_row(session.id))
    writer = DbWriter(db_pool)
    await writer.start()
    r = Rig(db_pool, writer, None)  # type: ignore[arg-type]
    r.watcher = r.new_watcher()
    try:
        yield r
    finally:
        await writer.close(grace_s=5)


async def test_a_partial_then_complete_fill_is_recorded_step_by_step(rig: Rig) -> None:
    await rig.feed(
        update("OPEN", 0),
        update("OPEN", 4, 1450.0, last_fill_qty=4, last_fill_price=1450.0, seconds=1),
        update("COMPLETE", 10, 1450.03, last_fill_qty=6, last_fill_price=1450.05, seconds=2),
    )
    assert [(u.status.value, u.filled_quantity) for u in rig.dispatched] == [
        ("OPEN", 0),
        ("OPEN", 4),
        ("COMPLETE", 10),
    ]
    assert await rig.fills() == [(4, Decimal("1450.0000")), (6, Decimal("1450.0500"))]
    row = await rig.order()
    assert (row.status, row.filled_qty, row.avg_price) == ("COMPLETE", 10, Decimal("1450.0300"))
    assert row.broker_order_id == BROKER_ID
    assert rig.acks == [CID]  # the first acknowledgement only


async def test_stale_and_reordered_updates_are_kept_but_not_dispatched(rig: Rig) -> None:
    await rig.feed(
        update("OPEN", 0),
        update("OPEN", 7, 1450.0, last_fill_qty=7, last_fill_price=1450.0, seconds=20),
        update("OPEN", 4, 1450.0, last_fill_qty=4, last_fill_price=1450.0, seconds=10),  # late
    )
    assert [u.filled_quantity for u in rig.dispatched] == [0, 7]
    assert (await rig.order()).filled_qty == 7  # the stale update changed nothing
    await rig.feed(
        update("COMPLETE", 10, 1450.0, last_fill_qty=3, last_fill_price=1450.0, seconds=30),
        update("OPEN", 9, 1450.0, seconds=25),  # news from before the end, arriving after it
        update("CANCELLED", 10, 1450.0, seconds=40),  # nothing follows a terminal status
    )
    assert [u.filled_quantity for u in rig.dispatched] == [0, 7, 10]
    assert rig.dispatched[-1].status is OrderStatus.COMPLETE
    assert rig.watcher.duplicates == 3
    row = await rig.order()
    assert (row.status, row.filled_qty) == ("COMPLETE", 10)
    assert await rig.fills() == [(7, Decimal("1450.0000")), (3, Decimal("1450.0000"))]
    # History is evidence: every message is in order_events, stale ones included.
    events = await repo.list_order_events(rig.pool, CID)
    assert len(events) == 6
    assert [e.filled_qty for e in events] == [0, 4, 7, 9, 10, 10]  # in exchange time


async def test_fill_price_is_derived_from_the_cumulative_average(rig: Rig) -> None:
    # Kite postbacks carry no per-fill price: only the cumulative average.
    await rig.feed(
        update("OPEN", 3, 1450.05),
        update("COMPLETE", 10, 1450.10, seconds=1),
    )
    # (1450.10 * 10 - 1450.05 * 3) / 7 = 10150.85 / 7
    derived = (Decimal("10150.85") / 7).quantize(Decimal("0.0001"))
    assert await rig.fills() == [(3, Decimal("1450.0500")), (7, derived)]
    fills = await repo.list_fills(rig.pool, client_order_id=CID)
    total = sum(f.qty * f.price for f in fills)
    assert abs(total - Decimal("1450.10") * 10) <= Decimal("0.001")  # the average holds


async def test_a_missed_update_is_not_priced_at_the_last_partial_fill(rig: Rig) -> None:
    # The 4-lot update was lost; the next one says 10 filled, the last 6 of them at 102.
    await rig.feed(update("COMPLETE", 10, 101.2, last_fill_qty=6, last_fill_price=102.0))
    assert await rig.fills() == [(10, Decimal("101.2000"))]


async def test_a_repeat_after_a_restart_lands_once(rig: Rig) -> None:
    full = update("COMPLETE", 10, 1450.0, last_fill_qty=10, last_fill_price=1450.0)
    await rig.feed(update("OPEN", 0), full)
    rig.watcher = rig.new_watcher()  # the process restarts; the broker replays the day
    await rig.feed(update("OPEN", 0), full)
    assert await rig.fills() == [(10, Decimal("1450.0000"))]
    row = await rig.order()
    assert (row.status, row.filled_qty) == ("COMPLETE", 10)


async def test_a_rejection_is_dispatched_without_a_fill(rig: Rig) -> None:
    await rig.feed(update("REJECTED", 0))
    assert [u.status for u in rig.dispatched] == [OrderStatus.REJECTED]
    assert await rig.fills() == []
    row = await rig.order()
    assert (row.status, row.status_message) == ("REJECTED", "rejected: margin")
    assert rig.acks == []


async def test_an_order_we_did_not_place_is_recorded_by_broker_id(rig: Rig) -> None:
    other = update("COMPLETE", 5, 99.5, qty=5, cid=None, order_id="manual-1")
    await rig.feed(other)
    assert rig.dispatched == [other]  # the manager decides it is not a bracket order
    fills = await rig.pool.fetch("SELECT * FROM fills WHERE broker_order_id = 'manual-1'")
    assert [(f["qty"], f["price"], f["client_order_id"]) for f in fills] == [
        (5, Decimal("99.5000"), None)
    ]
    assert (await rig.order()).status == "NEW"  # our own order is untouched
