"""The risk gate as Python sees it: reasons, the numbers behind them, sizing, exposure."""

from __future__ import annotations

from typing import Any

import pytest

from aitrapp import Decision, Engine, RiskBlock
from test_engine_support import at, blocks, decisions, engine, equity, only

CROSS = {"fast_period": 2, "slow_period": 4}
UP = [100.0, 99.9, 99.8, 99.7, 99.6, 99.8, 100.1, 100.4]  # one upward cross, on the 7th tick


def _cross(
    eng: Engine, token: int = 1, start: float = 0.0, scale: float = 1.0
) -> list[Decision | RiskBlock]:
    got: list[Decision | RiskBlock] = []
    for i, px in enumerate(UP):
        got += eng.on_tick(token, at(start + i), round(px * scale, 2), 1, 100_000 + int(start) + i)
    return got


# A futures account: margin, not cash, so positions may be levered well past capital.
LEVERED = {"max_position_notional_pct": 10_000.0, "max_gross_exposure_pct": 10_000.0}
# The sizing tests scale a 0.50 stop onto 2,500 and 20,000 rupee prices (2 and 0.5 bps):
# with the gate's stop floor off, they reach the sizing rules they are about.
NO_STOP_FLOOR = {"min_stop_distance_bps": 0.0, "slippage_bps": 0.0, "min_stop_spread_multiple": 0.0}


def test_sizing_uses_percent_of_capital_and_whole_lots() -> None:
    fut = equity(7, "NIFTY26JANFUT", segment="FUT", tick_size="0.10", lot_size=65, freeze_qty=1800)
    eng = engine(only("ema_cross", CROSS, **LEVERED, **NO_STOP_FLOOR), fut)
    # Entry 20,020.00, stop 10 ticks (1.00) away: 5,000 / 1.00 = 5,000 units -> capped to
    # the freeze limit: 1800 // 65 = 27 lots = 1,755 units.
    [d] = decisions(_cross(eng, 7, scale=200.0))
    assert (d.entry, d.stop, d.qty, d.capped_by_freeze) == (20020.0, 20019.0, 1755, True)
    assert d.risk_rupees == pytest.approx(1755.0)


def test_freeze_policy_block_reports_the_numbers() -> None:
    fut = equity(7, "NIFTY26JANFUT", segment="FUT", tick_size="0.10", lot_size=65, freeze_qty=1800)
    eng = engine(
        only("ema_cross", CROSS, freeze_qty_policy="block", **LEVERED, **NO_STOP_FLOOR), fut
    )
    [b] = blocks(_cross(eng, 7, scale=200.0))
    assert b.reason == "FREEZE_QTY"
    assert b.details == {"qty": 4940, "freeze_qty": 1800, "max_order_qty": 1755}


def test_size_below_one_lot_is_blocked_never_rounded_up() -> None:
    big_lot = equity(7, "BIG", segment="FUT", lot_size=20_000, freeze_qty=100_000)
    eng = engine(only("ema_cross", CROSS), big_lot)
    [b] = blocks(_cross(eng, 7))
    assert b.reason == "SIZE_BELOW_LOT"
    assert b.details == {
        "risk_budget_rupees": 5000.0,
        "risk_per_unit_rupees": 0.5,
        "affordable_units": 10_000,
        "lot_size": 20_000,
    }
    assert (b.strategy, b.side, b.instrument_token, b.signal_ts) == ("EmaCross", "BUY", 7, at(6))
    # The refused signal keeps its prices (they are persisted with the signal).
    assert (b.entry, b.stop, b.tp) == (100.10, 99.60, 100.60)
    assert (b.entry_paise, b.stop_paise, b.tp_paise) == (10_010, 9_960, 10_060)
    assert b.to_dict()["entry"] == 100.10


def test_market_hours_are_judged_by_the_tick_time() -> None:
    eng = engine(only("ema_cross", CROSS))
    [b] = blocks(_cross(eng, 1, start=-15 * 60))  # 09:00 pre-open
    assert b.reason == "MARKET_HOURS"
    assert b.details == {"time_ist": "09:00:06", "entry_start": "09:15:00", "entry_end": "15:20:00"}
    late = engine(only("ema_cross", CROSS, cooldown_seconds=0))
    [b] = blocks(_cross(late, 1, start=(6 * 60 + 5) * 60 - 6))  # signal exactly at 15:20:00
    assert b.reason == "MARKET_HOURS"


