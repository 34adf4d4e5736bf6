"""KiteBroker against the fake Kite: REST via kiteconnect, updates via the websocket."""

from __future__ import annotations

import asyncio

import pytest

from aitrapp import order_client_id
from aitrapp.brokers.base import Broker, BrokerError, OrderStatus, OrderType, OrderUpdate, Product
from aitrapp.brokers.kite import LOCAL_REJECT_PREFIX, KiteBroker, rupees
from aitrapp.kite.errors import KiteTokenError

from .conftest import NIFTY_FUT, PLAN, BrokerFactory, eventually, is_, request, wait_update
from .fake_kite import FakeKite


def drain(broker: KiteBroker) -> list[OrderUpdate]:
    out = []
    while not broker._queue.empty():
        out.append(broker._queue.get_nowait())
    return out


def test_rupees_have_exactly_two_decimals() -> None:
    assert rupees(250_000) == "2500.00"
    assert rupees(5) == "0.05"
    assert rupees(123_456_789) == "1234567.89"


async def test_is_a_broker(make_broker: BrokerFactory) -> None:
    b = await make_broker()
    assert isinstance(b, Broker)
    assert "token" not in repr(b).lower()


async def test_full_bracket_lifecycle_over_rest_and_websocket(
    fake: FakeKite, make_broker: BrokerFactory
) -> None:
    b = await make_broker(poll_interval=None)  # every update below comes over the websocket
    await eventually(lambda: b.stream_connected)
    seen: list[OrderUpdate] = []

    entry = request("ENTRY", price=250_000)
    entry_id = await b.place_order(entry)
    form = fake.placed()[-1]
    assert fake.requests[-1][1] == "/orders/regular" and form["variety"] == "regular"
    assert form["product"] == "MIS" and form["order_type"] == "LIMIT" and form["price"] == "2500.00"
    assert form["tag"] == entry.tag and "market_protection" not in form

    await fake.fill(entry_id, price="2500.00")
    u = await wait_update(b, is_(entry_id, OrderStatus.COMPLETE), seen=seen)
    assert u.client_order_id == entry.client_order_id
    assert (u.filled_quantity, u.last_fill_qty, u.last_fill_price) == (10, 10, 2500.0)

    stop = request("STOP", side="SELL", order_type=OrderType.SLM, price=None, trigger=248_000)
    tp = request("TP", side="SELL", price=253_600)
    stop_id = await b.place_order(stop)
    tp_id = await b.place_order(tp)
    assert fake.order(stop_id)["status"] == "TRIGGER PENDING"
    stop_form = fake.placed()[-2]
    assert stop_form["order_type"] == "SL-M" and stop_form["trigger_price"] == "2480.00"
    assert stop_form["market_protection"] == "-1"

    await fake.fill(tp_id, price="2536.00")
    u = await wait_update(b, is_(tp_id, OrderStatus.COMPLETE), seen=seen)
    assert u.client_order_id == tp.client_order_id and u.average_price == 2536.0
    await b.cancel_order(stop_id)
    u = await wait_update(b, is_(stop_id, OrderStatus.CANCELLED), seen=seen)
    assert u.client_order_id == stop.client_order_id and u.cancelled_quantity == 10

    positions = await b.positions()
    assert [(p.tradingsymbol, p.quantity, p.product) for p in positions] == [
        ("RELIANCE", 0, Product.MIS)
    ]
    # each change arrived once
    keys = [(x.order_id, x.status, x.filled_quantity) for x in seen]
    assert len(keys) == len(set(keys))


