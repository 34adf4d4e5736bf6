"""EngineConfig: defaults, validation naming the key, and the config_sha."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from pydantic import ValidationError

from aitrapp import ConfigError, Engine, EngineConfig
from aitrapp._core import engine_config_canonical, engine_config_sha
from test_engine_support import equity


def test_defaults_match_the_issue() -> None:
    cfg = EngineConfig()
    r = cfg.risk
    assert (r.capital_rupees, r.per_trade_risk_pct, r.max_portfolio_heat_pct) == (
        1_000_000.0,
        0.5,
        2.0,
    )
    assert (r.daily_loss_stop_pct, r.max_open_positions) == (2.5, 5)
    # 2x capital per position (one index-futures lot fits), MIS-like 5x in total,
    # stops at least 20 bps, 3 spreads and 2 x 5 bps of slippage from the entry.
    assert (r.max_position_notional_pct, r.max_gross_exposure_pct, r.min_stop_distance_bps) == (
        200.0,
        500.0,
        20.0,
    )
    assert (r.min_stop_spread_multiple, r.slippage_bps) == (3.0, 5.0)
    assert (r.charges_buy_bps, r.charges_sell_bps) == (1.2, 3.4)
    s = cfg.session
    assert (s.market_open, s.entry_start, s.entry_end, s.bar_seconds) == (
        "09:15",
        "09:15",
        "15:20",
        60,
    )
    assert (s.pre_open, s.market_close) == ("09:00", "15:30")
    t = cfg.ticks
    assert (t.session_margin_minutes, t.max_clock_skew_seconds, t.band_reanchor_ticks) == (
        30,
        120,
        20,
    )
    b = t.price_band_pct
    assert (b.eq, b.fut, b.opt, b.idx) == (20.0, 10.0, 1_000.0, 20.0)
    st = cfg.strategies
    # EmaCross is the benchmark strategy: off unless a config turns it on.
    assert all(x.enabled for x in (st.orb, st.trend_pullback, st.vwap_reversion))
    assert not st.ema_cross.enabled
    assert (st.orb.window_minutes, st.orb.confirm_ticks, st.orb.rr_min) == (15, 3, 1.8)
    assert (st.trend_pullback.fast_period, st.trend_pullback.slow_period) == (34, 89)
    # 3 ATR stops (Wilder's volatility stop, LeBeau's chandelier exit) clear the
    # gate's 20 bps floor on 1-minute bars.
    assert (st.trend_pullback.pullback_atr, st.trend_pullback.stop_atr, st.trend_pullback.rr) == (
        0.5,
        3.0,
        2.0,
    )
    # VWAP bands in standard deviations: fade 2, stop 3, after the first half hour.
    v = st.vwap_reversion
    assert (v.band, v.stretch, v.stop, v.rearm, v.warmup_minutes) == ("stdev", 2.0, 1.0, 1.0, 30)
    assert (st.ema_cross.fast_period, st.ema_cross.slow_period) == (10, 30)
    assert (st.ema_cross.stop_ticks, st.ema_cross.tp_ticks) == (10, 10)


def test_python_and_rust_agree_on_the_effective_config() -> None:
    cfg = EngineConfig.parse(
        {"risk": {"per_trade_risk_pct": 0.25}, "strategies": {"orb": {"enabled": False}}}
    )
    eng = Engine(cfg.to_core_json(), [equity()])
    assert json.loads(eng.config_json) == json.loads(cfg.to_core_json())
    assert eng.config_sha == cfg.config_sha
    # The sha is SHA-1 over the canonical form: sorted keys, no spaces.
    canonical = engine_config_canonical(cfg.to_core_json())
    assert canonical == json.dumps(json.loads(canonical), sort_keys=True, separators=(",", ":"))
    assert cfg.config_sha == hashlib.sha1(canonical.encode()).hexdigest()[:16]
    # Key order and omitted defaults do not matter; any value does.
    assert (
        engine_config_sha(
            '{"session": {}, "risk": {"per_trade_risk_pct": 0.25}, '
            '"strategies": {"orb": {"enabled": false}}}'
        )
        == cfg.config_sha
    )
    assert EngineConfig().config_sha != cfg.config_sha
    # The exposure limits are in the effective config, so in the sha.
    risk = json.loads(engine_config_canonical("{}"))["risk"]
    assert (
        risk["max_position_notional_pct"],
        risk["max_gross_exposure_pct"],
        risk["min_stop_distance_bps"],
    ) == (200.0, 500.0, 20.0)
    # So are the stop floor, the charges estimate and the tick rules.
    canonical = json.loads(engine_config_canonical("{}"))
    assert (risk["min_stop_spread_multiple"], risk["slippage_bps"]) == (3.0, 5.0)
    assert (risk["charges_buy_bps"], risk["charges_sell_bps"]) == (1.2, 3.4)
    assert canonical["ticks"]["price_band_pct"] == {
        "eq": 20.0,
        "fut": 10.0,
        "opt": 1000.0,
        "idx": 20.0,
    }
    for key, value in (
        ("max_position_notional_pct", 99.0),
        ("max_gross_exposure_pct", 400.0),
        ("min_stop_distance_bps", 5.0),
        ("min_stop_spread_multiple", 2.0),
        ("slippage_bps", 3.0),
        ("charges_buy_bps", 3.0),
        ("charges_sell_bps", 3.0),
    ):
        changed = EngineConfig.parse({"risk": {key: value}})
        assert changed.config_sha != EngineConfig().config_sha
        assert engine_config_sha(changed.to_core_json()) == changed.config_sha
    assert (
        EngineConfig.parse({"strategies": {"ema_cross": {"tp_ticks": 11}}}).config_sha
        != EngineConfig().config_sha
    )


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"risk": {"daily_loss_stop_pct": -1}}, "risk.daily_loss_stop_pct"),
        ({"risk": {"capital_rupees": 0}}, "risk.capital_rupees"),
        ({"risk": {"per_trade_risk_pct": 0}}, "risk.per_trade_risk_pct"),
        ({"risk": {"per_trade_risk_pct": 3}}, "per_trade_risk_pct"),
        ({"risk": {"max_portfolio_heat_pct": 101}}, "risk.max_portfolio_heat_pct"),
        ({"risk": {"max_open_positions": 0}}, "risk.max_open_positions"),
        ({"risk": {"freeze_qty_policy": "slice"}}, "risk.freeze_qty_policy"),
        ({"risk": {"max_position_notional_pct": 0}}, "risk.max_position_notional_pct"),
        ({"risk": {"max_position_notional_pct": -100}}, "risk.max_position_notional_pct"),
        ({"risk": {"max_position_notional_pct": float("nan")}}, "risk.max_position_notional_pct"),
        (
            {"risk": {"max_position_notional_pct": 1e9, "max_gross_exposure_pct": 1e9}},
            "risk.max_position_notional_pct",
        ),
        ({"risk": {"max_gross_exposure_pct": 0}}, "risk.max_gross_exposure_pct"),
        ({"risk": {"max_gross_exposure_pct": float("inf")}}, "risk.max_gross_exposure_pct"),
        ({"risk": {"max_gross_exposure_pct": 99.99}}, "max_gross_exposure_pct"),
        ({"risk": {"max_position_notional_pct": 600}}, "max_gross_exposure_pct"),
        ({"risk": {"min_stop_distance_bps": -1}}, "risk.min_stop_distance_bps"),
        ({"risk": {"min_stop_distance_bps": float("nan")}}, "risk.min_stop_distance_bps"),
        ({"risk": {"min_stop_distance_bps": 10_001}}, "risk.min_stop_distance_bps"),
        ({"risk": {"slippage_bps": -1}}, "risk.slippage_bps"),
        ({"risk": {"slippage_bps": 1_001}}, "risk.slippage_bps"),
        ({"risk": {"min_stop_spread_multiple": -1}}, "risk.min_stop_spread_multiple"),
        ({"risk": {"charges_buy_bps": float("inf")}}, "risk.charges_buy_bps"),
        ({"risk": {"charges_sell_bps": -1}}, "risk.charges_sell_bps"),
        ({"session": {"market_close": "09:00"}}, "market_close"),
        ({"ticks": {"band_reanchor_ticks": 1}}, "ticks.band_reanchor_ticks"),
        ({"ticks": {"max_clock_skew_seconds": 0}}, "ticks.max_clock_skew_seconds"),
        ({"ticks": {"session_margin_minutes": 721}}, "ticks.session_margin_minutes"),
        ({"ticks": {"price_band_pct": {"eq": -5}}}, "ticks.price_band_pct.eq"),
        ({"ticks": {"price_band_pct": {"cds": 5}}}, "ticks.price_band_pct.cds"),
        ({"risk": {"capital": 5}}, "risk.capital"),
        ({"riks": {}}, "riks"),
        ({"session": {"entry_end": "09:00"}}, "entry_end"),
        ({"session": {"market_open": "9:15"}}, "session.market_open"),
        ({"strategies": {"orb": {"rr_min": 0}}}, "strategies.orb.rr_min"),
        ({"strategies": {"orb": {"stop_mode": "far"}}}, "strategies.orb.stop_mode"),
        ({"strategies": {"ema_cross": {"slow_period": 5}}}, "slow_period"),
        (
            {"strategies": {"trend_pullback": {"stop_atr": -2}}},
            "strategies.trend_pullback.stop_atr",
        ),
        ({"strategies": {"vwap_reversion": {"rearm": 3}}}, "rearm"),
        ({"strategies": {"vwap_reversion": {"band": "keltner"}}}, "band"),
        ({"strategies": {"vwap_reversion": {"stretch_atr": 2}}}, "stretch_atr"),
    ],
)
def test_impossible_values_are_refused_naming_the_key(data: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        EngineConfig.parse(data)
    with pytest.raises(ValidationError):
        EngineConfig.model_validate(data)
    # The core refuses the same JSON on its own (it never trusts its caller).
    with pytest.raises(ConfigError, match=key.rsplit(".", maxsplit=1)[-1]):
        Engine(json.dumps(data), [equity()])


def test_exposure_limits_accept_their_boundaries() -> None:
    cfg = EngineConfig.parse(
        {
            "risk": {
                "max_position_notional_pct": 250.0,
                "max_gross_exposure_pct": 250.0,  # equal to one position: allowed
                "min_stop_distance_bps": 0,
            }
        }
    )
    eng = Engine(cfg.to_core_json(), [equity()])
    assert json.loads(eng.config_json)["risk"]["max_gross_exposure_pct"] == 250.0
    hi = EngineConfig.parse(
        {
            "risk": {
                "max_position_notional_pct": 100_000,
                "max_gross_exposure_pct": 100_000,
                "min_stop_distance_bps": 10_000,
            }
        }
    )
    Engine(hi.to_core_json(), [equity()])


def test_config_is_frozen() -> None:
    cfg = EngineConfig()
    with pytest.raises(ValidationError):
        cfg.risk.capital_rupees = 5.0
