"""Paper broker order lifecycle: modify, cancel, races, queries, positions,
the update stream, deterministic replays and per-order charges."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import date
from decimal import Decimal

import pytest

from aitrapp.brokers.base import Broker, BrokerError, OrderStatus, OrderType, Product
from aitrapp.brokers.paper import PaperBroker
from aitrapp.charges import compute_charges
from test_paper_support import (
    EQ,
    FUT,
    MS,
    SEC,
    T0,
    brief,
    broker,
    req,
    tick,
    ts_of,
)

MKT, LMT, SL, SLM = OrderType.MARKET, OrderType.LIMIT, OrderType.SL, OrderType.SLM


async def resting_buy(b: PaperBroker, price: int = 9900, qty: int = 10) -> str:
    tick(b, T0, 100.00, 99.95, 100.05)
    oid = await b.place_order(req("BUY", qty, LMT, price=price))
    tick(b, T0 + 100 * MS, 100.00, 99.95, 100.05)  # ack + first look: rests
    return oid


def test_paper_broker_implements_the_protocol() -> None:
    assert isinstance(broker(), Broker)


async def test_modify_price_takes_effect_after_latency_and_looks_again() -> None:
    b = broker()
    oid = await resting_buy(b)
    b.drain_updates()
    await b.modify_order(oid, price_paise=10010)
    assert b.drain_updates() == []  # in flight
    ups = tick(b, T0 + 130 * MS, 100.00, 99.95, 100.05)
    # modified at T0 + 150 ms (request at T0 + 100 ms + 50 ms): not applied yet
    assert ups == []
    ups = tick(b, T0 + 200 * MS, 100.00, 99.95, 100.05)
    assert [(u.status.value, u.price, ts_of(u)) for u in ups] == [
        ("OPEN", 100.1, T0 + 150 * MS),
        ("COMPLETE", 100.1, T0 + 200 * MS),
    ]
    assert ups[0].extra["modified"] is True
    assert ups[-1].average_price == 100.05  # marketable on its new first look: at the ask


async def test_modify_stop_trigger() -> None:
    b = broker()
    tick(b, T0, 100.00, 99.95, 100.05)
    oid = await b.place_order(req("SELL", 10, SLM, trigger=9900, mp=-1))
    tick(b, T0 + 100 * MS, 99.50, 99.45, 99.55)
    await b.modify_order(oid, trigger_paise=9850)
    ups = tick(b, T0 + 200 * MS, 98.90, 98.85, 98.95)  # below the old trigger, above the new
    assert [(u.status.value, u.trigger_price) for u in ups] == [("TRIGGER PENDING", 98.5)]
    ups = tick(b, T0 + 300 * MS, 98.45, 98.40, 98.50)
    assert [u.status.value for u in ups] == ["OPEN", "COMPLETE"]


async def test_modify_trigger_pending_stop_to_market_exits_at_once() -> None:
    b = broker()
    tick(b, T0, 100.00, 99.95, 100.05)
    oid = await b.place_order(req("SELL", 10, SLM, trigger=9900, mp=-1))
    tick(b, T0 + 100 * MS, 99.50, 99.45, 99.55)
    await b.modify_order(oid, order_type=OrderType.MARKET)
    ups = tick(b, T0 + 200 * MS, 99.50, 99.45, 99.55)
    assert [(u.status.value, u.order_type) for u in ups] == [
        ("OPEN", MKT),
        ("COMPLETE", MKT),
    ]
    assert ups[-1].average_price == 99.4  # 99.45 - 5 bp = 99.40


async def test_modify_before_ack_applies_after_it() -> None:
    b = broker()
    tick(b, T0, 100.00, 99.95, 100.05)
    oid = await b.place_order(req("BUY", 10, LMT, price=9900))
    await b.modify_order(oid, quantity=20)
    ups = tick(b, T0 + 100 * MS, 100.00, 99.95, 100.05)
    assert [(u.status.value, u.quantity) for u in ups] == [("OPEN", 10), ("OPEN", 20)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"price_paise": 9903}, "Tick size"),
        ({"quantity": 0}, "Invalid `quantity`"),
        ({"order_type": OrderType.SL}, "need a trigger price"),
        ({"order_type": OrderType.MARKET}, "market protection"),
        ({"order_type": "STOP"}, "Invalid `order_type`"),
    ],
)
async def test_invalid_modification_raises_and_changes_nothing(
    kwargs: dict[str, object], message: str
) -> None:
    b = broker()
    oid = await resting_buy(b)
    with pytest.raises(BrokerError, match=message) as err:
        await b.modify_order(oid, **kwargs)  # type: ignore[arg-type]
    assert err.value.code == 400 and not err.value.retryable
    b.advance_time(T0 + 1 * SEC)
    assert b.drain_updates() == []
    snap = (await b.orders())[0]
    assert (snap.status, snap.price, snap.quantity, snap.order_type) == (
        OrderStatus.OPEN,
        99.0,
        10,
        LMT,
    )


async def test_modification_limit_and_quantity_rules() -> None:
    b = broker(max_modifications=2, participation_pct=50)
    tick(b, T0, 24000.0, 23999.9, 24000.1, volume=1000, token=FUT)
    oid = await b.place_order(req("BUY", 260, LMT, price=2_400_010, token=FUT))
    ups = tick(b, T0 + 60 * MS, 24000.0, 23999.9, 24000.1, volume=1300, token=FUT)
    assert brief(ups[-1]) == ("OPEN", 130, 130, 24000.1, 130, 24000.1)  # 50 % of 300 -> 130
    with pytest.raises(BrokerError, match="multiple of the lot size"):
        await b.modify_order(oid, quantity=100)
    with pytest.raises(BrokerError, match="below the filled quantity"):
        await b.modify_order(oid, quantity=65)
    await b.modify_order(oid, price_paise=2_399_000)
    await b.modify_order(oid, quantity=130)  # down to what is filled: the order completes
    with pytest.raises(BrokerError, match="Maximum allowed order modifications"):
        await b.modify_order(oid, price_paise=2_398_000)
    b.advance_time(T0 + 200 * MS)
    ups = b.drain_updates()
    assert [(u.status.value, u.quantity, u.filled_quantity) for u in ups] == [
        ("OPEN", 260, 130),
        ("COMPLETE", 130, 130),
    ]


async def test_triggered_stop_cannot_become_a_stop_again() -> None:
    b = broker()
    tick(b, T0, 100.00, 99.95, 100.05)
    oid = await b.place_order(req("SELL", 10, SL, trigger=9900, price=9800))
    tick(b, T0 + 100 * MS, 98.95, 97.00, 97.10)  # triggers, rests as a limit at 98.00
    assert (await b.orders())[0].status is OrderStatus.OPEN
    with pytest.raises(BrokerError, match="already triggered"):
        await b.modify_order(oid, order_type=OrderType.SLM)
    await b.modify_order(oid, order_type=OrderType.LIMIT, price_paise=9700)
    ups = tick(b, T0 + 200 * MS, 97.05, 97.00, 97.10)
    assert ups[-1].status is OrderStatus.COMPLETE and ups[-1].average_price == 97.0


async def test_cancel_after_latency() -> None:
    b = broker()
    oid = await resting_buy(b)
    b.drain_updates()
    await b.cancel_order(oid)
    await b.cancel_order(oid)  # a repeated cancel changes nothing
    assert b.drain_updates() == []
    b.advance_time(T0 + 150 * MS)
    ups = b.drain_updates()
    assert [(brief(u), u.cancelled_quantity, ts_of(u)) for u in ups] == [
        (("CANCELLED", 0, 0, 0.0, 0, None), 10, T0 + 150 * MS)
    ]
    with pytest.raises(BrokerError, match="cannot be cancelled as it is cancelled") as err:
        await b.cancel_order(oid)
    assert err.value.code == 400


async def test_fill_wins_the_race_against_a_cancel_in_flight() -> None:
    b = broker()
    oid = await resting_buy(b)
    b.drain_updates()
    await b.cancel_order(oid)  # effective at T0 + 150 ms
    ups = tick(b, T0 + 120 * MS, 98.00, 97.95, 98.05)  # the market came to the order first
    assert [u.status for u in ups] == [OrderStatus.COMPLETE]
    assert tick(b, T0 + 200 * MS, 98.00, 97.95, 98.05) == []  # the late cancel finds it filled
    with pytest.raises(BrokerError, match="completed"):
        await b.cancel_order(oid)
    with pytest.raises(BrokerError, match="completed"):
        await b.modify_order(oid, price_paise=9000)


async def test_unknown_order_ids_raise() -> None:
    b = broker()
    with pytest.raises(BrokerError, match="no order"):
        await b.cancel_order("42")
    with pytest.raises(BrokerError, match="no order"):
        await b.modify_order("42", price_paise=100)


async def test_cancel_partially_filled_order_keeps_its_fills() -> None:
    b = broker(participation_pct=10)
    tick(b, T0, 100.00, 99.95, 100.05, volume=1000)
    oid = await b.place_order(req("BUY", 100, LMT, price=10010))
    tick(b, T0 + 60 * MS, 100.05, 100.00, 100.05, volume=1300)  # 30 filled
    await b.cancel_order(oid)
    b.advance_time(T0 + 200 * MS)
    ups = b.drain_updates()
    u = ups[-1]
    assert (u.status, u.filled_quantity, u.cancelled_quantity) == (OrderStatus.CANCELLED, 30, 70)
    assert u.extra["charges"] == b.order_charges(oid).as_dict()  # type: ignore[union-attr]


async def test_orders_snapshot_and_find_by_tag() -> None:
    b = broker()
    tick(b, T0, 100.00, 99.95, 100.05)
    r = req("BUY", 10, LMT, price=9900, tag="abc123EN")
    oid = await b.place_order(r)
    snap = await b.find_by_tag("abc123EN")
    assert snap is not None
    assert (snap.order_id, snap.status, snap.raw_status) == (
        oid,
        OrderStatus.PENDING,
        "OPEN PENDING",
    )
    assert snap.pending_quantity == 10 and snap.price == 99.0
    tick(b, T0 + 100 * MS, 100.00, 99.95, 100.05)
    snap = await b.find_by_tag("abc123EN")
    assert snap is not None and snap.status is OrderStatus.OPEN
    assert [o.order_id for o in await b.orders()] == [oid]
    assert await b.find_by_tag("nope") is None


async def test_positions_track_net_quantity_average_and_pnl() -> None:
    b = broker(ack_latency_ns=0)
    tick(b, T0, 100.00, 99.95, 100.05)
    await b.place_order(req("BUY", 10, LMT, price=10005))
    tick(b, T0 + 1 * SEC, 100.00, 99.95, 100.05)  # buys 10 @ 100.05
    await b.place_order(req("SELL", 4, LMT, price=10100))
    tick(b, T0 + 2 * SEC, 101.10, 101.05, 101.15)  # sells 4 @ 101.05
    tick(b, T0 + 3 * SEC, 101.50, 101.45, 101.55)
    (pos,) = await b.positions()
    assert (pos.tradingsymbol, pos.product, pos.quantity) == ("RELIANCE", Product.MIS, 6)
    assert pos.average_price == pytest.approx(100.05)
    # (sell 404.20 - buy 1000.50) + 6 x 101.50 = 12.70
    assert pos.pnl == pytest.approx(12.70)


async def test_updates_stream_delivers_in_order_to_one_consumer() -> None:
    b = broker()
    tick(b, T0, 100.00, 99.95, 100.05)
    got: list[str] = []

    async def consume() -> None:
        async with contextlib.aclosing(b.updates()) as stream:
            async for u in stream:
                got.append(u.status.value)
                if u.status.is_terminal:
                    return

    task = asyncio.create_task(consume())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="consumer"):
        async with contextlib.aclosing(b.updates()) as second:
            await anext(second)
    await b.place_order(req("BUY", 10, MKT, mp=-1))
    b.on_tick(tick_of(T0 + 60 * MS))
    await asyncio.wait_for(task, 5)
    assert got == ["OPEN", "COMPLETE"]
    async with contextlib.aclosing(b.updates()) as again:  # the stream is free again
        await b.place_order(req("BUY", 1, LMT, price=9000))
        b.advance_time(T0 + 200 * MS)
        assert (await anext(again)).status is OrderStatus.OPEN


def tick_of(ts: int):  # type: ignore[no-untyped-def]
    from aitrapp.ticks import Tick

    return Tick(EQ, ts, 100.00, 0, 0, 99.95, 100.05)


async def run_script(b: PaperBroker) -> list[tuple[object, ...]]:
    tick(b, T0, 100.00, 99.95, 100.05)
    await b.place_order(req("BUY", 10, MKT, mp=-1, tag="A"))
    await b.place_order(req("SELL", 10, LMT, price=10020, tag="B"))
    tick(b, T0 + 100 * MS, 100.10, 100.05, 100.15)
    tick(b, T0 + 1 * SEC, 100.30, 100.25, 100.35)
    await b.place_order(req("SELL", 10, SLM, trigger=10000, mp=-1, tag="C"))
    tick(b, T0 + 2 * SEC, 99.90, 99.85, 99.95)
    b.feed_ended()
    return [
        (u.order_id, u.status, u.filled_quantity, u.average_price, ts_of(u), u.tag)
        for u in await b.orders()
    ]


async def test_replays_are_deterministic_including_order_ids() -> None:
    first = await run_script(broker())
    again = await run_script(broker())
    assert first == again
    assert [row[0] for row in first] == ["100000000000001", "100000000000002", "100000000000003"]


async def test_terminal_update_carries_the_orders_charges() -> None:
    b = broker()
    tick(b, T0, 2500.00, 2499.95, 2500.05)
    oid = await b.place_order(req("BUY", 100, LMT, price=250100))
    ups = tick(b, T0 + 60 * MS, 2500.00, 2499.95, 2500.05)
    want = compute_charges("EQ", "BUY", 100, Decimal("2500.05"), date(2026, 5, 4))
    assert ups[-1].extra["charges"] == want.as_dict()
    assert b.order_charges(oid) == want
    # brokerage 20 (capped), txn 0.00297% x 250005 = 7.4251 -> 7.43, SEBI 0.25,
    # stamp 0.003% x 250005 = 7.50015 -> 8, GST 18% x 27.68 = 4.98: total 40.66
    assert want.total == Decimal("40.66")


async def test_expire_open_orders_cancels_what_is_left() -> None:
    b = broker()
    oid = await resting_buy(b)
    b.drain_updates()
    b.expire_open_orders()
    ups = b.drain_updates()
    assert [(u.order_id, u.status) for u in ups] == [(oid, OrderStatus.CANCELLED)]
    assert ups[0].status_message is not None and "expired" in ups[0].status_message
