"""Start-up reconciliation against a real PostgreSQL, the paper broker and the fake Kite.

Earlier sessions are written through the repo functions (as the journal and a
session's shell write them); the broker side is a fresh PaperBroker (the simulated
exchange is gone after a restart) or a second KiteBroker on the same fake Kite
(the order book survives the restart).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from aitrapp import Instrument, broker_tag, order_client_id
from aitrapp.brokers.base import OrderRequest, OrderType
from aitrapp.brokers.journal import JournaledBroker
from aitrapp.brokers.kite import KiteBroker
from aitrapp.brokers.paper import PaperBroker
from aitrapp.db import repo
from aitrapp.db.pool import Pool
from aitrapp.db.repo import (
    BracketTransitionRow,
    DecisionRow,
    OrderAck,
    OrderRow,
    OrderStatusUpdate,
    PositionRow,
    SessionRow,
    SignalRow,
)
from aitrapp.db.writer import DbWriter
from aitrapp.recovery.startup_reconcile import NOT_AT_BROKER, ReconcileError, reconcile_at_start
from kite.fake_kite import FakeKite

pytestmark = pytest.mark.integration

PLAN = "0123456789abcdef01234567"
RELIANCE = 738561
T0 = datetime(2026, 1, 20, 4, 0, tzinfo=UTC)
SETTLE = 0.05


# ---------------------------------------------------------------- fixtures and builders
def instruments() -> dict[int, Instrument]:
    return {
        RELIANCE: Instrument(
            exchange="NSE",
            tradingsymbol="RELIANCE",
            instrument_token=RELIANCE,
            segment="EQ",
            tick_size=0.1,
            lot_size=1,
            freeze_qty=10_000,
        )
    }


@pytest.fixture
async def fake() -> AsyncIterator[FakeKite]:
    async with FakeKite() as f:
        yield f


KiteFactory = Callable[[], Awaitable[KiteBroker]]


@pytest.fixture
async def make_kite(fake: FakeKite) -> AsyncIterator[KiteFactory]:
    brokers: list[KiteBroker] = []

    async def factory() -> KiteBroker:
        broker = KiteBroker(
            api_key=fake.api_key,
            access_token=fake.access_token,
            instruments=instruments(),
            api_root=fake.rest_root,
            ws_root=fake.ws_root,
            poll_interval=None,
            retry_backoff=0.01,
            confirm_delay=0.05,
            ws_backoff_initial=0.02,
        )
        await broker.start()
        brokers.append(broker)
        return broker

    yield factory
    for b in brokers:
        await b.stop()


def req(
    role: str,
    *,
    plan: str = PLAN,
    side: str = "BUY",
    qty: int = 10,
    order_type: OrderType = OrderType.LIMIT,
    price: int | None = 250_000,
    trigger: int | None = None,
) -> OrderRequest:
    cid = order_client_id(role, plan)
    return OrderRequest(
        client_order_id=cid,
        tag=broker_tag(cid),
        exchange="NSE",
        tradingsymbol="RELIANCE",
        instrument_token=RELIANCE,
        side=side,  # type: ignore[arg-type]
        quantity=qty,
        order_type=order_type,
        price_paise=price,
        trigger_paise=trigger,
        market_protection=-1 if order_type in (OrderType.MARKET, OrderType.SLM) else None,
    )


def bracket(plan: str = PLAN) -> tuple[OrderRequest, OrderRequest, OrderRequest]:
    return (
        req("ENTRY", plan=plan),
        req("STOP", plan=plan, side="SELL", order_type=OrderType.SLM, price=None, trigger=248_000),
        req("TP", plan=plan, side="SELL", price=253_600),
    )


async def new_session(pool: Pool, started: datetime = T0) -> UUID:
    row = SessionRow(trading_date=date(2026, 1, 20), mode="PAPER", feed="kite", started_at=started)
    assert await repo.create_session(pool, row)
    return row.id


async def write_order(
    pool: Pool,
    session: UUID,
    r: OrderRequest,
    *,
    status: str = "NEW",
    filled: int = 0,
    avg: str | None = None,
    broker_id: str | None = None,
) -> None:
    """As the journal writes it (NEW first), then as the watcher updates it."""
    plan, _, role = r.client_order_id.partition(":")
    row = OrderRow(
        session_id=session,
        client_order_id=r.client_order_id,
        plan_id=plan,
        tag=r.tag,
        role=role,
        exchange=r.exchange,
        tradingsymbol=r.tradingsymbol,
        instrument_token=r.instrument_token,
        side=r.side,
        order_type=r.order_type.value,
        product=r.product.value,
        qty=r.quantity,
        price=None if r.price_paise is None else repo.rupees(r.price_paise),
        trigger_price=None if r.trigger_paise is None else repo.rupees(r.trigger_paise),
        created_at=T0,
        updated_at=T0,
    )
    assert await repo.insert_order_new(pool, row)
    if broker_id is not None:
        await repo.execute(
            pool, OrderAck(client_order_id=r.client_order_id, broker_order_id=broker_id, ts=T0)
        )
    if status != "NEW":
        update = OrderStatusUpdate(
            client_order_id=r.client_order_id,
            status=status,
            filled_qty=filled,
            avg_price=Decimal(avg) if avg else None,
            broker_order_id=broker_id,
            status_message=None,
            ts=T0 + timedelta(seconds=1),
        )
        assert await repo.update_order_status(pool, update)


async def write_position(pool: Pool, session: UUID, plan: str = PLAN, qty: int = 10) -> None:
    row = PositionRow(
        session_id=session,
        plan_id=plan,
        instrument_token=RELIANCE,
        exchange="NSE",
        tradingsymbol="RELIANCE",
        side="BUY",
        qty=qty,
        avg_entry=Decimal("2500"),
        opened_at=T0,
        updated_at=T0,
    )
    assert await repo.execute(pool, row)


async def order(pool: Pool, r: OrderRequest) -> OrderRow:
    row = await repo.get_order(pool, r.client_order_id)
    assert row is not None
    return row


async def position_status(pool: Pool, plan: str = PLAN) -> list[str]:
    return [p.status for p in await repo.list_positions(pool) if p.plan_id == plan]


async def audits(pool: Pool, session: UUID) -> list[dict[str, Any]]:
    rows = await repo.list_audit(pool, action="reconcile", session_id=session)
    return [r.result for r in rows]


async def open_bracket_at_kite(
    fake: FakeKite, broker: KiteBroker, *, stop: bool = True, tp: bool = True
) -> dict[str, str]:
    """Entry filled at 2500, then the children a first process got to place."""
    entry, stop_req, tp_req = bracket()
    ids = {"ENTRY": await broker.place_order(entry)}
    await fake.fill(ids["ENTRY"], price="2500.00")
    if stop:
        ids["STOP"] = await broker.place_order(stop_req)
    if tp:
        ids["TP"] = await broker.place_order(tp_req)
    return ids


async def record_open_bracket(
    pool: Pool,
    session: UUID,
    ids: dict[str, str],
    *,
    stop_status: str = "TRIGGER PENDING",
    tp_status: str = "OPEN",
) -> None:
    """The database as the first process left it: entry filled, children working."""
    entry, stop, tp = bracket()
    await write_order(
        pool, session, entry, status="COMPLETE", filled=10, avg="2500", broker_id=ids.get("ENTRY")
    )
    await write_order(
        pool,
        session,
        stop,
        status=stop_status if "STOP" in ids else "NEW",
        broker_id=ids.get("STOP"),
    )
    await write_order(
        pool, session, tp, status=tp_status if "TP" in ids else "NEW", broker_id=ids.get("TP")
    )
    await write_position(pool, session)


# ---------------------------------------------------------------- paper
async def test_clean_start_is_in_agreement(db_pool: Pool) -> None:
    now = await new_session(db_pool)
    rec = await reconcile_at_start(
        pool=db_pool, broker=PaperBroker(instruments().values()), session_id=now, accept=False
    )
    assert rec.in_agreement and rec.may_trade(False) and rec.agrees_now
    assert rec.actions == ()
    s = rec.summary()
    assert s["in_agreement"] and s["database"] == {
        "plans": 0,
        "live_orders": 0,
        "open_positions": 0,
    }
    assert (await audits(db_pool, now))[0]["in_agreement"] is True


async def test_fresh_paper_broker_disagrees_and_changes_nothing(db_pool: Pool) -> None:
    before = await new_session(db_pool, T0 - timedelta(hours=1))
    await record_open_bracket(db_pool, before, {"ENTRY": "1001", "STOP": "1002", "TP": "1003"})
    now = await new_session(db_pool)
    paper = PaperBroker(instruments().values())

    rec = await reconcile_at_start(pool=db_pool, broker=paper, session_id=now, accept=False)

    assert not rec.in_agreement
    assert not rec.may_trade(False) and rec.may_trade(True)
    assert rec.actions == () and rec.final is None
    s = rec.summary()
    assert s["db_orders_not_at_broker"]["count"] == 2  # the working STOP and TP
    assert {e["client_order_id"] for e in s["db_orders_not_at_broker"]["examples"]} == {
        order_client_id("STOP", PLAN),
        order_client_id("TP", PLAN),
    }
    assert s["db_positions"]["examples"] == [
        {"plan_id": PLAN, "fix": "close", "db": 10, "broker": 0}
    ]
    assert s["brackets"]["by_state"] == {"ENTRY_NOT_PLACED": 1}
    # nothing changed
    _, stop, tp = bracket()
    assert (await order(db_pool, stop)).status == "TRIGGER PENDING"
    assert (await order(db_pool, tp)).status == "OPEN"
    assert await position_status(db_pool) == ["OPEN"]
    assert await paper.orders() == []
    (audit,) = await audits(db_pool, now)
    assert audit["in_agreement"] is False and audit["accepted"] is False
    assert audit["db_orders_not_at_broker"]["count"] == 2


async def test_fresh_paper_broker_accepted_cancels_rows_and_closes_positions(
    db_pool: Pool,
) -> None:
    before = await new_session(db_pool, T0 - timedelta(hours=1))
    await record_open_bracket(db_pool, before, {"ENTRY": "1001", "STOP": "1002", "TP": "1003"})
    now = await new_session(db_pool)
    paper = PaperBroker(instruments().values())

    rec = await reconcile_at_start(
        pool=db_pool, broker=paper, session_id=now, accept=True, settle_s=SETTLE
    )

    assert not rec.in_agreement and rec.may_trade(True) and rec.agrees_now
    entry, stop, tp = bracket()
    for r in (stop, tp):
        row = await order(db_pool, r)
        assert (row.status, row.status_message) == ("CANCELLED", NOT_AT_BROKER)
    assert (await order(db_pool, entry)).status == "COMPLETE"  # terminal rows untouched
    (pos,) = await repo.list_positions(db_pool)
    assert pos.status == "CLOSED" and pos.closed_at is not None
    # No exit fill and no price known: closed at its entry price (a flat trade), said so.
    assert pos.exit_price == Decimal("2500")
    assert await paper.orders() == []  # nothing was sent to the broker
    kinds = sorted(a.kind for a in rec.actions)
    assert kinds == ["db_order_cancelled", "db_order_cancelled", "db_position_close"]
    assert all(a.ok for a in rec.actions)
    (audit,) = await audits(db_pool, now)
    assert audit["accepted"] is True and audit["actions"]["count"] == 3
    assert audit["after_repair"]["in_agreement"] is True
    # a second start finds nothing left to reconcile
    again = await reconcile_at_start(pool=db_pool, broker=paper, session_id=now, accept=False)
    assert again.in_agreement


async def test_rows_that_cannot_form_a_bracket_are_reported_and_left_alone(db_pool: Pool) -> None:
    before = await new_session(db_pool, T0 - timedelta(hours=1))
    _, stop, _ = bracket()
    await write_order(db_pool, before, stop, status="TRIGGER PENDING", broker_id="1002")
    other = "fedcba9876543210fedcba98"
    bad_entry = dataclasses.replace(req("ENTRY", plan=other), tag="HANDTYPED")
    await write_order(db_pool, before, bad_entry, status="OPEN", broker_id="2001")
    now = await new_session(db_pool)

    rec = await reconcile_at_start(
        pool=db_pool, broker=PaperBroker(instruments().values()), session_id=now, accept=True
    )

    assert not rec.in_agreement and not rec.agrees_now
    problems = {p["plan_id"]: p["message"] for p in rec.summary()["problems"]["examples"]}
    assert "no ENTRY order row" in problems[PLAN]
    assert f"orders[{bad_entry.client_order_id}].tag: 'HANDTYPED'" in problems[other]
    # not guessed at: both stay as they were
    assert (await order(db_pool, stop)).status == "TRIGGER PENDING"
    assert (await order(db_pool, bad_entry)).status == "OPEN"


# ---------------------------------------------------------------- fake Kite: a restart mid-bracket
async def test_restart_mid_bracket_with_stop_working_is_in_agreement(
    db_pool: Pool, fake: FakeKite, make_kite: KiteFactory
) -> None:
    before = await new_session(db_pool, T0 - timedelta(hours=1))
    first = await make_kite()
    ids = await open_bracket_at_kite(fake, first)
    await first.stop()  # the process dies; the bracket rests at Kite
    await record_open_bracket(db_pool, before, ids)
    now = await new_session(db_pool)

    rec = await reconcile_at_start(
        pool=db_pool, broker=await make_kite(), session_id=now, accept=False
    )

    assert rec.in_agreement and rec.may_trade(False), rec.lines()
    s = rec.summary()
    assert s["brackets"]["by_state"] == {"OPEN": 1}
    assert s["resumed"]["examples"] == [PLAN] and s["unprotected"]["count"] == 0
    assert len(fake.placed()) == 3 and not any(m == "DELETE" for m, _, _ in fake.requests)


async def test_missing_stop_is_placed_once_on_accept(
    db_pool: Pool, fake: FakeKite, make_kite: KiteFactory
) -> None:
    before = await new_session(db_pool, T0 - timedelta(hours=1))
    first = await make_kite()
    ids = await open_bracket_at_kite(fake, first, stop=False)  # died before the stop
    await first.stop()
    await record_open_bracket(db_pool, before, ids)  # the STOP row is NEW: never sent
    now = await new_session(db_pool)
    broker = await make_kite()
    _, stop, _ = bracket()

    refused = await reconcile_at_start(pool=db_pool, broker=broker, session_id=now, accept=False)
    assert not refused.in_agreement and not refused.may_trade(False)
    assert refused.summary()["unprotected"]["examples"] == [PLAN]
    assert [p["client_order_id"] for p in refused.summary()["to_place"]["examples"]] == [
        stop.client_order_id
    ]
    assert len(fake.placed()) == 2 and fake.by_tag(stop.tag) == []

    for _ in range(2):  # an accepted start run twice never places the stop twice
        rec = await reconcile_at_start(
            pool=db_pool, broker=broker, session_id=now, accept=True, settle_s=SETTLE
        )
    assert rec.in_agreement, rec.lines()
    (placed,) = fake.by_tag(stop.tag)
    assert placed["order_type"] == "SL-M" and placed["trigger_price"] == 2480.0
    assert placed["quantity"] == 10 and placed["transaction_type"] == "SELL"
    assert len(fake.placed()) == 3
    row = await order(db_pool, stop)
    assert (row.broker_order_id, row.status) == (placed["order_id"], "TRIGGER PENDING")
    assert len(await audits(db_pool, now)) == 3


async def test_missing_stop_is_placed_once_on_accept_through_the_journal(
    db_pool: Pool, fake: FakeKite, make_kite: KiteFactory
) -> None:
    """LIVE reconciles through the write-ahead journal. The earlier process wrote
    the STOP row and died before Kite heard of it: the journal alone would refuse
    that id (journalled by an earlier session, unknown to the broker); the
    reconciliation has just seen the order is not at the broker, so it places it,
    once, under its own row."""
    before = await new_session(db_pool, T0 - timedelta(hours=1))
    first = await make_kite()
    ids = await open_bracket_at_kite(fake, first, stop=False)
    await first.stop()
    await record_open_bracket(db_pool, before, ids)  # the STOP row is NEW: never sent
    now = await new_session(db_pool)
    _, stop, _ = bracket()
    writer = DbWriter(db_pool)
    await writer.start()
    try:
        journal = JournaledBroker(await make_kite(), pool=db_pool, writer=writer, session_id=now)
        for _ in range(2):  # run twice: placed once
            rec = await reconcile_at_start(
                pool=db_pool, broker=journal, session_id=now, accept=True, settle_s=SETTLE
            )
        await writer.flush()
    finally:
        await writer.close()
    assert rec.in_agreement, rec.lines()
    assert not rec.errors
    (placed,) = fake.by_tag(stop.tag)
    assert (placed["order_type"], placed["trigger_price"]) == ("SL-M", 2480.0)
    assert placed["quantity"] == 10
    row = await order(db_pool, stop)
    assert (row.broker_order_id, row.status) == (placed["order_id"], "TRIGGER PENDING")


async def test_a_replacement_stop_is_the_plans_stop(
    db_pool: Pool, fake: FakeKite, make_kite: KiteFactory
) -> None:
    """A process adopted the bracket after its STOP was cancelled at Kite and placed
    the stop again as STOP1; it died too. The next start sees STOP1 protecting the
    position: in agreement, nothing placed, nothing exited."""
    before = await new_session(db_pool, T0 - timedelta(hours=2))
    adopter = await new_session(db_pool, T0 - timedelta(hours=1))
    first = await make_kite()
    ids = await open_bracket_at_kite(fake, first)
    await first.cancel_order(ids["STOP"])  # lost while no process watched
    _, stop, _ = bracket()
    stop1 = dataclasses.replace(
        stop, client_order_id=order_client_id("STOP1", PLAN), tag=broker_tag(f"{PLAN}:STOP1")
    )
    stop1_id = await first.place_order(stop1)
    await first.stop()
    await record_open_bracket(db_pool, before, ids, stop_status="CANCELLED")
    await write_order(db_pool, adopter, stop1, status="TRIGGER PENDING", broker_id=stop1_id)
    placed_before = len(fake.placed())
    now = await new_session(db_pool)
    broker = await make_kite()
    rec = await reconcile_at_start(
        pool=db_pool, broker=broker, session_id=now, accept=True, settle_s=SETTLE
    )
    assert rec.in_agreement, rec.lines()
    assert rec.summary()["unprotected"]["examples"] == []
    assert len(fake.placed()) == placed_before
    assert fake.order(stop1_id)["status"] == "TRIGGER PENDING"
    assert fake.order(ids["TP"])["status"] == "OPEN"


async def test_a_replacement_target_is_the_plans_target(
    db_pool: Pool, fake: FakeKite, make_kite: KiteFactory
) -> None:
    """A process adopted the bracket after its TP was cancelled at Kite and placed the
    target again as TARGET1; it died too. The next start sees TARGET1 as the plan's
    target: in agreement, nothing placed (no second target under TP), nothing
    cancelled."""
    before = await new_session(db_pool, T0 - timedelta(hours=2))
    adopter = await new_session(db_pool, T0 - timedelta(hours=1))
    first = await make_kite()
    ids = await open_bracket_at_kite(fake, first)
    await first.cancel_order(ids["TP"])  # lost while no process watched
    _, _, tp = bracket()
    c = order_client_id("TARGET1", PLAN)
    target1 = dataclasses.replace(tp, client_order_id=c, tag=broker_tag(c))
    target1_id = await first.place_order(target1)
    await first.stop()
    await record_open_bracket(db_pool, before, ids, tp_status="CANCELLED")
    await write_order(db_pool, adopter, target1, status="OPEN", broker_id=target1_id)
    placed_before = len(fake.placed())
    now = await new_session(db_pool)
    broker = await make_kite()
    rec = await reconcile_at_start(
        pool=db_pool, broker=broker, session_id=now, accept=True, settle_s=SETTLE
    )
    assert rec.in_agreement, rec.lines()
    assert rec.actions == ()
    assert len(fake.placed()) == placed_before
    assert fake.order(target1_id)["status"] == "OPEN"
    assert fake.order(ids["STOP"])["status"] == "TRIGGER PENDING"
    # TARGET1 is the bracket's target, not a market exit in flight that would
    # leave the bracket unchecked (its stop unsized) until it fills.
    assert not [line for line in rec.lines() if "in flight" in line], rec.lines()


async def test_children_never_written_are_placed_from_the_transitions(
    db_pool: Pool, fake: FakeKite, make_kite: KiteFactory
) -> None:
    """The crash fell between the ENTRY_FILLED transition and the children's rows."""
    before = await new_session(db_pool, T0 - timedelta(hours=1))
    first = await make_kite()
    ids = await open_bracket_at_kite(fake, first, stop=False, tp=False)
    await first.stop()
    entry, stop, tp = bracket()
    await write_order(
        db_pool, before, entry, status="COMPLETE", filled=10, avg="2500", broker_id=ids["ENTRY"]
    )
    await write_position(db_pool, before)
    commands = [
        {
            "kind": "PLACE_ORDER",
            "client_order_id": stop.client_order_id,
            "role": "STOP",
            "side": "SELL",
            "qty": 10,
            "order_type": "SL-M",
            "price": None,
            "trigger": "2480.00",
        },
        {
            "kind": "PLACE_ORDER",
            "client_order_id": tp.client_order_id,
            "role": "TAKE_PROFIT",
            "side": "SELL",
            "qty": 10,
            "order_type": "LIMIT",
            "price": "2536.00",
            "trigger": None,
        },
    ]
    await repo.execute(
        db_pool,
        BracketTransitionRow(
            plan_id=PLAN,
            seq=1,
            ts=T0,
            from_state="ENTERING",
            to_state="OPEN",
            event="ENTRY_FILLED",
            session_id=before,
            commands=commands,
        ),
    )
    now = await new_session(db_pool)
    writer = DbWriter(db_pool)
    await writer.start()
    try:
        journal = JournaledBroker(await make_kite(), pool=db_pool, writer=writer, session_id=now)
        rec = await reconcile_at_start(
            pool=db_pool,
            broker=journal,
            session_id=now,
            accept=True,
            writer=writer,
            settle_s=SETTLE,
        )
        await writer.flush()
    finally:
        await writer.close()

    assert rec.agrees_now, rec.lines()
    (stop_order,) = fake.by_tag(stop.tag)
    (tp_order,) = fake.by_tag(tp.tag)
    assert (stop_order["trigger_price"], tp_order["price"]) == (2480.0, 2536.0)
    # the journal wrote both rows ahead of the placement, under this session
    for r, placed in ((stop, stop_order), (tp, tp_order)):
        row = await order(db_pool, r)
        assert row.session_id == now and row.broker_order_id == placed["order_id"]
    (audit,) = await audits(db_pool, now)  # through the writer
    assert {a["kind"] for a in audit["actions"]["items"]} >= {"place"}