async def test_partial_fill_then_complete(fake: FakeKite, make_broker: BrokerFactory) -> None:
    b = await make_broker()
    oid = await b.place_order(request(qty=10))
    await fake.fill(oid, 4, "2499.90")
    u = await wait_update(b, lambda u: u.order_id == oid and u.filled_quantity == 4)
    assert u.status is OrderStatus.OPEN  # OPEN with fills = partially filled
    assert (u.pending_quantity, u.last_fill_qty, u.last_fill_price) == (6, 4, 2499.9)
    await fake.fill(oid, 6, "2500.00")
    u = await wait_update(b, is_(oid, OrderStatus.COMPLETE))
    assert (u.filled_quantity, u.last_fill_qty, u.last_fill_price) == (10, 6, 2500.0)
    assert u.average_price == pytest.approx(2499.96)
    # polling keeps running: no duplicate COMPLETE shows up
    await asyncio.sleep(0.5)
    assert not [x for x in drain(b) if x.order_id == oid]


async def test_rejected_stop_by_rms_arrives_as_an_update(
    fake: FakeKite, make_broker: BrokerFactory
) -> None:
    b = await make_broker()
    fake.rms_reject_next = "Trigger price for stoploss sell orders should be lower than the LTP."
    stop = request("STOP", side="SELL", order_type=OrderType.SLM, price=None, trigger=248_000)
    oid = await b.place_order(stop)
    u = await wait_update(b, is_(oid, OrderStatus.REJECTED))
    assert u.client_order_id == stop.client_order_id
    assert u.status_message is not None and "lower than the LTP" in u.status_message


async def test_rejected_stop_by_input_exception_is_a_local_reject(
    fake: FakeKite, make_broker: BrokerFactory
) -> None:
    b = await make_broker()
    fake.fail_next("POST", "/orders/regular", status=400, error_type="InputException",
                   message="Trigger price is out of range.")  # fmt: skip
    stop = request("STOP", side="SELL", order_type=OrderType.SL, price=247_900, trigger=248_000)
    oid = await b.place_order(stop)
    assert oid == LOCAL_REJECT_PREFIX + stop.tag
    u = await wait_update(b, is_(oid, OrderStatus.REJECTED))
    assert u.client_order_id == stop.client_order_id
    assert u.status_message == "InputException: Trigger price is out of range."
    assert not fake.orders
    # Kite never saw it: placing the same client id again is not a duplicate
    oid2 = await b.place_order(stop)
    assert oid2 in fake.orders


async def test_429_is_retried_then_succeeds(fake: FakeKite, make_broker: BrokerFactory) -> None:
    b = await make_broker()
    fake.fail_next("POST", "/orders/regular", status=429, error_type="NetworkException",
                   message="Too many requests", times=2)  # fmt: skip
    oid = await b.place_order(request())
    assert len(fake.placed()) == 3
    assert list(fake.orders) == [oid]
    assert b.stats["rate_limited"] == 2


async def test_429_that_persists_is_a_retryable_broker_error(
    fake: FakeKite, make_broker: BrokerFactory
) -> None:
    b = await make_broker(rate_limit_retries=1)
    fake.fail_next("POST", "/orders/regular", status=429, error_type="NetworkException",
                   message="Too many requests", times=2)  # fmt: skip
    with pytest.raises(BrokerError) as err:
        await b.place_order(request())
    assert err.value.retryable and err.value.code == 429
    assert not fake.orders


@pytest.mark.parametrize("drop", [False, True])
async def test_unknown_outcome_is_settled_by_the_order_book(
    fake: FakeKite, make_broker: BrokerFactory, drop: bool
) -> None:
    b = await make_broker()
    fake.fail_next("POST", "/orders/regular", status=502, error_type="DataException",
                   message="Bad gateway", accept=True, drop=drop)  # fmt: skip
    oid = await b.place_order(request())
    assert list(fake.orders) == [oid]  # found by tag, not placed again
    assert len(fake.placed()) == 1
    assert b.stats["unknown_outcome"] == 1


