"""OCOManager.adopt_bracket: after a restart, a new manager takes over a
bracket an earlier process opened, and runs it like its own."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import asdict
from datetime import time as datetime_time
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from aitrapp import Instrument, OcoError, broker_tag, order_client_id
from aitrapp._core import AdoptedOrder
from aitrapp.brokers.base import OrderStatus, OrderType
from aitrapp.calendar import ist_ns
from aitrapp.db import repo
from aitrapp.db.pool import Conn, create_pool
from aitrapp.db.repo import OrderRow, OrderStatusUpdate, SessionRow
from aitrapp.oco import BracketExistsError, OCOManager
from aitrapp.pipeline.engine_restore import adopt_open_brackets
from aitrapp.pipeline.orchestrator import BracketOptions
from fakes import FakeBroker
from pipeline.helpers import TEST_DAY, fresh_database
from pipeline.test_engine_restore import at, by_symbol, write_plan
from test_oco_manager import TOKEN, Env, cid, make_env, plan, spec

T_DAY = ist_ns(TEST_DAY, datetime_time(10, 30))


async def previous_process(broker: FakeBroker, n: int = 1) -> None:
    """An earlier process opens a bracket, its entry fills at 2500.00, and it dies."""
    env, pump = make_env(broker)
    await env.mgr.open_bracket(spec(n))
    broker.fill(cid(n, "ENTRY"))
    await broker.settled()
    pump.cancel()
    await asyncio.sleep(0)


def adopted_children(broker: FakeBroker, n: int = 1) -> tuple[list[AdoptedOrder], dict[str, str]]:
    """The bracket's stop / take-profit as the broker has them (what the runtime reads)."""
    children, ids = [], {}
    for tag in ("STOP", "TP"):
        try:
            o = broker.order(cid(n, tag))
        except KeyError:
            continue
        children.append(
            AdoptedOrder(
                tag,
                o.quantity,
                o.filled,
                o.value_paise / o.filled / 100 if o.filled else None,
                working=o.is_live,
                price=o.price_paise / 100 if o.price_paise is not None else None,
                trigger=o.trigger_paise / 100 if o.trigger_paise is not None else None,
            )
        )
        ids[cid(n, tag)] = o.order_id
    return children, ids


@pytest.fixture
async def restarted() -> AsyncIterator[Env]:
    broker = FakeBroker()
    broker.set_price(TOKEN, 250_100)
    await previous_process(broker)
    env, pump = make_env(broker)
    await broker.settled()
    children, ids = adopted_children(broker)
    bid = await env.mgr.adopt_bracket(
        spec(), entry_filled=10, entry_avg=2500.0, children=children, order_ids=ids
    )
    assert bid == plan(1)
    yield env
    pump.cancel()


async def test_adopted_bracket_is_open_with_both_children(restarted: Env) -> None:
    b, mgr = restarted.broker, restarted.mgr
    snap = mgr.bracket(plan(1))
    assert (snap.state, snap.net_qty, snap.entry_avg_price) == ("OPEN", 10, 2500.0)
    assert sorted(w.tag for w in snap.working_orders) == ["STOP", "TP"]
    assert {w.broker_order_id for w in snap.working_orders} == {
        b.order(cid(1, "STOP")).order_id,
        b.order(cid(1, "TP")).order_id,
    }
    # Nothing was placed again: the adopted orders are the broker's.
    assert b.placements(cid(1, "STOP")) == b.placements(cid(1, "TP")) == 1
    assert restarted.rec.transitions[0].event == "ADOPT"


async def test_tp_fill_cancels_the_stop_and_closes_with_pnl(restarted: Env) -> None:
    b, rec = restarted.broker, restarted.rec
    b.fill(cid(1, "TP"))
    await restarted.settle()
    assert b.order(cid(1, "STOP")).status is OrderStatus.CANCELLED
    assert b.live_orders() == []
    assert b.net_position(TOKEN) == 0
    assert [(r.state, r.realized_pnl_paise) for r in rec.results] == [("CLOSED", 40_000)]


async def test_stop_fill_cancels_the_tp(restarted: Env) -> None:
    b, rec = restarted.broker, restarted.rec
    b.fill(cid(1, "STOP"), price_paise=247_900)
    await restarted.settle()
    assert b.order(cid(1, "TP")).status is OrderStatus.CANCELLED
    assert b.live_orders() == []
    assert [(r.state, r.closing_reason, r.realized_pnl_paise) for r in rec.results] == [
        ("CLOSED", "STOP", -21_000)
    ]


