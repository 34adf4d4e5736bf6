"""Paper broker fills: one test per order type and edge case.

Prices in comments are rupees; requests carry paise. Default slippage is 5 bp,
rounded to the nearest tick against the order; ack latency 50 ms.
"""

from __future__ import annotations

import math

from aitrapp.brokers.base import OrderStatus, OrderType, Validity
from test_paper_support import (
    FUT,
    MS,
    OPT,
    SEC,
    T0,
    brief,
    broker,
    req,
    tick,
    ts_of,
)

MKT, LMT, SL, SLM = OrderType.MARKET, OrderType.LIMIT, OrderType.SL, OrderType.SLM
IOC = Validity.IOC


async def test_market_buy_fills_at_ask_plus_slippage_on_first_tick_after_latency() -> None:
    b = broker()
    tick(b, T0, 100.00, 99.95, 100.05)
    oid = await b.place_order(req("BUY", 10, MKT, mp=2))
    assert b.drain_updates() == []  # not acknowledged before the latency
    assert tick(b, T0 + 10 * MS, 100.00, 99.95, 100.05) == []  # still in flight
    ups = tick(b, T0 + 60 * MS, 100.10, 100.05, 100.10)
    # ack at request + 50 ms; then ask 100.10 + 5 bp = 100.15005 -> 100.15
    assert [brief(u) for u in ups] == [
        ("OPEN", 0, 10, 0.0, 0, None),
        ("COMPLETE", 10, 0, 100.15, 10, 100.15),
    ]
    assert [ts_of(u) for u in ups] == [T0 + 50 * MS, T0 + 60 * MS]
    done = ups[-1]
    assert done.order_id == oid and done.client_order_id and done.tag
    assert done.exchange_timestamp is not None and done.exchange_timestamp.tzinfo is not None
    assert done.extra["protection_price"] == 102.0  # LTP 100.00 at ack + 2 %


async def test_market_sell_fills_at_bid_minus_slippage() -> None:
    b = broker()
    tick(b, T0, 100.00, 99.95, 100.05)
    await b.place_order(req("SELL", 10, MKT, mp=-1))
    ups = tick(b, T0 + 60 * MS, 100.00, 99.95, 100.05)
    # bid 99.95 - 5 bp = 99.900025 -> 99.90
    assert brief(ups[-1]) == ("COMPLETE", 10, 0, 99.9, 10, 99.9)


async def test_market_without_depth_uses_last_price() -> None:
    b = broker()
    tick(b, T0, 100.00)
    await b.place_order(req("BUY", 1, MKT, mp=-1))
    ups = tick(b, T0 + 60 * MS, 100.00)
    assert brief(ups[-1]) == ("COMPLETE", 1, 0, 100.05, 1, 100.05)  # 100.05005 -> 100.05


async def test_market_sell_never_fills_at_zero() -> None:
    b = broker()
    tick(b, T0, 0.05, 0.05, 0.10, token=OPT)
    await b.place_order(req("SELL", 65, MKT, mp=-1, token=OPT))
    ups = tick(b, T0 + 60 * MS, 0.05, 0.05, 0.10, token=OPT)
    # 0.05 - 5 bp rounds to 0.05, and a sell never goes below one tick
    assert brief(ups[-1]) == ("COMPLETE", 65, 0, 0.05, 65, 0.05)


async def test_market_protection_band_holds_the_order_and_caps_slippage() -> None:
    b = broker()
    tick(b, T0, 100.00, 99.95, 100.05)
    oid = await b.place_order(req("BUY", 5, MKT, mp=1))  # protection 100.00 + 1 % = 101.00
    ups = tick(b, T0 + 60 * MS, 101.95, 101.90, 102.00)
    assert [brief(u) for u in ups] == [("OPEN", 0, 5, 0.0, 0, None)]  # ask beyond the band
    # A no-tick wait later the last quote is still beyond the band: nothing fills.
    assert tick(b, T0 + 3 * SEC, 101.95, 101.90, 102.00) == []
    # ask 101.00 + 5 bp = 101.05 is capped at the protection price 101.00
    ups = tick(b, T0 + 4 * SEC, 101.00, 100.95, 101.00)
    assert brief(ups[-1]) == ("COMPLETE", 5, 0, 101.0, 5, 101.0)
    assert ups[-1].order_id == oid


