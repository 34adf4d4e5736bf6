"""The write-ahead order journal.

An ENTRY is journalled in PostgreSQL before the broker hears of it, and is
refused when that is impossible; protective orders (STOP, TP, EXIT) are
placed whatever the database does and journalled through the writer's queue.

The order pacer that sat in the journal (for the Python paper broker) is gone:
the kernel paces orders itself. Its tests' promises are checked there: the
eleventh order of a second waits for the window, first come first served
(``core-rs/aitrapp-core/src/kernel/pacer.rs`` tests); a burst of exits is paced
instead of rejected (``core-rs/aitrapp-core/tests/kernel_pacing.rs``: 22 rate
rejections without the pacer, 0 with it); a limit must be positive
(``PaperConfig.max_orders_per_second``, ``tests/test_paper_validation.py``); on
Kite, ``KiteBroker``'s own limiter (``tests/kite/test_pacing.py``).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
import pytest_asyncio

from aitrapp import broker_tag, order_client_id
from aitrapp.brokers.base import BrokerError, OrderRequest, OrderStatus, OrderType
from aitrapp.brokers.journal import EntryRefusedError, JournaledBroker, OrderFinishedError
from aitrapp.brokers.paper import PaperBroker
from aitrapp.db import repo
from aitrapp.db.embedded import free_port
from aitrapp.db.pool import Pool, create_pool
from aitrapp.db.repo import OrderRow, SessionRow
from aitrapp.db.writer import DbWriter
from aitrapp.ticks import Tick
from fakes import FakeBroker

from .helpers import LTP, T0, TEST_DAY, count, plan_id, reliance


def request(role: str, plan: str | None = None, side: str = "SELL") -> OrderRequest:
    """An order of a long position's bracket: ENTRY buys, the exits sell."""
    inst = reliance()
    cid = order_client_id(role, plan or plan_id())
    shapes: dict[str, dict[str, Any]] = {
        "ENTRY": {"side": "BUY", "order_type": OrderType.LIMIT, "price_paise": 145_000},
        "TP": {"side": side, "order_type": OrderType.LIMIT, "price_paise": 146_000},
        "STOP": {
            "side": side,
            "order_type": OrderType.SLM,
            "trigger_paise": 144_500,
            "market_protection": -1.0,
        },
        "EXIT": {"side": side, "order_type": OrderType.MARKET, "market_protection": -1.0},
    }
    return OrderRequest(
        client_order_id=cid,
        tag=broker_tag(cid),
        exchange=inst.exchange,
        tradingsymbol=inst.tradingsymbol,
        instrument_token=inst.instrument_token,
        quantity=10,
        **shapes[role],
    )


def paper() -> PaperBroker:
    broker = PaperBroker([reliance()], wall_clock_ns=lambda: 0)
    broker.on_tick(Tick(reliance().instrument_token, T0, LTP, 100, 0, LTP - 0.05, LTP + 0.05))
    return broker


@pytest_asyncio.fixture
async def session_id(db_pool: Pool) -> Any:
    row = SessionRow(
        trading_date=TEST_DAY, mode="PAPER", feed="synthetic", started_at=datetime.now(UTC)
    )
    await repo.create_session(db_pool, row)
    return row.id


@pytest_asyncio.fixture
async def dead_pool() -> AsyncIterator[Pool]:
    """A pool whose server refuses every connection (nothing listens on the port)."""
    pool = await create_pool(
        f"postgresql://postgres@127.0.0.1:{free_port()}/postgres", min_size=0, max_size=2
    )
    try:
        yield pool
    finally:
        await pool.close()


class HungPool:
    """A database that accepts the query and never answers."""

    async def execute(self, *args: object, **kwargs: object) -> str:
        await asyncio.sleep(3600)
        return "INSERT 0 1"