async def test_orphan_tp_after_the_stop_filled_is_cancelled_on_accept(
    db_pool: Pool, fake: FakeKite, make_kite: KiteFactory
) -> None:
    before = await new_session(db_pool, T0 - timedelta(hours=1))
    first = await make_kite()
    ids = await open_bracket_at_kite(fake, first)
    await first.stop()
    await record_open_bracket(db_pool, before, ids)
    await fake.fill(ids["STOP"], price="2480.00")  # while nobody watched
    now = await new_session(db_pool)
    broker = await make_kite()

    refused = await reconcile_at_start(pool=db_pool, broker=broker, session_id=now, accept=False)
    assert not refused.in_agreement
    assert [c["order_id"] for c in refused.summary()["to_cancel"]["examples"]] == [ids["TP"]]
    assert fake.order(ids["TP"])["status"] == "OPEN"

    rec = await reconcile_at_start(
        pool=db_pool, broker=broker, session_id=now, accept=True, settle_s=SETTLE
    )
    assert rec.agrees_now, rec.lines()
    assert fake.order(ids["TP"])["status"] == "CANCELLED"
    _, stop, tp = bracket()
    stop_row, tp_row = await order(db_pool, stop), await order(db_pool, tp)
    assert (stop_row.status, stop_row.filled_qty, stop_row.avg_price) == (
        "COMPLETE",
        10,
        Decimal("2480"),
    )
    assert tp_row.status == "CANCELLED"
    (pos,) = await repo.list_positions(db_pool)
    assert (pos.status, pos.exit_price) == ("CLOSED", Decimal("2480"))
    assert len(fake.placed()) == 3  # nothing new was placed