def test_portfolio_heat_counts_open_plans_in_percent() -> None:
    eng = engine(
        only(
            "ema_cross",
            CROSS,
            per_trade_risk_pct=1.5,
            max_portfolio_heat_pct=2.0,
            max_position_notional_pct=400.0,  # 30,000 units x 100.10 = 300.3%
            max_gross_exposure_pct=1_000.0,
        ),
        equity(1, "A"),
        equity(2, "B"),
    )
    [d] = decisions(_cross(eng, 1))
    assert d.heat_after_pct == pytest.approx(1.5)
    [b] = blocks(_cross(eng, 2))
    assert b.reason == "PORTFOLIO_HEAT"
    assert b.details == pytest.approx(
        {
            "heat_pct": 1.5,
            "plan_heat_pct": 1.5,
            "heat_after_pct": 3.0,
            "max_portfolio_heat_pct": 2.0,
        }
    )
    eng.on_plan_cancelled(d.plan_id, at(10))
    assert len(decisions(_cross(eng, 2, start=20))) == 1


def test_daily_loss_halts_entries_for_the_rest_of_the_day() -> None:
    cfg = only("ema_cross", CROSS, cooldown_seconds=0, max_position_notional_pct=200.0)
    eng = engine(cfg, equity(1, "A"), equity(2, "B"))
    [d] = decisions(_cross(eng, 1))
    assert (d.qty, d.capped_by_notional) == (10_000, False)
    eng.on_entry_filled(d.plan_id, d.qty, d.entry)
    eng.on_exit_filled(d.plan_id, d.qty, d.entry - 2.5)  # -25,000 on 10,000 units
    eng.on_bracket_closed(d.plan_id, -25_000.0, at(20), charges_rupees=0.0)
    assert eng.portfolio().daily_loss_halted
    [b] = blocks(_cross(eng, 2, start=30))
    assert b.reason == "DAILY_LOSS"
    details: dict[str, Any] = b.details
    assert details["daily_pnl_rupees"] == -25_000.0
    assert details["limit_rupees"] == -25_000.0
    assert details["daily_loss_stop_pct"] == 2.5
    # Next IST day: trading again.
    eng.advance_time(at(86_400 - 600))
    assert len(decisions(_cross(eng, 2, start=86_400))) == 1


def test_daily_loss_latches_on_charges_alone() -> None:
    # Gross -24,000 is inside the 25,000 stop; 1,200 of reported charges take it past.
    risk: dict[str, Any] = {"cooldown_seconds": 0, "max_position_notional_pct": 200.0}
    unestimated = only("ema_cross", CROSS, charges_buy_bps=0.0, charges_sell_bps=0.0, **risk)
    eng = engine(unestimated, equity(1, "A"), equity(2, "B"))
    [d] = decisions(_cross(eng, 1))
    eng.on_entry_filled(d.plan_id, d.qty, d.entry)
    eng.on_exit_filled(d.plan_id, d.qty, d.entry - 2.4)
    assert not eng.portfolio().daily_loss_halted
    eng.on_bracket_closed(d.plan_id, -24_000.0, at(20), charges_rupees=1_200.0)
    snap = eng.portfolio()
    assert snap.daily_loss_halted
    assert (snap.daily_realized_pnl, snap.daily_charges, snap.daily_net_pnl) == (
        -24_000.0,
        1_200.0,
        -25_200.0,
    )
    [b] = blocks(_cross(eng, 2, start=30))
    assert b.reason == "DAILY_LOSS"
    assert (b.details["realized_rupees"], b.details["charges_rupees"]) == (-24_000.0, 1_200.0)
    # With the default estimates, the exit fill alone latches a gross -24,600: the
    # buy of 10,01,000 rupees at 1.2 bps (120.12) and its sale, valued at the entry
    # price, at 3.4 bps (340.34) are counted at once.
    eng = engine(only("ema_cross", CROSS, **risk), equity(1, "A"), equity(2, "B"))
    [d] = decisions(_cross(eng, 1))
    eng.on_entry_filled(d.plan_id, d.qty, d.entry)
    eng.on_exit_filled(d.plan_id, d.qty, round(d.entry - 2.46, 2))
    snap = eng.portfolio()
    assert snap.daily_realized_pnl == pytest.approx(-24_600.0)
    assert snap.daily_charges == pytest.approx(120.12 + 340.34)
    assert snap.daily_loss_halted
    # A close reported without charges estimates both legs, the sale at the value
    # its PnL implies (9,76,400 rupees: 331.98).
    eng = engine(only("ema_cross", CROSS, **risk), equity(1, "A"))
    [d] = decisions(_cross(eng, 1))
    eng.on_entry_filled(d.plan_id, d.qty, d.entry)
    eng.on_bracket_closed(d.plan_id, -24_600.0, at(20))
    snap = eng.portfolio()
    assert snap.daily_charges == pytest.approx(120.12 + 331.98)
    assert snap.daily_loss_halted
    # The same gross loss with no charges at all does not latch.
    eng = engine(only("ema_cross", CROSS, **risk), equity(1, "A"))
    [d] = decisions(_cross(eng, 1))
    eng.on_entry_filled(d.plan_id, d.qty, d.entry)
    eng.on_bracket_closed(d.plan_id, -24_600.0, at(20), charges_rupees=0.0)
    assert not eng.portfolio().daily_loss_halted


