"""What one backtest day returns: its trades and counters, whichever path ran it.

A :class:`TradeRecord` is one closed round trip with the plan behind it
(planned risk, entry, stop and target): the report needs nothing else. Money
is ``Decimal`` rupees; charges come from one contract note per trade
(:func:`trade_charges`), exactly as the live and paper sessions book them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Literal
from uuid import UUID

from aitrapp.charges import ExecutedOrder, contract_note_charges

Side = Literal["BUY", "SELL"]
DayStatus = Literal["COMPLETED", "REUSED", "FAILED", "ABORTED"]


@dataclass(frozen=True, slots=True)
class TradeRecord:
    """One closed trade of a backtest day."""

    day: date
    plan_id: str
    strategy: str
    symbol: str
    exchange: str
    segment: str  # EQ, FUT, OPT (charges and exposure by segment)
    side: Side
    qty: int
    entry_price: Decimal  # average fill
    exit_price: Decimal  # average fill over the exits
    opened_at: datetime
    closed_at: datetime
    exit_reason: str  # STOP, TP, EOD, TIME, FLATTEN, ...
    planned_risk: Decimal  # rupees: qty x |planned entry - planned stop|
    gross: Decimal
    charges: Decimal
    net: Decimal
    # The plan's prices (for slippage); None where the path does not know them.
    planned_entry: Decimal | None = None
    planned_stop: Decimal | None = None
    planned_tp: Decimal | None = None

    def __post_init__(self) -> None:
        if self.net != self.gross - self.charges:
            raise ValueError(
                f"trade {self.plan_id}: net {self.net} != gross {self.gross} - "
                f"charges {self.charges}"
            )
        if self.closed_at < self.opened_at:
            raise ValueError(f"trade {self.plan_id}: closed before it opened")

    @property
    def sign(self) -> int:
        return 1 if self.side == "BUY" else -1

    @property
    def slippage(self) -> Decimal | None:
        """Rupees lost to fills worse than the plan (negative: better). The entry against
        the planned entry; a STOP or TP exit against its planned level; other exits
        (end of day, time stop, flatten) have no planned price and add nothing."""
        if self.planned_entry is None:
            return None
        slip = self.sign * (self.entry_price - self.planned_entry) * self.qty
        level = {"STOP": self.planned_stop, "TP": self.planned_tp}.get(self.exit_reason)
        if level is not None:
            slip += self.sign * (level - self.exit_price) * self.qty
        return slip


@dataclass(frozen=True, slots=True)
class DayResult:
    """One trading day of a backtest."""

    day: date
    status: DayStatus
    trades: tuple[TradeRecord, ...]
    ticks: int
    session_id: UUID | None = None  # the database session (None without a database)
    replay_sha: str | None = None
    signals: int = 0
    decisions: int = 0
    risk_blocks: int = 0
    wall_s: float = 0.0
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def net(self) -> Decimal:
        return sum((t.net for t in self.trades), Decimal(0))


def trade_charges(
    segment: str,
    exchange: str,
    day: date,
    fills: Iterable[tuple[Side, int, Decimal]],
) -> Decimal:
    """Zerodha charges of a trade's executed orders ``(side, qty, avg price)``, priced as
    one contract note (how every session books a trade)."""
    orders = [ExecutedOrder.at(side, qty, price) for side, qty, price in fills if qty > 0]
    if not orders:
        return Decimal(0)
    return contract_note_charges(segment, orders, day, exchange).total


def round_trip(
    *,
    day: date,
    plan_id: str,
    strategy: str,
    symbol: str,
    side: Side,
    qty: int,
    entry_price: Decimal,
    exit_price: Decimal,
    opened_at: datetime,
    closed_at: datetime,
    exit_reason: str,
    planned_risk: Decimal,
    segment: str = "EQ",
    exchange: str = "NSE",
    planned_entry: Decimal | None = None,
    planned_stop: Decimal | None = None,
    planned_tp: Decimal | None = None,
) -> TradeRecord:
    """A trade filled in one entry and one exit order: gross from the fills, charges
    from their contract note, net = gross - charges."""
    sign = 1 if side == "BUY" else -1
    gross = sign * (exit_price - entry_price) * qty
    exit_side: Side = "SELL" if side == "BUY" else "BUY"
    charges = trade_charges(
        segment, exchange, day, [(side, qty, entry_price), (exit_side, qty, exit_price)]
    )
    return TradeRecord(
        day=day,
        plan_id=plan_id,
        strategy=strategy,
        symbol=symbol,
        exchange=exchange,
        segment=segment,
        side=side,
        qty=qty,
        entry_price=entry_price,
        exit_price=exit_price,
        opened_at=opened_at,
        closed_at=closed_at,
        exit_reason=exit_reason,
        planned_risk=planned_risk,
        gross=gross,
        charges=charges,
        net=gross - charges,
        planned_entry=planned_entry,
        planned_stop=planned_stop,
        planned_tp=planned_tp,
    )


__all__ = ["DayResult", "DayStatus", "TradeRecord", "round_trip", "trade_charges"]
