"""The kernel through its binding and the Python shell, on SYNTHETIC gappy
data: batch-size determinism, bad settings named, races only, trades with
charges, and the no-database day equal to the replay it persists."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from aitrapp._core import Kernel, OcoError
from aitrapp.config import EngineConfig
from aitrapp.feeds.base import TickBatch
from aitrapp.kernel import replay_day
from aitrapp.kernel.events import EventBatch, extend, rows

from .gappy import gappy_day, instrument

DAY = date(2026, 1, 5)
TOKENS = [101, 102]


def ema_config() -> EngineConfig:
    return EngineConfig.parse(
        {
            "risk": {
                "max_trades_per_day": 1000,
                "cooldown_seconds": 0,
                "max_open_positions": 50,
                "daily_loss_stop_pct": 100.0,
                "max_portfolio_heat_pct": 100.0,
                # 10-tick stops (the benchmark strategy) are inside the default floor.
                "min_stop_distance_bps": 0.0,
                "min_stop_spread_multiple": 0.0,
                "slippage_bps": 0.0,
            },
            "strategies": {
                "orb": {"enabled": False},
                "trend_pullback": {"enabled": False},
                "vwap_reversion": {"enabled": False},
                "ema_cross": {"enabled": True},
            },
        }
    )


def kernel(bracket: dict[str, Any] | None = None) -> Kernel:
    return Kernel(
        ema_config().to_core_json(),
        [instrument(t) for t in TOKENS],
        "{}",
        json.dumps(bracket or {"entry_type": "MARKET"}),
    )


def run_in_batches(ticks: TickBatch, size: int) -> EventBatch:
    k = kernel()
    out: EventBatch = {}
    for lo in range(0, len(ticks), size):
        hi = lo + size
        extend(
            out,
            k.run(
                ticks.token[lo:hi], ticks.ts_ns[lo:hi], ticks.last_price[lo:hi],
                ticks.last_qty[lo:hi], ticks.volume[lo:hi], ticks.bid[lo:hi],
                ticks.ask[lo:hi], ticks.oi[lo:hi],
            ),
        )  # fmt: skip
    extend(out, k.finish(int(ticks.ts_ns[-1]), int(ticks.ts_ns[-1]) + 3_600_000_000_000))
    return out


def test_the_same_ticks_give_the_same_event_log_at_any_batch_size() -> None:
    ticks = gappy_day(DAY, TOKENS, seed=11)
    one = run_in_batches(ticks, 1)
    assert len(one["trades"]["plan_id"]) > 5  # extend() keeps every table met
    assert run_in_batches(ticks, 7) == one
    assert run_in_batches(ticks, 65_536) == one


def test_double_exits_happen_only_as_races() -> None:
    for seed in range(1, 5):
        ev = run_in_batches(gappy_day(DAY, TOKENS, jump_share=0.25, seed=seed), 4096)
        for t in rows(ev, "trades"):
            assert t["race"] or not t["double_exit"], t


def test_every_fill_reaches_its_bracket_at_its_own_time() -> None:
    ev = run_in_batches(gappy_day(DAY, TOKENS, seed=3), 4096)
    first_entry_fill: dict[str, int] = {}
    for f in rows(ev, "fills"):
        if f["role"] == "ENTRY":
            first_entry_fill.setdefault(f["plan_id"], f["ts_ns"])
    stops = [o for o in rows(ev, "orders") if o["client_order_id"].endswith(":STOP")]
    assert stops
    for o in stops:
        if o["action"] == "PLACE":
            assert o["ts_ns"] == first_entry_fill[o["plan_id"]], o


def test_bad_settings_are_refused_naming_the_key() -> None:
    insts = [instrument(101)]
    cfg = ema_config().to_core_json()
    with pytest.raises(OcoError, match="entry_type"):
        Kernel(cfg, insts, "{}", json.dumps({"entry_type": "STOP"}))
    with pytest.raises(OcoError, match="unknown field `entry_kind`"):
        Kernel(cfg, insts, "{}", json.dumps({"entry_kind": "MARKET"}))
    with pytest.raises(ValueError, match="venue: unknown field `slipage_bps`"):
        Kernel(cfg, insts, json.dumps({"slipage_bps": 1}), "{}")
    with pytest.raises(ValueError, match="slippage_bps"):
        Kernel(cfg, insts, json.dumps({"slippage_bps": -1}), "{}")


def test_replay_day_books_trades_with_charges() -> None:
    day = replay_day(gappy_day(DAY, TOKENS, seed=5), [instrument(t) for t in TOKENS], ema_config())
    assert day.trades
    for t in day.trades:
        assert t.charges > 0
        assert t.net == t.gross - t.charges
        assert t.exit_reason in {"TP", "STOP", "STOP_GAPPED", "EOD", "UNPROTECTED", "TIME"}
    assert day.counters["trades"] == len(day.trades)
    assert day.counters["open_brackets"] == 0