async def test_partial_tp_fill_resizes_the_stop(restarted: Env) -> None:
    b = restarted.broker
    b.fill(cid(1, "TP"), qty=4)
    await restarted.settle()
    assert b.order(cid(1, "STOP")).quantity == 6
    assert restarted.mgr.bracket(plan(1)).net_qty == 6
    # A stale snapshot of the TP (before the fill) and a duplicate change nothing.
    tp = b.order(cid(1, "TP")).snapshot()
    stale = dataclasses.replace(tp, filled_quantity=0, average_price=0.0)
    transitions = len(restarted.rec.transitions)
    calls = len(b.calls)
    assert await restarted.mgr.on_order_update(stale)
    assert await restarted.mgr.on_order_update(tp)
    assert (len(restarted.rec.transitions), len(b.calls)) == (transitions, calls)


async def test_flatten_cancels_both_and_exits_at_market(restarted: Env) -> None:
    b = restarted.broker
    await restarted.mgr.flatten(timeout_s=5, tick_s=0.01, convert_stops=False)
    assert b.order(cid(1, "STOP")).status is OrderStatus.CANCELLED
    assert b.order(cid(1, "TP")).status is OrderStatus.CANCELLED
    exit_order = b.order(cid(1, "EXIT"))
    assert (exit_order.req.side, exit_order.filled) == ("SELL", 10)
    assert b.net_position(TOKEN) == 0
    assert restarted.rec.results[0].closing_reason == "FLATTEN"


async def test_flatten_turns_the_adopted_stop_into_the_exit(restarted: Env) -> None:
    b = restarted.broker
    report = await restarted.mgr.flatten(timeout_s=5, tick_s=0.01)
    stop = b.order(cid(1, "STOP"))
    assert (stop.status, stop.req.order_type, stop.filled) == (
        OrderStatus.COMPLETE,
        OrderType.MARKET,
        10,
    )
    assert b.order(cid(1, "TP")).status is OrderStatus.CANCELLED
    assert b.placements(cid(1, "EXIT")) == 0
    assert b.net_position(TOKEN) == 0
    assert restarted.rec.results[0].closing_reason == "FLATTEN"
    assert (report.converted_stops, report.market_exits, report.cancels) == (1, 0, 1)


async def test_updates_route_by_broker_order_id_alone(restarted: Env) -> None:
    b = restarted.broker
    stop = b.order(cid(1, "STOP"))
    anonymous = dataclasses.replace(
        stop.snapshot(), client_order_id=None, tag=None, status=OrderStatus.CANCELLED
    )
    assert await restarted.mgr.on_order_update(anonymous)
    await restarted.settle()
    # The stop is gone (cancelled at the exchange): exit at market, TP cancelled.
    assert b.order(cid(1, "EXIT")).filled == 10
    assert b.order(cid(1, "TP")).status is OrderStatus.CANCELLED
    assert "STOP_LOST" in restarted.rec.codes()


async def test_missing_stop_is_placed_exactly_once() -> None:
    broker = FakeBroker()
    broker.set_price(TOKEN, 250_100)
    await previous_process(broker)
    broker.cancel_externally(cid(1, "STOP"))  # lost while no process watched
    env, pump = make_env(broker)
    try:
        await broker.settled()
        children, ids = adopted_children(broker)
        live = [c for c in children if c.working]
        assert [c.tag for c in live] == ["TP"]
        await env.mgr.adopt_bracket(
            spec(), entry_filled=10, entry_avg=2500.0, children=live, order_ids=ids
        )
        await env.settle()
        await env.mgr.advance_time()
        await env.settle()
        assert broker.placements(cid(1, "STOP")) == 2  # the lost one and its replacement
        stop = broker.order(cid(1, "STOP"))
        assert (stop.is_live, stop.quantity, stop.trigger_paise) == (True, 10, 248_000)
        broker.fill(cid(1, "TP"))
        await env.settle()
        assert broker.live_orders() == []
        assert env.rec.results[0].realized_pnl_paise == 40_000
    finally:
        pump.cancel()


async def test_adopt_refuses_duplicates_and_foreign_ids(restarted: Env) -> None:
    with pytest.raises(BracketExistsError):
        await restarted.mgr.adopt_bracket(
            spec(), entry_filled=10, entry_avg=2500.0, children=[], order_ids={}
        )
    with pytest.raises(ValueError, match="order_ids"):
        await restarted.mgr.adopt_bracket(
            spec(2),
            entry_filled=10,
            entry_avg=2500.0,
            children=[],
            order_ids={cid(1, "STOP"): "X1"},
        )
    with pytest.raises(OcoError, match="entry_filled"):
        await restarted.mgr.adopt_bracket(
            spec(2), entry_filled=11, entry_avg=2500.0, children=[], order_ids={}
        )
    with pytest.raises(OcoError, match=r"children\.tag"):
        await restarted.mgr.adopt_bracket(
            spec(2),
            entry_filled=10,
            entry_avg=2500.0,
            children=[AdoptedOrder("TP1", 10)],
            order_ids={},
        )
    assert [s.bracket_id for s in restarted.mgr.brackets()] == [plan(1)]


