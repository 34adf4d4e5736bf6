"""The Engine across the Python boundary: live and batch paths, intake, feedback."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa  # type: ignore[import-untyped]
import pytest

from aitrapp import (
    ConfigError,
    Decision,
    Engine,
    EngineConfig,
    InstrumentError,
    PortfolioError,
    RiskBlock,
    plan_client_id,
)
from test_engine_support import at, blocks, decisions, engine, equity, only


def _random_session(n: int, seed: int) -> dict[str, Any]:
    """Ticks for three instruments, with quotes, a few bad rows mixed in."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(1, 4, n).astype(np.int64)
    level = {1: 250.0, 2: 1200.0, 3: 80.0}
    last = np.empty(n)
    for i in range(n):
        t = int(tokens[i])
        level[t] = max(1.0, level[t] + float(rng.integers(-3, 4)) * 0.05)
        last[i] = round(level[t], 2)
    bid = np.round(last - 0.05, 2)
    ask = np.round(last + 0.05, 2)
    bid[rng.random(n) < 0.05] = np.nan  # missing bid sometimes
    last[17] = np.nan  # bad rows: counted, not fatal
    last[18] = -1.0
    ts = at(0) + np.arange(n, dtype=np.int64) * 400_000_000
    volume = np.arange(1, n + 1, dtype=np.int64) * 3
    qty = np.full(n, 3, dtype=np.int64)
    oi = np.full(n, -1, dtype=np.int64)
    return {
        "tokens": tokens,
        "ts": ts,
        "last": last,
        "qty": qty,
        "vol": volume,
        "bid": bid,
        "ask": ask,
        "oi": oi,
    }


def _busy_config() -> EngineConfig:
    return EngineConfig.parse(
        {
            "risk": {
                "max_open_positions": 3,
                "max_trades_per_day": 500,
                "max_portfolio_heat_pct": 5.0,
                "cooldown_seconds": 30,
            },
            "strategies": {"trend_pullback": {"fast_period": 5, "slow_period": 12}},
        }
    )


def _instruments() -> list[Any]:
    return [equity(1, "AAA"), equity(2, "BBB"), equity(3, "CCC", tick_size="0.01")]


def _feed_live(eng: Engine, s: dict[str, Any]) -> list[tuple[int | None, Mapping[str, object]]]:
    got: list[tuple[int | None, Mapping[str, object]]] = []
    for i in range(len(s["tokens"])):
        bid = float(s["bid"][i])
        out = eng.on_tick(
            int(s["tokens"][i]),
            int(s["ts"][i]),
            float(s["last"][i]),
            int(s["qty"][i]),
            int(s["vol"][i]),
            None if math.isnan(bid) else bid,
            float(s["ask"][i]),
            None,
        )
        for o in out:
            assert o.tick_index is None
            got.append((i, o.to_dict()))
        # Closing the book now and then makes later decisions depend on feedback too.
        for d in decisions(out):
            eng.on_plan_cancelled(d.plan_id, int(s["ts"][i]))
    return got


def test_batch_and_live_paths_give_identical_outcomes() -> None:
    s = _random_session(6_000, seed=3)
    cfg = _busy_config()
    live = Engine(cfg.to_core_json(), _instruments())
    from_live = _feed_live(live, s)

    # The batch path cannot get feedback mid-batch, so compare without it too.
    live_nofb = Engine(cfg.to_core_json(), _instruments())
    plain: list[tuple[int | None, Mapping[str, object]]] = []
    for i in range(len(s["tokens"])):
        bid = float(s["bid"][i])
        for o in live_nofb.on_tick(
            int(s["tokens"][i]),
            int(s["ts"][i]),
            float(s["last"][i]),
            3,
            int(s["vol"][i]),
            None if math.isnan(bid) else bid,
            float(s["ask"][i]),
        ):
            plain.append((i, o.to_dict()))
    batch = Engine(cfg.to_core_json(), _instruments())
    out = batch.on_ticks(
        s["tokens"], s["ts"], s["last"], s["qty"], s["vol"], s["bid"], s["ask"], s["oi"]
    )
    from_batch: list[tuple[int | None, Mapping[str, object]]] = [
        (o.tick_index, o.to_dict()) for o in out
    ]
    assert len(plain) > 10
    assert from_batch == plain
    assert batch.tick_rejections() == live_nofb.tick_rejections()
    assert batch.tick_rejections()["NON_FINITE_PRICE"] == 1
    assert batch.tick_rejections()["NON_POSITIVE_PRICE"] == 1
    assert batch.portfolio().open_positions == live_nofb.portfolio().open_positions
    # With feedback the live path trades more (the book keeps being freed).
    assert len(decisions_of(from_live)) > len(decisions_of(plain))