# ---------------------------------------------------------------- entries
async def test_an_entry_is_refused_when_the_database_is_unreachable(
    dead_pool: Pool, db_pool: Pool, session_id: Any
) -> None:
    broker, writer = paper(), DbWriter(db_pool)
    journal = JournaledBroker(broker, pool=dead_pool, writer=writer, session_id=session_id)
    req = request("ENTRY")
    with pytest.raises(EntryRefusedError, match=req.client_order_id):
        await journal.place_order(req)
    assert await broker.orders() == []  # the broker never heard of it
    assert writer.queue_depth == 0  # and no row was queued for it either
    assert journal.broker_order_id(req.client_order_id) is None


async def test_an_entry_is_refused_when_the_database_hangs(db_pool: Pool, session_id: Any) -> None:
    broker = paper()
    journal = JournaledBroker(
        broker,
        pool=HungPool(),  # type: ignore[arg-type]
        writer=DbWriter(db_pool),
        session_id=session_id,
        db_timeout_s=0.05,
    )
    with pytest.raises(EntryRefusedError, match="database unavailable"):
        await journal.place_order(request("ENTRY"))
    assert await broker.orders() == []


async def test_an_entry_is_journalled_as_new_before_the_broker_is_called(
    db_pool: Pool, session_id: Any
) -> None:
    seen_at_placement: list[OrderRow | None] = []

    class Recording(PaperBroker):
        async def place_order(self, req: OrderRequest) -> str:
            seen_at_placement.append(await repo.get_order(db_pool, req.client_order_id))
            return self.submit(req)

    broker = Recording([reliance()], wall_clock_ns=lambda: 0)
    broker.on_tick(Tick(reliance().instrument_token, T0, LTP, 100, 0, LTP - 0.05, LTP + 0.05))
    journal = JournaledBroker(broker, pool=db_pool, writer=DbWriter(db_pool), session_id=session_id)
    req = request("ENTRY")
    await journal.place_order(req)
    (row,) = seen_at_placement
    assert row is not None
    assert (row.status, row.role, row.tag, row.qty) == ("NEW", "ENTRY", req.tag, 10)
    assert row.broker_order_id is None


# ---------------------------------------------------------------- exits
@pytest.mark.parametrize("role", ["STOP", "TP", "EXIT"])
async def test_exits_are_placed_and_journalled_through_the_writer_queue(
    role: str, dead_pool: Pool, db_pool: Pool, session_id: Any
) -> None:
    broker = paper()
    writer = DbWriter(db_pool)  # not started yet: its queue is what the outage keeps
    journal = JournaledBroker(broker, pool=dead_pool, writer=writer, session_id=session_id)
    req = request(role)
    order_id = await journal.place_order(req)
    assert [u.client_order_id for u in await broker.orders()] == [req.client_order_id]
    assert writer.queue_depth == 2  # the NEW row and the broker's acknowledgement
    assert await count(db_pool, "orders") == 0

    await writer.start()  # the database is back
    try:
        async with asyncio.timeout(10):
            await writer.flush()
    finally:
        await writer.close()
    row = await repo.get_order(db_pool, req.client_order_id)
    assert row is not None
    assert (row.role, row.broker_order_id, row.order_type) == (
        role,
        order_id,
        req.order_type.value,
    )


async def test_an_exit_repeated_during_the_outage_is_placed_once(
    dead_pool: Pool, db_pool: Pool, session_id: Any
) -> None:
    broker = paper()
    writer = DbWriter(db_pool)
    journal = JournaledBroker(broker, pool=dead_pool, writer=writer, session_id=session_id)
    req = request("STOP")
    first = await journal.place_order(req)
    assert await journal.place_order(req) == first
    assert len(await broker.orders()) == 1
    rows = [w for w in writer.queued() if isinstance(w, OrderRow)]
    assert [r.client_order_id for r in rows] == [req.client_order_id] * 2  # idempotent insert
    await writer.start()
    try:
        async with asyncio.timeout(10):
            await writer.flush()
    finally:
        await writer.close()
    assert await count(db_pool, "orders") == 1


