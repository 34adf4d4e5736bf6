"""Engine configuration: risk limits, the session window and the strategies.

Validated here with pydantic (unknown keys refused, errors name the key),
serialised once with :meth:`EngineConfig.to_core_json` and validated again by
the Rust core when the :class:`aitrapp._core.Engine` is built. Percent means
percent everywhere (``0.5`` is half a percent); amounts carry their unit in
the key (``capital_rupees``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from aitrapp import _core
from aitrapp.exceptions import ConfigError

# Upper bounds shared with the Rust core (config.rs MAX_EXPOSURE_PCT, MAX_STOP_DISTANCE_BPS,
# MAX_LEG_COST_BPS, MAX_SPREAD_MULTIPLE, MAX_BAND_PCT).
_MAX_EXPOSURE_PCT = 100_000.0
_MAX_STOP_DISTANCE_BPS = 10_000.0
_MAX_LEG_COST_BPS = 1_000.0
_MAX_SPREAD_MULTIPLE = 1_000.0
_MAX_BAND_PCT = 100_000.0

_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$")


def _seconds(clock: str) -> int:
    parts = [int(p) for p in clock.split(":")]
    return parts[0] * 3600 + parts[1] * 60 + (parts[2] if len(parts) == 3 else 0)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RiskConfig(_Section):
    capital_rupees: float = Field(default=1_000_000.0, gt=0, allow_inf_nan=False)
    per_trade_risk_pct: float = Field(default=0.5, gt=0, le=100, allow_inf_nan=False)
    max_portfolio_heat_pct: float = Field(default=2.0, gt=0, le=100, allow_inf_nan=False)
    daily_loss_stop_pct: float = Field(default=2.5, gt=0, le=100, allow_inf_nan=False)
    max_open_positions: int = Field(default=5, ge=1, le=2**32 - 1)
    # Decisions issued per IST day; a plan cancelled unfilled still counts.
    max_trades_per_day: int = Field(default=20, ge=1, le=2**32 - 1)
    cooldown_seconds: int = Field(default=300, ge=0, le=2**32 - 1)
    # Over the exchange freeze quantity: "cap" to the largest whole-lot order
    # (less risk, never more) or "block" the plan.
    freeze_qty_policy: Literal["cap", "block"] = "cap"
    # Notional (entry x qty) of one position, percent of capital: a tight stop
    # sizes huge, so the risk-sized quantity is cut to this in whole lots.
    # 200 = up to 2x capital in one position: room for one index-futures lot
    # (about 17 lakh notional) on 10 lakh capital, far below MIS leverage.
    max_position_notional_pct: float = Field(
        default=200.0, gt=0, le=_MAX_EXPOSURE_PCT, allow_inf_nan=False
    )
    # Open notional plus the new plan, percent of capital (500 ~ Zerodha MIS 5x).
    max_gross_exposure_pct: float = Field(
        default=500.0, gt=0, le=_MAX_EXPOSURE_PCT, allow_inf_nan=False
    )
    # The gate refuses a plan (STOP_TOO_TIGHT) whose stop is nearer than the
    # largest of: this floor in bps of the entry, min_stop_spread_multiple x the
    # current spread, and the slippage of both legs (2 x slippage_bps). 20 bps
    # suits liquid NSE equity: several 1-3 bps spreads plus 10 bps of modelled
    # slippage, so a stop-out that slips as modelled loses at most 1.5x its
    # planned risk. 0 = no floor.
    min_stop_distance_bps: float = Field(
        default=20.0, ge=0, le=_MAX_STOP_DISTANCE_BPS, allow_inf_nan=False
    )
    # The stop must be at least this many spreads (ask - bid of the signal's tick) away.
    min_stop_spread_multiple: float = Field(
        default=3.0, ge=0, le=_MAX_SPREAD_MULTIPLE, allow_inf_nan=False
    )
    # Modelled slippage of one leg, bps of the entry (the stop must be twice this far).
    slippage_bps: float = Field(default=5.0, ge=0, le=_MAX_LEG_COST_BPS, allow_inf_nan=False)
    # Estimated charges of one buy / sell leg, bps of its notional: the daily-loss
    # stop counts them for positions still to be closed and for closes reported
    # without charges. Zerodha equity intraday, a 5-lakh order: brokerage 20 rupees
    # (0.4) + NSE 0.297 + SEBI 0.01 + GST 0.127, plus stamp duty 0.3 on a buy (1.13)
    # or STT 2.5 on a sell (3.33). Orders under 66,667 rupees pay 0.03% brokerage
    # (about 4.2 / 6.4); futures and options pay more STT: raise both for F&O.
    charges_buy_bps: float = Field(default=1.2, ge=0, le=_MAX_LEG_COST_BPS, allow_inf_nan=False)
    charges_sell_bps: float = Field(default=3.4, ge=0, le=_MAX_LEG_COST_BPS, allow_inf_nan=False)

    @model_validator(mode="after")
    def _trade_risk_fits_heat(self) -> Self:
        if self.per_trade_risk_pct > self.max_portfolio_heat_pct:
            raise ValueError(
                f"per_trade_risk_pct ({self.per_trade_risk_pct}) must not exceed "
                f"max_portfolio_heat_pct ({self.max_portfolio_heat_pct}): "
                "no plan could ever pass the heat cap"
            )
        return self

    @model_validator(mode="after")
    def _position_fits_gross(self) -> Self:
        if self.max_gross_exposure_pct < self.max_position_notional_pct:
            raise ValueError(
                f"max_gross_exposure_pct ({self.max_gross_exposure_pct}) must be at least "
                f"max_position_notional_pct ({self.max_position_notional_pct}): "
                "one full position would breach it"
            )
        return self


class SessionConfig(_Section):
    pre_open: str = "09:00"  # IST; ticks are valid from here less ticks.session_margin_minutes
    market_open: str = "09:15"  # IST; bars, VWAP and the opening range start here
    market_close: str = "15:30"  # IST; ticks are valid until here plus the margin
    entry_start: str = "09:15"  # entries from here (inclusive) ...
    entry_end: str = "15:20"  # ... to here (exclusive), judged by the tick's IST time
    bar_seconds: int = Field(default=60, ge=1, le=3600)

    @field_validator("pre_open", "market_open", "market_close", "entry_start", "entry_end")
    @classmethod
    def _clock(cls, v: str) -> str:
        if not _CLOCK.match(v):
            raise ValueError(f'must be an IST time "HH:MM", got {v!r}')
        return v

    @model_validator(mode="after")
    def _window_order(self) -> Self:
        if _seconds(self.entry_end) <= _seconds(self.entry_start):
            raise ValueError(
                f"entry_end ({self.entry_end}) must be after entry_start ({self.entry_start})"
            )
        if _seconds(self.market_open) < _seconds(self.pre_open):
            raise ValueError(
                f"market_open ({self.market_open}) must not be before pre_open ({self.pre_open})"
            )
        if _seconds(self.market_close) <= _seconds(self.market_open):
            raise ValueError(
                f"market_close ({self.market_close}) must be after market_open ({self.market_open})"
            )
        return self


class PriceBandPct(_Section):
    """Daily price band, percent either side of the anchor (previous close, else the
    day's first valid price), per segment; 0 = none."""

    # NSE equity bands are 2, 5, 10 or 20% by security: 20% (the widest) fits all.
    eq: float = Field(default=20.0, ge=0, le=_MAX_BAND_PCT, allow_inf_nan=False)
    # Futures: NSE's dynamic operating range starts at 10% and is flexed during the
    # day; a flex is followed by re-anchoring (ticks.band_reanchor_ticks).
    fut: float = Field(default=10.0, ge=0, le=_MAX_BAND_PCT, allow_inf_nan=False)
    # Options' ranges span many times the premium: 1,000% (11x) guards against
    # absurd prints only; it is not NSE's operating range.
    opt: float = Field(default=1_000.0, ge=0, le=_MAX_BAND_PCT, allow_inf_nan=False)
    # Indices: market-wide circuit breakers halt trading at 10/15/20%.
    idx: float = Field(default=20.0, ge=0, le=_MAX_BAND_PCT, allow_inf_nan=False)


class TicksConfig(_Section):
    """Which ticks are believable: exchange time and price (see the Rust core's tick.rs)."""

    # Ticks are valid from session.pre_open less this to session.market_close plus it.
    session_margin_minutes: int = Field(default=30, ge=0, le=720)
    # Live (once Engine.set_clock_ns is called): refuse ticks further than this from it.
    max_clock_skew_seconds: int = Field(default=120, ge=1, le=2**32 - 1)
    price_band_pct: PriceBandPct = Field(default_factory=PriceBandPct)
    # Consecutive agreeing out-of-band ticks that move the band's anchor (a stale
    # close, a flexed F&O range); 0 = never, else at least 2.
    band_reanchor_ticks: int = Field(default=20, ge=0, le=2**32 - 1)

    @field_validator("band_reanchor_ticks")
    @classmethod
    def _not_one(cls, v: int) -> int:
        if v == 1:
            raise ValueError("must be 0 (never) or at least 2: 1 would take every out-of-band tick")
        return v


class _EmaPair(_Section):
    fast_period: int
    slow_period: int

    @model_validator(mode="after")
    def _slow_after_fast(self) -> Self:
        if self.slow_period <= self.fast_period:
            raise ValueError(
                f"slow_period ({self.slow_period}) must be greater than "
                f"fast_period ({self.fast_period})"
            )
        return self


class OrbConfig(_Section):
    enabled: bool = True
    window_minutes: int = Field(default=15, ge=1, le=1439)
    confirm_ticks: int = Field(default=3, ge=1, le=2**32 - 1)
    stop_mode: Literal["range", "atr"] = "range"
    atr_period: int = Field(default=14, ge=1, le=2**32 - 1)
    atr_stop_mult: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    rr_min: float = Field(default=1.8, gt=0, allow_inf_nan=False)


class TrendPullbackConfig(_EmaPair):
    enabled: bool = True
    fast_period: int = Field(default=34, ge=1, le=2**32 - 1)
    slow_period: int = Field(default=89, ge=1, le=2**32 - 1)
    atr_period: int = Field(default=14, ge=1, le=2**32 - 1)
    pullback_atr: float = Field(default=0.5, gt=0, allow_inf_nan=False)
    # 3 ATR: Wilder's volatility-stop multiple (his constant 2.8-3.1) and LeBeau's
    # chandelier exit; about 30 bps on 1-minute bars of a liquid name, clear of the
    # gate's 20 bps stop floor (2 ATR, about 20 bps, sat on it).
    stop_atr: float = Field(default=3.0, gt=0, allow_inf_nan=False)
    rr: float = Field(default=2.0, gt=0, allow_inf_nan=False)
    swing_bars: int = Field(default=10, ge=1, le=2**32 - 1)


class VwapReversionConfig(_Section):
    """Fades a stretch from the session VWAP, in band widths. The default is the usual
    "VWAP bands": the session's volume-weighted standard deviation of price around
    VWAP, entry at the 2-sigma band, stop at 3, target VWAP. ``band="atr"`` measures
    in ATRs of the bars instead."""

    enabled: bool = True
    band: Literal["stdev", "atr"] = "stdev"
    atr_period: int = Field(default=14, ge=1, le=2**32 - 1)  # band "atr" only
    stretch: float = Field(default=2.0, gt=0, allow_inf_nan=False)
    stop: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    rearm: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    # No entry in the first half hour: sigma is still too narrow to fade.
    warmup_minutes: int = Field(default=30, ge=0, le=1439)

    @model_validator(mode="after")
    def _rearm_inside_stretch(self) -> Self:
        if self.rearm >= self.stretch:
            raise ValueError(f"rearm ({self.rearm}) must be below stretch ({self.stretch})")
        return self


class EmaCrossConfig(_EmaPair):
    # The benchmark strategy (10-tick stops): off by default, on in the benchmark
    # and test configs that need it.
    enabled: bool = False
    fast_period: int = Field(default=10, ge=1, le=2**32 - 1)
    slow_period: int = Field(default=30, ge=1, le=2**32 - 1)
    stop_ticks: int = Field(default=10, ge=1, le=2**32 - 1)
    tp_ticks: int = Field(default=10, ge=1, le=2**32 - 1)


class StrategiesConfig(_Section):
    orb: OrbConfig = Field(default_factory=OrbConfig)
    trend_pullback: TrendPullbackConfig = Field(default_factory=TrendPullbackConfig)
    vwap_reversion: VwapReversionConfig = Field(default_factory=VwapReversionConfig)
    ema_cross: EmaCrossConfig = Field(default_factory=EmaCrossConfig)


class EngineConfig(_Section):
    """Everything the tick-to-decision engine is configured with."""

    risk: RiskConfig = Field(default_factory=RiskConfig)
    session: SessionConfig = Field(default_factory=SessionConfig)
    strategies: StrategiesConfig = Field(default_factory=StrategiesConfig)
    ticks: TicksConfig = Field(default_factory=TicksConfig)

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> EngineConfig:
        """Validates ``data``; raises :class:`ConfigError` naming each bad key."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(_describe(exc)) from exc

    def to_core_json(self) -> str:
        """The JSON that :class:`aitrapp._core.Engine` takes (every key spelled out)."""
        return self.model_dump_json()

    @property
    def config_sha(self) -> str:
        """The id the engine stamps on decisions: 16 hex chars of SHA-1 over the
        canonical JSON of this config (see ``aitrapp._core.engine_config_canonical``)."""
        return _core.engine_config_sha(self.to_core_json())


def _describe(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "<root>"
        problems.append(f"config key {key}: {err['msg']}")
    return "; ".join(problems)


__all__ = [
    "EmaCrossConfig",
    "EngineConfig",
    "OrbConfig",
    "PriceBandPct",
    "RiskConfig",
    "SessionConfig",
    "StrategiesConfig",
    "TicksConfig",
    "TrendPullbackConfig",
    "VwapReversionConfig",
]
