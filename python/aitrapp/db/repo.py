"""Typed rows and queries for every table.

Each row type is a frozen dataclass whose fields are the table's columns, used
both to write (directly with ``insert_*`` or queued on the
:class:`~aitrapp.db.writer.DbWriter`) and to read back. Every write is
idempotent, so a batch retried after a lost acknowledgement lands once:

- append-only rows carry a caller-generated ``id`` (uuid4 by default) and
  insert with ``ON CONFLICT (id) DO NOTHING``;
- orders insert with ``ON CONFLICT (client_order_id) DO NOTHING``; a fill already
  recorded under its (``fill_scope``, ``broker_fill_key``) is skipped by a trigger,
  and one that differs from it is refused (``fills_conflicting_fill``);
- updates are guarded so a replayed or stale one changes nothing (an order's
  status never leaves a terminal state, its filled quantity never shrinks).

Money and prices are :class:`~decimal.Decimal` rupees (``rupees(paise)``
converts from the core's integer paise); floats are refused. Times are
timezone-aware datetimes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, ClassVar, Literal, TypeVar
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import asyncpg

from aitrapp.db.pool import Conn

IST = ZoneInfo("Asia/Kolkata")
TERMINAL_STATUSES = ("COMPLETE", "CANCELLED", "REJECTED")
ORDER_STATUSES = ("NEW", "PENDING", "OPEN", "TRIGGER PENDING", *TERMINAL_STATUSES)
MAX_PAGE = 1000

SideT = Literal["BUY", "SELL"]
ModeT = Literal["PAPER", "LIVE"]
FeedT = Literal["synthetic", "replay", "kite"]
SessionStatusT = Literal["RUNNING", "COMPLETED", "ABORTED", "FAILED"]
PositionStatusT = Literal["OPEN", "CLOSED"]


def rupees(paise: int) -> Decimal:
    """Integer paise (the core's fixed point) to exact rupees."""
    return Decimal(paise) / 100


def ist_day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a calendar day in IST, as aware datetimes."""
    start = datetime.combine(day, time(0), tzinfo=IST)
    return start, start + timedelta(days=1)


# ---- validation helpers: fail at construction, naming the field ----
def _check(row: object) -> None:
    for f in dataclasses.fields(row):  # type: ignore[arg-type]
        value = getattr(row, f.name)
        if isinstance(value, float) and f.type in _MONEY_TYPES:
            raise TypeError(f"{type(row).__name__}.{f.name}: use Decimal (or rupees()), not float")
        if isinstance(value, datetime) and value.tzinfo is None:
            raise ValueError(f"{type(row).__name__}.{f.name}: datetime must be timezone-aware")
        if f.name == "side" and value not in ("BUY", "SELL"):
            raise ValueError(f"{type(row).__name__}.side: must be BUY or SELL, got {value!r}")


_MONEY_TYPES = {"Decimal", "Decimal | None"}


def _positive(row: object, *names: str) -> None:
    for name in names:
        value = getattr(row, name)
        if value is not None and value <= 0:
            raise ValueError(f"{type(row).__name__}.{name}: must be > 0, got {value}")


class Row:
    """Base of table rows: the table name and how an insert resolves conflicts."""

    __table__: ClassVar[str]
    __conflict__: ClassVar[str] = "(id) DO NOTHING"
    __generated__: ClassVar[tuple[str, ...]] = ()  # columns the database fills

    def __post_init__(self) -> None:
        _check(self)


# ---- rows ----
@dataclass(frozen=True, slots=True, kw_only=True)
class SessionRow(Row):
    __table__ = "sessions"
    trading_date: date
    mode: ModeT
    feed: FeedT
    started_at: datetime
    config_sha: str | None = None
    ended_at: datetime | None = None
    status: SessionStatusT = "RUNNING"
    summary: dict[str, Any] = field(default_factory=dict)
    burnin_verdict: dict[str, Any] | None = None
    # A backtest's day, and the SHA-256 of a replay's data (see aitrapp.backtest.hashing).
    backtest_id: UUID | None = None
    replay_sha: str | None = None
    # The process running it (a RUNNING session whose process is gone is ABORTED at start).
    pid: int | None = None
    host: str | None = None
    id: UUID = field(default_factory=uuid4)


@dataclass(frozen=True, slots=True, kw_only=True)
class InstrumentRow(Row):
    __table__ = "instruments"
    __conflict__ = (
        "(instrument_token) DO UPDATE SET exchange = EXCLUDED.exchange, "
        "tradingsymbol = EXCLUDED.tradingsymbol, segment = EXCLUDED.segment, "
        "name = EXCLUDED.name, instrument_type = EXCLUDED.instrument_type, "
        "expiry = EXCLUDED.expiry, strike = EXCLUDED.strike, tick_size = EXCLUDED.tick_size, "
        "lot_size = EXCLUDED.lot_size, freeze_qty = EXCLUDED.freeze_qty, "
        "updated_at = EXCLUDED.updated_at"
    )
    instrument_token: int
    exchange: str
    tradingsymbol: str
    segment: str
    tick_size: Decimal
    lot_size: int
    updated_at: datetime
    name: str | None = None
    instrument_type: str | None = None
    expiry: date | None = None
    strike: Decimal | None = None
    freeze_qty: int | None = None

    def __post_init__(self) -> None:
        _check(self)
        _positive(self, "instrument_token", "tick_size", "lot_size", "freeze_qty")


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalRow(Row):
    __table__ = "signals"
    session_id: UUID
    ts: datetime
    instrument_token: int
    tradingsymbol: str
    strategy: str
    side: SideT
    entry: Decimal
    stop: Decimal
    tp: Decimal
    reason: str = ""
    features: dict[str, Any] = field(default_factory=dict)
    id: UUID = field(default_factory=uuid4)


@dataclass(frozen=True, slots=True, kw_only=True)
class DecisionRow(Row):
    __table__ = "decisions"
    session_id: UUID
    signal_id: UUID
    plan_id: str
    ts: datetime
    tradingsymbol: str
    strategy: str
    side: SideT
    qty: int
    entry: Decimal
    stop: Decimal
    tp: Decimal
    risk_rupees: Decimal
    heat_after_pct: Decimal
    config_sha: str
    tick_to_decision_ms: float | None = None
    id: UUID = field(default_factory=uuid4)

    def __post_init__(self) -> None:
        _check(self)
        _positive(self, "qty")


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskEventRow(Row):
    __table__ = "risk_events"
    ts: datetime
    reason: str
    session_id: UUID | None = None
    signal_id: UUID | None = None
    details: dict[str, Any] = field(default_factory=dict)
    id: UUID = field(default_factory=uuid4)


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRow(Row):
    """An order as first written (status NEW) and as read back."""

    __table__ = "orders"
    __conflict__ = "(client_order_id) DO NOTHING"
    __generated__ = ("id",)
    session_id: UUID
    client_order_id: str
    plan_id: str
    tag: str
    role: str
    exchange: str
    tradingsymbol: str
    instrument_token: int
    side: SideT
    order_type: Literal["MARKET", "LIMIT", "SL", "SL-M"]
    product: str
    qty: int
    created_at: datetime
    updated_at: datetime
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    broker_order_id: str | None = None
    status: str = "NEW"
    filled_qty: int = 0
    avg_price: Decimal | None = None
    status_message: str | None = None
    id: int | None = None  # identity, assigned by the database

    def __post_init__(self) -> None:
        _check(self)
        _positive(self, "qty")
        if not 1 <= len(self.tag) <= 20:
            raise ValueError(f"OrderRow.tag: 1..20 characters (Kite), got {len(self.tag)}")
        if self.status not in ORDER_STATUSES:
            raise ValueError(f"OrderRow.status: one of {ORDER_STATUSES}, got {self.status!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderEventRow(Row):
    """One broker update of one order, as received (append-only)."""

    __table__ = "order_events"
    ts: datetime
    status: str
    client_order_id: str | None = None
    broker_order_id: str | None = None
    filled_qty: int = 0
    pending_qty: int = 0
    avg_price: Decimal | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    id: UUID = field(default_factory=uuid4)

    def __post_init__(self) -> None:
        _check(self)
        if self.client_order_id is None and self.broker_order_id is None:
            raise ValueError("OrderEventRow: client_order_id or broker_order_id is required")


@dataclass(frozen=True, slots=True, kw_only=True)
class FillRow(Row):
    """One execution. ``broker_fill_key`` is unique within ``fill_scope`` (the broker
    account; a paper session is its own account): the same fill again lands once,
    a different fill under a taken key is refused by the database (a conflict)."""

    __table__ = "fills"
    fill_scope: str
    broker_fill_key: str
    qty: int
    price: Decimal
    ts: datetime
    client_order_id: str | None = None
    broker_order_id: str | None = None
    id: UUID = field(default_factory=uuid4)

    def __post_init__(self) -> None:
        _check(self)
        _positive(self, "qty", "price")
        if self.client_order_id is None and self.broker_order_id is None:
            raise ValueError("FillRow: client_order_id or broker_order_id is required")
        if not self.fill_scope or not self.broker_fill_key:
            raise ValueError("FillRow: fill_scope and broker_fill_key must not be empty")


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionRow(Row):
    __table__ = "positions"
    session_id: UUID
    plan_id: str
    instrument_token: int
    exchange: str
    tradingsymbol: str
    side: SideT
    qty: int
    avg_entry: Decimal
    opened_at: datetime
    updated_at: datetime
    closed_at: datetime | None = None
    exit_price: Decimal | None = None
    status: PositionStatusT = "OPEN"
    id: UUID = field(default_factory=uuid4)


@dataclass(frozen=True, slots=True, kw_only=True)
class TradeRow(Row):
    __table__ = "trades"
    session_id: UUID
    decision_id: UUID
    plan_id: str
    strategy: str
    exchange: str
    tradingsymbol: str
    side: SideT
    qty: int
    entry_price: Decimal
    exit_price: Decimal
    gross_pnl: Decimal
    charges: Decimal
    net_pnl: Decimal
    exit_reason: str
    opened_at: datetime
    closed_at: datetime
    id: UUID = field(default_factory=uuid4)

    def __post_init__(self) -> None:
        _check(self)
        _positive(self, "qty", "entry_price", "exit_price")
        if self.net_pnl != self.gross_pnl - self.charges:
            raise ValueError(
                f"TradeRow.net_pnl: {self.net_pnl} != gross_pnl - charges "
                f"({self.gross_pnl} - {self.charges})"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditRow(Row):
    """Who did what and when: mode changes, flatten, pause/resume (append-only)."""

    __table__ = "audit_log"
    ts: datetime
    actor: str
    action: str
    session_id: UUID | None = None
    params: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)
    id: UUID = field(default_factory=uuid4)


@dataclass(frozen=True, slots=True, kw_only=True)
class BracketTransitionRow(Row):
    """One step of one OCO bracket (append-only), keyed by (plan_id, seq)."""

    __table__ = "bracket_transitions"
    __conflict__ = "(plan_id, seq) DO NOTHING"
    plan_id: str
    seq: int
    ts: datetime
    from_state: str
    to_state: str
    event: str
    session_id: UUID | None = None
    detail: str = ""
    commands: list[dict[str, Any]] = field(default_factory=list)


# ---- updates (idempotent) ----
class Update:
    """Base of guarded updates; ``__sql__`` takes ``args()`` as $1..$n."""

    __sql__: ClassVar[str]

    def args(self) -> tuple[object, ...]:
        return tuple(getattr(self, f.name) for f in dataclasses.fields(self))  # type: ignore[arg-type]

    def __post_init__(self) -> None:
        _check(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionEnd(Update):
    __sql__ = (
        "UPDATE sessions SET ended_at = $2, status = $3, summary = $4 "
        "WHERE id = $1 AND status = 'RUNNING'"
    )
    session_id: UUID
    ended_at: datetime
    status: Literal["COMPLETED", "ABORTED", "FAILED"]
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class BurninVerdict(Update):
    __sql__ = "UPDATE sessions SET burnin_verdict = $2 WHERE id = $1"
    session_id: UUID
    verdict: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderAck(Update):
    """The broker accepted the order and gave it an id."""

    __sql__ = (
        "UPDATE orders SET broker_order_id = $2, updated_at = GREATEST(updated_at, $3) "
        "WHERE client_order_id = $1 AND (broker_order_id IS NULL OR broker_order_id = $2)"
    )
    client_order_id: str
    broker_order_id: str
    ts: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderStatusUpdate(Update):
    """The order's current state. Stale or replayed updates change nothing:
    a terminal status is final and the filled quantity never decreases."""

    __sql__ = (
        "UPDATE orders SET status = $2, filled_qty = $3, avg_price = COALESCE($4, avg_price), "
        "broker_order_id = COALESCE(broker_order_id, $5), "
        "status_message = COALESCE($6, status_message), updated_at = GREATEST(updated_at, $7) "
        "WHERE client_order_id = $1 AND filled_qty <= $3 "
        "AND status NOT IN ('COMPLETE', 'CANCELLED', 'REJECTED')"
    )
    client_order_id: str
    status: str
    filled_qty: int
    avg_price: Decimal | None
    broker_order_id: str | None
    status_message: str | None
    ts: datetime

    def __post_init__(self) -> None:
        _check(self)
        if self.status not in ORDER_STATUSES:
            raise ValueError(
                f"OrderStatusUpdate.status: one of {ORDER_STATUSES}, got {self.status!r}"
            )
        if self.filled_qty < 0:
            raise ValueError(f"OrderStatusUpdate.filled_qty: must be >= 0, got {self.filled_qty}")


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionUpdate(Update):
    """New size and average entry of an open position (partial fills, partial exits)."""

    __sql__ = (
        "UPDATE positions SET qty = $2, avg_entry = $3, updated_at = GREATEST(updated_at, $4) "
        "WHERE plan_id = $1 AND status = 'OPEN'"
    )
    plan_id: str
    qty: int
    avg_entry: Decimal
    ts: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionClose(Update):
    __sql__ = (
        "UPDATE positions SET status = 'CLOSED', closed_at = $2, exit_price = $3, "
        "updated_at = GREATEST(updated_at, $2) WHERE plan_id = $1 AND status = 'OPEN'"
    )
    plan_id: str
    closed_at: datetime
    exit_price: Decimal | None


Write = Row | Update


# ---- statements: one SQL per write type, shared by direct calls and the writer ----
@dataclass(frozen=True, slots=True)
class Statement:
    sql: str
    rank: int  # batch order: parents before children, inserts before updates
    columns: tuple[str, ...] = ()


# Order matters: a batch is applied grouped in this order so foreign keys hold.
_WRITE_ORDER: tuple[type[Row] | type[Update], ...] = (
    SessionRow,
    InstrumentRow,
    SignalRow,
    DecisionRow,
    RiskEventRow,
    OrderRow,
    OrderAck,
    OrderStatusUpdate,
    OrderEventRow,
    FillRow,
    PositionRow,
    PositionUpdate,
    PositionClose,
    TradeRow,
    BracketTransitionRow,
    AuditRow,
    SessionEnd,
    BurninVerdict,
)


def _insert_statement(cls: type[Row], rank: int) -> Statement:
    cols = tuple(
        f.name
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if f.name not in cls.__generated__
    )
    params = ", ".join(f"${i}" for i in range(1, len(cols) + 1))
    sql = (
        f"INSERT INTO {cls.__table__} ({', '.join(cols)}) VALUES ({params}) "
        f"ON CONFLICT {cls.__conflict__}"
    )
    return Statement(sql=sql, rank=rank, columns=cols)


STATEMENTS: dict[type[Row] | type[Update], Statement] = {
    cls: (
        _insert_statement(cls, rank)
        if issubclass(cls, Row)
        else Statement(sql=cls.__sql__, rank=rank)
    )
    for rank, cls in enumerate(_WRITE_ORDER)
}


def statement_for(write: Write) -> Statement:
    try:
        return STATEMENTS[type(write)]
    except KeyError:
        raise TypeError(f"not a database write: {type(write).__name__}") from None


def args_for(write: Write) -> tuple[object, ...]:
    if isinstance(write, Update):
        return write.args()
    return tuple(getattr(write, c) for c in statement_for(write).columns)


async def execute(conn: Conn, write: Write) -> bool:
    """Apply one write now; True if it changed a row (False: duplicate or stale)."""
    status = await conn.execute(statement_for(write).sql, *args_for(write))
    return not status.endswith(" 0")


# ---- direct writes (awaited by the caller) ----
async def create_session(conn: Conn, row: SessionRow) -> bool:
    return await execute(conn, row)


async def end_session(conn: Conn, end: SessionEnd) -> bool:
    return await execute(conn, end)


async def upsert_instruments(conn: Conn, rows: Sequence[InstrumentRow]) -> None:
    if rows:
        st = STATEMENTS[InstrumentRow]
        await conn.executemany(st.sql, [args_for(r) for r in rows])


async def insert_order_new(conn: Conn, row: OrderRow) -> bool:
    """Write-ahead the NEW order before calling the broker.

    True if this call inserted it; False if the client_order_id already
    exists (a retry or a duplicate): the caller must then look the order up
    instead of placing it again.
    """
    if row.status != "NEW":
        raise ValueError(f"OrderRow.status: a new order is written as NEW, got {row.status!r}")
    return await execute(conn, row)


async def update_order_status(conn: Conn, update: OrderStatusUpdate) -> bool:
    return await execute(conn, update)


async def insert_fill(conn: Conn, row: FillRow) -> bool:
    """True if new; False if this very fill was already recorded. A different fill
    under the same key raises ``asyncpg.UniqueViolationError`` (see :func:`is_fill_conflict`)."""
    return await execute(conn, row)


FILL_CONFLICT = "fills_conflicting_fill"
# exit_reason of the trade of a position that start-up reconciliation closed.
RECONCILED_EXIT = "RECONCILED"


def is_fill_conflict(exc: BaseException) -> bool:
    """The database refused a fill whose key already holds a different fill."""
    return (
        isinstance(exc, asyncpg.UniqueViolationError)
        and getattr(exc, "constraint_name", None) == FILL_CONFLICT
    )


# ---- reads ----
T = TypeVar("T")


def _build(cls: type[T], record: asyncpg.Record) -> T:
    return cls(**dict(record))


def _page(limit: int, offset: int) -> None:
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit: must be 1..{MAX_PAGE}, got {limit}")
    if offset < 0:
        raise ValueError(f"offset: must be >= 0, got {offset}")


class _Where:
    """Accumulates ``col op $n`` clauses with numbered parameters."""

    def __init__(self, **equal: object) -> None:
        """Each keyword is ``column = value``, skipped when the value is None."""
        self.clauses: list[str] = []
        self.args: list[object] = []
        for col, value in equal.items():
            self.add(f"{col} = ?", value)

    def add(self, clause: str, value: object) -> None:
        if value is None:
            return
        self.args.append(value)
        self.clauses.append(clause.replace("?", f"${len(self.args)}"))

    def time_range(
        self, col: str, day: date | None, since: datetime | None, until: datetime | None
    ) -> None:
        if day is not None:
            lo, hi = ist_day_bounds(day)
            self.add(f"{col} >= ?", lo)
            self.add(f"{col} < ?", hi)
        for name, value in (("since", since), ("until", until)):
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name}: datetime must be timezone-aware")
        self.add(f"{col} >= ?", since)
        self.add(f"{col} < ?", until)

    def sql(self) -> str:
        return (" WHERE " + " AND ".join(self.clauses)) if self.clauses else ""

    def page(self, limit: int, offset: int) -> str:
        _page(limit, offset)
        self.args += [limit, offset]
        n = len(self.args)
        return f" LIMIT ${n - 1} OFFSET ${n}"


async def _one(conn: Conn, cls: type[T], sql: str, *args: object) -> T | None:
    r = await conn.fetchrow(sql, *args)
    return _build(cls, r) if r else None


async def _list(
    conn: Conn, cls: type[T], table: str, where: _Where, order: str, limit: int, offset: int
) -> list[T]:
    page = where.page(limit, offset)
    rows = await conn.fetch(
        f"SELECT * FROM {table}{where.sql()} ORDER BY {order}{page}", *where.args
    )
    return [_build(cls, r) for r in rows]


async def get_session(conn: Conn, session_id: UUID) -> SessionRow | None:
    return await _one(conn, SessionRow, "SELECT * FROM sessions WHERE id = $1", session_id)


async def list_sessions(
    conn: Conn,
    *,
    mode: ModeT | None = None,
    status: SessionStatusT | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[SessionRow]:
    """Newest first; ``date_from``/``date_to`` bound ``trading_date`` inclusively."""
    w = _Where(mode=mode, status=status)
    w.add("trading_date >= ?", date_from)
    w.add("trading_date <= ?", date_to)
    return await _list(
        conn, SessionRow, "sessions", w, "trading_date DESC, started_at DESC", limit, offset
    )


async def get_instrument(conn: Conn, instrument_token: int) -> InstrumentRow | None:
    return await _one(
        conn,
        InstrumentRow,
        "SELECT * FROM instruments WHERE instrument_token = $1",
        instrument_token,
    )


async def list_signals(
    conn: Conn,
    *,
    session_id: UUID | None = None,
    strategy: str | None = None,
    tradingsymbol: str | None = None,
    day: date | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[SignalRow]:
    w = _Where(session_id=session_id, strategy=strategy, tradingsymbol=tradingsymbol)
    w.time_range("ts", day, since, until)
    return await _list(conn, SignalRow, "signals", w, "ts, id", limit, offset)


async def get_decision(conn: Conn, plan_id: str) -> DecisionRow | None:
    return await _one(conn, DecisionRow, "SELECT * FROM decisions WHERE plan_id = $1", plan_id)


async def list_decisions(
    conn: Conn,
    *,
    session_id: UUID | None = None,
    strategy: str | None = None,
    day: date | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[DecisionRow]:
    w = _Where(session_id=session_id, strategy=strategy)
    w.time_range("ts", day, since, until)
    return await _list(conn, DecisionRow, "decisions", w, "ts, id", limit, offset)


async def list_risk_events(
    conn: Conn,
    *,
    session_id: UUID | None = None,
    reason: str | None = None,
    day: date | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[RiskEventRow]:
    w = _Where(session_id=session_id, reason=reason)
    w.time_range("ts", day, since, until)
    return await _list(conn, RiskEventRow, "risk_events", w, "ts, id", limit, offset)


async def count_risk_events_by_reason(conn: Conn, session_id: UUID) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT reason, count(*) AS n FROM risk_events WHERE session_id = $1 GROUP BY reason",
        session_id,
    )
    return {r["reason"]: int(r["n"]) for r in rows}


async def get_order(conn: Conn, client_order_id: str) -> OrderRow | None:
    return await _one(
        conn, OrderRow, "SELECT * FROM orders WHERE client_order_id = $1", client_order_id
    )


async def get_order_by_broker_id(conn: Conn, broker_order_id: str) -> OrderRow | None:
    """The most recent order with this broker id (paper ids may repeat across sessions)."""
    return await _one(
        conn,
        OrderRow,
        "SELECT * FROM orders WHERE broker_order_id = $1 ORDER BY created_at DESC LIMIT 1",
        broker_order_id,
    )


async def get_order_by_tag(conn: Conn, tag: str) -> OrderRow | None:
    return await _one(
        conn, OrderRow, "SELECT * FROM orders WHERE tag = $1 ORDER BY created_at DESC LIMIT 1", tag
    )


async def list_orders(
    conn: Conn,
    *,
    session_id: UUID | None = None,
    plan_id: str | None = None,
    status: str | Sequence[str] | None = None,
    day: date | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[OrderRow]:
    w = _Where(session_id=session_id, plan_id=plan_id)
    if isinstance(status, str):
        w.add("status = ?", status)
    elif status is not None:
        w.add("status = ANY(?::text[])", list(status))
    w.time_range("created_at", day, since, until)
    return await _list(conn, OrderRow, "orders", w, "created_at, id", limit, offset)


async def list_live_orders(conn: Conn, session_id: UUID | None = None) -> list[OrderRow]:
    """Every non-terminal order (reconciliation, restart recovery); unpaginated."""
    w = _Where(session_id=session_id)
    w.clauses.append("status NOT IN ('COMPLETE', 'CANCELLED', 'REJECTED')")
    rows = await conn.fetch(f"SELECT * FROM orders{w.sql()} ORDER BY created_at, id", *w.args)
    return [_build(OrderRow, r) for r in rows]


async def list_order_events(
    conn: Conn, client_order_id: str, *, limit: int = 1000, offset: int = 0
) -> list[OrderEventRow]:
    w = _Where(client_order_id=client_order_id)
    return await _list(conn, OrderEventRow, "order_events", w, "ts, id", limit, offset)


async def list_fills(
    conn: Conn,
    *,
    client_order_id: str | None = None,
    session_id: UUID | None = None,
    day: date | None = None,
    limit: int = 1000,
    offset: int = 0,
) -> list[FillRow]:
    w = _Where(client_order_id=client_order_id)
    w.add(
        "client_order_id IN (SELECT client_order_id FROM orders WHERE session_id = ?)", session_id
    )
    w.time_range("ts", day, None, None)
    return await _list(conn, FillRow, "fills", w, "ts, id", limit, offset)


async def get_open_position(conn: Conn, plan_id: str) -> PositionRow | None:
    return await _one(
        conn, PositionRow, "SELECT * FROM positions WHERE plan_id = $1 AND status = 'OPEN'", plan_id
    )


async def list_positions(
    conn: Conn,
    *,
    session_id: UUID | None = None,
    status: PositionStatusT | None = None,
    day: date | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[PositionRow]:
    """Filtered on ``opened_at``; ``day`` is an IST calendar day."""
    w = _Where(session_id=session_id, status=status)
    w.time_range("opened_at", day, since, until)
    return await _list(conn, PositionRow, "positions", w, "opened_at, id", limit, offset)


async def list_trades(
    conn: Conn,
    *,
    session_id: UUID | None = None,
    strategy: str | None = None,
    tradingsymbol: str | None = None,
    day: date | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[TradeRow]:
    """Filtered on ``closed_at``; ``day`` is an IST calendar day."""
    w = _Where(session_id=session_id, strategy=strategy, tradingsymbol=tradingsymbol)
    w.time_range("closed_at", day, since, until)
    return await _list(conn, TradeRow, "trades", w, "closed_at, id", limit, offset)


@dataclass(frozen=True, slots=True)
class TradeStats:
    trades: int
    wins: int
    losses: int
    gross_pnl: Decimal
    charges: Decimal
    net_pnl: Decimal


async def trade_stats(
    conn: Conn, *, session_id: UUID | None = None, day: date | None = None
) -> TradeStats:
    """Totals for the daily report and the burn-in check (wins: net_pnl > 0)."""
    w = _Where(session_id=session_id)
    w.time_range("closed_at", day, None, None)
    r = await conn.fetchrow(
        "SELECT count(*) AS trades, count(*) FILTER (WHERE net_pnl > 0) AS wins, "
        "count(*) FILTER (WHERE net_pnl < 0) AS losses, "
        "COALESCE(sum(gross_pnl), 0) AS gross_pnl, COALESCE(sum(charges), 0) AS charges, "
        f"COALESCE(sum(net_pnl), 0) AS net_pnl FROM trades{w.sql()}",
        *w.args,
    )
    assert r is not None  # an aggregate always returns one row
    return TradeStats(**dict(r))


async def trade_chain(conn: Conn, trade_id: UUID) -> dict[str, Any] | None:
    """The trade with its decision, signal and every order of its plan."""
    r = await conn.fetchrow("SELECT * FROM trade_chain WHERE trade_id = $1", trade_id)
    if r is None:
        return None
    chain = dict(r)
    orders = await conn.fetch(
        "SELECT * FROM orders WHERE plan_id = $1 ORDER BY created_at, id", chain["plan_id"]
    )
    chain["orders"] = [_build(OrderRow, o) for o in orders]
    return chain


async def list_bracket_transitions(
    conn: Conn, *, plan_id: str | None = None, session_id: UUID | None = None, limit: int = 1000
) -> list[BracketTransitionRow]:
    """Steps of one bracket, or of a session's brackets, in order."""
    where = _Where(plan_id=plan_id, session_id=session_id)
    return await _list(
        conn, BracketTransitionRow, "bracket_transitions", where, "ts, plan_id, seq", limit, 0
    )


async def list_audit(
    conn: Conn,
    *,
    action: str | None = None,
    actor: str | None = None,
    session_id: UUID | None = None,
    day: date | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[AuditRow]:
    """Newest first."""
    w = _Where(action=action, actor=actor, session_id=session_id)
    w.time_range("ts", day, since, until)
    return await _list(conn, AuditRow, "audit_log", w, "ts DESC, id", limit, offset)
