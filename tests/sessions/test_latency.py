"""LatencyRecorder: bucketed percentiles stay within one bucket of the exact ones."""

from __future__ import annotations

import numpy as np
import pytest

from aitrapp.kernel.latency import LatencyRecorder

FINE_NS, FINE_LIMIT_NS, COARSE_NS = 100, 10_000_000, 10_000
QUANTILES = (0.5, 0.9, 0.99, 0.999)


def bucket_width(ns: int) -> int:
    return FINE_NS if ns < FINE_LIMIT_NS else COARSE_NS


def samples(seed: int, n: int = 20_011) -> np.ndarray:
    """Microseconds typically, with a long tail past the 10 ms fine range."""
    rng = np.random.default_rng(seed)
    body = rng.lognormal(mean=np.log(5_000), sigma=1.0, size=n)
    tail = rng.uniform(5_000_000, 40_000_000, size=n // 50)
    return np.concatenate([body, tail]).astype(np.int64)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_percentiles_are_within_one_bucket_of_numpy(seed: int) -> None:
    data = samples(seed)
    rec = LatencyRecorder(slo_ms=0.01)
    for ns in data.tolist():
        rec.record(ns)
    for q in QUANTILES:
        exact = int(np.percentile(data, q * 100, method="inverted_cdf"))
        got = rec.percentile_ns(q)
        assert got is not None
        # The answer is the upper edge of the exact value's bucket (never below it).
        assert 0 <= got - exact <= bucket_width(exact), (q, exact, got)
    s = rec.summary()
    assert s.count == len(data)
    assert s.max_ms == pytest.approx(int(data.max()) / 1e6)
    assert s.slo_compliance == pytest.approx(float(np.mean(data <= 10_000)), abs=1e-6)
    assert s.p50_ms is not None and s.p99_ms is not None and s.p999_ms is not None
    assert s.max_ms is not None
    assert s.p50_ms <= s.p99_ms <= s.p999_ms <= s.max_ms


def test_samples_in_one_bucket_report_its_upper_edge_capped_at_the_maximum() -> None:
    rng = np.random.default_rng(7)
    rec = LatencyRecorder()
    data = rng.integers(1_200, 1_300, size=1_000)  # one fine bucket: [1200, 1300)
    for ns in data.tolist():
        rec.record(ns)
    top = int(data.max())
    for q in QUANTILES:
        assert rec.percentile_ns(q) == min(1_300, top)
    coarse = LatencyRecorder()
    for ns in (12_340_000, 12_345_000, 12_349_999):  # one coarse bucket
        coarse.record(ns)
    assert coarse.percentile_ns(0.5) == 12_349_999  # the edge 12_350_000 is capped at max


def test_an_empty_recorder_reports_nothing() -> None:
    s = LatencyRecorder(slo_ms=1.0).summary()
    assert (s.count, s.p50_ms, s.p99_ms, s.p999_ms, s.max_ms) == (0, None, None, None, None)
    assert s.slo_compliance is None
    assert s.as_dict()["slo_ms"] == 1.0


def test_a_negative_sample_from_clock_skew_counts_as_zero() -> None:
    rec = LatencyRecorder(slo_ms=1.0)
    rec.record(-500)
    rec.record(2_000_000)
    assert rec.count == 2
    assert rec.percentile_ns(0.5) == FINE_NS  # the first bucket's upper edge
    assert rec.summary().slo_compliance == 0.5