async def test_unknown_outcome_that_kite_rejected_returns_the_rejected_order(
    fake: FakeKite, make_broker: BrokerFactory
) -> None:
    b = await make_broker()
    fake.rms_reject_next = "Insufficient funds."
    fake.fail_next("POST", "/orders/regular", status=504, error_type="NetworkException",
                   message="Gateway timeout", accept=True)  # fmt: skip
    req = request()
    oid = await b.place_order(req)
    assert oid in fake.orders and fake.order(oid)["status"] == "REJECTED"
    u = await wait_update(b, is_(oid, OrderStatus.REJECTED))
    assert u.client_order_id == req.client_order_id and u.status_message == "Insufficient funds."
    # a rejected client id may be placed again: it creates a second (accepted) order
    oid2 = await b.place_order(req)
    assert oid2 != oid and fake.order(oid2)["status"] == "OPEN"
    assert await b.place_order(req) == oid2


async def test_unknown_outcome_not_in_the_book_is_a_broker_error(
    fake: FakeKite, make_broker: BrokerFactory
) -> None:
    b = await make_broker()
    fake.fail_next("POST", "/orders/regular", status=503, error_type="NetworkException",
                   message="OMS unavailable")  # fmt: skip
    with pytest.raises(BrokerError, match="outcome unknown") as err:
        await b.place_order(request())
    assert err.value.retryable and not fake.orders
    assert len(fake.placed()) == 1  # never retried blindly


async def test_same_client_id_is_never_placed_twice(
    fake: FakeKite, make_broker: BrokerFactory
) -> None:
    b = await make_broker()
    req = request()
    first, second = await asyncio.gather(b.place_order(req), b.place_order(req))
    assert first == second and len(fake.placed()) == 1
    # a restarted process learns the tag from the order book at start()
    b2 = await make_broker()
    assert await b2.place_order(req) == first
    assert len(fake.placed()) == 1


async def test_token_exception_is_not_a_reject(fake: FakeKite, make_broker: BrokerFactory) -> None:
    b = await make_broker()
    fake.expire_token()
    with pytest.raises(KiteTokenError, match="TokenException") as err:
        await b.place_order(request())
    assert not err.value.retryable and err.value.code == 403
    assert isinstance(err.value, BrokerError)
    assert not drain(b)
    with pytest.raises(KiteTokenError):
        await b.orders()
    with pytest.raises(KiteTokenError):
        await b.positions()
    # the poller notices once, then backs off instead of hammering Kite with 403s
    await eventually(lambda: b.stats["poll_errors"] == 1)
    await asyncio.sleep(0.6)  # three poll intervals
    assert b.stats["poll_errors"] == 1
    assert b.last_error is not None and "TokenException" in b.last_error
    assert fake.access_token not in b.last_error


@pytest.mark.parametrize("tag", ["A" * 21, "has-dash", ""])
async def test_tag_must_be_1_to_20_alphanumerics(
    fake: FakeKite, make_broker: BrokerFactory, tag: str
) -> None:
    b = await make_broker()
    oid = await b.place_order(request(tag=tag))
    u = await wait_update(b, is_(oid, OrderStatus.REJECTED))
    assert u.status_message is not None and "tag" in u.status_message
    assert not fake.placed()


@pytest.mark.parametrize(
    ("order_type", "mp", "sent"),
    [(OrderType.MARKET, None, "-1"), (OrderType.SLM, None, "-1"), (OrderType.MARKET, 2.5, "2.5"),
     (OrderType.SLM, 5, "5")],
)  # fmt: skip
async def test_market_protection_always_set_for_market_and_slm(
    fake: FakeKite, make_broker: BrokerFactory, order_type: OrderType, mp: float | None, sent: str
) -> None:
    b = await make_broker()
    trigger = 248_000 if order_type is OrderType.SLM else None
    req = request("EXIT", side="SELL", order_type=order_type, price=None, trigger=trigger,
                  market_protection=mp)  # fmt: skip
    oid = await b.place_order(req)
    assert oid in fake.orders
    assert fake.placed()[-1]["market_protection"] == sent