async def test_market_orders_without_protection_are_refused_before_the_journal(
    db_pool: Pool, session_id: Any
) -> None:
    broker = paper()
    journal = JournaledBroker(broker, pool=db_pool, writer=DbWriter(db_pool), session_id=session_id)
    bare = dataclasses.replace(request("EXIT"), market_protection=None)
    with pytest.raises(ValueError, match=f"{bare.client_order_id}.*market_protection"):
        await journal.place_order(bare)
    assert await broker.orders() == []
    assert await count(db_pool, "orders") == 0


async def test_an_unknown_outcome_is_looked_up_by_tag_before_placing_again(
    db_pool: Pool, session_id: Any
) -> None:
    class TimesOutOnce(PaperBroker):
        failed = False

        async def place_order(self, req: OrderRequest) -> str:
            order_id = self.submit(req)  # the broker got it ...
            if not self.failed:
                self.failed = True
                raise BrokerError("read timeout", retryable=True)  # ... the answer did not
            return order_id

    broker = TimesOutOnce([reliance()], wall_clock_ns=lambda: 0)
    broker.on_tick(Tick(reliance().instrument_token, T0, LTP, 100, 0, LTP - 0.05, LTP + 0.05))
    journal = JournaledBroker(broker, pool=db_pool, writer=DbWriter(db_pool), session_id=session_id)
    req = request("ENTRY")
    with pytest.raises(BrokerError):
        await journal.place_order(req)
    (only,) = await broker.orders()
    assert await journal.place_order(req) == only.order_id  # found by its tag, not re-sent
    assert len(await broker.orders()) == 1


async def test_an_id_whose_order_is_over_at_the_broker_is_never_handed_back_as_placed(
    db_pool: Pool, session_id: Any
) -> None:
    """The same client id again is the same order, so nothing is placed a second time;
    but an order that is over without a fill (cancelled, or rejected once accepted) is
    no answer to "place this": the caller gets OrderFinishedError with the broker's
    report, never the dead order's id as if it were working. A live order found under
    the tag is still handed back (a lost acknowledgement)."""
    broker = FakeBroker(clock=lambda: T0)
    broker.set_price(reliance().instrument_token, 145_000)
    writer = DbWriter(db_pool)
    stop, tp, entry = request("STOP"), request("TP"), request("ENTRY")
    broker.reject_when(lambda r: r.client_order_id == entry.client_order_id, "RMS: margin")
    first = JournaledBroker(broker, pool=db_pool, writer=writer, session_id=session_id)
    ids = {r.client_order_id: await first.place_order(r) for r in (stop, tp, entry)}
    broker.cancel_externally(stop.client_order_id)  # no one reads the stream: no settling
    later = {"same session": session_id, "a later session": uuid4()}
    for what, sid in later.items():
        if sid != session_id:
            await repo.create_session(
                db_pool,
                SessionRow(
                    id=sid, trading_date=TEST_DAY, mode="LIVE", feed="kite",
                    started_at=datetime.now(UTC),
                ),
            )  # fmt: skip
        again = JournaledBroker(broker, pool=db_pool, writer=writer, session_id=sid)
        for r, status in ((stop, OrderStatus.CANCELLED), (entry, OrderStatus.REJECTED)):
            with pytest.raises(OrderFinishedError, match=f"{ids[r.client_order_id]}.*{status}"):
                await again.place_order(r)
            try:
                await again.place_order(r)
            except OrderFinishedError as exc:
                assert (exc.order.order_id, exc.order.status) == (ids[r.client_order_id], status)
        assert await again.place_order(tp) == ids[tp.client_order_id], what
    for r in (stop, tp, entry):
        assert broker.placements(r.client_order_id) == 1


# ---------------------------------------------------------------- the pacer
class FakeClock:
    def __init__(self, ns: int = 0) -> None:
        self.ns = ns

    def __call__(self) -> int:
        return self.ns


async def _settle(times: int = 20) -> None:
    for _ in range(times):
        await asyncio.sleep(0.002)


def _rejected(updates: list[Any]) -> list[str]:
    return [u.client_order_id for u in updates if u.status is OrderStatus.REJECTED]
