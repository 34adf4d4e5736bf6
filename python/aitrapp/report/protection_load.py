"""The protection figures of recorded sessions, read from the database.

Trades come with their decision (planned entry, stop, target, risk); a
double exit is a plan whose exit fills exceed its entry fills (both exits
filled); races and watchdog escalations are what the session runner
recorded in ``sessions.summary`` (``races``, ``protection.watchdog``), as
the tables do not carry them. Without the ticks, "gapped past the stop"
knows only the exit reason ``STOP_GAPPED``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from aitrapp.db.pool import Conn
from aitrapp.report import brackets, summary
from aitrapp.report.protection import WATCHDOG_CODES, Protection, TradeFacts, summarize

_TRADES_SQL = """
SELECT t.plan_id, t.side, t.qty, t.exit_reason, t.entry_price, t.exit_price, t.gross_pnl,
       d.entry, d.stop, d.tp, d.risk_rupees
FROM trades t LEFT JOIN decisions d ON d.id = t.decision_id
WHERE t.session_id = ANY($1::uuid[]) ORDER BY t.closed_at, t.id
"""
_ORDERS_SQL = """
SELECT client_order_id, plan_id, role, side, status, qty, filled_qty FROM orders
WHERE session_id = ANY($1::uuid[]) ORDER BY created_at, id
"""


def _float(value: Any) -> float:
    return 0.0 if value is None else float(value)


def recorded_races(summaries: Sequence[Mapping[str, Any]]) -> int:
    return sum(int(summary.number(s.get("races")) or 0) for s in summaries)


def recorded_watchdog(summaries: Sequence[Mapping[str, Any]]) -> dict[str, int] | None:
    """Watchdog escalations by alert code; None when no session recorded them."""
    total: Counter[str] = Counter()
    found = False
    for s in summaries:
        block = s.get("protection")
        counts = block.get("watchdog") if isinstance(block, Mapping) else None
        if isinstance(counts, Mapping):
            found = True
            for code in WATCHDOG_CODES:
                total[code] += int(summary.number(counts.get(code)) or 0)
    return dict(total) if found else None


async def load_protection(
    conn: Conn, ids: Sequence[UUID], summaries: Sequence[Mapping[str, Any]]
) -> Protection:
    """The figures over the sessions ``ids`` (``summaries``: their summary documents)."""
    orders = [brackets.OrderState(**dict(r)) for r in await conn.fetch(_ORDERS_SQL, list(ids))]
    doubled = {
        p.plan_id for p in brackets.group_by_plan(orders) if 0 < p.entry_filled < p.exit_filled
    }
    facts = []
    for r in await conn.fetch(_TRADES_SQL, list(ids)):
        double = r["plan_id"] in doubled
        doubled.discard(r["plan_id"])  # one double exit per plan, on its first trade
        facts.append(
            TradeFacts(
                plan_id=r["plan_id"],
                side=r["side"],
                qty=r["qty"],
                exit_reason=r["exit_reason"],
                entry_price=_float(r["entry_price"]),
                exit_price=_float(r["exit_price"]),
                gross=_float(r["gross_pnl"]),
                planned_entry=_float(r["entry"]),
                planned_stop=_float(r["stop"]),
                planned_risk=_float(r["risk_rupees"]),
                planned_tp=None if r["tp"] is None else float(r["tp"]),
                double_exit=double,
            )
        )
    return summarize(
        facts,
        watchdog=recorded_watchdog(summaries),
        races_recorded=recorded_races(summaries),
        untraded_double_exits=len(doubled),  # a plan that exited twice and booked no trade
    )
