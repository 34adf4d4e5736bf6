"""The paper broker's fill rules, one pure function at a time (integer paise)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aitrapp.brokers.paper_rules import (
    bps_to_ppm,
    is_price,
    limit_fill_price,
    market_fill_price,
    participation_quantity,
    pct_to_ppm,
    protection_price,
    slipped,
    touches,
    traded_quantity,
)

FIVE_BP = bps_to_ppm(5)


@pytest.mark.parametrize(
    ("is_buy", "touch", "tick", "want"),
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
    is_buy: bool, touch: int, tick: int, want: int
) -> None:
    assert slipped(is_buy, touch, FIVE_BP, tick) == want


def test_slippage_tie_goes_against_the_order() -> None:
    # 100 bp on 2.50 is exactly 0.025: half a 0.05 tick
    assert slipped(True, 250, 10_000, 5) == 255
    assert slipped(False, 250, 10_000, 5) == 245


@pytest.mark.parametrize(
    ("is_buy", "ref", "pct", "tick", "want"),
    [
        (True, 10_000, 2.0, 5, 10_200),
        (False, 10_000, 2.0, 5, 9_800),
        (True, 9_999, 1.0, 5, 10_095),  # 100.9899 -> down to 100.95: inside the band
        (False, 9_999, 1.0, 5, 9_900),  # 98.9901 -> up to 99.00: inside the band
        (False, 5, 10.0, 5, 5),  # never below one tick
        (True, 2_400_000, 0.5, 10, 2_412_000),
    ],
)
def test_protection_price(is_buy: bool, ref: int, pct: float, tick: int, want: int) -> None:
    assert protection_price(is_buy, ref, pct_to_ppm(pct), tick) == want


def test_market_fill_price_respects_the_band() -> None:
    assert market_fill_price(True, 10_000, 10_200, FIVE_BP, 5) == 10_005
    assert market_fill_price(True, 10_200, 10_200, FIVE_BP, 5) == 10_200  # slippage capped
    assert market_fill_price(True, 10_205, 10_200, FIVE_BP, 5) is None  # ask beyond the band
    assert market_fill_price(False, 9_800, 9_800, FIVE_BP, 5) == 9_800
    assert market_fill_price(False, 9_795, 9_800, FIVE_BP, 5) is None


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
    assert limit_fill_price(is_buy, limit, touch, last, resting) == want


def test_touches_need_a_sane_two_sided_quote() -> None:
    assert touches(10_000, 99.95, 100.05, 5) == (10_005, 9_995)
    assert touches(10_000, 99.96, 100.04, 5) == (10_005, 9_995)  # off-grid: against the order
    assert touches(10_000, None, 100.05, 5) == (10_000, 10_000)
    assert touches(10_000, math.nan, 100.05, 5) == (10_000, 10_000)
    assert touches(10_000, 100.10, 100.05, 5) == (10_000, 10_000)  # crossed
    assert touches(10_000, 0.0, 100.05, 5) == (10_000, 10_000)


def test_traded_quantity_prefers_the_volume_change() -> None:
    assert traded_quantity(1_500, 1_000, 7) == 500
    assert traded_quantity(1_000, 1_000, 7) == 0  # a quote-only tick
    assert traded_quantity(1_500, None, 7) == 7  # first tick: the last quantity
    assert traded_quantity(0, 0, 7) == 7  # no volume in the feed
    assert traded_quantity(900, 1_000, 7) == 7  # volume went down (bad data)


@given(
    remaining=st.integers(1, 10_000),
    traded=st.integers(-10, 1_000_000),
    pct=st.floats(0.01, 100),
    lot=st.sampled_from([1, 15, 25, 65, 75]),
)
def test_participation_is_bounded_and_in_lots(
    remaining: int, traded: int, pct: float, lot: int
) -> None:
    share = pct_to_ppm(pct)
    q = participation_quantity(remaining, traded, share, lot)
    assert 0 <= q <= remaining
    assert q * 1_000_000 <= max(traded, 0) * share
    assert q == remaining or q % lot == 0


def test_is_price() -> None:
    assert is_price(0.05)
    assert not any(is_price(x) for x in (None, 0.0, -1.0, math.nan, math.inf))
