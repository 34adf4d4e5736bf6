"""The daily report's data: one typed :class:`DailyReport` built from the database.

Scope is either one session (``session_id``) or every session of one trading
date (``day``, optionally one ``mode``). Money is summed in SQL as NUMERIC and
arrives as ``Decimal``; the equity curve, drawdown and percentiles are
computed by :mod:`aitrapp.report.stats`.

Latency has two sources. The session runner stores percentiles over *all*
ticks in ``sessions.summary`` (preferred); without them we fall back to
``decisions.tick_to_decision_ms`` (only ticks that produced a decision) and,
for order latency, to the time from a decision to the first broker answer
for its ENTRY order in ``order_events``. Every figure names its source.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from aitrapp.db.pool import Conn
from aitrapp.db.repo import ModeT, PositionRow, TradeRow
from aitrapp.report import stats, summary
from aitrapp.report.errors import ReportError
from aitrapp.report.protection import Protection
from aitrapp.report.protection_load import load_protection

# Used when a session's summary does not carry its own SLO.
DEFAULT_TICK_TO_DECISION_SLO_MS = 10.0

LatencyMetric = Literal["tick_to_decision", "order_latency"]
SOURCE_SUMMARY = "session summary (all ticks)"
SOURCE_SUMMARY_ORDERS = "session summary"
SOURCE_DECISIONS = "decisions (ticks that produced one)"
SOURCE_ORDER_EVENTS = "order events (decision to first ENTRY ack)"


@dataclass(frozen=True, slots=True)
class SessionInfo:
    id: UUID
    trading_date: date
    mode: str
    feed: str
    feed_label: str
    synthetic: bool
    status: str
    started_at: datetime
    ended_at: datetime | None
    ticks: int | None
    burnin_passed: bool | None  # None: never judged


@dataclass(frozen=True, slots=True)
class LatencyFigures:
    metric: LatencyMetric
    session_id: UUID
    source: str
    count: int
    p50_ms: float
    p99_ms: float
    p999_ms: float
    slo_ms: float | None
    slo_compliance: float | None  # 0..1


@dataclass(frozen=True, slots=True)
class StrategyPnl:
    trades: int
    wins: int
    net_pnl: Decimal


@dataclass(frozen=True, slots=True)
class PnlSummary:
    trades: int
    wins: int
    losses: int
    gross_pnl: Decimal
    charges: Decimal
    net_pnl: Decimal
    win_rate: float | None  # wins / trades (net PnL > 0); None without trades
    max_drawdown: stats.Drawdown
    equity: tuple[stats.EquityPoint, ...]
    by_strategy: dict[str, StrategyPnl]


@dataclass(frozen=True, slots=True)
class DailyReport:
    day: date
    session_id: UUID | None  # set when the report covers exactly one session by request
    generated_at: datetime
    sessions: tuple[SessionInfo, ...]
    signals: int
    signals_by_strategy: dict[str, int]
    decisions: int
    decisions_by_strategy: dict[str, int]
    risk_blocks: dict[str, int]  # reason -> count, most frequent first
    orders_by_status: dict[str, int]
    orders_by_role: dict[str, int]
    positions: tuple[PositionRow, ...]
    trades: tuple[TradeRow, ...]
    pnl: PnlSummary
    tick_to_decision: tuple[LatencyFigures, ...]  # one per session that has figures
    order_latency: tuple[LatencyFigures, ...]
    decision_latencies_ms: tuple[float, ...]  # raw samples, for the histogram
    notes: tuple[str, ...]  # data problems found while building (named, not fatal)
    protection: Protection | None = None  # did the brackets hold their plans?

    @property
    def title(self) -> str:
        if self.session_id is not None:
            return f"AITRAPP session {self.session_id} ({self.day.isoformat()})"
        return f"AITRAPP daily report {self.day.isoformat()}"

    @property
    def open_positions(self) -> int:
        return sum(1 for p in self.positions if p.status == "OPEN")


async def load_daily_report(
    conn: Conn,
    *,
    now: datetime,
    day: date | None = None,
    session_id: UUID | None = None,
    mode: ModeT | None = None,
    default_slo_ms: float = DEFAULT_TICK_TO_DECISION_SLO_MS,
) -> DailyReport:
    """Build the report for one session, or for every session of ``day``.

    Raises :class:`ReportError` when the session or date has no sessions.
    """
    if now.tzinfo is None:
        raise ReportError("now: datetime must be timezone-aware")
    if default_slo_ms <= 0:
        raise ReportError(f"default_slo_ms: must be > 0, got {default_slo_ms}")
    found = await _sessions(conn, day=day, session_id=session_id, mode=mode)
    sessions = [s for s, _ in found]
    docs = [d for _, d in found]
    ids = [s.id for s in sessions]
    report_day = sessions[0].trading_date if session_id is not None else day
    assert report_day is not None
    notes: list[str] = []

    signals = await _count_by(conn, "signals", "strategy", ids)
    decisions = await _count_by(conn, "decisions", "strategy", ids)
    blocks = await _count_by(conn, "risk_events", "reason", ids)
    orders_by_status = await _count_by(conn, "orders", "status", ids)
    orders_by_role = await _count_by(conn, "orders", "role", ids)
    positions = [
        PositionRow(**dict(r))
        for r in await conn.fetch(
            "SELECT * FROM positions WHERE session_id = ANY($1::uuid[]) ORDER BY opened_at, id",
            ids,
        )
    ]
    trades = [
        TradeRow(**dict(r))
        for r in await conn.fetch(
            "SELECT * FROM trades WHERE session_id = ANY($1::uuid[]) ORDER BY closed_at, id", ids
        )
    ]
    samples = await _decision_latencies(conn, ids)
    ack_samples = await _order_latencies(conn, ids)
    tick_figs: list[LatencyFigures] = []
    order_figs: list[LatencyFigures] = []
    for s, doc in zip(sessions, docs, strict=True):
        fig, problem = _latency_from_summary("tick_to_decision", s.id, doc, SOURCE_SUMMARY)
        if problem:
            notes.append(f"session {s.id}: {problem}; using the decisions table")
        if fig is None:
            fig = _latency_from_samples(
                "tick_to_decision", s.id, samples.get(s.id, []), default_slo_ms, SOURCE_DECISIONS
            )
        if fig is not None:
            tick_figs.append(fig)
        ofig, problem = _latency_from_summary("order_latency", s.id, doc, SOURCE_SUMMARY_ORDERS)
        if problem:
            notes.append(f"session {s.id}: {problem}; using order events")
        if ofig is None:
            ofig = _latency_from_samples(
                "order_latency", s.id, ack_samples.get(s.id, []), None, SOURCE_ORDER_EVENTS
            )
        if ofig is not None:
            order_figs.append(ofig)

    return DailyReport(
        day=report_day,
        session_id=session_id,
        generated_at=now,
        sessions=tuple(sessions),
        signals=sum(signals.values()),
        signals_by_strategy=signals,
        decisions=sum(decisions.values()),
        decisions_by_strategy=decisions,
        risk_blocks=blocks,
        orders_by_status=orders_by_status,
        orders_by_role=orders_by_role,
        positions=tuple(positions),
        trades=tuple(trades),
        pnl=pnl_summary(trades),
        tick_to_decision=tuple(tick_figs),
        order_latency=tuple(order_figs),
        decision_latencies_ms=tuple(v for vs in samples.values() for v in vs),
        notes=tuple(notes),
        protection=await load_protection(conn, ids, docs),
    )


def pnl_summary(trades: Sequence[TradeRow]) -> PnlSummary:
    wins = sum(1 for t in trades if t.net_pnl > 0)
    losses = sum(1 for t in trades if t.net_pnl < 0)
    curve = stats.equity_curve((t.closed_at, t.net_pnl) for t in trades)
    by_strategy: dict[str, StrategyPnl] = {}
    for t in trades:
        prev = by_strategy.get(t.strategy, StrategyPnl(0, 0, Decimal(0)))
        by_strategy[t.strategy] = StrategyPnl(
            prev.trades + 1, prev.wins + (t.net_pnl > 0), prev.net_pnl + t.net_pnl
        )
    return PnlSummary(
        trades=len(trades),
        wins=wins,
        losses=losses,
        gross_pnl=sum((t.gross_pnl for t in trades), Decimal(0)),
        charges=sum((t.charges for t in trades), Decimal(0)),
        net_pnl=sum((t.net_pnl for t in trades), Decimal(0)),
        win_rate=stats.win_rate(wins, len(trades)),
        max_drawdown=stats.max_drawdown(curve),
        equity=tuple(curve),
        by_strategy=dict(sorted(by_strategy.items())),
    )


# ---- queries ----
async def _sessions(
    conn: Conn, *, day: date | None, session_id: UUID | None, mode: ModeT | None
) -> list[tuple[SessionInfo, Mapping[str, Any]]]:
    """The sessions in scope, each with its raw summary document."""
    if session_id is not None:
        rows = await conn.fetch("SELECT * FROM sessions WHERE id = $1", session_id)
        if not rows:
            raise ReportError(f"session: no session with id {session_id}")
        if day is not None and rows[0]["trading_date"] != day:
            raise ReportError(
                f"session: {session_id} traded on {rows[0]['trading_date']}, not on {day}"
            )
    elif day is not None:
        rows = await conn.fetch(
            "SELECT * FROM sessions WHERE trading_date = $1 AND ($2::text IS NULL OR mode = $2) "
            "ORDER BY started_at, id",
            day,
            mode,
        )
        if not rows:
            which = f"{mode} " if mode else ""
            raise ReportError(f"date: no {which}sessions recorded for {day.isoformat()}")
    else:
        raise ReportError("give a date or a session id")
    out = []
    for r in rows:
        doc: Mapping[str, Any] = r["summary"] if isinstance(r["summary"], Mapping) else {}
        verdict = r["burnin_verdict"]
        passed = verdict.get("passed") if isinstance(verdict, Mapping) else None
        info = (
            SessionInfo(
                id=r["id"],
                trading_date=r["trading_date"],
                mode=r["mode"],
                feed=r["feed"],
                feed_label=summary.feed_label(doc, r["feed"]),
                synthetic=summary.is_synthetic(doc, r["feed"]),
                status=r["status"],
                started_at=r["started_at"],
                ended_at=r["ended_at"],
                ticks=summary.ticks(doc),
                burnin_passed=passed if isinstance(passed, bool) else None,
            ),
            doc,
        )
        out.append(info)
    return out


async def _count_by(conn: Conn, table: str, column: str, ids: list[UUID]) -> dict[str, int]:
    """``column`` -> row count over the sessions, most frequent first."""
    rows = await conn.fetch(
        f"SELECT {column} AS k, count(*) AS n FROM {table} "
        f"WHERE session_id = ANY($1::uuid[]) GROUP BY {column} ORDER BY n DESC, {column}",
        ids,
    )
    return {str(r["k"]): int(r["n"]) for r in rows}


async def _decision_latencies(conn: Conn, ids: list[UUID]) -> dict[UUID, list[float]]:
    rows = await conn.fetch(
        "SELECT session_id, tick_to_decision_ms FROM decisions "
        "WHERE session_id = ANY($1::uuid[]) AND tick_to_decision_ms IS NOT NULL ORDER BY ts, id",
        ids,
    )
    out: dict[UUID, list[float]] = {}
    for r in rows:
        out.setdefault(r["session_id"], []).append(float(r["tick_to_decision_ms"]))
    return out


async def _order_latencies(conn: Conn, ids: list[UUID]) -> dict[UUID, list[float]]:
    """Decision to the broker's first answer (any event with a broker order id) for ENTRY."""
    rows = await conn.fetch(
        """
        SELECT d.session_id, EXTRACT(EPOCH FROM (min(e.ts) - d.ts)) * 1000 AS ms
        FROM decisions d
        JOIN orders o ON o.plan_id = d.plan_id AND o.session_id = d.session_id
                     AND o.role = 'ENTRY'
        JOIN order_events e ON e.client_order_id = o.client_order_id
                           AND e.broker_order_id IS NOT NULL
        WHERE d.session_id = ANY($1::uuid[])
        GROUP BY d.id, d.session_id, d.ts
        ORDER BY d.ts, d.id
        """,
        ids,
    )
    out: dict[UUID, list[float]] = {}
    for r in rows:
        ms = float(r["ms"])
        if ms >= 0:  # an ack before its decision means mixed clocks: not a latency
            out.setdefault(r["session_id"], []).append(ms)
    return out


def _figures(
    metric: LatencyMetric,
    session_id: UUID,
    source: str,
    p: summary.SummaryLatency | stats.Percentiles,
) -> LatencyFigures:
    return LatencyFigures(
        metric=metric,
        session_id=session_id,
        source=source,
        count=p.count,
        p50_ms=p.p50_ms,
        p99_ms=p.p99_ms,
        p999_ms=p.p999_ms,
        slo_ms=p.slo_ms,
        slo_compliance=p.slo_compliance,
    )


def _latency_from_summary(
    metric: LatencyMetric, session_id: UUID, doc: Mapping[str, Any], source: str
) -> tuple[LatencyFigures | None, str | None]:
    block, problem = summary.latency(doc, metric)
    if block is None:
        return None, problem
    return _figures(metric, session_id, source, block), None


def _latency_from_samples(
    metric: LatencyMetric,
    session_id: UUID,
    values: Sequence[float],
    slo_ms: float | None,
    source: str,
) -> LatencyFigures | None:
    p = stats.summarize(values, slo_ms)
    return None if p is None else _figures(metric, session_id, source, p)
