"""One scenario per strategy: a hand-built tick path whose signal is known."""

from __future__ import annotations

import numpy as np

from aitrapp import Decision, RiskBlock
from test_engine_support import at, blocks, decisions, engine, equity, only


def test_orb_breakout_after_three_confirming_ticks() -> None:
    eng = engine(only("orb"))
    out: list[Decision | RiskBlock] = []
    vol = 0
    # Opening range 09:15-09:30: low 99.50, high 101.00.
    path = [(0, 100.00), (300, 101.00), (600, 99.50), (899.9, 100.20)]
    # 09:30: two ticks above, one back inside (count resets), then three above.
    path += [(900, 101.05), (901, 101.10), (902, 100.80), (903, 101.05), (904, 101.10)]
    for sec, px in path:
        vol += 10
        assert eng.on_tick(1, at(sec), px, 10, vol) == []
    vol += 10
    out = eng.on_tick(1, at(905), 101.20, 10, vol)
    [d] = decisions(out)
    assert (d.strategy, d.side, d.tradingsymbol, d.exchange) == ("ORB", "BUY", "RELIANCE", "NSE")
    assert (d.entry_paise, d.stop_paise) == (10_120, 9_950)  # stop at the far side of the range
    # take-profit at 1.8 x risk (1.70): 104.26, rounded away from entry onto the 0.05 grid.
    assert d.tp_paise == 10_430
    assert (d.entry, d.stop, d.tp) == (101.20, 99.50, 104.30)
    assert d.qty == 2941  # floor(5,000 / 1.70)
    assert d.signal_ts == at(905)
    assert "opening range 99.50-101.00" in d.reason


def test_trend_pullback_buys_the_dip_in_an_uptrend() -> None:
    params = {"fast_period": 3, "slow_period": 6, "atr_period": 3, "swing_bars": 3, "stop_atr": 2.0}
    eng = engine(only("trend_pullback", params))
    vol = 0
    # Ten 1-minute bars, closes rising 0.40 a bar, each low/high 0.20 around the close:
    # EMA3 ~103.20 > EMA6 ~102.60, ATR(3) ~0.596, last high 103.80.
    for k in range(10):
        c = 100.0 + 0.40 * k
        for s, px in ((1, c - 0.20), (2, c + 0.20), (3, c)):
            vol += 5
            assert eng.on_tick(1, at(60 * k + s), round(px, 2), 5, vol) == []
    assert eng.on_tick(1, at(601), 103.70, 5, vol + 5) == []  # closes bar 9; 0.10 off the high
    bar = eng.last_bar(1)
    assert bar is not None and (bar.high, bar.close) == (103.80, 103.60)
    out = eng.on_tick(1, at(602), 103.50, 5, vol + 10)  # 0.30 >= 0.5 x ATR off the swing high
    [d] = decisions(out)
    assert (d.strategy, d.side, d.entry, d.stop, d.tp) == (
        "TrendPullback",
        "BUY",
        103.50,
        102.30,  # 2 x ATR below, rounded down onto the grid
        105.90,  # 2R
    )
    assert d.qty == 4166  # floor(5,000 / 1.20)


def test_vwap_reversion_fades_a_stretch_back_to_vwap() -> None:
    eng = engine(only("vwap_reversion", {"band": "atr", "atr_period": 3, "warmup_minutes": 0}))
    vol = 0
    # Three bars of 100.00 / 100.50 / 99.50 / 100.00, 10 units each: VWAP 100.00, ATR(3) 1.00.
    for k in range(3):
        for s, px in ((1, 100.0), (2, 100.5), (3, 99.5), (4, 100.0)):
            vol += 10
            assert eng.on_tick(1, at(60 * k + s), px, 10, vol) == []
    assert eng.on_tick(1, at(181), 100.0, 10, vol + 10) == []  # closes bar 2
    assert eng.on_tick(1, at(182), 102.0, 10, vol + 20) == []  # 1.86 ATR above VWAP 100.14
    vwap_before = eng.vwap(1)
    assert vwap_before is not None and abs(vwap_before - 1402 / 14) < 1e-9
    out = eng.on_tick(1, at(183), 102.5, 10, vol + 30)  # VWAP 100.30: 2.2 ATR above
    [d] = decisions(out)
    assert (d.strategy, d.side, d.entry, d.stop, d.tp) == (
        "VWAPReversion",
        "SELL",
        102.5,
        103.5,
        100.3,
    )
    assert d.qty == 5000  # floor(5,000 / 1.00)