def decisions_of(
    items: list[tuple[int | None, Mapping[str, object]]],
) -> list[Mapping[str, object]]:
    return [d for _, d in items if "plan_id" in d]


def test_batch_accepts_arrow_arrays_and_lists() -> None:
    s = _random_session(3_000, seed=5)
    cfg = _busy_config()
    a = Engine(cfg.to_core_json(), _instruments())
    b = Engine(cfg.to_core_json(), _instruments())
    out_np = a.on_ticks(
        s["tokens"].astype(np.int32), s["ts"], s["last"], s["qty"], s["vol"], s["bid"], s["ask"]
    )
    out_pa = b.on_ticks(
        pa.array(s["tokens"]),
        pa.array(s["ts"]),
        pa.array(s["last"]),
        list(s["qty"]),
        pa.array(s["vol"]),
        pa.array(s["bid"], from_pandas=True),  # NaN -> null -> NaN again
        pa.array(s["ask"]),
    )
    assert [o.to_dict() for o in out_np] == [o.to_dict() for o in out_pa]
    assert len(out_np) > 0


def test_batch_rejects_bad_columns_with_their_name() -> None:
    eng = engine(only("ema_cross"))
    one = np.array([1], dtype=np.int64)
    with pytest.raises(ValueError, match="ts_ns has 2 rows"):
        eng.on_ticks(one, np.array([1, 2], dtype=np.int64), np.array([1.0]), one, one)
    with pytest.raises(TypeError, match="column ts_ns"):
        eng.on_ticks(one, np.array([1.5]), np.array([1.0]), one, one)
    with pytest.raises(TypeError, match="column last_price"):
        eng.on_ticks(one, one, np.array(["x"]), one, one)


def test_decisions_carry_ids_prices_and_timestamps() -> None:
    eng = engine(only("ema_cross", {"fast_period": 2, "slow_period": 4}))
    before = time.perf_counter_ns()
    got = []
    for i, px in enumerate([100.0, 99.9, 99.8, 99.7, 99.6, 99.8, 100.1, 100.4]):
        got += eng.on_tick(1, at(i), px, 1, i + 1)
    after = time.perf_counter_ns()
    [d] = decisions(got)
    assert before <= d.decided_ns <= after
    assert d.tick_index is None
    assert (
        d.config_sha
        == eng.config_sha
        == only("ema_cross", {"fast_period": 2, "slow_period": 4}).config_sha
    )
    assert d.plan_id == plan_client_id(
        "RELIANCE", "BUY", "100.10", "99.60", "100.60", d.qty, "EmaCross", d.config_sha, at(6)
    )
    # 5,000 / 0.50 = 10,000 units would be 10.01 lakh of notional: cut to 100% of capital.
    assert (d.qty, d.capped_by_notional, d.capped_by_freeze) == (9_990, True, False)
    assert d.risk_rupees == pytest.approx(0.50 * d.qty)
    assert d.heat_after_pct == pytest.approx(0.4995)
    assert d.to_dict()["capped_by_notional"] is True
    assert "Decision(EmaCross BUY" in repr(d)


