"""The paper broker's fill rules, one rule table at a time, through the broker.

The rules are pure functions of the Rust venue (``core-rs/aitrapp-core/src/
venue/rules.rs``, where the same tables run as rstest cases under ``cargo
test``); here each row is played through `PaperBroker`, so the broker is shown
to apply exactly those rules. Prices in the tables are paise.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aitrapp.brokers.base import OrderType, OrderUpdate
from aitrapp.brokers.paper import PaperBroker
from test_paper_support import EQ, FUT, MS, PENNY, T0, broker, req, tick

MKT, LMT = OrderType.MARKET, OrderType.LIMIT


def rupees(paise: int) -> float:
    return paise / 100


def fills(ups: list[OrderUpdate]) -> list[tuple[int, float | None]]:
    return [(u.last_fill_qty, u.last_fill_price) for u in ups if u.last_fill_qty]


def market_fill(b: PaperBroker, side: str, bid: int, ask: int, *, token: int = EQ) -> float:
    """A MARKET order with a 100 % band meeting one quote; its fill price."""
    touch = ask if side == "BUY" else bid
    tick(b, T0, rupees(touch), rupees(bid), rupees(ask), token=token)
    b.submit(req(side, 1, MKT, mp=100, token=token))
    ups = tick(b, T0 + 60 * MS, rupees(touch), rupees(bid), rupees(ask), token=token)
    ((_, px),) = fills(ups)
    assert px is not None
    return px


@pytest.mark.parametrize(
    ("is_buy", "touch", "tick_paise", "want"),
    [
        (True, 250_005, 5, 250_130),  # 2500.05 + 5 bp = 2501.300025 -> 2501.30
        (False, 250_000, 5, 249_875),  # 2500.00 - 5 bp = 2498.75
        (True, 10_000, 5, 10_005),  # 100.00 + 0.05 exactly one tick
        (True, 1_000, 5, 1_000),  # 10.00 + 0.005: under half a tick, no extra tick
        (True, 10_010, 5, 10_015),  # 100.10 + 0.05005 -> 100.15
        (False, 5, 5, 5),  # never below one tick
        (False, 1_001, 1, 1_000),  # 10.01 - 0.0050... -> 10.00 (1-paisa grid)
    ],
)
def test_slippage_rounds_to_the_nearest_tick_against_the_order(
    is_buy: bool, touch: int, tick_paise: int, want: int
) -> None:
    token = PENNY if tick_paise == 1 else EQ
    side = "BUY" if is_buy else "SELL"
    bid, ask = (touch - tick_paise, touch) if is_buy else (touch, touch + tick_paise)
    assert market_fill(broker(), side, bid, ask, token=token) == rupees(want)


def test_slippage_tie_goes_against_the_order() -> None:
    # 100 bp on 2.50 is exactly 0.025: half a 0.05 tick
    assert market_fill(broker(slippage_bps=100), "BUY", 245, 250) == 2.55
    assert market_fill(broker(slippage_bps=100), "SELL", 250, 255) == 2.45


@pytest.mark.parametrize(
    ("is_buy", "ref", "pct", "token", "want"),
    [
        (True, 10_000, 2.0, EQ, 10_200),
        (False, 10_000, 2.0, EQ, 9_800),
        (True, 9_999, 1.0, EQ, 10_095),  # 100.9899 -> down to 100.95: inside the band
        (False, 9_999, 1.0, EQ, 9_900),  # 98.9901 -> up to 99.00: inside the band
        (False, 5, 10.0, EQ, 5),  # never below one tick
        (True, 2_400_000, 0.5, FUT, 2_412_000),
    ],
)
def test_protection_price(is_buy: bool, ref: int, pct: float, token: int, want: int) -> None:
    b = broker()
    tick(b, T0, rupees(ref), token=token)
    b.submit(req("BUY" if is_buy else "SELL", 65 if token == FUT else 1, MKT, mp=pct, token=token))
    b.advance_time(T0 + 50 * MS)  # the acknowledgement protects from the LTP
    (u,) = b.drain_updates()
    assert u.extra["protection_price"] == rupees(want)


def test_market_fill_price_respects_the_band() -> None:
    # LTP 100.00, band 2 %: a buy is protected at 102.00, a sell at 98.00.
    def one(side: str, bid: int, ask: int) -> float | None:
        b = broker()
        tick(b, T0, 100.00, 99.95, 100.05)
        b.submit(req(side, 1, MKT, mp=2))
        touch = ask if side == "BUY" else bid
        ups = tick(b, T0 + 60 * MS, rupees(touch), rupees(bid), rupees(ask))
        got = fills(ups)
        return got[0][1] if got else None

    assert one("BUY", 9_995, 10_000) == 100.05
    assert one("BUY", 10_195, 10_200) == 102.00  # slippage capped
    assert one("BUY", 10_200, 10_205) is None  # ask beyond the band
    assert one("SELL", 9_800, 9_805) == 98.00
    assert one("SELL", 9_795, 9_800) is None


@pytest.mark.parametrize(
    ("is_buy", "limit", "touch", "last", "resting", "want"),
    [
        (True, 9_950, 9_960, 9_940, False, None),  # arrival: prints before it do not count
        (True, 9_950, 9_960, 9_940, True, 9_950),  # resting: a print through -> at the limit
        (True, 9_950, 9_955, 9_950, True, None),  # a print at the limit is not through
        (True, 9_950, 9_950, 9_950, False, 9_950),  # the ask at the limit
        (True, 9_950, 9_805, 9_800, True, 9_805),  # gap: at the better touch
        (False, 10_050, 10_040, 10_060, True, 10_050),
        (False, 10_050, 10_095, 10_100, False, 10_095),
        (False, 10_050, 10_045, 10_050, True, None),
    ],
)
def test_limit_fill_price(
    is_buy: bool, limit: int, touch: int, last: int, resting: bool, want: int | None
) -> None:
    b = broker()
    sign = 1 if is_buy else -1
    tick(b, T0, rupees(limit + sign * 20))
    b.submit(req("BUY" if is_buy else "SELL", 1, LMT, price=limit))
    if resting:  # a first look that neither fills nor sees a print through the limit
        away = limit + sign * 10
        assert fills(tick(b, T0 + 60 * MS, rupees(away), rupees(away), rupees(away))) == []
    bid, ask = (touch - 5, touch) if is_buy else (touch, touch + 5)
    ups = tick(b, T0 + 1_000 * MS, rupees(last), rupees(bid), rupees(ask))
    assert fills(ups) == ([] if want is None else [(1, rupees(want))])


@pytest.mark.parametrize(
    ("bid", "ask", "buy_touch", "sell_touch"),
    [
        (99.95, 100.05, 10_005, 9_995),
        (99.96, 100.04, 10_005, 9_995),  # off-grid: against the order
        (None, 100.05, 10_000, 10_000),
        (math.nan, 100.05, 10_000, 10_000),
        (100.10, 100.05, 10_000, 10_000),  # crossed
        (0.0, 100.05, 10_000, 10_000),
    ],
)
def test_touches_need_a_sane_two_sided_quote(
    bid: float | None, ask: float | None, buy_touch: int, sell_touch: int
) -> None:
    for side, limit, want in (("BUY", 10_100, buy_touch), ("SELL", 9_900, sell_touch)):
        b = broker()
        tick(b, T0, 100.00)
        b.submit(req(side, 1, LMT, price=limit))  # marketable: fills at the touch
        assert fills(tick(b, T0 + 60 * MS, 100.00, bid, ask)) == [(1, rupees(want))], side


@pytest.mark.parametrize(
    ("volume", "prev_volume", "last_qty", "want"),
    [
        (1_500, 1_000, 7, 500),
        (1_000, 1_000, 7, 0),  # a quote-only tick
        (1_500, None, 7, 7),  # first tick: the last quantity
        (0, 0, 7, 7),  # no volume in the feed
        (900, 1_000, 7, 7),  # volume went down (bad data)
    ],
)
def test_traded_quantity_prefers_the_volume_change(
    volume: int, prev_volume: int | None, last_qty: int, want: int
) -> None:
    # Taking part in 100 % of the traded quantity fills exactly that quantity.
    b = broker(participation_pct=100.0, ack_latency_ns=0)
    if prev_volume is not None:
        tick(b, T0, 100.00, 99.95, 100.05, volume=prev_volume)
    b.submit(req("BUY", 10_000, LMT, price=10_100))
    ups = tick(b, T0 + 60 * MS, 100.00, 99.95, 100.05, volume=volume, last_qty=last_qty)
    assert sum(q for q, _ in fills(ups)) == want


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lots=st.integers(1, 27),
    traded=st.integers(0, 1_000_000),
    pct=st.floats(0.01, 100),
    token=st.sampled_from([EQ, FUT]),
)
def test_participation_is_bounded_and_in_lots(
    lots: int, traded: int, pct: float, token: int
) -> None:
    lot = 65 if token == FUT else 1
    remaining = lots * lot
    b = broker(participation_pct=pct, ack_latency_ns=0)
    tick(b, T0, 24000.0, 23999.9, 24000.1, volume=1_000, token=token)
    b.submit(req("BUY", remaining, LMT, price=2_401_000, token=token))
    ups = tick(b, T0 + 60 * MS, 24000.0, 23999.9, 24000.1, volume=1_000 + traded, token=token)
    q = sum(q for q, _ in fills(ups))
    share = round(pct * 10_000)
    assert 0 <= q <= remaining
    assert q * 1_000_000 <= traded * share
    assert q == remaining or q % lot == 0


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf])
def test_a_tick_without_a_price_is_dropped(bad: float) -> None:
    b = broker()
    tick(b, T0, 100.00, 99.95, 100.05)
    b.submit(req("BUY", 1, MKT, mp=-1))
    assert tick(b, T0 + 60 * MS, bad, 99.95, 100.05) == []  # not even the acknowledgement
    assert b.bad_ticks == 1


@pytest.mark.parametrize("bad", [None, 0.0, -1.0, math.nan, math.inf])
def test_a_bid_or_ask_without_a_price_is_no_quote(bad: float | None) -> None:
    for side, bid, ask in (("BUY", 99.95, bad), ("SELL", bad, 100.05)):
        b = broker()
        tick(b, T0, 100.00)
        b.submit(req(side, 1, LMT, price=10_100 if side == "BUY" else 9_900))
        assert fills(tick(b, T0 + 60 * MS, 100.00, bid, ask)) == [(1, 100.0)], side
