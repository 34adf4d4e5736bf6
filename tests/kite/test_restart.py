"""A restart in the middle of a bracket: a new KiteBroker recovers from orders() and
reconciliation places the missing child or cancels the orphan, then agrees, in one
start-up however many repair passes that takes."""

from __future__ import annotations

from aitrapp import broker_tag, order_client_id
from aitrapp.brokers.base import OrderStatus, OrderType
from aitrapp.brokers.kite import KiteBroker
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


def working(fake: FakeKite) -> list[str]:
    return [o["order_id"] for o in fake.orders.values() if o["status"] in LIVE]


LIVE = ("OPEN", "TRIGGER PENDING")


async def net(broker: KiteBroker) -> int:
    return sum(p.quantity for p in await broker.positions() if p.tradingsymbol == "RELIANCE")


async def test_tp_run_through_while_down_converges_in_one_start(
    fake: FakeKite, make_broker: BrokerFactory
) -> None:
    """Died after the stop, before the target; the price ran through the target.
    The target placed at restart fills at once; the same start-up then cancels
    the stop: nothing stays working on a flat account."""
    b = the_bracket()
    first = await make_broker()
    entry_id = await first.place_order(b.entry)
    await fake.fill(entry_id, price="2500.00")
    stop_id = await first.place_order(b.stop)
    await first.stop()
    fake.set_ltp(b.entry.instrument_token, "2541.00")  # through the 2536 target

    tags = db_resolver(b)
    second = await make_broker(resolver=tags.get)
    outcome = await reconcile_and_repair([b], second, resolve=tags.get, settle=0.05)
    assert [p.request.client_order_id for p in outcome.first.to_place] == [b.tp.client_order_id]
    (tp_order,) = fake.by_tag(b.tp.tag)
    assert tp_order["status"] == "COMPLETE" and tp_order["average_price"] == 2541.0
    assert fake.order(stop_id)["status"] == "CANCELLED"
    assert outcome.passes == 2 and outcome.applied is not None
    assert outcome.applied.cancelled == (stop_id,)
    assert outcome.final.in_agreement, outcome.final.summary()
    assert outcome.final.by_state(BracketState.CLOSED) == [PLAN]
    assert working(fake) == [] and await net(second) == 0


async def test_no_child_is_placed_for_a_position_the_broker_no_longer_holds(
    fake: FakeKite, make_broker: BrokerFactory
) -> None:
    """Squared by hand (no tag) while down: our fills still say 10 open, the
    broker says flat. The missing target is not placed and the stop is cancelled."""
    b = the_bracket()
    first = await make_broker()
    entry_id = await first.place_order(b.entry)
    await fake.fill(entry_id, price="2500.00")
    stop_id = await first.place_order(b.stop)
    await first.stop()
    fake.set_ltp(b.entry.instrument_token, "2510.00")
    await first._rest.place_order(
        variety="regular", exchange="NSE", tradingsymbol="RELIANCE", transaction_type="SELL",
        quantity=10, product="MIS", order_type="MARKET", market_protection=-1,
    )  # fmt: skip

    tags = db_resolver(b)
    second = await make_broker(resolver=tags.get)
    outcome = await reconcile_and_repair([b], second, resolve=tags.get, settle=0.05)
    assert outcome.first.to_place == ()
    assert [c.order_id for c in outcome.first.to_cancel] == [stop_id]
    assert any("placement(s) held back" in p.message for p in outcome.first.problems)
    assert fake.by_tag(b.tp.tag) == []
    assert working(fake) == [] and await net(second) == 0
    assert not outcome.may_trade()  # the broker and our fills still disagree
    (mismatch,) = outcome.final.position_mismatches
    assert (mismatch.expected, mismatch.actual) == (10, 0)


async def test_repairs_stop_at_the_bound(fake: FakeKite, make_broker: BrokerFactory) -> None:
    """A cancel the broker keeps refusing: the repair gives up after max_passes."""
    b = the_bracket()
    first = await make_broker()
    entry_id = await first.place_order(b.entry)
    await fake.fill(entry_id, price="2500.00")
    stop_id = await first.place_order(b.stop)
    tp_id = await first.place_order(b.tp)
    await first.stop()
    await fake.fill(tp_id, price="2536.00")
    fake.fail_next("DELETE", "/orders/regular", status=400, error_type="OrderException", times=10)
    tags = db_resolver(b)
    second = await make_broker(resolver=tags.get)
    outcome = await reconcile_and_repair([b], second, resolve=tags.get, settle=0.01, max_passes=3)
    assert outcome.passes == 3
    assert outcome.applied is not None and len(outcome.applied.errors) == 3
    assert [c.order_id for c in outcome.final.to_cancel] == [stop_id]
    assert not outcome.may_trade()
