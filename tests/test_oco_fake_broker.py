"""The in-memory fake broker keeps the `Broker` contract its users rely on."""

from __future__ import annotations

import asyncio

import pytest

from aitrapp.brokers.base import Broker, BrokerError, OrderRequest, OrderStatus, OrderType
from fakes import FakeBroker

TOKEN = 7


def req(tag: str, **over: object) -> OrderRequest:
    fields: dict[str, object] = {
        "client_order_id": f"{'ab' * 12}:{tag}",
        "tag": "abababababababab" + tag[:2],
        "exchange": "NSE",
        "tradingsymbol": "X",
        "instrument_token": TOKEN,
        "side": "BUY",
        "quantity": 10,
        "order_type": OrderType.LIMIT,
        "price_paise": 10_000,
    }
    fields.update(over)
    return OrderRequest(**fields)  # type: ignore[arg-type]


async def read(b: FakeBroker, n: int) -> list[tuple[str, OrderStatus, int]]:
    it = b.updates()
    out = []
    for _ in range(n):
        u = await asyncio.wait_for(anext(it), 1)
        out.append((u.tag or "", u.status, u.filled_quantity))
    return out


async def test_is_a_broker_with_kite_like_rejects() -> None:
    b = FakeBroker()
    assert isinstance(b, Broker)
    oid = await b.place_order(req("EN", order_type=OrderType.MARKET, price_paise=None))
    assert b.orders_by_id[oid].status is OrderStatus.REJECTED  # no market protection
    assert "market protection" in (b.orders_by_id[oid].message or "")
    b.reject_when(lambda r: r.tag.endswith("SL"), "RMS: margin")
    sl_req = req(
        "SL",
        order_type=OrderType.SLM,
        trigger_paise=9_000,
        price_paise=None,
        market_protection=-1.0,
    )
    sl = await b.place_order(sl_req)
    assert b.orders_by_id[sl].status is OrderStatus.REJECTED
    with pytest.raises(BrokerError) as info:
        await b.cancel_order(sl)
    assert info.value.code == 400 and "rejected" in str(info.value)


async def test_fills_cancels_and_modifies() -> None:
    b = FakeBroker()
    oid = await b.place_order(req("EN"))
    b.fill(oid, 4)
    await b.modify_order(oid, quantity=12)
    with pytest.raises(BrokerError):
        await b.modify_order(oid, quantity=4)  # not above the filled quantity
    b.fill(oid)
    assert (b.orders_by_id[oid].status, b.orders_by_id[oid].filled) == (OrderStatus.COMPLETE, 12)
    with pytest.raises(BrokerError, match="completed"):
        await b.cancel_order(oid)
    got = await read(b, 4)
    assert [s for _, s, _ in got] == [OrderStatus.OPEN] * 3 + [OrderStatus.COMPLETE]
    assert [f for _, _, f in got] == [0, 4, 4, 12]
    assert (await b.find_by_tag("ababababababababEN")) is not None


async def test_resting_orders_match_prices() -> None:
    b = FakeBroker()
    stop = await b.place_order(
        req(
            "SL",
            side="SELL",
            order_type=OrderType.SLM,
            price_paise=None,
            trigger_paise=9_500,
            market_protection=-1.0,
        )
    )
    b.set_price(TOKEN, 9_600)
    assert b.orders_by_id[stop].status is OrderStatus.TRIGGER_PENDING
    b.set_price(TOKEN, 9_450)
    assert b.orders_by_id[stop].filled == 10
    assert b.orders_by_id[stop].value_paise == 10 * 9_450
    assert b.net_position(TOKEN) == -10


async def test_unknown_outcomes() -> None:
    b = FakeBroker()
    b.fail_next("place", applied=True)
    with pytest.raises(BrokerError):
        await b.place_order(req("EN"))
    assert b.placements(req("EN").client_order_id) == 1  # it did happen
    b.fail_next("place")
    with pytest.raises(BrokerError):
        await b.place_order(req("TP"))
    assert b.placements(req("TP").client_order_id) == 0
    b.fail_next("find_by_tag")
    with pytest.raises(BrokerError):
        await b.find_by_tag("x")


async def test_hold_reorder_duplicate_are_deterministic() -> None:
    async def run(seed: int) -> list[int]:
        b = FakeBroker(seed=seed, reorder=True, duplicate_rate=0.5)
        b.hold()
        oid = await b.place_order(req("EN"))
        for _ in range(5):
            b.fill(oid, 2)
        assert b.undelivered() == 6
        b.release()
        it = b.updates()
        got = []
        while b.undelivered():
            got.append((await asyncio.wait_for(anext(it), 1)).filled_quantity)
        return got

    first, again = await run(3), await run(3)
    assert first == again
    assert sorted(set(first)) == [0, 2, 4, 6, 8, 10]
    assert first != sorted(first)  # reordered
    assert len(first) > 6  # and some arrived twice