async def test_working_entry_of_an_earlier_process_is_cancelled_on_accept(
    db_pool: Pool, fake: FakeKite, make_kite: KiteFactory
) -> None:
    before = await new_session(db_pool, T0 - timedelta(hours=1))
    first = await make_kite()
    entry, _, _ = bracket()
    entry_id = await first.place_order(entry)
    await first.stop()
    await write_order(db_pool, before, entry, status="OPEN", broker_id=entry_id)
    now = await new_session(db_pool)
    broker = await make_kite()

    refused = await reconcile_at_start(pool=db_pool, broker=broker, session_id=now, accept=False)
    assert not refused.in_agreement
    assert refused.summary()["brackets"]["by_state"] == {"AWAITING_ENTRY": 1}
    rec = await reconcile_at_start(
        pool=db_pool, broker=broker, session_id=now, accept=True, settle_s=SETTLE
    )
    assert fake.order(entry_id)["status"] == "CANCELLED"
    assert (await order(db_pool, entry)).status == "CANCELLED"
    assert rec.agrees_now, rec.lines()


async def test_unknown_broker_order_is_reported_and_never_touched(
    db_pool: Pool, fake: FakeKite, make_kite: KiteFactory
) -> None:
    now = await new_session(db_pool)
    broker = await make_kite()
    # placed by hand in Kite web: no tag
    await broker._rest.place_order(
        variety="regular",
        exchange="NSE",
        tradingsymbol="RELIANCE",
        transaction_type="BUY",
        quantity=1,
        product="MIS",
        order_type="LIMIT",
        price="2400.00",
    )
    (manual_id,) = fake.orders

    rec = await reconcile_at_start(
        pool=db_pool, broker=broker, session_id=now, accept=True, settle_s=SETTLE
    )

    assert not rec.in_agreement and not rec.agrees_now and rec.may_trade(True)
    unknown = rec.summary()["unknown_broker_orders"]
    assert unknown["live"] == 1 and unknown["examples"][0]["order_id"] == manual_id
    assert unknown["examples"][0]["tag"] is None
    assert fake.order(manual_id)["status"] == "OPEN"