def test_open_positions_count_their_closing_charges() -> None:
    # 12,000 held at a loss of 24,600 marked to market: the entry leg (12,01,200
    # rupees at 1.2 bps: 144.15) and the 3.4 bps to sell 11,76,600 rupees of stock
    # (400.05) put the day past the stop.
    cfg = only(
        "ema_cross",
        CROSS,
        per_trade_risk_pct=0.6,
        cooldown_seconds=0,
        max_position_notional_pct=200.0,
    )
    eng = engine(cfg, equity(1, "A"), equity(2, "B"))
    [d] = decisions(_cross(eng, 1))
    assert d.qty == 12_000
    eng.on_entry_filled(d.plan_id, d.qty, d.entry)
    eng.on_tick(1, at(10), round(d.entry - 2.05, 2), 1, 200_000)
    snap = eng.portfolio()
    assert snap.daily_unrealized_pnl == pytest.approx(-24_600.0)
    assert snap.daily_close_charges == pytest.approx(400.05)
    assert snap.daily_net_pnl == pytest.approx(-24_600.0 - 144.15 - 400.05)
    [b] = blocks(_cross(eng, 2, start=30))
    assert b.reason == "DAILY_LOSS"
    assert b.details["close_charges_rupees"] == pytest.approx(400.05)


def test_max_open_positions_and_busy_instrument() -> None:
    eng = engine(only("ema_cross", CROSS, max_open_positions=1), equity(1, "A"), equity(2, "B"))
    [d] = decisions(_cross(eng, 1))
    [b] = blocks(_cross(eng, 2))
    assert (b.reason, b.details) == (
        "MAX_OPEN_POSITIONS",
        {"open_positions": 1, "max_open_positions": 1},
    )
    busy = [x.reason for x in blocks(_cross(eng, 1, start=10))]
    assert set(busy) == {"MAX_OPEN_POSITIONS"}  # checked before the busy instrument
    eng2 = engine(only("ema_cross", CROSS), equity(1, "A"))
    [d] = decisions(_cross(eng2, 1))
    b2 = blocks(_cross(eng2, 1, start=10))
    assert b2 and all(x.reason == "INSTRUMENT_BUSY" for x in b2)
    assert b2[0].details == {"open_plan_id": d.plan_id, "open_strategy": "EmaCross"}
    assert "RiskBlock(INSTRUMENT_BUSY" in repr(b2[0])
    assert b2[0].to_dict()["reason"] == "INSTRUMENT_BUSY"