def test_vwap_reversion_defaults_fade_the_two_sigma_band_after_the_warmup() -> None:
    eng = engine(only("vwap_reversion"))
    vol = 0
    # 09:15-09:45: 99.00 and 101.00 in turn, 10 units each: VWAP 100.00, sigma 1.00.
    for k in range(180):
        vol += 10
        px = 99.0 if k % 2 == 0 else 101.0
        assert eng.on_tick(1, at(10 * k), px, 10, vol) == [], k
    # 102.05 with no volume of its own: 2.05 sigma above VWAP, past the warm-up.
    out = eng.on_tick(1, at(1_801), 102.05, 0, vol)
    [d] = decisions(out)
    assert (d.strategy, d.side, d.entry, d.stop, d.tp) == (
        "VWAPReversion",
        "SELL",
        102.05,
        103.05,  # one sigma beyond the entry: the 3-sigma band
        100.00,  # VWAP
    )
    assert d.reason.startswith("2.05 SD above VWAP 100.00")
    # The same stretch inside the first 30 minutes is left alone.
    early = engine(only("vwap_reversion"))
    vol = 0
    for k in range(170):
        vol += 10
        early.on_tick(1, at(10 * k), 99.0 if k % 2 == 0 else 101.0, 10, vol)
    assert early.on_tick(1, at(1_701), 102.05, 0, vol) == []


def test_ema_cross_enters_at_the_touch_with_fixed_tick_brackets() -> None:
    eng = engine(only("ema_cross", {"fast_period": 2, "slow_period": 4}))
    path = [100.0, 99.9, 99.8, 99.7, 99.6, 99.8, 100.1, 100.4]
    got = []
    for i, px in enumerate(path):
        out = eng.on_tick(1, at(i), px, 1, i + 1, round(px - 0.05, 2), round(px + 0.05, 2))
        got += [(i, o) for o in out]
    # EMA2 crosses above EMA4 of the mid on the 7th tick (100.10): buy at the ask.
    [(i, d)] = got
    assert i == 6 and isinstance(d, Decision)
    # 5,000 / 0.50 = 10,000 units by risk; 100% of capital buys 9,985 at 100.15.
    assert (d.side, d.entry, d.stop, d.tp, d.qty) == ("BUY", 100.15, 99.65, 100.65, 9_985)
    assert d.capped_by_notional
    assert d.reason.startswith("EMA2 crossed above EMA4")


def test_ema_cross_defaults_signal_often_on_a_random_walk_and_the_gate_blocks_most() -> None:
    # What the paper burn-in relies on: >= 50 signals a session, most of them blocked.
    # At 100 rupees its 10-tick (0.50) stop is 50 bps, outside the gate's 20 bps floor.
    cfg = only("ema_cross")
    instruments = [equity(t, f"SYM{t}") for t in range(1, 6)]
    eng = engine(cfg, *instruments)
    rng = np.random.default_rng(7)
    n = 25_000
    tokens = rng.integers(1, 6, n)
    steps = rng.integers(-2, 3, n) * 0.05
    prices = np.empty(n)
    level = dict.fromkeys(range(1, 6), 100.0)
    for i in range(n):
        level[int(tokens[i])] = max(1.0, level[int(tokens[i])] + steps[i])
        prices[i] = level[int(tokens[i])]
    ts = at(0) + np.arange(n, dtype=np.int64) * (22_500 * 1_000_000_000 // n)
    out = eng.on_ticks(tokens, ts, prices, np.ones(n, np.int64), np.arange(1, n + 1))
    assert len(out) >= 50
    assert len(blocks(out)) > len(decisions(out)) >= 1
    assert {b.reason for b in blocks(out)} >= {"INSTRUMENT_BUSY"}
