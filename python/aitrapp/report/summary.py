"""Reading ``sessions.summary``, which the session runner writes as free JSON.

The runner's keys (``tick_to_decision``, ``order_latency``, ``flatten_drill``,
``feed``, ``ticks``) are read defensively: a missing key means "not
recorded", a malformed one is reported by name and never crashes a report.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class SummaryLatency:
    count: int
    p50_ms: float
    p99_ms: float
    p999_ms: float
    slo_ms: float | None
    slo_compliance: float | None  # 0..1


def number(value: object) -> float | None:
    """A finite JSON number (bools and strings are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def latency(summary: Mapping[str, Any], key: str) -> tuple[SummaryLatency | None, str | None]:
    """The latency block ``summary[key]``, or (None, problem) when absent or malformed."""
    block = summary.get(key)
    if block is None:
        return None, None
    if not isinstance(block, Mapping):
        return None, f"summary.{key} is not an object"
    values: dict[str, float | None] = {}
    for name in ("count", "p50_ms", "p99_ms", "p999_ms", "slo_ms", "slo_compliance"):
        raw = block.get(name)
        values[name] = number(raw)
        if raw is not None and values[name] is None:
            return None, f"summary.{key}.{name} is not a number: {raw!r}"
    if values["count"] == 0:
        return None, None  # recorded, but no samples: nothing to report
    for name in ("count", "p50_ms", "p99_ms", "p999_ms"):
        if values[name] is None:
            return None, f"summary.{key}.{name} is missing"
    compliance = values["slo_compliance"]
    if compliance is not None and compliance > 1:
        compliance /= 100  # a percentage; the runner may write either form
    count = values["count"]
    assert count is not None
    return (
        SummaryLatency(
            count=int(count),
            p50_ms=values["p50_ms"] or 0.0,
            p99_ms=values["p99_ms"] or 0.0,
            p999_ms=values["p999_ms"] or 0.0,
            slo_ms=values["slo_ms"],
            slo_compliance=compliance,
        ),
        None,
    )


def feed_label(summary: Mapping[str, Any], feed: str) -> str:
    block = summary.get("feed")
    if isinstance(block, Mapping) and isinstance(block.get("label"), str) and block["label"]:
        return str(block["label"])
    return feed


def is_synthetic(summary: Mapping[str, Any], feed: str) -> bool:
    """Synthetic by the feed column, or flagged so by the runner (either suffices)."""
    block = summary.get("feed")
    flagged = isinstance(block, Mapping) and block.get("synthetic") is True
    return feed == "synthetic" or flagged


def ticks(summary: Mapping[str, Any]) -> int | None:
    n = number(summary.get("ticks"))
    return int(n) if n is not None else None