async def test_orphan_on_an_unexplained_position_is_held_not_cancelled(
    db_pool: Pool, fake: FakeKite, make_kite: KiteFactory
) -> None:
    """The database says the plan is over, the broker still holds it with its stop:
    cancelling that 'orphan' would leave the position naked."""
    before = await new_session(db_pool, T0 - timedelta(hours=1))
    first = await make_kite()
    ids = await open_bracket_at_kite(fake, first, tp=False)
    await first.stop()
    entry, stop, _ = bracket()
    await write_order(
        db_pool, before, entry, status="COMPLETE", filled=10, avg="2500", broker_id=ids["ENTRY"]
    )
    await write_order(db_pool, before, stop, status="CANCELLED", broker_id=ids["STOP"])
    now = await new_session(db_pool)

    rec = await reconcile_at_start(
        pool=db_pool, broker=await make_kite(), session_id=now, accept=True, settle_s=SETTLE
    )

    assert not rec.agrees_now
    s = rec.summary()
    assert s["position_mismatches"]["examples"][0]["actual"] == 10
    assert s["to_cancel"]["count"] == 0
    assert any("not cancelled" in p["message"] for p in s["problems"]["examples"])
    assert fake.order(ids["STOP"])["status"] == "TRIGGER PENDING"


async def test_entry_filled_while_down_gets_children_from_the_decision_and_a_position(
    db_pool: Pool, fake: FakeKite, make_kite: KiteFactory
) -> None:
    """The entry filled after the process died: no child rows, no transition, no position
    row; the decision says where the stop and the target are."""
    before = await new_session(db_pool, T0 - timedelta(hours=1))
    first = await make_kite()
    entry, stop, tp = bracket()
    entry_id = await first.place_order(entry)
    await first.stop()
    await fake.fill(entry_id, price="2501.00")
    await write_order(db_pool, before, entry, status="OPEN", broker_id=entry_id)
    signal = SignalRow(
        session_id=before,
        ts=T0,
        instrument_token=RELIANCE,
        tradingsymbol="RELIANCE",
        strategy="orb",
        side="BUY",
        entry=Decimal("2500"),
        stop=Decimal("2470"),
        tp=Decimal("2560"),
    )
    decision = DecisionRow(
        session_id=before,
        signal_id=signal.id,
        plan_id=PLAN,
        ts=T0,
        tradingsymbol="RELIANCE",
        strategy="orb",
        side="BUY",
        qty=10,
        entry=Decimal("2500"),
        stop=Decimal("2470"),
        tp=Decimal("2560"),
        risk_rupees=Decimal("300"),
        heat_after_pct=Decimal("0.3"),
        config_sha="x",
    )
    assert await repo.execute(db_pool, signal) and await repo.execute(db_pool, decision)
    now = await new_session(db_pool)

    rec = await reconcile_at_start(
        pool=db_pool, broker=await make_kite(), session_id=now, accept=True, settle_s=SETTLE
    )

    assert not rec.in_agreement and rec.agrees_now, rec.lines()
    (stop_order,) = fake.by_tag(stop.tag)
    (tp_order,) = fake.by_tag(tp.tag)
    assert (stop_order["order_type"], stop_order["trigger_price"]) == ("SL-M", 2470.0)
    assert (tp_order["order_type"], tp_order["price"]) == ("LIMIT", 2560.0)
    assert stop_order["quantity"] == tp_order["quantity"] == 10
    entry_row = await order(db_pool, entry)
    assert (entry_row.status, entry_row.filled_qty, entry_row.avg_price) == (
        "COMPLETE",
        10,
        Decimal("2501"),
    )
    (pos,) = await repo.list_positions(db_pool)
    assert (pos.status, pos.qty, pos.avg_entry, pos.session_id) == (
        "OPEN",
        10,
        Decimal("2501"),
        before,
    )
    for r in (stop, tp):  # written ahead of the placement, then acknowledged
        row = await order(db_pool, r)
        assert row.session_id == now and row.broker_order_id is not None