# ---------------------------------------------------------------- from the database


async def child_row(
    conn: Conn, session: UUID, inst: Instrument, pid: str, tag: str, status: str, **kw: Any
) -> None:
    cid = order_client_id(tag, pid)
    stop = tag == "STOP"
    row = OrderRow(
        session_id=session,
        client_order_id=cid,
        plan_id=pid,
        tag=broker_tag(cid),
        role=tag,
        exchange=inst.exchange,
        tradingsymbol=inst.tradingsymbol,
        instrument_token=inst.instrument_token,
        side=kw.get("side", "SELL"),
        order_type="SL-M" if stop else "LIMIT",
        product="MIS",
        qty=kw.get("qty", 10),
        price=None if stop else Decimal(1460),
        trigger_price=Decimal(1445) if stop else None,
        created_at=at(10, 2),
        updated_at=at(10, 2),
    )
    assert await repo.insert_order_new(conn, row)
    filled = kw.get("filled", 0)
    update = OrderStatusUpdate(
        client_order_id=cid,
        status=status,
        filled_qty=filled,
        avg_price=Decimal(1460) if filled else None,
        broker_order_id=f"B-{tag}-{pid[:4]}",
        status_message=None,
        ts=at(10, 3),
    )
    assert await repo.update_order_status(conn, update)


@pytest.mark.integration
async def test_open_positions_are_adopted_from_the_database(pg_url: str, pg_template: str) -> None:
    s = by_symbol()
    async with fresh_database(pg_url, pg_template) as url:
        conn = await create_pool(url, min_size=1, max_size=1)
        try:
            session = SessionRow(
                trading_date=TEST_DAY, mode="PAPER", feed="kite", started_at=at(9, 15)
            )
            assert await repo.create_session(conn, session)
            sid = session.id
            # 1: both children working, TP partly filled (4 of 10): adopted as is.
            p1 = await write_plan(
                conn, sid, s["RELIANCE"], 1, at(10, 1), entry=Decimal(1450), closed_pnl=None
            )
            await child_row(conn, sid, s["RELIANCE"], p1, "STOP", "TRIGGER PENDING", qty=6)
            await child_row(conn, sid, s["RELIANCE"], p1, "TP", "OPEN", filled=4)
            # 2: its stop was cancelled while no process watched: placed again.
            p2 = await write_plan(
                conn, sid, s["SBIN"], 2, at(10, 1), entry=Decimal(800), closed_pnl=None
            )
            await child_row(conn, sid, s["SBIN"], p2, "STOP", "CANCELLED")
            await child_row(conn, sid, s["SBIN"], p2, "TP", "OPEN")
            # 3: an overfill buy-back is in its history: left to the operator.
            p3 = await write_plan(
                conn, sid, s["INFY"], 3, at(10, 1), entry=Decimal(1500), closed_pnl=None
            )
            await child_row(conn, sid, s["INFY"], p3, "EXIT", "COMPLETE", side="BUY", filled=0)

            broker = FakeBroker(clock=lambda: T_DAY)
            mgr = OCOManager(broker, clock=lambda: T_DAY, retry_delay_s=0.0)
            instruments = {i.instrument_token: i for i in s.values()}
            adopted, skipped = await adopt_open_brackets(
                mgr, conn, instruments, asdict(BracketOptions())
            )
        finally:
            await conn.close()
    # Both opened at the same minute: their order is the row ids' (random uuids).
    assert sorted(adopted) == sorted((p1, p2))
    assert [(p, "corrective" in why) for p, why in skipped] == [(p3, True)]

    one = mgr.bracket(p1)
    assert (one.state, one.entry_filled, one.entry_avg_price, one.net_qty) == (
        "OPEN",
        10,
        1450.5,
        6,
    )
    assert sorted((w.tag, w.qty, w.filled, w.broker_order_id) for w in one.working_orders) == [
        ("STOP", 6, 0, f"B-STOP-{p1[:4]}"),
        ("TP", 10, 4, f"B-TP-{p1[:4]}"),
    ]
    two = mgr.bracket(p2)
    assert two.state == "OPEN"
    # Only the lost stop was placed, for the whole position, at the plan's trigger.
    assert [(r.client_order_id, r.quantity, r.trigger_paise) for r in broker.requests] == [
        (order_client_id("STOP", p2), 10, 79_500)
    ]
