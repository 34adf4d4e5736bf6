"""A restart in the middle of a bracket: a new KiteBroker recovers from orders() and
reconciliation places the missing child or cancels the orphan, then agrees."""

from __future__ import annotations

from aitrapp import broker_tag, order_client_id
from aitrapp.brokers.base import OrderStatus, OrderType
from aitrapp.kite.reconcile import (
    BracketState,
    LocalBracket,
    LocalOrder,
    reconcile_and_repair,
)

from .conftest import PLAN, BrokerFactory, eventually, is_, request, wait_update
from .fake_kite import FakeKite


def the_bracket() -> LocalBracket:
    return LocalBracket(
        plan_id=PLAN,
        entry=request("ENTRY", price=250_000),
        stop=request("STOP", side="SELL", order_type=OrderType.SLM, price=None, trigger=248_000),
        tp=request("TP", side="SELL", price=253_600),
    )


def db_resolver(b: LocalBracket) -> dict[str, str]:
    """What the database knows: every client id of the plan by its tag."""
    roles = ["ENTRY", "STOP", "TP", "EXIT", *(f"EXIT{n}" for n in range(1, 4))]
    return {broker_tag(order_client_id(r, b.plan_id)): order_client_id(r, b.plan_id) for r in roles}


async def test_restart_after_stop_before_tp_places_the_tp(
    fake: FakeKite, make_broker: BrokerFactory
) -> None:
    b = the_bracket()
    first = await make_broker()
    entry_id = await first.place_order(b.entry)
    await fake.fill(entry_id, price="2500.00")
    await wait_update(first, is_(entry_id, OrderStatus.COMPLETE))
    stop_id = await first.place_order(b.stop)
    await first.stop()  # the process dies before placing the TP

    tags = db_resolver(b)
    second = await make_broker(resolver=tags.get)
    # the replayed book carries our client ids, resolved through the database
    replay = [second._queue.get_nowait() for _ in range(second._queue.qsize())]
    assert {u.client_order_id for u in replay} == {b.entry.client_order_id, b.stop.client_order_id}

    local = [
        LocalOrder(b.entry.client_order_id, b.entry.tag, entry_id),
        LocalOrder(b.stop.client_order_id, b.stop.tag, stop_id),
    ]
    outcome = await reconcile_and_repair(
        [LocalBracket(b.plan_id, b.entry, b.stop, b.tp, tuple(local))],
        second,
        resolve=tags.get,
        settle=0.05,
    )
    assert [p.request.client_order_id for p in outcome.first.to_place] == [b.tp.client_order_id]
    assert not outcome.first.may_trade()
    assert outcome.applied is not None and len(outcome.applied.placed) == 1
    assert outcome.final.in_agreement and outcome.may_trade(), outcome.final.summary()
    (tp_order,) = fake.by_tag(b.tp.tag)
    assert tp_order["quantity"] == 10 and tp_order["price"] == 2536.0
    # no order was placed twice
    assert len(fake.orders) == 3
    assert await second.place_order(b.entry) == entry_id
    assert len(fake.placed()) == 3


async def test_tp_filled_while_down_cancels_the_orphan_stop(
    fake: FakeKite, make_broker: BrokerFactory
) -> None:
    b = the_bracket()
    first = await make_broker()
    entry_id = await first.place_order(b.entry)
    await fake.fill(entry_id, price="2500.00")
    stop_id = await first.place_order(b.stop)
    tp_id = await first.place_order(b.tp)
    await first.stop()
    await fake.fill(tp_id, price="2536.00")  # while nobody watches

    tags = db_resolver(b)
    second = await make_broker(resolver=tags.get)
    outcome = await reconcile_and_repair([b], second, resolve=tags.get, settle=0.05)
    assert [c.order_id for c in outcome.first.to_cancel] == [stop_id]
    assert outcome.first.by_state(BracketState.CLOSED) == [PLAN]
    assert fake.order(stop_id)["status"] == "CANCELLED"
    assert outcome.final.in_agreement
    await wait_update(second, is_(stop_id, OrderStatus.CANCELLED))


async def test_stop_rejected_while_down_exits_at_market(
    fake: FakeKite, make_broker: BrokerFactory
) -> None:
    b = the_bracket()
    first = await make_broker()
    entry_id = await first.place_order(b.entry)
    await fake.fill(entry_id, price="2500.00")
    stop_id = await first.place_order(b.stop)
    tp_id = await first.place_order(b.tp)
    await first.stop()
    fake.set_ltp(b.entry.instrument_token, "2470.00")  # the price falls while we are down
    await fake.rms_reject(
        stop_id, "Trigger price for stoploss sell orders should be lower than LTP"
    )

    tags = db_resolver(b)
    second = await make_broker(resolver=tags.get)
    outcome = await reconcile_and_repair([b], second, resolve=tags.get, settle=0.05)
    assert [c.order_id for c in outcome.first.to_cancel] == [tp_id]
    (exit_action,) = outcome.first.to_place
    assert exit_action.request.order_type is OrderType.MARKET
    (exit_order,) = fake.by_tag(exit_action.request.tag)
    assert exit_order["status"] == "COMPLETE" and exit_order["market_protection"] == -1
    await eventually(lambda: fake.order(tp_id)["status"] == "CANCELLED")
    assert outcome.final.by_state(BracketState.CLOSED) == [PLAN]
    assert outcome.final.in_agreement, outcome.final.summary()
    net = {p.tradingsymbol: p.quantity for p in await second.positions()}
    assert net["RELIANCE"] == 0


async def test_unknown_manual_order_blocks_until_accepted(
    fake: FakeKite, make_broker: BrokerFactory
) -> None:
    b = the_bracket()
    broker = await make_broker()
    # placed by hand in Kite web: no tag
    await broker._rest.place_order(
        variety="regular", exchange="NSE", tradingsymbol="RELIANCE", transaction_type="BUY",
        quantity=1, product="MIS", order_type="LIMIT", price="2400.00",
    )  # fmt: skip
    entry_id = await broker.place_order(b.entry)
    outcome = await reconcile_and_repair([b], broker, settle=0.05)
    assert outcome.applied is None
    assert len(outcome.final.live_unknown_orders) == 1
    assert entry_id not in {o.order_id for o in outcome.final.unknown_orders}
    assert not outcome.may_trade()
    assert outcome.may_trade(accept=True)
