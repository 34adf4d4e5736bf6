"""Trailing stops on the kernel through its binding, on SYNTHETIC gappy data:
the template's ``trail_atr_mult`` reaches every bracket, stops only tighten,
the batch size changes nothing, and a bad setting is refused by name."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from aitrapp._core import Kernel, OcoError
from aitrapp.config import EngineConfig
from aitrapp.feeds.base import TickBatch
from aitrapp.kernel.events import EventBatch, extend, rows
from aitrapp.kernel.options import BracketOptions, bracket_template

from .gappy import gappy_day, instrument

DAY = date(2026, 1, 5)
TOKENS = [201, 202]
TRAILING = {"entry_type": "MARKET", "trail_atr_mult": 0.5, "trail_min_step_ticks": 2}


def wide_ema_config() -> EngineConfig:
    """EmaCross with wide stops and targets, so brackets live long enough to trail."""
    return EngineConfig.parse(
        {
            "risk": {
                "max_trades_per_day": 1000,
                "cooldown_seconds": 0,
                "max_open_positions": 50,
                "daily_loss_stop_pct": 100.0,
                "max_portfolio_heat_pct": 100.0,
                "min_stop_distance_bps": 0.0,
                "min_stop_spread_multiple": 0.0,
                "slippage_bps": 0.0,
            },
            "strategies": {
                "orb": {"enabled": False},
                "trend_pullback": {"enabled": False},
                "vwap_reversion": {"enabled": False},
                "ema_cross": {"enabled": True, "stop_ticks": 80, "tp_ticks": 400},
            },
        }
    )


def run(ticks: TickBatch, size: int, bracket: dict[str, Any]) -> EventBatch:
    k = Kernel(
        wide_ema_config().to_core_json(),
        [instrument(t) for t in TOKENS],
        "{}",
        json.dumps(bracket),
    )
    out: EventBatch = {}
    for lo in range(0, len(ticks), size):
        hi = min(lo + size, len(ticks))
        extend(
            out,
            k.run(
                ticks.token[lo:hi], ticks.ts_ns[lo:hi], ticks.last_price[lo:hi],
                ticks.last_qty[lo:hi], ticks.volume[lo:hi], ticks.bid[lo:hi], ticks.ask[lo:hi],
            ),
        )  # fmt: skip
    extend(out, k.finish(int(ticks.ts_ns[-1]), int(ticks.ts_ns[-1]) + 600_000_000_000))
    return out


def stop_moves(ev: EventBatch) -> dict[str, list[int]]:
    """Each stop's triggers in order: the placed one, then every accepted change."""
    side: dict[str, str] = {}
    out: dict[str, list[int]] = {}
    for o in rows(ev, "orders"):
        coid = o["client_order_id"]
        if not coid.endswith(":STOP") or o["refused"]:
            continue
        if o["action"] == "PLACE":
            side[coid] = o["side"]
            out[coid] = [o["trigger"]]
        elif o["action"] == "MODIFY" and o["trigger"] != out[coid][-1]:
            out[coid].append(o["trigger"])
    # A long bracket's stop sells: store triggers so that tighter is larger.
    return {c: [t if side[c] == "SELL" else -t for t in ts] for c, ts in out.items()}


def test_trailing_stops_only_tighten_and_batches_agree() -> None:
    ticks = gappy_day(DAY, TOKENS, seed=23)
    ev = run(ticks, 4096, TRAILING)
    moves = stop_moves(ev)
    trailed = [c for c, ts in moves.items() if len(ts) > 1]
    assert len(trailed) >= 3, moves
    for coid, ts in moves.items():
        assert ts == sorted(ts), f"{coid} loosened: {ts}"
    assert run(ticks, 1, TRAILING) == ev
    # The same day with a fixed stop never moves one.
    fixed = stop_moves(run(ticks, 4096, {"entry_type": "MARKET"}))
    assert all(len(ts) == 1 for ts in fixed.values())


@pytest.mark.parametrize(
    ("bracket", "key"),
    [
        ({"trail_atr_mult": 0.0}, "trail_atr_mult"),
        ({"trail_atr_mult": -2.0}, "trail_atr_mult"),
        ({"trail_atr_mult": 2.0, "trail_min_step_ticks": 0}, "trail_min_step_ticks"),
    ],
)
def test_bad_trailing_settings_are_refused_naming_the_key(
    bracket: dict[str, Any], key: str
) -> None:
    with pytest.raises(OcoError, match=key):
        Kernel(wide_ema_config().to_core_json(), [instrument(201)], "{}", json.dumps(bracket))


def test_the_session_options_reach_the_template() -> None:
    assert bracket_template(BracketOptions(trail_atr_mult=1.5))["trail_atr_mult"] == 1.5
    assert bracket_template(BracketOptions())["trail_atr_mult"] is None
