"""Each incremental indicator against an independent reference over the same data."""

from __future__ import annotations

import numpy as np
import pytest

from aitrapp._core import Ema, OpeningRange, RollingHighLow, SessionVwap, WilderAtr
from test_engine_support import at


def _walk(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 1000.0 + np.cumsum(rng.normal(0, 1.5, n))


def _ema_reference(x: np.ndarray, n: int) -> np.ndarray:
    """TA-Lib style: NaN before n values, SMA seed, then alpha = 2/(n+1)."""
    out = np.full(len(x), np.nan)
    if len(x) < n:
        return out
    alpha = 2.0 / (n + 1)
    out[n - 1] = x[:n].mean()
    for i in range(n, len(x)):
        out[i] = alpha * x[i] + (1 - alpha) * out[i - 1]
    return out


@pytest.mark.parametrize("period", [1, 2, 10, 34, 89])
def test_ema_matches_reference(period: int) -> None:
    x = _walk(2_000, seed=period)
    ema = Ema(period)
    got = np.array([np.nan if (v := ema.update(float(p))) is None else v for p in x])
    want = _ema_reference(x, period)
    assert np.isnan(got[: period - 1]).all()
    np.testing.assert_allclose(got[period - 1 :], want[period - 1 :], rtol=1e-12)
    assert ema.value == pytest.approx(want[-1], rel=1e-12)


def _bars(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = 500.0 + np.cumsum(rng.normal(0, 2, n))
    high = close + rng.uniform(0, 3, n)
    low = close - rng.uniform(0, 3, n)
    return high, low, close


def _atr_reference(h: np.ndarray, lo: np.ndarray, c: np.ndarray, n: int) -> list[float | None]:
    tr = [h[0] - lo[0]] + [
        max(h[i] - lo[i], abs(h[i] - c[i - 1]), abs(lo[i] - c[i - 1])) for i in range(1, len(h))
    ]
    out: list[float | None] = [None] * (n - 1)
    atr = sum(tr[:n]) / n
    out.append(atr)
    for t in tr[n:]:
        atr = (atr * (n - 1) + t) / n
        out.append(atr)
    return out


@pytest.mark.parametrize("period", [1, 3, 14])
def test_wilder_atr_matches_reference(period: int) -> None:
    h, lo, c = _bars(500, seed=period)
    atr = WilderAtr(period)
    got = [atr.update(float(a), float(b), float(d)) for a, b, d in zip(h, lo, c, strict=True)]
    want = _atr_reference(h, lo, c, period)
    assert [g is None for g in got] == [w is None for w in want]
    np.testing.assert_allclose(
        [g for g in got if g is not None], [w for w in want if w is not None], rtol=1e-12
    )


def test_session_vwap_matches_numpy() -> None:
    rng = np.random.default_rng(11)
    paise = rng.integers(9_000, 11_000, 5_000)
    qty = rng.integers(0, 500, 5_000)
    vwap = SessionVwap()
    got = None
    for p, q in zip(paise, qty, strict=True):
        got = vwap.update(int(p) / 100, int(q))
    want = float((paise * qty).sum() / qty.sum()) / 100
    assert got == pytest.approx(want, rel=1e-12)
    vwap.reset()
    assert vwap.value is None
    assert vwap.update(100.0, 0) is None


def test_opening_range_matches_a_filter_over_the_window() -> None:
    rng = np.random.default_rng(5)
    secs = np.sort(rng.uniform(-600, 3_600, 3_000))  # 09:05 to 10:15 IST
    prices = np.round(100 + np.cumsum(rng.normal(0, 0.05, 3_000)), 2)
    orng = OpeningRange("09:15", 15)
    for s, p in zip(secs, prices, strict=True):
        orng.update(at(float(s)), float(p))
    inside = prices[(secs >= 0) & (secs < 900)]
    got = orng.range
    assert got is not None
    assert got == pytest.approx((inside.min(), inside.max()))
    assert not orng.is_complete(at(899.999)) and orng.is_complete(at(900))
    assert OpeningRange().range is None


@pytest.mark.parametrize("period", [1, 5, 20])
def test_rolling_high_low_matches_a_sliding_window(period: int) -> None:
    h, lo, _ = _bars(1_000, seed=period + 100)
    r = RollingHighLow(period)
    for i in range(len(h)):
        got = r.update(float(h[i]), float(lo[i]))
        start = max(0, i - period + 1)
        assert got == (h[start : i + 1].max(), lo[start : i + 1].min())
    assert r.is_full


def test_indicators_refuse_a_zero_period() -> None:
    for cls in (Ema, WilderAtr, RollingHighLow):
        with pytest.raises(ValueError, match="period"):
            cls(0)
