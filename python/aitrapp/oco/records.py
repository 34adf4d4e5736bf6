"""What the OCO manager reports: transitions (to persist), fills, results, alerts, snapshots.

Prices here are rupee floats for people and reports; exact values travel as
integer paise (``*_paise``) where a caller may compute with them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from aitrapp._core import OcoCommand, OcoFill

T = TypeVar("T")
Hook = Callable[[T], Awaitable[None]]
# Alert codes of the triggered-stop watchdog: each is one escalation
# (STOP_FILL_TIMEOUT: cancel and exit, WARNING; STOP_UNFILLED: exit without
# waiting for the cancel, CRITICAL).
WATCHDOG_ALERT_CODES = frozenset({"STOP_FILL_TIMEOUT", "STOP_UNFILLED"})


@dataclass(frozen=True, slots=True)
class TransitionRecord:
    """One step of one bracket. Delivered *before* its commands are executed,
    so a hook that persists it is the write-ahead log of those orders."""

    bracket_id: str  # the plan id
    seq: int  # 0 for the opening (NEW -> PENDING), then 1, 2, ... per bracket
    now_ns: int
    from_state: str  # NEW (opening only), PENDING, ENTERING, OPEN, CLOSING, CLOSED, CANCELLED
    to_state: str
    event: str  # OPEN, ENTRY_FILLED, CHILD_PARTIAL_FILL, FLATTEN, TIME_ADVANCE, ...
    event_detail: str  # one line, e.g. "CHILD_FILLED STOP filled=10 avg=2480.00"
    commands: tuple[OcoCommand, ...]
    fills: tuple[OcoFill, ...]

    def as_dict(self) -> dict[str, object]:
        """JSON-ready (prices as integer paise), e.g. for a JSONB column."""
        return {
            "bracket_id": self.bracket_id,
            "seq": self.seq,
            "now_ns": self.now_ns,
            "from_state": self.from_state,
            "to_state": self.to_state,
            "event": self.event,
            "event_detail": self.event_detail,
            "commands": [command_dict(c) for c in self.commands],
            "fills": [fill_dict(f) for f in self.fills],
        }


def command_dict(c: OcoCommand) -> dict[str, object]:
    """The fields a command of its kind carries; prices as ``*_paise``."""
    fields: dict[str, object | None] = {
        "kind": c.kind,
        "client_order_id": c.client_order_id,
        "tag": c.tag,
        "role": c.role,
        "side": c.side,
        "qty": c.qty,
        "order_type": c.order_type,
        "price_paise": c.price.paise if c.price is not None else None,
        "trigger_paise": c.trigger.paise if c.trigger is not None else None,
        "seq": c.seq,
        "exit_reason": c.exit_reason,
        "severity": c.severity,
        "alert_code": c.alert_code,
        "message": c.message,
    }
    return {k: v for k, v in fields.items() if v is not None}


def fill_dict(f: OcoFill) -> dict[str, object]:
    out: dict[str, object] = {
        "client_order_id": f.client_order_id,
        "tag": f.tag,
        "role": f.role,
        "side": f.side,
        "qty": f.qty,
        "notional_paise": f.notional_paise,
        "cum_filled": f.cum_filled,
        "avg_price_paise": f.avg_price.paise,
    }
    if f.exit_reason is not None:
        out["exit_reason"] = f.exit_reason
    return out


@dataclass(frozen=True, slots=True)
class EntryFill:
    bracket_id: str
    client_order_id: str
    qty: int  # newly filled
    price: float  # rupees, of this fill (from the cumulative averages)
    cum_qty: int
    avg_price: float  # rupees, cumulative
    now_ns: int


@dataclass(frozen=True, slots=True)
class ExitFill:
    """Quantity that left the position (or, role CORRECTIVE, came back after an overfill)."""

    bracket_id: str
    client_order_id: str
    tag: str  # STOP, TP, TP1, TP2, EXIT, EXITn
    role: str  # STOP, TAKE_PROFIT, EXIT, CORRECTIVE
    # STOP, STOP_GAPPED, TP, TP1, TP2, TIME, EOD, FLATTEN, CORRECTIVE, UNPROTECTED, ENTRY_TIMEOUT
    reason: str
    side: str
    qty: int
    price: float
    cum_qty: int
    avg_price: float
    now_ns: int


@dataclass(frozen=True, slots=True)
class BracketResult:
    """A bracket reached CLOSED or CANCELLED."""

    bracket_id: str
    state: str
    entry_qty: int
    entry_avg_price: float
    exited_qty: int
    closing_reason: str | None
    realized_pnl_paise: int | None  # gross, from actual fill prices; None if nothing filled
    now_ns: int

    @property
    def realized_pnl(self) -> float | None:
        """Gross realized PnL in rupees."""
        return None if self.realized_pnl_paise is None else self.realized_pnl_paise / 100


@dataclass(frozen=True, slots=True)
class OcoAlert:
    bracket_id: str
    severity: str  # INFO, WARNING, ERROR, CRITICAL
    # STOP_LOST, DOUBLE_FILL, STOP_GAPPED, STOP_FILL_TIMEOUT, STOP_UNFILLED, EXIT_REJECTED, ...,
    # or MACHINE_ERROR / EXECUTION_ERROR
    code: str
    message: str
    now_ns: int

    @property
    def is_watchdog_escalation(self) -> bool:
        """A triggered stop was not filled in time and the machine escalated."""
        return self.code in WATCHDOG_ALERT_CODES


@dataclass(frozen=True, slots=True)
class WorkingOrder:
    bracket_id: str
    client_order_id: str
    broker_order_id: str | None
    tag: str
    role: str
    side: str
    order_type: str
    status: str  # SENT, WORKING
    qty: int  # total quantity asked for
    filled: int
    price: float | None
    trigger: float | None


@dataclass(frozen=True, slots=True)
class BracketSnapshot:
    """One bracket for /state."""

    bracket_id: str
    tradingsymbol: str
    instrument_token: int
    side: str
    state: str
    planned_qty: int
    entry_filled: int
    entry_avg_price: float
    exited_qty: int
    net_qty: int
    stop_trigger: float
    closing_reason: str | None
    realized_pnl_paise: int | None
    working_orders: tuple[WorkingOrder, ...]

    @property
    def is_terminal(self) -> bool:
        return self.state in ("CLOSED", "CANCELLED")
