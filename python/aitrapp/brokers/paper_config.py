"""Settings of the paper broker, validated once at construction.

Times are simulated nanoseconds (the feed's exchange time), never wall time.
The rules that use them live in the Rust venue (`aitrapp._core.SimVenue`),
which receives this config once, as JSON (`to_json`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

from aitrapp.exceptions import ConfigError

# Automatic market protection (market_protection = -1), per segment: tiers of
# (upper bound of the last price in rupees, or None for "above", percent band).
# Kite does not publish its automatic bands; these follow the tiers Indian
# brokers commonly use for market price protection (2 % up to 100 rupees, 1 %
# up to 1,000, 0.5 % above for cash and futures; wider for option premiums).
DEFAULT_AUTO_PROTECTION: dict[str, tuple[tuple[float | None, float], ...]] = {
    "EQ": ((100.0, 2.0), (1000.0, 1.0), (None, 0.5)),
    "FUT": ((100.0, 2.0), (1000.0, 1.0), (None, 0.5)),
    "OPT": ((50.0, 10.0), (500.0, 5.0), (None, 2.0)),
}


def _default_auto_protection() -> dict[str, tuple[tuple[float | None, float], ...]]:
    return dict(DEFAULT_AUTO_PROTECTION)


@dataclass(frozen=True, slots=True)
class PaperConfig:
    """How the simulator fills, delays and rejects orders.

    - ``slippage_bps``: MARKET and triggered SL-M orders fill this many basis
      points beyond the touch (ask for a buy, bid for a sell), rounded to the
      nearest tick, never beyond the market-protection band.
    - ``ack_latency_ns``: request -> acknowledgement (OPEN / TRIGGER PENDING);
      modifications and cancellations take effect after the same delay.
    - ``fill_latency_ns``: acknowledgement -> the earliest tick that may fill
      or trigger the order.
    - ``no_tick_wait_ns``: an order that should trade at once (MARKET, a limit
      order's first look at the market, an IOC) but sees no tick, or a MARKET
      order that makes no progress, for this long fills against the last known
      bid/ask instead (MARKET with slippage), so a flatten never hangs on a
      quiet instrument. After ``feed_ended()`` this happens at once.
    - ``participation_pct``: when set, one fill takes at most this percent of
      the tick's traded quantity (volume delta, else last quantity), in whole
      lots; None fills the whole order on the first eligible tick.
    - ``max_orders_per_second``: Kite's limit; one more order in any one
      second is REJECTED (no pacing here: pace in the caller, as with Kite).
      None disables the check.
    - ``max_modifications``: Kite allows 25 modifications per order.
    - ``order_id_start``: the first broker order id; ids count up from it, so
      a replay with the same requests gets the same ids.
    - ``auto_protection``: the band used for market_protection = -1.
    """

    slippage_bps: float = 5.0
    ack_latency_ns: int = 50_000_000
    fill_latency_ns: int = 0
    no_tick_wait_ns: int = 2_000_000_000
    participation_pct: float | None = None
    max_orders_per_second: int | None = 10
    max_modifications: int = 25
    order_id_start: int = 100_000_000_000_001
    auto_protection: dict[str, tuple[tuple[float | None, float], ...]] = field(
        default_factory=_default_auto_protection
    )

    def __post_init__(self) -> None:
        _number("slippage_bps", self.slippage_bps, lo=0.0, hi=1000.0)
        for key in ("ack_latency_ns", "fill_latency_ns", "no_tick_wait_ns"):
            _int(key, getattr(self, key), lo=0)
        if self.participation_pct is not None:
            _number("participation_pct", self.participation_pct, lo=0.0, hi=100.0)
            if self.participation_pct <= 0:
                raise ConfigError(
                    f"participation_pct must be above 0, got {self.participation_pct}"
                )
        if self.max_orders_per_second is not None:
            _int("max_orders_per_second", self.max_orders_per_second, lo=1)
        _int("max_modifications", self.max_modifications, lo=0)
        _int("order_id_start", self.order_id_start, lo=1)
        unknown = sorted(set(self.auto_protection) - {"EQ", "FUT", "OPT"})
        if unknown:
            raise ConfigError(
                f"auto_protection: unknown segment {unknown[0]!r} (expected EQ, FUT, OPT)"
            )
        for segment in ("EQ", "FUT", "OPT"):
            tiers = self.auto_protection.get(segment)
            key = f"auto_protection[{segment!r}]"
            if not tiers:
                raise ConfigError(f"{key} must list at least one (max_price, pct) tier")
            for i, tier in enumerate(tiers):
                if not isinstance(tier, tuple) or len(tier) != 2:
                    raise ConfigError(f"{key}[{i}] must be a (max_price, pct) pair, got {tier!r}")
                bound, pct = tier
                if bound is not None:
                    _number(f"{key}[{i}] max_price", bound, lo=0.0, hi=1e12)
                _number(f"{key}[{i}] pct", pct, lo=0.0, hi=100.0)
                if pct <= 0:
                    raise ConfigError(f"{key}[{i}] pct must be above 0, got {pct}")
            if tiers[-1][0] is not None:
                raise ConfigError(f"{key}: the last tier must have max_price None (no upper bound)")

    def to_json(self) -> str:
        """The config as the Rust venue reads it (`SimVenueConfig`, same keys)."""
        return json.dumps(asdict(self))


def _number(key: str, value: object, *, lo: float, hi: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{key} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"{key} must be finite, got {value!r}")
    if not lo <= value <= hi:
        raise ConfigError(f"{key} must be between {lo} and {hi}, got {value!r}")


def _int(key: str, value: object, *, lo: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key} must be an int, got {value!r}")
    if value < lo:
        raise ConfigError(f"{key} must be at least {lo}, got {value}")