async def test_market_order_waits_for_a_price_instead_of_inventing_one() -> None:
    b = broker()
    await b.place_order(req("BUY", 65, MKT, mp=-1, token=OPT))  # no tick ever seen
    b.feed_ended()
    ups = b.drain_updates()
    assert [u.status for u in ups] == [OrderStatus.OPEN]  # acknowledged, never filled at 0
    assert (await b.orders())[0].filled_quantity == 0


async def test_limit_rests_then_fills_at_the_limit_when_trades_print_through() -> None:
    b = broker()
    tick(b, T0, 100.00, 99.95, 100.05)
    await b.place_order(req("BUY", 10, LMT, price=9950))
    ups = tick(b, T0 + 100 * MS, 99.80, 99.75, 99.80)
    assert [brief(u) for u in ups] == [("OPEN", 0, 10, 0.0, 0, None)]
    assert tick(b, T0 + 1 * SEC, 99.50, 99.45, 99.55) == []  # a print at the limit: no fill
    ups = tick(b, T0 + 2 * SEC, 99.45, 99.45, 99.55)  # a print through it
    assert brief(ups[-1]) == ("COMPLETE", 10, 0, 99.5, 10, 99.5)


async def test_limit_gapped_through_fills_at_the_better_price() -> None:
    b = broker()
    tick(b, T0, 100.00, 99.95, 100.05)
    await b.place_order(req("BUY", 10, LMT, price=9950))
    tick(b, T0 + 100 * MS, 99.80, 99.75, 99.80)
    ups = tick(b, T0 + 1 * SEC, 98.00, 97.95, 98.05)  # gap from 99.80 to 98.00
    assert brief(ups[-1]) == ("COMPLETE", 10, 0, 98.05, 10, 98.05)


async def test_marketable_limit_fills_at_the_touch_without_slippage() -> None:
    b = broker()
    tick(b, T0, 100.00, 99.95, 100.05)
    await b.place_order(req("BUY", 10, LMT, price=10100))
    ups = tick(b, T0 + 60 * MS, 100.10, 100.05, 100.10)
    assert brief(ups[-1]) == ("COMPLETE", 10, 0, 100.1, 10, 100.1)


async def test_limit_arrival_ignores_prints_from_before_it_arrived() -> None:
    b = broker()
    tick(b, T0, 100.00, 99.95, 100.05)
    await b.place_order(req("BUY", 10, LMT, price=9950))
    # First look: the last print (99.40) is below the limit but the ask (99.60) is not.
    ups = tick(b, T0 + 60 * MS, 99.40, 99.40, 99.60)
    assert [u.status for u in ups] == [OrderStatus.OPEN]
    ups = tick(b, T0 + 1 * SEC, 99.40, 99.40, 99.60)  # resting now: the print counts
    assert brief(ups[-1]) == ("COMPLETE", 10, 0, 99.5, 10, 99.5)


async def test_sell_limit_mirrors_the_buy_rules() -> None:
    b = broker()
    tick(b, T0, 100.00, 99.95, 100.05)
    await b.place_order(req("SELL", 3, LMT, price=10050))
    tick(b, T0 + 60 * MS, 100.20, 100.15, 100.25)  # arrival: bid below the limit
    assert tick(b, T0 + 1 * SEC, 100.50, 100.45, 100.55) == []  # print at the limit
    ups = tick(b, T0 + 2 * SEC, 101.00, 100.95, 101.05)  # bid above the limit: better price
    assert brief(ups[-1]) == ("COMPLETE", 3, 0, 100.95, 3, 100.95)


