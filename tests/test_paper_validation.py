"""Kite-like validation: every reject reason is a REJECTED update with a message,
never an exception; and the 10-orders-per-second rate limit."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aitrapp import ConfigError
from aitrapp._core import SimVenue
from aitrapp.brokers.base import OrderStatus, OrderType, Product
from aitrapp.brokers.paper import PaperConfig
from test_paper_support import EQ, FUT, IDX, MS, OPT, SEC, T0, FakeWall, broker, req, tick

MKT, LMT, SL, SLM = OrderType.MARKET, OrderType.LIMIT, OrderType.SL, OrderType.SLM

# (side, qty, type, request fields, fragment of the reject message); the LTP is 100.00.
REJECTS: list[tuple[str, int, OrderType | str, dict[str, Any], str]] = [
    ("BUY", 1, LMT, {"price": 10003}, "Tick size for this script is 0.05"),
    ("SELL", 1, SLM, {"trigger": 9901, "mp": -1}, "trigger price in the multiple of tick size"),
    ("BUY", 100, LMT, {"price": 2_400_000, "token": FUT}, "multiple of the lot size (65)"),
    ("BUY", 1820, LMT, {"price": 2_400_000, "token": FUT}, "freeze quantity (1800)"),
    ("BUY", 0, LMT, {"price": 10000}, "Invalid `quantity`"),
    ("BUY", 1, SLM, {"trigger": 9990, "mp": -1}, "higher than the last traded price (100.00)"),
    ("BUY", 1, SLM, {"trigger": 10000, "mp": -1}, "higher than the last traded price"),
    ("SELL", 1, SL, {"trigger": 10010, "price": 10000}, "lower than the last traded price"),
    ("BUY", 1, MKT, {}, "without market protection"),
    ("SELL", 1, SLM, {"trigger": 9900}, "without market protection"),
    ("BUY", 1, MKT, {"mp": 0}, "without market protection"),
    ("BUY", 1, MKT, {"mp": 150}, "Invalid `market_protection`"),
    ("BUY", 1, MKT, {"mp": -2}, "Invalid `market_protection`"),
    ("BUY", 1, LMT, {"price": 10000, "tag": "X" * 21}, "Invalid `tag`"),
    ("BUY", 1, LMT, {"price": 10000, "token": 999}, "not a known instrument"),
    ("BUY", 1, LMT, {"price": 10000, "tradingsymbol": "TCS"}, "Invalid `tradingsymbol`"),
    ("BUY", 1, LMT, {"price": 10000, "token": IDX}, "is an index and cannot be traded"),
    ("BUY", 1, LMT, {"price": 10000, "product": Product.NRML}, "Product NRML is not allowed"),
    ("BUY", 65, LMT, {"price": 2_400_000, "token": FUT, "product": "CNC"}, "Product CNC"),
    ("BUY", 1, LMT, {}, "LIMIT orders need a price"),
    ("BUY", 1, SL, {"price": 10100}, "need a trigger price"),
    ("BUY", 1, SL, {"trigger": 10110, "price": 10100}, "cannot be above the limit price"),
    ("SELL", 1, SL, {"trigger": 9890, "price": 9900}, "cannot be below the limit price"),
    ("BUY", 1, LMT, {"price": -100}, "positive price"),
    ("BUY", 1, LMT, {"price": 10000, "validity": "TTL"}, "Invalid `validity`"),
    ("BUY", 1, "ICEBERG", {"price": 10000}, "Invalid `order_type`"),
    ("HOLD", 1, LMT, {"price": 10000}, "Invalid `transaction_type`"),
]


@pytest.mark.parametrize(
    ("side", "qty", "order_type", "fields", "message"),
    REJECTS,
    ids=[r[4][:40] for r in REJECTS],
)
async def test_each_reject_reason_is_a_rejected_update(
    side: str, qty: int, order_type: OrderType | str, fields: dict[str, Any], message: str
) -> None:
    b = broker()
    tick(b, T0, 100.00, 99.95, 100.05)
    tick(b, T0, 24000.0, 23999.9, 24000.1, token=FUT)
    r = req(side, qty, order_type, **fields)
    oid = await b.place_order(r)  # never raises
    ups = b.drain_updates()
    assert len(ups) == 1
    u = ups[0]
    assert u.status is OrderStatus.REJECTED and u.order_id == oid
    assert u.status_message is not None and message in u.status_message, u.status_message
    assert (u.client_order_id, u.tag) == (r.client_order_id, r.tag)
    assert u.filled_quantity == 0 and u.pending_quantity == 0
    assert ts_is_now(u.extra["exchange_ts_ns"])
    assert (await b.find_by_tag(r.tag)) == u
    # Nothing was booked: ticks through any price leave it rejected.
    assert tick(b, T0 + 1 * SEC, 90.00, 89.95, 90.05) == []


def ts_is_now(ns: object) -> bool:
    return ns == T0


async def test_a_valid_order_passes_the_same_checks() -> None:
    b = broker()
    tick(b, T0, 100.00, 99.95, 100.05)
    await b.place_order(req("SELL", 1, SL, trigger=9990, price=9980))
    assert tick(b, T0 + 60 * MS, 100.00, 99.95, 100.05)[0].status is OrderStatus.TRIGGER_PENDING


async def test_trigger_side_is_not_checked_before_any_price_is_known() -> None:
    b = broker()
    await b.place_order(req("BUY", 1, SLM, trigger=10000, mp=-1))
    b.advance_time(T0)
    assert [u.status for u in b.drain_updates()] == [OrderStatus.TRIGGER_PENDING]


async def test_eleventh_order_in_one_second_is_rejected() -> None:
    b = broker()
    tick(b, T0, 100.00, 99.95, 100.05)
    ids = [await b.place_order(req("BUY", 1, LMT, price=9000)) for _ in range(11)]
    assert len(set(ids)) == 11
    assert [u.status for u in b.drain_updates()] == [OrderStatus.REJECTED]
    rejected = (await b.orders())[-1]
    assert rejected.status_message is not None
    assert "Too many requests" in rejected.status_message
    # Simulated time moves on a second: accepted again.
    tick(b, T0 + 1 * SEC, 100.00, 99.95, 100.05)
    b.drain_updates()
    await b.place_order(req("BUY", 1, LMT, price=9000))
    assert [u.status for u in b.drain_updates()] == []  # accepted (ack pending)


async def test_rate_window_slides_in_simulated_time() -> None:
    b = broker(max_orders_per_second=3)
    for k in range(4):
        tick(b, T0 + k * 400 * MS, 100.00, 99.95, 100.05)
        await b.place_order(req("BUY", 1, LMT, price=9000))
    statuses = [o.status for o in await b.orders()]
    # Orders at 0, 400, 800 ms fill the window; the one at 1200 ms sees the first leave it.
    assert OrderStatus.REJECTED not in statuses
    await b.place_order(req("BUY", 1, LMT, price=9000))  # fourth in (200 ms, 1200 ms]
    assert (await b.orders())[-1].status is OrderStatus.REJECTED


async def test_rate_limit_uses_wall_time_while_simulated_time_stands_still() -> None:
    wall = FakeWall()
    b = broker(wall)
    tick(b, T0, 100.00, 99.95, 100.05)
    b.feed_ended()
    for _ in range(10):
        await b.place_order(req("BUY", 1, LMT, price=9000))
    await b.place_order(req("BUY", 1, LMT, price=9000))
    assert (await b.orders())[-1].status is OrderStatus.REJECTED
    wall.ns += 500 * MS
    await b.place_order(req("BUY", 1, LMT, price=9000))
    assert (await b.orders())[-1].status is OrderStatus.REJECTED
    wall.ns += 600 * MS  # a caller that paces its retries gets through
    await b.place_order(req("BUY", 1, LMT, price=9000))
    assert (await b.orders())[-1].status is OrderStatus.OPEN


async def test_rate_limit_can_be_switched_off() -> None:
    b = broker(max_orders_per_second=None)
    tick(b, T0, 100.00, 99.95, 100.05)
    for _ in range(25):
        await b.place_order(req("BUY", 1, LMT, price=9000))
    assert all(o.status is not OrderStatus.REJECTED for o in await b.orders())


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({"slippage_bps": -1}, "slippage_bps"),
        ({"slippage_bps": float("nan")}, "slippage_bps"),
        ({"ack_latency_ns": -5}, "ack_latency_ns"),
        ({"fill_latency_ns": 1.5}, "fill_latency_ns"),
        ({"no_tick_wait_ns": "2s"}, "no_tick_wait_ns"),
        ({"participation_pct": 0}, "participation_pct"),
        ({"participation_pct": 120}, "participation_pct"),
        ({"max_orders_per_second": 0}, "max_orders_per_second"),
        ({"max_modifications": -1}, "max_modifications"),
        ({"order_id_start": 0}, "order_id_start"),
        ({"auto_protection": {"EQ": ((None, 1.0),), "FUT": ((None, 1.0),)}}, "OPT"),
        (
            {"auto_protection": {"EQ": ((100.0, 1.0),), "FUT": ((None, 1),), "OPT": ((None, 1),)}},
            "last tier",
        ),
        (
            {"auto_protection": {"EQ": ((None, 0.0),), "FUT": ((None, 1),), "OPT": ((None, 1),)}},
            "pct",
        ),
        (
            {"auto_protection": {**PaperConfig().auto_protection, "IDX": ((None, 1.0),)}},
            "unknown segment 'IDX'",
        ),
    ],
)
def test_bad_config_names_the_key(fields: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        PaperConfig(**fields)


def test_the_config_crosses_to_the_rust_venue_whole() -> None:
    cfg = PaperConfig(slippage_bps=7.5, participation_pct=20, max_orders_per_second=None)
    assert json.loads(cfg.to_json()) == {
        "slippage_bps": 7.5,
        "ack_latency_ns": 50_000_000,
        "fill_latency_ns": 0,
        "no_tick_wait_ns": 2_000_000_000,
        "participation_pct": 20,
        "max_orders_per_second": None,
        "max_modifications": 25,
        "order_id_start": 100_000_000_000_001,
        "auto_protection": {
            "EQ": [[100.0, 2.0], [1000.0, 1.0], [None, 0.5]],
            "FUT": [[100.0, 2.0], [1000.0, 1.0], [None, 0.5]],
            "OPT": [[50.0, 10.0], [500.0, 5.0], [None, 2.0]],
        },
    }
    SimVenue(cfg.to_json(), [])  # the venue reads every key
    with pytest.raises(ConfigError, match="slippage"):
        SimVenue('{"slippage": 5}', [])  # and refuses one it does not know


# (token, LTP, automatic band in percent, the buy protection price it gives:
# LTP + band, rounded down to the tick). The tiers live in the Rust venue.
AUTO_TIERS = [
    (EQ, 99.99, 2.0, 101.95),  # 101.9898 -> 101.95
    (EQ, 100.00, 2.0, 102.00),  # a tier's bound is inclusive
    (EQ, 2500.00, 0.5, 2512.50),
    (OPT, 40.00, 10.0, 44.00),
    (FUT, 24000.0, 0.5, 24120.0),
]


@pytest.mark.parametrize(("token", "ltp", "pct", "protection"), AUTO_TIERS)
async def test_auto_protection_tiers(token: int, ltp: float, pct: float, protection: float) -> None:
    b = broker()
    tick(b, T0, ltp, token=token)
    lot = 65 if token in (FUT, OPT) else 1
    await b.place_order(req("BUY", lot, OrderType.MARKET, mp=-1, token=token))
    b.advance_time(T0 + 50 * MS)  # acknowledged: protected from the LTP it knows
    (u,) = b.drain_updates()
    assert u.extra["protection_price"] == protection, pct
    assert EQ == 1  # the support module's token numbering is what these tests assume