async def test_open_position_without_any_stop_plan_is_exited_at_market(
    db_pool: Pool, fake: FakeKite, make_kite: KiteFactory
) -> None:
    """Nothing says where the stop was: rather than guess one, exit at market."""
    before = await new_session(db_pool, T0 - timedelta(hours=1))
    first = await make_kite()
    ids = await open_bracket_at_kite(fake, first, stop=False, tp=False)
    await first.stop()
    fake.set_ltp(RELIANCE, "2490.00")  # the market exit fills here
    entry, stop, _ = bracket()
    await write_order(
        db_pool, before, entry, status="COMPLETE", filled=10, avg="2500", broker_id=ids["ENTRY"]
    )
    await write_position(db_pool, before)
    now = await new_session(db_pool)
    broker = await make_kite()

    refused = await reconcile_at_start(pool=db_pool, broker=broker, session_id=now, accept=False)
    (place,) = refused.summary()["to_place"]["examples"]
    assert place["order_type"] == "MARKET" and "cannot be derived" in place["reason"]

    rec = await reconcile_at_start(
        pool=db_pool, broker=broker, session_id=now, accept=True, settle_s=SETTLE
    )
    assert rec.agrees_now, rec.lines()
    assert fake.by_tag(stop.tag) == []  # the stand-in stop is never sent
    (exit_order,) = fake.by_tag(broker_tag(order_client_id("EXIT", PLAN)))
    assert exit_order["status"] == "COMPLETE" and exit_order["market_protection"] == -1
    (pos,) = await repo.list_positions(db_pool)
    assert (pos.status, pos.exit_price) == ("CLOSED", Decimal("2490"))


