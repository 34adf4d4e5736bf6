"""Shared builders for the engine tests (no tests here)."""

from __future__ import annotations

from typing import Any

from aitrapp import Decision, Engine, EngineConfig, Instrument, RiskBlock

# 2026-01-01 09:15:00 IST (03:45 UTC), in UTC nanoseconds.
OPEN_NS = 1_767_239_100_000_000_000
SEC = 1_000_000_000
STRATEGIES = ("orb", "trend_pullback", "vwap_reversion", "ema_cross")


def at(seconds: float) -> int:
    """UTC ns of 09:15 IST on the test day plus `seconds`."""
    return OPEN_NS + round(seconds * SEC)


def equity(token: int = 1, symbol: str = "RELIANCE", **over: Any) -> Instrument:
    fields: dict[str, Any] = {
        "exchange": "NSE",
        "tradingsymbol": symbol,
        "instrument_token": token,
        "segment": "EQ",
        "tick_size": "0.05",
        "lot_size": 1,
        "freeze_qty": 100_000,
    }
    fields.update(over)
    return Instrument(**fields)


def only(strategy: str, params: dict[str, Any] | None = None, **risk: Any) -> EngineConfig:
    """A config with one strategy enabled (with `params`) and risk overrides."""
    strategies: dict[str, Any] = {name: {"enabled": name == strategy} for name in STRATEGIES}
    strategies[strategy].update(params or {})
    # Expectations in these tests are worked out for a no-leverage position cap.
    risk = {"max_position_notional_pct": 100.0, **risk}
    return EngineConfig.parse({"strategies": strategies, "risk": risk})


def engine(cfg: EngineConfig, *instruments: Instrument) -> Engine:
    return Engine(cfg.to_core_json(), list(instruments) or [equity()])


def decisions(outcomes: list[Decision | RiskBlock]) -> list[Decision]:
    return [o for o in outcomes if isinstance(o, Decision)]


def blocks(outcomes: list[Decision | RiskBlock]) -> list[RiskBlock]:
    return [o for o in outcomes if isinstance(o, RiskBlock)]
