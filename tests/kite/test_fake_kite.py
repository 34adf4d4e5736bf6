"""The fake Kite is at least as strict as Kite: tests against it mean something.

Raw requests (``KiteRest``, no broker-side checks) show what the fake refuses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from aitrapp.kite.client import KiteRest
from aitrapp.kite.errors import KiteRateLimitError, KiteRejectedError

from .conftest import RELIANCE
from .fake_kite import FakeKite


@pytest.fixture
async def rest(fake: FakeKite) -> AsyncIterator[KiteRest]:
    client = KiteRest(fake.api_key, fake.access_token, root=fake.rest_root)
    yield client
    client.close()


def form(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "variety": "regular",
        "exchange": "NSE",
        "tradingsymbol": "RELIANCE",
        "transaction_type": "SELL",
        "quantity": 10,
        "product": "MIS",
        "order_type": "SL-M",
        "trigger_price": "2480.00",
        "market_protection": -1,
        "tag": "fakestop",
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


async def test_a_stop_on_the_wrong_side_of_the_last_price_is_rejected(
    fake: FakeKite, rest: KiteRest
) -> None:
    fake.set_ltp(RELIANCE, "2470.00")
    sell = await rest.place_order(**form())  # trigger 2480 >= LTP 2470
    assert fake.order(sell)["status"] == "REJECTED"
    assert "lower than the last traded price" in fake.order(sell)["status_message"]
    buy = await rest.place_order(**form(transaction_type="BUY", trigger_price="2460.00"))
    assert fake.order(buy)["status"] == "REJECTED"
    ok = await rest.place_order(**form(trigger_price="2460.00"))
    assert fake.order(ok)["status"] == "TRIGGER PENDING"
    with pytest.raises(KiteRejectedError, match="lower than the last traded price"):
        await rest.modify_order("regular", ok, trigger_price="2475.00", market_protection=-1)


async def test_a_stop_limit_needs_a_limit_that_can_fill(rest: KiteRest) -> None:
    with pytest.raises(KiteRejectedError, match="limit price"):
        await rest.place_order(**form(order_type="SL", price="2490.00", market_protection=None))
    await rest.place_order(**form(order_type="SL", price="2470.00", market_protection=None))


async def test_market_types_need_protection_on_place_and_modify(
    fake: FakeKite, rest: KiteRest
) -> None:
    with pytest.raises(KiteRejectedError, match="market protection"):
        await rest.place_order(**form(market_protection=None))
    with pytest.raises(KiteRejectedError, match="market protection"):
        await rest.place_order(**form(order_type="MARKET", trigger_price=None, market_protection=0))
    stop = await rest.place_order(**form())
    with pytest.raises(KiteRejectedError, match="market protection"):
        await rest.modify_order("regular", stop, order_type="MARKET")
    assert fake.order(stop)["order_type"] == "SL-M"


async def test_a_stop_turned_market_fills_at_the_last_price(fake: FakeKite, rest: KiteRest) -> None:
    fake.set_ltp(RELIANCE, "2490.00")
    stop = await rest.place_order(**form())
    await rest.modify_order("regular", stop, order_type="MARKET", market_protection=-1)
    o = fake.order(stop)
    assert (o["status"], o["order_type"], o["filled_quantity"], o["average_price"]) == (
        "COMPLETE",
        "MARKET",
        10,
        2490.0,
    )
    assert o["trigger_price"] == 0


async def test_a_crossing_limit_fills_at_once_a_resting_one_waits(
    fake: FakeKite, rest: KiteRest
) -> None:
    fake.set_ltp(RELIANCE, "2540.00")
    tp = await rest.place_order(
        **form(order_type="LIMIT", price="2536.00", trigger_price=None, market_protection=None)
    )
    assert fake.order(tp)["status"] == "COMPLETE"
    assert fake.order(tp)["average_price"] == 2540.0  # the better price
    rest_id = await rest.place_order(
        **form(order_type="LIMIT", price="2550.00", trigger_price=None, market_protection=None)
    )
    assert fake.order(rest_id)["status"] == "OPEN"


async def test_at_most_25_modifications() -> None:
    ticks = iter(range(1000))  # every request arrives 0.2 s after the one before
    async with FakeKite(clock=lambda: next(ticks) * 0.2) as fake:
        rest = KiteRest(fake.api_key, fake.access_token, root=fake.rest_root)
        try:
            order_id = await rest.place_order(
                **form(
                    order_type="LIMIT", price="2550.00", trigger_price=None, market_protection=None
                )
            )
            for n in range(25):
                await rest.modify_order("regular", order_id, price=f"{2551 + n}.00")
            with pytest.raises(KiteRejectedError, match="modifications"):
                await rest.modify_order("regular", order_id, price="2600.00")
        finally:
            rest.close()
    assert fake.order(order_id)["price"] == 2575.0
    assert fake.modifications[order_id] == 25
    assert fake.too_many == []


async def test_tags_over_20_characters_are_rejected(fake: FakeKite, rest: KiteRest) -> None:
    with pytest.raises(KiteRejectedError, match="20 characters"):
        await rest.place_order(**form(tag="x" * 21))
    assert fake.orders == {}


async def test_reads_have_their_own_window(fake: FakeKite, rest: KiteRest) -> None:
    for _ in range(10):
        await rest.orders()
    with pytest.raises(KiteRateLimitError):
        await rest.positions()
    await rest.place_order(**form())  # orders are counted apart
    assert [a.kind for a in fake.too_many] == ["other"]


async def test_the_minute_window_counts_too() -> None:
    now = [0.0]
    async with FakeKite(order_rate=((10, 1.0), (15, 60.0)), clock=lambda: now[0]) as fake:
        rest = KiteRest(fake.api_key, fake.access_token, root=fake.rest_root)
        try:
            for n in range(15):
                now[0] = n * 0.5  # 2 a second: within the 1 s window
                await rest.place_order(**form(tag=f"t{n}"))
            now[0] = 30.0
            with pytest.raises(KiteRateLimitError):
                await rest.place_order(**form(tag="late"))
            now[0] = 61.0  # the first arrivals have left the minute
            await rest.place_order(**form(tag="later"))
        finally:
            rest.close()
    assert len(fake.too_many) == 1