def test_bad_ticks_are_counted_by_reason_and_never_raise() -> None:
    eng = engine(only("ema_cross"))
    assert eng.on_tick(1, at(0), 100.0, 5, 100, 99.95, 100.05) == []
    bad: list[tuple[int, int, float]] = [
        (9, at(1), 100.0),  # unknown instrument
        (-1, at(1), 100.0),
        (1, at(1), float("nan")),
        (1, at(1), float("inf")),
        (1, at(1), 0.0),
        (1, at(1), 1e300),
        (1, at(-1), 100.0),  # earlier than the last accepted tick
        (1, at(30 * 86_400), 100.0),  # 30 days ahead: bad data, never the last time
        (1, at(1), 100_000.0),  # 1000x the day's first price: outside the 20% band
    ]
    for token, ts, px in bad:
        assert eng.on_tick(token, ts, px, 5, 200) == []
    assert eng.on_tick(1, at(1), 100.0, 5, 90) == []  # volume went down
    assert eng.on_tick(1, at(1), 100.0, -5, 200) == []  # negative quantity
    assert eng.on_tick(1, at(1), 100.0, 5, 200, 100.10, 100.05) == []  # bid above ask
    assert eng.tick_rejections() == {
        "UNKNOWN_INSTRUMENT": 2,
        "NON_FINITE_PRICE": 2,
        "NON_POSITIVE_PRICE": 1,
        "PRICE_OUT_OF_RANGE": 1,
        "NEGATIVE_QUANTITY": 1,
        "CROSSED_QUOTE": 1,
        "OUT_OF_ORDER": 1,
        "VOLUME_DECREASED": 1,
        "TIME_OUT_OF_RANGE": 1,
        "PRICE_BAND": 1,
    }
    assert eng.last_price(1) == 100.0
    eng.on_tick(1, at(2), 100.02, 5, 200, 0.0, None)  # empty bid side; off-grid last
    assert eng.last_price(1) == 100.0
    assert eng.tick_stats() == {
        "accepted": 2,
        "off_tick_rounded": 1,
        "band_reanchored": 0,
        "rejected": 12,
    }
    assert eng.last_price(9) is None


def test_feedback_moves_heat_pnl_and_frees_the_instrument() -> None:
    eng = engine(only("ema_cross", {"fast_period": 2, "slow_period": 4}))
    got = []
    for i, px in enumerate([100.0, 99.9, 99.8, 99.7, 99.6, 99.8, 100.1, 100.4]):
        got += eng.on_tick(1, at(i), px, 1, i + 1)
    [d] = decisions(got)
    q = d.qty
    p = eng.portfolio()
    assert (p.open_positions, p.trades_today, p.trading_state) == (1, 1, "ACTIVE")
    assert p.heat_pct == pytest.approx(0.50 * q / 10_000)
    assert p.gross_exposure_rupees == pytest.approx(100.10 * q)
    [b] = p.open_brackets
    assert (b.plan_id, b.planned_qty, b.filled_qty, b.position) == (d.plan_id, q, 0, 0)
    assert b.exposure_rupees == pytest.approx(100.10 * q)
    eng.on_entry_filled(d.plan_id, 4_000, 100.10)
    eng.on_entry_filled(d.plan_id, q, 100.12)  # cumulative
    eng.on_tick(1, at(9), 100.4, 1, 10)
    p = eng.portfolio()
    assert p.daily_unrealized_pnl == pytest.approx(0.28 * q)
    assert p.heat_rupees == pytest.approx(0.52 * q)  # from the actual fill to the stop
    assert p.gross_exposure_rupees == pytest.approx(100.12 * q)  # and exposure too
    assert p.gross_exposure_pct == pytest.approx(100.12 * q / 10_000)
    eng.on_exit_filled(d.plan_id, q, 100.60)
    assert eng.portfolio().daily_realized_pnl == pytest.approx(0.48 * q)
    with pytest.raises(PortfolioError, match="exceeds the held position"):
        eng.on_exit_filled(d.plan_id, 1, 100.60)
    with pytest.raises(PortfolioError, match="has a filled entry"):
        eng.on_plan_cancelled(d.plan_id, at(10))
    eng.on_bracket_closed(d.plan_id, 4_750.0, at(10))
    p = eng.portfolio()
    assert (p.open_positions, p.heat_pct, p.daily_realized_pnl) == (0, 0.0, 4_750.0)
    assert (p.gross_exposure_rupees, p.gross_exposure_pct) == (0.0, 0.0)
    with pytest.raises(PortfolioError, match="unknown plan id"):
        eng.on_bracket_closed(d.plan_id, 0.0, at(11))
    with pytest.raises(PortfolioError, match="avg_price"):
        eng.on_entry_filled("x" * 24, 1, float("nan"))
    with pytest.raises(PortfolioError, match="realized_pnl_rupees"):
        eng.on_bracket_closed("x", float("inf"), at(11))