async def test_bad_market_protection_is_refused(fake: FakeKite, make_broker: BrokerFactory) -> None:
    b = await make_broker()
    oid = await b.place_order(request(order_type=OrderType.MARKET, price=None, market_protection=0))
    u = await wait_update(b, is_(oid, OrderStatus.REJECTED))
    assert u.status_message is not None and "market_protection" in u.status_message
    with pytest.raises(ValueError, match="market_protection"):
        KiteBroker(api_key="k", access_token="t", instruments={}, market_protection=0)


@pytest.mark.parametrize(
    ("qty", "match"), [(1820, "freeze quantity"), (100, "whole number of lots"), (0, "positive")]
)
async def test_quantity_whole_lots_within_freeze(
    fake: FakeKite, make_broker: BrokerFactory, qty: int, match: str
) -> None:
    b = await make_broker()
    req = request(token=NIFTY_FUT, qty=qty, price=2_600_000)
    oid = await b.place_order(req)
    u = await wait_update(b, is_(oid, OrderStatus.REJECTED))
    assert u.status_message is not None and match in u.status_message
    assert not fake.placed()
    ok = await b.place_order(request("TP", token=NIFTY_FUT, qty=1755, price=2_600_000))
    assert fake.order(ok)["quantity"] == 1755  # 27 lots: the largest whole-lot order


async def test_prices_rounded_to_tick_never_worse(
    fake: FakeKite, make_broker: BrokerFactory
) -> None:
    b = await make_broker()  # RELIANCE tick is 0.10 in the fake
    await b.place_order(request("ENTRY", side="BUY", price=250_007))
    assert fake.placed()[-1]["price"] == "2500.00"
    await b.place_order(request("TP", side="SELL", price=250_003))
    assert fake.placed()[-1]["price"] == "2500.10"
    await b.place_order(
        request("STOP", side="SELL", order_type=OrderType.SL, price=247_900, trigger=248_004)
    )
    assert fake.placed()[-1]["trigger_price"] == "2480.00"
    assert fake.placed()[-1]["price"] == "2479.00"


async def test_missing_or_contradictory_fields_are_rejected_by_name(
    fake: FakeKite, make_broker: BrokerFactory
) -> None:
    b = await make_broker()
    cases = [
        (request("ENTRY", price=None), "price_paise is required"),
        (request("STOP", order_type=OrderType.SLM, price=None, trigger=None), "trigger_paise"),
        (request("TP", order_type=OrderType.MARKET, price=250_000), "price_paise is not allowed"),
        (request("EXIT", side="SELL", order_type=OrderType.SL, price=249_000, trigger=248_000),
         "SELL SL needs price <= trigger_price"),
    ]  # fmt: skip
    for req, match in cases:
        oid = await b.place_order(req)
        u = await wait_update(b, is_(oid, OrderStatus.REJECTED))
        assert u.status_message is not None and match in u.status_message, u.status_message
    assert not fake.placed()


async def test_modify_sends_market_protection_and_update_status_triggers_a_poll(
    fake: FakeKite, make_broker: BrokerFactory
) -> None:
    b = await make_broker(poll_interval=30.0)  # only the websocket's "UPDATE" can wake the poll
    await eventually(lambda: b.stream_connected)
    stop = request("STOP", side="SELL", order_type=OrderType.SLM, price=None, trigger=248_000)
    oid = await b.place_order(stop)
    await b.modify_order(oid, trigger_paise=249_000)
    # The last PUT: a poll of GET /orders may land after it at any moment.
    (method, path, form) = next(r for r in reversed(fake.requests) if r[0] == "PUT")
    assert (method, path) == ("PUT", f"/orders/regular/{oid}")
    assert form["trigger_price"] == "2490.00" and form["market_protection"] == "-1"
    u = await wait_update(b, lambda u: u.order_id == oid and u.trigger_price == 2490.0)
    assert u.status is OrderStatus.TRIGGER_PENDING and u.raw_status == "TRIGGER PENDING"
    with pytest.raises(BrokerError, match="quantity must be positive"):
        await b.modify_order(oid, quantity=0)
    await fake.trigger(oid)
    await fake.fill(oid, 4, "2489.00")
    await wait_update(b, lambda u: u.order_id == oid and u.filled_quantity == 4)
    with pytest.raises(BrokerError, match="must exceed the filled 4"):
        await b.modify_order(oid, quantity=4)
    await b.modify_order(oid, quantity=6)
    assert fake.order(oid)["quantity"] == 6 and fake.order(oid)["pending_quantity"] == 2


