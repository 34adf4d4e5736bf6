"""The risk gate as Python sees it: reasons, the numbers behind them, sizing."""

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


def test_sizing_uses_percent_of_capital_and_whole_lots() -> None:
    fut = equity(7, "NIFTY26JANFUT", segment="FUT", tick_size="0.10", lot_size=65, freeze_qty=1800)
    eng = engine(only("ema_cross", CROSS), fut)
    # Entry 20,020.00, stop 10 ticks (1.00) away: 5,000 / 1.00 = 5,000 units -> capped to
    # the freeze limit: 1800 // 65 = 27 lots = 1,755 units.
    [d] = decisions(_cross(eng, 7, scale=200.0))
    assert (d.entry, d.stop, d.qty, d.capped_by_freeze) == (20020.0, 20019.0, 1755, True)
    assert d.risk_rupees == pytest.approx(1755.0)


def test_freeze_policy_block_reports_the_numbers() -> None:
    fut = equity(7, "NIFTY26JANFUT", segment="FUT", tick_size="0.10", lot_size=65, freeze_qty=1800)
    eng = engine(only("ema_cross", CROSS, freeze_qty_policy="block"), fut)
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
        only("ema_cross", CROSS, per_trade_risk_pct=1.5, max_portfolio_heat_pct=2.0),
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
    eng = engine(only("ema_cross", CROSS, cooldown_seconds=0), equity(1, "A"), equity(2, "B"))
    [d] = decisions(_cross(eng, 1))
    eng.on_entry_filled(d.plan_id, d.qty, d.entry)
    eng.on_exit_filled(d.plan_id, d.qty, d.entry - 2.5)  # -25,000 on 10,000 units
    eng.on_bracket_closed(d.plan_id, -25_000.0, at(20))
    assert eng.portfolio().daily_loss_halted
    [b] = blocks(_cross(eng, 2, start=30))
    assert b.reason == "DAILY_LOSS"
    details: dict[str, Any] = b.details
    assert details["daily_pnl_rupees"] == -25_000.0
    assert details["limit_rupees"] == -25_000.0
    assert details["daily_loss_stop_pct"] == 2.5
    # Next IST day: trading again.
    assert len(decisions(_cross(eng, 2, start=86_400))) == 1


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
