"""Request and response models: the HTTP contract (``api/openapi.json``).

Money and prices are decimal strings in rupees (exact, as stored); times are
ISO 8601 with their offset. Request bodies refuse unknown fields, so a typo
is a 422 naming it rather than a silently ignored option.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, Literal, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from aitrapp.control import Mode, TradingState

FLATTEN_TIMEOUT_S = 10.0
_FLATTEN_TIMEOUT_MAX_S = 60.0
ItemT = TypeVar("ItemT", bound=BaseModel)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# ---- requests ----
class ModeRequest(_Request):
    mode: Mode = Field(description="PAPER, or LIVE (needs a token and the LIVE gate)")


class FlattenRequest(_Request):
    timeout_s: float = Field(
        FLATTEN_TIMEOUT_S,
        gt=0,
        le=_FLATTEN_TIMEOUT_MAX_S,
        description="Give up (504) if not flat within this many seconds",
    )


# ---- errors (documentation of the error bodies) ----
class ErrorOut(BaseModel):
    detail: str
    error: str | None = None


class FieldErrorOut(BaseModel):
    loc: list[str | int]
    msg: str
    type: str
    input: Any = None


class ValidationErrorOut(BaseModel):
    detail: list[FieldErrorOut]
    message: str = Field(description="One line naming every offending field")


VALIDATION_ERROR: dict[int | str, dict[str, Any]] = {
    422: {
        "model": ValidationErrorOut,
        "description": "Bad input; `message` names the field. Also for a body that is not "
        "valid JSON (`type` json_invalid) or holds NaN, Infinity or an out-of-range number "
        "(`type` finite_number: JSON has no such numbers)",
    }
}


class ModeRefusedOut(BaseModel):
    detail: str
    reasons: list[str]


# ---- control ----
class ModeChangeOut(_Out):
    previous: Mode
    mode: Mode
    reasons: list[str] = Field(default_factory=list)


class TradingStateOut(BaseModel):
    trading_state: TradingState


class FlattenOut(_Out):
    ok: bool = Field(description="Flat and clean: zero open positions, zero working orders")
    flat: bool = Field(description="Zero open positions afterwards")
    clean: bool = Field(description="Zero working orders afterwards")
    elapsed_ms: float = Field(description="The whole flatten, until flat and clean (or given up)")
    flat_after_ms: float | None = Field(
        None, description="Until every position was flat (exits go first); null if not in time"
    )
    clean_after_ms: float | None = Field(
        None, description="Until nothing was working any more; null if not in time"
    )
    cancelled_orders: int = Field(
        description="Cancels sent: targets, entries, stops that could not become exits"
    )
    converted_stops: int = Field(0, description="Stops turned into market exits by one modify")
    exit_orders: int = Field(description="Market exits: converted stops plus market orders placed")
    open_positions_after: int
    working_orders_after: int
    state: TradingState


# ---- health and state ----
class ComponentOut(_Out):
    ok: bool
    detail: str = ""


class HealthOut(BaseModel):
    ok: bool = Field(description="Every component is healthy")
    version: str
    uptime_s: float
    mode: Mode
    trading_state: TradingState
    components: dict[str, ComponentOut]


class _Open(BaseModel):
    # The runtime may add keys before the contract names them: pass them through.
    model_config = ConfigDict(extra="allow")


class SessionStateOut(_Open):
    id: str | None
    trading_date: str
    feed: dict[str, Any] = Field(description="kind, label, synthetic, name")
    progress: float | None = Field(description="Share of the feed replayed (0..1)")
    feed_done: bool


class OpenPositionOut(_Open):
    plan_id: str
    tradingsymbol: str
    side: Literal["BUY", "SELL"]
    qty: int
    avg_entry: float
    last_price: float | None
    unrealized_pnl: float | None = Field(description="Rupees at the last price, gross")
    stop_trigger: float | None
    state: str = Field(description="OCO bracket state")


class WorkingOrderOut(_Open):
    plan_id: str
    client_order_id: str
    broker_order_id: str | None
    role: str
    side: Literal["BUY", "SELL"]
    order_type: str
    qty: int
    filled: int
    price: float | None
    trigger: float | None
    status: str


class DailyPnlOut(_Open):
    realized_gross: float
    unrealized: float
    total_gross: float
    net_after_charges: Decimal = Field(description="Realized, after charges, rupees")
    daily_loss_halted: bool


class LatencyOut(_Open):
    count: int
    p50_ms: float | None
    p99_ms: float | None
    p999_ms: float | None
    max_ms: float | None
    slo_ms: float | None = None
    slo_compliance: float | None = Field(None, description="Share of samples within slo_ms (0..1)")


class ProtectionOut(_Open):
    """Did the brackets hold their plans? Over the session's closed trades so far
    (``aitrapp.report.protection``; docs/protection.md)."""

    trades: int
    exits: dict[str, int] = Field(
        description="Trades by exit reason: TP, STOP, STOP_GAPPED, UNPROTECTED, EOD, TIME, "
        "FLATTEN, then any other"
    )
    loss_over_risk: dict[str, Any] = Field(
        description="Gross loss / planned risk over losing trades: losses, median, p95, worst, "
        "worst_plan_id, beyond (3.0), beyond_count, beyond_gapped, beyond_not_gapped"
    )
    slippage: dict[str, Any] = Field(
        description="entry and exit against the plan: count, rupees, median_bps, p95_bps, "
        "worst_bps (positive = worse)"
    )
    double_exits: int = Field(description="Brackets whose stop and target both filled")
    races: int = Field(description="Double exits whose second fill raced our cancel")
    unraced_double_exits: int
    unprotected_share: float | None = Field(description="UNPROTECTED exits / trades (0..1)")
    watchdog_escalations: int | None = Field(
        description="STOP_FILL_TIMEOUT and STOP_UNFILLED alerts (triggered stops not filled)"
    )
    watchdog: dict[str, int] | None


class StateOut(_Open):
    """The runtime's live snapshot."""

    mode: Mode
    trading_state: TradingState
    session: SessionStateOut
    positions: list[OpenPositionOut]
    working_orders: list[WorkingOrderOut]
    daily_pnl: DailyPnlOut
    portfolio_heat_pct: float
    counters: dict[str, int] = Field(description="ticks, signals, decisions, trades, ...")
    last_tick_at: datetime | None = Field(description="Exchange time of the last tick")
    tick_to_decision: LatencyOut
    order_latency: LatencyOut | None = None
    alerts: list[dict[str, Any]] = Field(default_factory=list, description="Latest OCO alerts")
    protection: ProtectionOut | None = Field(
        None, description="Protection figures so far (null before the session started)"
    )
    flatten: dict[str, Any] | None = Field(None, description="The last flatten's outcome")


