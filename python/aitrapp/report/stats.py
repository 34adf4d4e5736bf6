"""Pure figures for the daily report: equity curve, drawdown, win rate, percentiles.

No database and no clock here, so every number can be checked by hand.
Money stays ``Decimal``; latencies are float milliseconds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class EquityPoint:
    ts: datetime
    equity: Decimal  # cumulative net PnL after the trade closed at ``ts``


@dataclass(frozen=True, slots=True)
class Drawdown:
    """The largest fall of the equity curve from a previous peak (the start, 0, counts)."""

    amount: Decimal  # >= 0, rupees
    peak_ts: datetime | None  # when the peak was set (None: the start of the day)
    trough_ts: datetime | None


def equity_curve(closed: Iterable[tuple[datetime, Decimal]]) -> list[EquityPoint]:
    """Cumulative net PnL by trade close time (ties keep their input order)."""
    points: list[EquityPoint] = []
    total = Decimal(0)
    for ts, net in sorted(closed, key=lambda c: c[0]):
        total += net
        points.append(EquityPoint(ts, total))
    return points


def max_drawdown(curve: Sequence[EquityPoint]) -> Drawdown:
    peak = Decimal(0)
    peak_ts: datetime | None = None
    worst = Drawdown(Decimal(0), None, None)
    for p in curve:
        if p.equity > peak:
            peak, peak_ts = p.equity, p.ts
        elif peak - p.equity > worst.amount:
            worst = Drawdown(peak - p.equity, peak_ts, p.ts)
    return worst


def win_rate(wins: int, trades: int) -> float | None:
    """Share of trades with a positive net PnL; None without trades."""
    return wins / trades if trades else None


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (the smallest value with at least pct % at or below it).

    Conservative for an SLO: p99 of 10 samples is the largest one.
    """
    if not sorted_values:
        raise ValueError("percentile: no values")
    if not 0 < pct <= 100:
        raise ValueError(f"percentile: pct must be in (0, 100], got {pct}")
    rank = math.ceil(pct / 100 * len(sorted_values))
    return sorted_values[max(rank, 1) - 1]


@dataclass(frozen=True, slots=True)
class Percentiles:
    count: int
    p50_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    slo_ms: float | None
    slo_compliance: float | None  # share of samples <= slo_ms


def summarize(values_ms: Iterable[float], slo_ms: float | None = None) -> Percentiles | None:
    """p50/p99/p99.9 and SLO compliance of raw samples; None without samples."""
    data = sorted(v for v in values_ms if math.isfinite(v))
    if not data:
        return None
    compliance = None
    if slo_ms is not None:
        compliance = sum(1 for v in data if v <= slo_ms) / len(data)
    return Percentiles(
        count=len(data),
        p50_ms=percentile(data, 50),
        p99_ms=percentile(data, 99),
        p999_ms=percentile(data, 99.9),
        max_ms=data[-1],
        slo_ms=slo_ms,
        slo_compliance=compliance,
    )