async def test_slm_triggers_on_last_price_then_fills_as_market() -> None:
    b = broker()
    tick(b, T0, 100.00, 99.95, 100.05)
    await b.place_order(req("SELL", 10, SLM, trigger=9900, mp=2))
    ups = tick(b, T0 + 100 * MS, 99.50, 99.45, 99.55)
    assert [brief(u) for u in ups] == [("TRIGGER PENDING", 0, 10, 0.0, 0, None)]
    ups = tick(b, T0 + 200 * MS, 98.95, 98.90, 99.00)
    # triggered (OPEN), then bid 98.90 - 5 bp = 98.85055 -> 98.85 (band: 99.00 - 2 % = 97.02)
    assert [brief(u) for u in ups] == [
        ("OPEN", 0, 10, 0.0, 0, None),
        ("COMPLETE", 10, 0, 98.85, 10, 98.85),
    ]
    assert ups[0].extra["triggered"] is True
    assert ups[0].trigger_price == 99.0


async def test_slm_trigger_on_the_very_first_tick() -> None:
    b = broker()
    tick(b, T0, 100.00, 99.95, 100.05)
    await b.place_order(req("SELL", 10, SLM, trigger=9900, mp=2))
    # The market fell through the trigger before the order reached the exchange.
    ups = tick(b, T0 + 60 * MS, 97.50, 97.45, 97.55)
    assert [u.status.value for u in ups] == ["TRIGGER PENDING", "OPEN", "COMPLETE"]
    assert [ts_of(u) for u in ups] == [T0 + 50 * MS, T0 + 60 * MS, T0 + 60 * MS]
    assert ups[-1].average_price == 97.4  # 97.45 - 5 bp = 97.401 -> 97.40


async def test_slm_gap_beyond_its_protection_rests_at_the_protection_price() -> None:
    b = broker()
    tick(b, T0, 100.00, 99.95, 100.05)
    await b.place_order(req("SELL", 10, SLM, trigger=9900, mp=1))  # band floor 98.01 -> 98.05
    ups = tick(b, T0 + 60 * MS, 97.50, 97.45, 97.55)
    assert [u.status.value for u in ups] == ["TRIGGER PENDING", "OPEN"]
    assert ups[-1].extra["protection_price"] == 98.05
    ups = tick(b, T0 + 5 * SEC, 98.15, 98.10, 98.20)  # 98.10 - 5 bp = 98.05
    assert brief(ups[-1]) == ("COMPLETE", 10, 0, 98.05, 10, 98.05)


async def test_buy_slm_protects_a_short() -> None:
    b = broker()
    tick(b, T0, 100.00, 99.95, 100.05)
    await b.place_order(req("BUY", 10, SLM, trigger=10100, mp=-1))
    assert [u.status.value for u in tick(b, T0 + 60 * MS, 100.95, 100.90, 101.00)] == [
        "TRIGGER PENDING"
    ]
    ups = tick(b, T0 + 1 * SEC, 101.00, 100.95, 101.05)
    assert brief(ups[-1]) == ("COMPLETE", 10, 0, 101.1, 10, 101.1)  # 101.05 + 5 bp -> 101.10


async def test_sl_triggers_then_rests_as_a_limit() -> None:
    b = broker()
    tick(b, T0, 100.00, 99.95, 100.05)
    await b.place_order(req("SELL", 10, SL, trigger=9900, price=9890))
    tick(b, T0 + 100 * MS, 99.50, 99.45, 99.55)
    ups = tick(b, T0 + 200 * MS, 98.95, 98.80, 98.85)  # triggers; bid below the limit
    assert [brief(u) for u in ups] == [("OPEN", 0, 10, 0.0, 0, None)]
    assert ups[0].price == 98.9 and ups[0].trigger_price == 99.0
    ups = tick(b, T0 + 1 * SEC, 98.95, 98.85, 98.95)  # prints above the limit: fills at it
    assert brief(ups[-1]) == ("COMPLETE", 10, 0, 98.9, 10, 98.9)