def test_a_tight_stop_is_capped_to_the_notional_limit_in_whole_lots() -> None:
    # The paper-session case: EmaCross on a 2,500 stock, stop 10 ticks (0.50) away
    # (2 bps: the gate's stop floor, switched off here, would refuse it).
    eng = engine(only("ema_cross", CROSS, **NO_STOP_FLOOR))
    [d] = decisions(_cross(eng, 1, scale=25.0))
    assert (d.entry, d.stop) == (2502.5, 2502.0)
    # By risk 5,000 / 0.50 = 10,000 units (2.5 crore); 100% of 10 lakh buys 399.
    assert (d.qty, d.capped_by_notional, d.capped_by_freeze) == (399, True, False)
    assert d.qty * d.entry <= 1_000_000 < (d.qty + 1) * d.entry
    assert d.risk_rupees == pytest.approx(0.50 * 399)
    snap = eng.portfolio()
    assert snap.gross_exposure_rupees == pytest.approx(399 * 2502.5)
    assert snap.gross_exposure_pct == pytest.approx(99.84975)
    # In lots of 150: 399 units fit, so 2 lots (3 lots would be 11.26 lakh).
    lots = engine(
        only("ema_cross", CROSS, **NO_STOP_FLOOR), equity(1, "L", segment="FUT", lot_size=150)
    )
    [d] = decisions(_cross(lots, 1, scale=25.0))
    assert (d.qty, d.capped_by_notional) == (300, True)


def test_notional_limit_blocks_when_not_one_lot_fits() -> None:
    # One NIFTY lot at 20,020 is 13.01 lakh: more than 100% of 10 lakh.
    fut = equity(7, "NIFTY26JANFUT", segment="FUT", tick_size="0.10", lot_size=65, freeze_qty=1800)
    eng = engine(only("ema_cross", CROSS, **NO_STOP_FLOOR), fut)
    [b] = blocks(_cross(eng, 7, scale=200.0))
    assert b.reason == "NOTIONAL_LIMIT"
    assert b.details == {
        "entry_rupees": 20020.0,
        "lot_size": 65,
        "lot_notional_rupees": 1_301_300.0,
        "max_position_notional_rupees": 1_000_000.0,
        "max_position_notional_pct": 100.0,
        "risk_sized_qty": 4940,
    }
    # Exactly one lot's notional is allowed (the limit is inclusive).
    pct = 1_301_300.0 / 1_000_000.0 * 100.0
    at_limit = engine(only("ema_cross", CROSS, max_position_notional_pct=pct, **NO_STOP_FLOOR), fut)
    [d] = decisions(_cross(at_limit, 7, scale=200.0))
    assert (d.qty, d.capped_by_notional) == (65, True)


def _three(**risk: Any) -> tuple[Engine, list[Decision | RiskBlock]]:
    eng = engine(only("ema_cross", CROSS, **risk), equity(1, "A"), equity(2, "B"), equity(3, "C"))
    got: list[Decision | RiskBlock] = []
    for token in (1, 2, 3):
        got += _cross(eng, token, start=10 * token)
    return eng, got


def test_gross_exposure_counts_every_open_plan_and_is_exact() -> None:
    # Each plan is 9,990 x 100.10 = 999,999 rupees (99.9999%); three are 299.9997%.
    eng, got = _three(max_gross_exposure_pct=250.0)
    assert [type(o).__name__ for o in got] == ["Decision", "Decision", "RiskBlock"]
    b = blocks(got)[0]
    assert b.reason == "GROSS_EXPOSURE"
    assert b.details == pytest.approx(
        {
            "gross_exposure_rupees": 1_999_998.0,
            "plan_notional_rupees": 999_999.0,
            "gross_exposure_pct": 199.9998,
            "plan_notional_pct": 99.9999,
            "gross_after_pct": 299.9997,
            "max_gross_exposure_pct": 250.0,
        }
    )
    assert eng.portfolio().gross_exposure_pct == pytest.approx(199.9998)
    # Freeing one plan frees its exposure.
    first = decisions(got)[0]
    eng.on_plan_cancelled(first.plan_id, at(100))
    assert len(decisions(_cross(eng, 3, start=200))) == 1
    # The cap is inclusive and exact: 299.9997% passes, 299.9996% does not.
    assert [o.reason for o in blocks(_three(max_gross_exposure_pct=299.9997)[1])] == []
    assert [o.reason for o in blocks(_three(max_gross_exposure_pct=299.9996)[1])] == [
        "GROSS_EXPOSURE"
    ]