async def test_broker_that_cannot_be_read_is_a_clear_error(
    db_pool: Pool, fake: FakeKite, make_kite: KiteFactory
) -> None:
    now = await new_session(db_pool)
    broker = await make_kite()
    fake.fail_next("GET", "/orders", status=503, error_type="NetworkException", message="down")
    with pytest.raises(ReconcileError, match="orders"):
        await reconcile_at_start(pool=db_pool, broker=broker, session_id=now, accept=True)
    assert await audits(db_pool, now) == []


async def test_target_run_through_while_down_leaves_nothing_working_after_one_start(
    db_pool: Pool, fake: FakeKite, make_kite: KiteFactory
) -> None:
    """The process died after placing the stop, before the target; the price ran
    through the target while it was down. One accepted start-up places the target
    (it fills at once), then cancels the stop: flat, nothing working, in agreement."""
    before = await new_session(db_pool, T0 - timedelta(hours=1))
    first = await make_kite()
    ids = await open_bracket_at_kite(fake, first, tp=False)
    await first.stop()
    await record_open_bracket(db_pool, before, ids)
    fake.set_ltp(RELIANCE, "2540.00")  # the target is 2536
    now = await new_session(db_pool)
    broker = await make_kite()

    rec = await reconcile_at_start(
        pool=db_pool, broker=broker, session_id=now, accept=True, settle_s=SETTLE
    )

    assert rec.passes == 2 and rec.agrees_now, rec.lines()
    _, stop, tp = bracket()
    (tp_order,) = fake.by_tag(tp.tag)
    assert (tp_order["status"], tp_order["average_price"]) == ("COMPLETE", 2540.0)
    assert fake.order(ids["STOP"])["status"] == "CANCELLED"
    assert [o for o in fake.orders.values() if o["status"] in ("OPEN", "TRIGGER PENDING")] == []
    assert sum(p.quantity for p in await broker.positions()) == 0
    stop_row, tp_row = await order(db_pool, stop), await order(db_pool, tp)
    assert (stop_row.status, tp_row.status, tp_row.filled_qty) == ("CANCELLED", "COMPLETE", 10)
    (pos,) = await repo.list_positions(db_pool)
    assert (pos.status, pos.exit_price) == ("CLOSED", Decimal("2540"))
    kinds = [(a.kind, a.ok) for a in rec.actions if a.kind in ("place", "cancel")]
    assert kinds == [("place", True), ("cancel", True)]
    assert rec.summary()["actions"]["passes"] == 2