async def test_ioc_partial_fill_then_cancel() -> None:
    b = broker(participation_pct=10)
    tick(b, T0, 100.00, 99.95, 100.05, volume=10_000)
    await b.place_order(req("BUY", 100, LMT, price=10010, validity=IOC))
    ups = tick(b, T0 + 60 * MS, 100.05, 100.00, 100.05, volume=10_500)  # 500 traded -> 50
    assert [brief(u) for u in ups] == [
        ("OPEN", 0, 100, 0.0, 0, None),
        ("OPEN", 50, 50, 100.05, 50, 100.05),
        ("CANCELLED", 50, 0, 100.05, 0, None),
    ]
    assert ups[-1].cancelled_quantity == 50
    assert ups[-1].status_message is not None and "IOC" in ups[-1].status_message
    assert tick(b, T0 + 1 * SEC, 100.05, 100.00, 100.05, volume=20_000) == []


async def test_ioc_that_cannot_fill_is_cancelled_whole() -> None:
    b = broker()
    tick(b, T0, 100.00, 99.95, 100.05)
    await b.place_order(req("BUY", 10, LMT, price=9900, validity=IOC))
    ups = tick(b, T0 + 60 * MS, 100.00, 99.95, 100.05)
    assert [brief(u) for u in ups][-1] == ("CANCELLED", 0, 0, 0.0, 0, None)
    assert ups[-1].cancelled_quantity == 10


async def test_participation_fills_in_parts_and_averages() -> None:
    b = broker(participation_pct=20)
    tick(b, T0, 100.00, 99.95, 100.05, volume=10_000)
    await b.place_order(req("BUY", 300, LMT, price=10010))
    ups = tick(b, T0 + 60 * MS, 100.05, 100.00, 100.05, volume=11_000)  # 1000 traded -> 200
    assert brief(ups[-1]) == ("OPEN", 200, 100, 100.05, 200, 100.05)
    assert tick(b, T0 + 1 * SEC, 100.05, 100.00, 100.05, volume=11_000) == []  # quote only
    ups = tick(b, T0 + 2 * SEC, 100.00, 99.95, 100.00, volume=11_500)  # 500 traded -> 100
    # (200 x 100.05 + 100 x 100.00) / 300 = 100.0333...
    assert brief(ups[-1]) == ("COMPLETE", 300, 0, 100.0333, 100, 100.0)


async def test_participation_fills_whole_lots_only() -> None:
    b = broker(participation_pct=10)
    tick(b, T0, 24000.0, 23999.9, 24000.1, volume=50_000, token=FUT)
    await b.place_order(req("BUY", 130, LMT, price=2_401_000, token=FUT))
    ups = tick(b, T0 + 60 * MS, 24000.0, 23999.9, 24000.1, volume=51_000, token=FUT)
    assert brief(ups[-1]) == ("OPEN", 65, 65, 24000.1, 65, 24000.1)  # 10 % of 1000 = 100 -> 65
    ups = tick(b, T0 + 1 * SEC, 24000.0, 23999.9, 24000.1, volume=51_600, token=FUT)
    assert ups == []  # 10 % of 600 = 60 is less than a lot
    ups = tick(b, T0 + 2 * SEC, 24000.0, 23999.9, 24000.1, volume=52_300, token=FUT)
    assert brief(ups[-1]) == ("COMPLETE", 130, 0, 24000.1, 65, 24000.1)


async def test_market_order_without_traded_volume_falls_back_after_the_wait() -> None:
    b = broker(participation_pct=10)
    tick(b, T0, 100.00, 99.95, 100.05, volume=1_000)
    await b.place_order(req("BUY", 10, MKT, mp=-1))
    for k in range(1, 5):  # quote-only ticks every 500 ms: no volume to take part in
        ups = tick(b, T0 + k * 500 * MS, 100.00, 99.95, 100.05 + k * 0.05, volume=1_000)
        assert all(u.filled_quantity == 0 for u in ups)
    ups = tick(b, T0 + 2500 * MS, 100.00, 99.95, 100.40, volume=1_000)
    # due at ack (T0 + 50 ms) + 2 s, against the quote then known (ask 100.25): 100.30
    assert brief(ups[-1]) == ("COMPLETE", 10, 0, 100.3, 10, 100.3)
    assert ts_of(ups[-1]) == T0 + 2050 * MS