def test_stop_too_tight_is_on_by_default_and_exact_in_basis_points() -> None:
    # Stop 0.50 under 100.10: 49.95 bps, outside the default 20 bps floor.
    assert len(decisions(_cross(engine(only("ema_cross", CROSS))))) == 1
    at_min = engine(only("ema_cross", CROSS, min_stop_distance_bps=49.95))
    assert len(decisions(_cross(at_min))) == 1
    tight = engine(only("ema_cross", CROSS, min_stop_distance_bps=49.951))
    [b] = blocks(_cross(tight))
    assert b.reason == "STOP_TOO_TIGHT"
    assert b.details == pytest.approx(
        {
            "entry_rupees": 100.10,
            "stop_distance_rupees": 0.50,
            "stop_distance_bps": 0.50 / 100.10 * 10_000,
            "min_stop_distance_bps": 49.951,
            "slippage_bps": 5.0,
            "spread_rupees": 0.0,  # the path has no quote
            "min_stop_spread_multiple": 3.0,
            "required_distance_rupees": 100.10 * 49.951 / 10_000,
            "binding_rule": "min_stop_distance_bps",
        }
    )
    # Checked before sizing: a stop too tight is refused even if no lot would fit.
    big = engine(
        only("ema_cross", CROSS, min_stop_distance_bps=60.0),
        equity(1, "BIG", segment="FUT", lot_size=20_000, freeze_qty=100_000),
    )
    assert [x.reason for x in blocks(_cross(big))] == ["STOP_TOO_TIGHT"]
    # The default floor on a 2,500 stock: the same 0.50 stop is 2 bps.
    [b] = blocks(_cross(engine(only("ema_cross", CROSS)), scale=25.0))
    assert (b.reason, b.details["binding_rule"]) == ("STOP_TOO_TIGHT", "min_stop_distance_bps")
    assert b.details["required_distance_rupees"] == pytest.approx(2502.5 * 20 / 10_000)


def _cross_quoted(eng: Engine, half_spread: float) -> list[Decision | RiskBlock]:
    """The UP path with a quote of 2 x half_spread around each price."""
    got: list[Decision | RiskBlock] = []
    for i, px in enumerate(UP):
        bid, ask = round(px - half_spread, 2), round(px + half_spread, 2)
        got += eng.on_tick(1, at(i), px, 1, 100_000 + i, bid, ask)
    return got


def test_a_stop_inside_a_few_spreads_or_the_slippage_is_refused() -> None:
    # EmaCross buys at the ask (100.25 with a 0.30 spread) with its stop 0.50 away:
    # 49.9 bps clears the 20 bps floor, but 3 spreads are 0.90.
    [b] = blocks(_cross_quoted(engine(only("ema_cross", CROSS)), 0.15))
    assert b.reason == "STOP_TOO_TIGHT"
    assert b.details["binding_rule"] == "min_stop_spread_multiple"
    assert b.details["spread_rupees"] == pytest.approx(0.30)
    assert b.details["required_distance_rupees"] == pytest.approx(0.90)
    # A quote 0.10 wide needs only 0.30: the plan passes.
    assert len(decisions(_cross_quoted(engine(only("ema_cross", CROSS)), 0.05))) == 1
    # The slippage of both legs binds when it is the largest: 2 x 25 bps of 100.10.
    slip = engine(only("ema_cross", CROSS, min_stop_distance_bps=0.0, slippage_bps=25.0))
    [b] = blocks(_cross(slip))
    assert (b.reason, b.details["binding_rule"]) == ("STOP_TOO_TIGHT", "slippage_bps")
    assert b.details["required_distance_rupees"] == pytest.approx(0.5005)
    # Every rule at 0: no floor at all.
    off = engine(only("ema_cross", CROSS, **NO_STOP_FLOOR))
    assert len(decisions(_cross(off, scale=25.0))) == 1
