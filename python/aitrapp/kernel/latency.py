"""Exact-enough latency percentiles for every tick, at O(1) per sample.

Samples are counted in buckets of 100 ns up to 10 ms and of 10 us beyond,
so p50/p99/p99.9 are within one bucket of the truth whatever the count, and
memory stays bounded (a dict of occupied buckets).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

_FINE_NS = 100
_FINE_LIMIT_NS = 10_000_000
_COARSE_NS = 10_000


@dataclass(frozen=True, slots=True)
class LatencySummary:
    count: int
    p50_ms: float | None
    p99_ms: float | None
    p999_ms: float | None
    max_ms: float | None
    slo_ms: float | None = None
    slo_compliance: float | None = None  # share of samples <= slo_ms

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "count": self.count,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "p999_ms": self.p999_ms,
            "max_ms": self.max_ms,
            "slo_ms": self.slo_ms,
            "slo_compliance": self.slo_compliance,
        }


def _bucket(ns: int) -> int:
    if ns < _FINE_LIMIT_NS:
        return max(ns, 0) // _FINE_NS * _FINE_NS
    return ns // _COARSE_NS * _COARSE_NS


class LatencyRecorder:
    def __init__(self, slo_ms: float | None = None) -> None:
        self.slo_ms = slo_ms
        self._slo_ns = None if slo_ms is None else int(slo_ms * 1_000_000)
        self._counts: dict[int, int] = {}
        self.count = 0
        self.within_slo = 0
        self.max_ns = 0

    def record(self, ns: int) -> None:
        b = _bucket(ns)
        self._counts[b] = self._counts.get(b, 0) + 1
        self.count += 1
        self.max_ns = max(self.max_ns, ns)
        if self._slo_ns is not None and ns <= self._slo_ns:
            self.within_slo += 1

    def record_many(self, ns: int, n: int) -> None:
        """``n`` samples of ``ns`` each (a batch's mean time per tick)."""
        if n <= 0:
            return
        b = _bucket(ns)
        self._counts[b] = self._counts.get(b, 0) + n
        self.count += n
        self.max_ns = max(self.max_ns, ns)
        if self._slo_ns is not None and ns <= self._slo_ns:
            self.within_slo += n

    def percentile_ns(self, q: float) -> int | None:
        """The upper edge of the bucket holding the q-quantile (0 < q <= 1)."""
        if self.count == 0:
            return None
        rank = max(1, math.ceil(q * self.count))
        seen = 0
        for b in sorted(self._counts):
            seen += self._counts[b]
            if seen >= rank:
                width = _FINE_NS if b < _FINE_LIMIT_NS else _COARSE_NS
                return min(b + width, self.max_ns)
        return self.max_ns

    def summary(self) -> LatencySummary:
        def ms(ns: int | None) -> float | None:
            return None if ns is None else round(ns / 1e6, 6)

        return LatencySummary(
            count=self.count,
            p50_ms=ms(self.percentile_ns(0.5)),
            p99_ms=ms(self.percentile_ns(0.99)),
            p999_ms=ms(self.percentile_ns(0.999)),
            max_ms=ms(self.max_ns) if self.count else None,
            slo_ms=self.slo_ms,
            slo_compliance=(
                None
                if self._slo_ns is None or self.count == 0
                else round(self.within_slo / self.count, 6)
            ),
        )