async def test_latency_orders_ack_eligibility_and_fill() -> None:
    b = broker(ack_latency_ns=50 * MS, fill_latency_ns=100 * MS)
    tick(b, T0, 100.00, 99.95, 100.05)
    await b.place_order(req("BUY", 10, LMT, price=10100))
    assert tick(b, T0 + 40 * MS, 100.00, 99.95, 100.05) == []  # before the ack
    ups = tick(b, T0 + 100 * MS, 100.00, 99.95, 100.05)  # acked, not yet eligible
    assert [(u.status.value, ts_of(u)) for u in ups] == [("OPEN", T0 + 50 * MS)]
    assert ups[0].order_timestamp is not None
    assert int(ups[0].order_timestamp.timestamp()) * SEC == T0
    ups = tick(b, T0 + 150 * MS, 100.00, 99.95, 100.05)  # first eligible tick
    assert [(u.status.value, ts_of(u)) for u in ups] == [("COMPLETE", T0 + 150 * MS)]


async def test_no_tick_market_fill_at_last_known_quote_after_the_wait() -> None:
    b = broker()
    tick(b, T0, 100.00, 99.95, 100.05)
    await b.place_order(req("BUY", 10, MKT, mp=-1))
    b.advance_time(T0 + 1 * SEC)
    assert [u.status.value for u in b.drain_updates()] == ["OPEN"]
    b.advance_time(T0 + 2 * SEC)
    assert b.drain_updates() == []  # the wait runs from eligibility (T0 + 50 ms)
    b.advance_time(T0 + 2050 * MS)
    ups = b.drain_updates()
    assert brief(ups[-1]) == ("COMPLETE", 10, 0, 100.1, 10, 100.1)  # 100.05 + 5 bp -> 100.10
    assert ts_of(ups[-1]) == T0 + 2050 * MS


async def test_feed_end_fills_market_orders_at_once() -> None:
    b = broker()
    tick(b, T0, 100.00, 99.95, 100.05)
    b.feed_ended()
    await b.place_order(req("SELL", 10, MKT, mp=-1))
    ups = b.drain_updates()
    assert [brief(u) for u in ups] == [
        ("OPEN", 0, 10, 0.0, 0, None),
        ("COMPLETE", 10, 0, 99.9, 10, 99.9),
    ]
    assert [ts_of(u) for u in ups] == [T0 + 50 * MS, T0 + 2050 * MS]


async def test_quiet_limit_order_gets_its_first_look_against_the_last_quote() -> None:
    b = broker()
    tick(b, T0, 100.00, 99.95, 100.05)
    await b.place_order(req("BUY", 10, LMT, price=10010, validity=IOC))
    b.advance_time(T0 + 3 * SEC)
    ups = b.drain_updates()
    assert [brief(u) for u in ups][-1] == ("COMPLETE", 10, 0, 100.05, 10, 100.05)


async def test_bad_and_stale_ticks_never_fill() -> None:
    b = broker()
    tick(b, T0, 100.00, 99.95, 100.05)
    await b.place_order(req("BUY", 10, MKT, mp=-1))
    assert tick(b, T0 + 60 * MS, 0.0, 0.0, 0.0) == []
    assert tick(b, T0 + 70 * MS, math.nan, 99.0, 99.1) == []
    assert b.bad_ticks == 2
    ups = tick(b, T0 + 80 * MS, 100.00, math.nan, math.nan)  # NaN depth: the last price counts
    assert [u.status.value for u in ups] == ["OPEN", "COMPLETE"]
    assert ups[-1].average_price == 100.05
    # An older tick than the last one seen for the instrument is dropped.
    await b.place_order(req("SELL", 10, LMT, price=9000))
    assert tick(b, T0 + 75 * MS, 95.0, 94.95, 95.05) == []
    assert b.bad_ticks == 3


async def test_crossed_quote_falls_back_to_last_price() -> None:
    b = broker()
    tick(b, T0, 100.00, 99.95, 100.05)
    await b.place_order(req("BUY", 1, LMT, price=10000))
    ups = tick(b, T0 + 60 * MS, 100.00, 100.10, 99.90)  # bid above ask: ignore the quote
    assert brief(ups[-1]) == ("COMPLETE", 1, 0, 100.0, 1, 100.0)