# ---- journal rows (one model per table; fields mirror aitrapp.db.repo) ----
class SignalOut(_Out):
    id: UUID
    session_id: UUID
    ts: datetime
    instrument_token: int
    tradingsymbol: str
    strategy: str
    side: Literal["BUY", "SELL"]
    entry: Decimal
    stop: Decimal
    tp: Decimal
    reason: str
    features: dict[str, Any]


class DecisionOut(_Out):
    id: UUID
    session_id: UUID
    signal_id: UUID
    plan_id: str
    ts: datetime
    tradingsymbol: str
    strategy: str
    side: Literal["BUY", "SELL"]
    qty: int
    entry: Decimal
    stop: Decimal
    tp: Decimal
    risk_rupees: Decimal
    heat_after_pct: Decimal
    config_sha: str
    tick_to_decision_ms: float | None


class RiskEventOut(_Out):
    id: UUID
    session_id: UUID | None
    signal_id: UUID | None
    ts: datetime
    reason: str
    details: dict[str, Any]


class OrderOut(_Out):
    id: int | None
    session_id: UUID
    client_order_id: str
    plan_id: str
    tag: str
    role: str
    exchange: str
    tradingsymbol: str
    instrument_token: int
    side: Literal["BUY", "SELL"]
    order_type: str
    product: str
    qty: int
    price: Decimal | None
    trigger_price: Decimal | None
    broker_order_id: str | None
    status: str
    filled_qty: int
    avg_price: Decimal | None
    status_message: str | None
    created_at: datetime
    updated_at: datetime


class PositionOut(_Out):
    id: UUID
    session_id: UUID
    plan_id: str
    instrument_token: int
    exchange: str
    tradingsymbol: str
    side: Literal["BUY", "SELL"]
    qty: int
    avg_entry: Decimal
    opened_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    exit_price: Decimal | None
    status: Literal["OPEN", "CLOSED"]


class TradeOut(_Out):
    id: UUID
    session_id: UUID
    decision_id: UUID
    plan_id: str
    strategy: str
    exchange: str
    tradingsymbol: str
    side: Literal["BUY", "SELL"]
    qty: int
    entry_price: Decimal
    exit_price: Decimal
    gross_pnl: Decimal
    charges: Decimal
    net_pnl: Decimal
    exit_reason: str
    opened_at: datetime
    closed_at: datetime


class Page(BaseModel, Generic[ItemT]):
    items: list[ItemT]
    limit: int
    offset: int
    next_offset: int | None = Field(description="Offset of the next page; null on the last page")


__all__ = [
    "ComponentOut",
    "DecisionOut",
    "ErrorOut",
    "FlattenOut",
    "FlattenRequest",
    "HealthOut",
    "ModeChangeOut",
    "ModeRefusedOut",
    "ModeRequest",
    "OrderOut",
    "Page",
    "PositionOut",
    "ProtectionOut",
    "RiskEventOut",
    "SignalOut",
    "StateOut",
    "TradeOut",
    "TradingStateOut",
    "ValidationErrorOut",
]
