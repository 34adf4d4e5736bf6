"""How the kernel turns a decision into a bracket: the session's bracket options
and the template the Rust kernel validates (it names a bad field)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class BracketOptions:
    """How a decision is turned into a bracket (entry, stop and target orders)."""

    entry_type: str = "LIMIT"
    stop_type: str = "SL-M"
    stop_limit_buffer_ticks: int = 0
    scale_out: bool = False
    trail_atr_mult: float | None = None
    time_stop_minutes: float | None = None
    entry_timeout_s: float = 300.0
    # A triggered stop not filled this long after is cancelled and exited at market.
    stop_fill_timeout_s: float = 5.0


def bracket_template(b: BracketOptions) -> dict[str, Any]:
    """The kernel's bracket settings from the session's bracket options."""
    return {
        "entry_type": b.entry_type,
        "stop_type": b.stop_type,
        "stop_limit_buffer_ticks": b.stop_limit_buffer_ticks,
        "scale_out": b.scale_out,
        "time_stop_s": None if b.time_stop_minutes is None else b.time_stop_minutes * 60,
        "entry_timeout_s": b.entry_timeout_s,
        "stop_fill_timeout_s": b.stop_fill_timeout_s,
        "trail_atr_mult": b.trail_atr_mult,
    }
