"""The journal, read back: GET /positions, /orders, /trades, /signals, /decisions, /risk-events.

Every list is paginated (``limit``/``offset``, ``next_offset`` in the
answer) and filters by IST calendar day (``date``, or ``date_from`` ..
``date_to`` inclusive, each ``YYYY-MM-DD``), by session (a UUID or
``current``) and, where the table has one, by status.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Literal, TypedDict
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, BeforeValidator

from aitrapp.api.auth import require_reader
from aitrapp.api.deps import PoolDep, RuntimeDep
from aitrapp.api.errors import invalid_field
from aitrapp.api.schemas import (
    VALIDATION_ERROR,
    DecisionOut,
    OrderOut,
    Page,
    PositionOut,
    RiskEventOut,
    SignalOut,
    TradeOut,
)
from aitrapp.db import repo

router = APIRouter(
    tags=["journal"], dependencies=[Depends(require_reader)], responses=VALIDATION_ERROR
)

# Above int64 asyncpg cannot bind the offset: bound it well below.
MAX_OFFSET = 1_000_000_000
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
# Printable text only: a NUL byte would reach PostgreSQL and fail there.
_TEXT = r"^[^\x00-\x1f\x7f]{1,64}$"
WORKING = "WORKING"
_WORKING_STATUSES = tuple(s for s in repo.ORDER_STATUSES if s not in repo.TERMINAL_STATUSES)

OrderStatusFilter = Literal[
    "WORKING", "NEW", "PENDING", "OPEN", "TRIGGER PENDING", "COMPLETE", "CANCELLED", "REJECTED"
]


# Days far outside these cannot hold trades, and year 1 in IST is year 0 in UTC
# (which PostgreSQL refuses): refuse them here.
FIRST_DAY, LAST_DAY = date(1990, 1, 1), date(2099, 12, 31)


def _iso_day(value: object) -> object:
    if isinstance(value, str):
        if not _DAY.fullmatch(value):
            raise ValueError("expected a date as YYYY-MM-DD")
        try:
            day = date.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"not a valid date: {exc}") from None
        if not FIRST_DAY <= day <= LAST_DAY:
            raise ValueError(f"must be between {FIRST_DAY} and {LAST_DAY}")
    return value


IsoDay = Annotated[date, BeforeValidator(_iso_day)]
Text = Annotated[str, Query(pattern=_TEXT)]


class WindowArgs(TypedDict):
    """A window as the keyword arguments every ``repo.list_*`` the API calls takes."""

    session_id: UUID | None
    day: date | None
    since: datetime | None
    until: datetime | None
    limit: int
    offset: int


@dataclass(frozen=True, slots=True)
class Window:
    """A page of rows from one IST day or day range, in one session or all."""

    day: date | None
    since: datetime | None
    until: datetime | None
    session_id: UUID | None
    limit: int
    offset: int

    def args(self) -> WindowArgs:
        return WindowArgs(
            session_id=self.session_id,
            day=self.day,
            since=self.since,
            until=self.until,
            limit=self.limit,
            offset=self.offset,
        )

    def page(self, model: type[BaseModel], rows: Sequence[object]) -> dict[str, object]:
        """The rows as ``model`` items of a :class:`~aitrapp.api.schemas.Page`."""
        full = len(rows) == self.limit
        return {
            "items": [model.model_validate(r) for r in rows],
            "limit": self.limit,
            "offset": self.offset,
            "next_offset": self.offset + self.limit if full else None,
        }


def window(
    runtime: RuntimeDep,
    day: Annotated[
        IsoDay | None, Query(alias="date", description="IST calendar day, YYYY-MM-DD")
    ] = None,
    date_from: Annotated[
        IsoDay | None, Query(description="First IST day (inclusive), YYYY-MM-DD")
    ] = None,
    date_to: Annotated[
        IsoDay | None, Query(description="Last IST day (inclusive), YYYY-MM-DD")
    ] = None,
    session_id: Annotated[
        UUID | Literal["current"] | None,
        Query(description="A session id, or `current` for the running session"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=repo.MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Window:
    if date_from is not None and date_to is not None and date_from > date_to:
        raise invalid_field(
            ("query", "date_to"), f"must not be before date_from ({date_from})", str(date_to)
        )
    session: UUID | None
    if isinstance(session_id, str):  # "current"
        session = runtime.session_id
        if session is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no session is running")
    else:
        session = session_id
    since = repo.ist_day_bounds(date_from)[0] if date_from is not None else None
    until = repo.ist_day_bounds(date_to)[1] if date_to is not None else None
    return Window(day, since, until, session, limit, offset)


WindowDep = Annotated[Window, Depends(window)]


@router.get("/orders", response_model=Page[OrderOut], summary="Orders, oldest first")
async def orders(
    pool: PoolDep,
    w: WindowDep,
    status_: Annotated[
        list[OrderStatusFilter] | None,
        Query(alias="status", description="Repeatable; WORKING = every non-terminal status"),
    ] = None,
    plan_id: Text | None = None,
) -> dict[str, object]:
    statuses: list[str] | None = None
    if status_:
        wanted: set[str] = {s for s in status_ if s != WORKING}
        if WORKING in status_:
            wanted.update(_WORKING_STATUSES)
        statuses = sorted(wanted)
    rows = await repo.list_orders(pool, **w.args(), plan_id=plan_id, status=statuses)
    return w.page(OrderOut, rows)


@router.get("/positions", response_model=Page[PositionOut], summary="Positions, oldest first")
async def positions(
    pool: PoolDep,
    w: WindowDep,
    status_: Annotated[Literal["OPEN", "CLOSED"] | None, Query(alias="status")] = None,
) -> dict[str, object]:
    """The day filters apply to the time the position was opened."""
    rows = await repo.list_positions(pool, **w.args(), status=status_)
    return w.page(PositionOut, rows)


@router.get("/trades", response_model=Page[TradeOut], summary="Closed trades, oldest first")
async def trades(
    pool: PoolDep,
    w: WindowDep,
    strategy: Text | None = None,
    symbol: Text | None = None,
) -> dict[str, object]:
    """The day filters apply to the time the trade closed."""
    rows = await repo.list_trades(pool, **w.args(), strategy=strategy, tradingsymbol=symbol)
    return w.page(TradeOut, rows)


@router.get("/signals", response_model=Page[SignalOut], summary="Strategy signals, oldest first")
async def signals(
    pool: PoolDep,
    w: WindowDep,
    strategy: Text | None = None,
    symbol: Text | None = None,
) -> dict[str, object]:
    rows = await repo.list_signals(pool, **w.args(), strategy=strategy, tradingsymbol=symbol)
    return w.page(SignalOut, rows)


@router.get(
    "/decisions", response_model=Page[DecisionOut], summary="Risk-approved plans, oldest first"
)
async def decisions(pool: PoolDep, w: WindowDep, strategy: Text | None = None) -> dict[str, object]:
    rows = await repo.list_decisions(pool, **w.args(), strategy=strategy)
    return w.page(DecisionOut, rows)


@router.get(
    "/risk-events", response_model=Page[RiskEventOut], summary="Risk-gate blocks, oldest first"
)
async def risk_events(
    pool: PoolDep,
    w: WindowDep,
    reason: Annotated[
        str | None, Query(pattern=_TEXT, description="e.g. DAILY_LOSS, PORTFOLIO_HEAT")
    ] = None,
) -> dict[str, object]:
    rows = await repo.list_risk_events(pool, **w.args(), reason=reason)
    return w.page(RiskEventOut, rows)