def test_trading_state_and_its_spelling() -> None:
    eng = engine(only("ema_cross", {"fast_period": 2, "slow_period": 4}))
    eng.set_trading_state("PAUSED")
    assert eng.trading_state == "PAUSED"
    got = []
    for i, px in enumerate([100.0, 99.9, 99.8, 99.7, 99.6, 99.8, 100.1, 100.4]):
        got += eng.on_tick(1, at(i), px, 1, i + 1)
    [blk] = blocks(got)
    assert (blk.reason, blk.details) == ("TRADING_STATE", {"state": "PAUSED"})
    with pytest.raises(ValueError, match="ACTIVE, PAUSED or HALTED"):
        eng.set_trading_state("paused")


def test_construction_errors_name_the_problem() -> None:
    with pytest.raises(ConfigError, match=r"risk\.capital_rupees"):
        Engine('{"risk": {"capital_rupees": 0}}', [equity()])
    with pytest.raises(ConfigError, match=r"risk"):
        Engine('{"risk": {"capital": 5}}', [equity()])
    with pytest.raises(ValueError, match="appears more than once"):
        Engine("{}", [equity(1), equity(1, "OTHER")])
    with pytest.raises(ValueError, match="at least one instrument"):
        Engine("{}", [])
    with pytest.raises(InstrumentError, match="tradingsymbol"):
        Engine("{}", [equity(1, "A|B")])


def test_bars_follow_kite_candles_and_advance_time_closes_them() -> None:
    eng = engine(only("ema_cross"))
    rows = [(0.5, 100.0, 10), (20, 101.0, 15), (40, 99.0, 16), (59.9, 100.5, 20), (61, 100.2, 25)]
    for sec, px, vol in rows:
        eng.on_tick(1, at(sec), px, 1, vol)
    bar = eng.last_bar(1)
    assert bar is not None
    assert (bar.start_ns, bar.end_ns) == (at(0), at(60))
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume, bar.ticks) == (
        100.0,
        101.0,
        99.0,
        100.5,
        11,
        4,
    )
    assert eng.current_bar(1) is not None
    eng.advance_time(at(119))
    assert eng.current_bar(1) is not None
    eng.advance_time(at(120))
    assert eng.current_bar(1) is None
    last = eng.last_bar(1)
    assert last is not None and (last.start_ns, last.close, last.volume) == (at(60), 100.2, 5)


def test_a_new_ist_day_resets_vwap_and_daily_counts() -> None:
    eng = engine(only("ema_cross", {"fast_period": 2, "slow_period": 4}))
    got: list[Decision | RiskBlock] = []
    for i, px in enumerate([100.0, 99.9, 99.8, 99.7, 99.6, 99.8, 100.1, 100.4]):
        got += eng.on_tick(1, at(i), px, 10, 10 * (i + 1))
    [d] = decisions(got)
    eng.on_plan_cancelled(d.plan_id, at(10))
    assert eng.portfolio().trades_today == 1
    vwap = eng.vwap(1)
    assert vwap is not None and vwap == pytest.approx(
        sum([100.0, 99.9, 99.8, 99.7, 99.6, 99.8, 100.1, 100.4]) / 8
    )
    day = 86_400
    # Ticks of a new day count once the caller has moved time there.
    assert eng.on_tick(1, at(day), 120.0, 7, 7) == []
    assert eng.tick_rejections()["TIME_OUT_OF_RANGE"] == 1
    eng.advance_time(at(day - 600))
    eng.on_tick(1, at(day), 120.0, 7, 7)  # cumulative volume restarts the next day
    assert eng.vwap(1) == 120.0
    p = eng.portfolio()
    assert p.trades_today == 0 and p.ist_day is not None