async def test_cancel_of_a_filled_order_is_refused(
    fake: FakeKite, make_broker: BrokerFactory
) -> None:
    b = await make_broker()
    oid = await b.place_order(request())
    await fake.fill(oid)
    with pytest.raises(BrokerError, match="cannot be cancelled") as err:
        await b.cancel_order(oid)
    assert not err.value.retryable and err.value.code == 400
    with pytest.raises(BrokerError, match="not in the order book"):
        await b.cancel_order("999")


async def test_polling_alone_delivers_updates(fake: FakeKite, make_broker: BrokerFactory) -> None:
    b = await make_broker(order_stream=False, poll_interval=0.05)
    oid = await b.place_order(request())
    await fake.fill(oid)
    u = await wait_update(b, is_(oid, OrderStatus.COMPLETE))
    assert u.client_order_id == order_client_id("ENTRY", PLAN)
    assert not fake.ws_clients


async def test_dropped_order_stream_reconnects_and_polling_covers_the_gap(
    fake: FakeKite, make_broker: BrokerFactory
) -> None:
    b = await make_broker(poll_interval=0.1)
    await eventually(lambda: b.stream_connected)
    oid = await b.place_order(request())
    fake.drop_websockets()
    await fake.fill(oid)  # sent while no client is connected
    await wait_update(b, is_(oid, OrderStatus.COMPLETE))
    await eventually(lambda: fake.ws_connects >= 2 and b.stream_connected)
    oid2 = await b.place_order(request("TP", side="SELL", price=253_600))
    await fake.fill(oid2)
    await wait_update(b, is_(oid2, OrderStatus.COMPLETE))


async def test_interim_statuses_are_pending_and_stale_ones_are_dropped(
    fake: FakeKite, make_broker: BrokerFactory
) -> None:
    b = await make_broker(poll_interval=None)
    await eventually(lambda: b.stream_connected)
    oid = await b.place_order(request())
    doc = dict(fake.order(oid))
    await fake.push_raw({**doc, "status": "OPEN PENDING"})
    u = await wait_update(b, lambda u: u.order_id == oid)
    assert u.status is OrderStatus.PENDING and u.raw_status == "OPEN PENDING"
    await fake.push_raw({**doc, "status": "OPEN"})
    await wait_update(b, is_(oid, OrderStatus.OPEN))
    await fake.push_raw({**doc, "status": "VALIDATION PENDING"})  # late, out of order
    await fake.fill(oid, 3, "2500.00")
    u = await wait_update(b, lambda u: u.order_id == oid)
    assert u.filled_quantity == 3 and u.status is OrderStatus.OPEN


async def test_orders_of_others_resolve_through_the_resolver(
    fake: FakeKite, make_broker: BrokerFactory
) -> None:
    earlier = make_broker  # an earlier process placed this one
    b1 = await earlier()
    req = request("ENTRY")
    oid = await b1.place_order(req)
    known = {req.tag: req.client_order_id}
    b2 = await make_broker(resolver=known.get)
    (u,) = [o for o in await b2.orders() if o.order_id == oid]
    assert u.client_order_id == req.client_order_id
    b3 = await make_broker()
    (u3,) = [o for o in await b3.orders() if o.order_id == oid]
    assert u3.client_order_id is None and u3.tag == req.tag
