"""What a killed process leaves behind, settled at the next start.

- :func:`abort_dead_sessions`: a session stays RUNNING until its process ends
  it; a process killed with SIGKILL never does. At start, every RUNNING
  session recorded by this host whose process is gone (its pid is not alive,
  or belongs to a process started after the session) is marked ABORTED, with
  the time of its last recorded event. Sessions of other hosts, and old rows
  without a pid, cannot be checked from here and are left alone (logged).
- :func:`settle_reconciled_close`: when start-up reconciliation closes a
  position the broker no longer holds (a paper account dies with its process),
  the position becomes a trade, so its P&L is not lost from the reports. The
  exit price is the one reconciliation used (the average of the exits the
  broker filled), else the last price the database knows for the instrument
  since the position opened, else the position's entry price (a flat trade);
  the trade says which (``exit_reason`` RECONCILED, the source in the action).
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

from aitrapp.charges import ExecutedOrder, contract_note_charges
from aitrapp.db import repo
from aitrapp.db.pool import Conn

log = logging.getLogger(__name__)

RECONCILED = repo.RECONCILED_EXIT  # exit_reason of the trade of a reconciled close
_MONEY = Decimal("0.0001")
# A pid reused by a process that started this long after the session is not its owner.
_PID_REUSE_SLACK = timedelta(seconds=5)


def this_host() -> str:
    return socket.gethostname()


def _process_started_at(pid: int) -> datetime | None:
    """When ``pid`` started (Linux /proc), or None if unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        lines = Path("/proc/stat").read_text().splitlines()
        btime = next(int(line.split()[1]) for line in lines if line.startswith("btime "))
        ticks = int(fields[19])  # field 22 of stat; the split starts at field 3
        return datetime.fromtimestamp(btime + ticks / os.sysconf("SC_CLK_TCK"), tz=UTC)
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def owner_alive(pid: int, session_started_at: datetime) -> bool:
    """Whether the process that started a session at ``session_started_at`` still runs."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    started = _process_started_at(pid)
    return started is None or started <= session_started_at + _PID_REUSE_SLACK


@dataclass(frozen=True, slots=True)
class AbortedSession:
    session_id: UUID
    pid: int
    host: str
    ended_at: datetime
    last_event_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "session_id": str(self.session_id),
            "pid": self.pid,
            "host": self.host,
            "ended_at": self.ended_at.isoformat(),
            "last_event_at": self.last_event_at.isoformat() if self.last_event_at else None,
        }


_LAST_EVENT_SQL = """
SELECT max(ts) FROM (
    SELECT max(ts) AS ts FROM signals WHERE session_id = $1
    UNION ALL SELECT max(ts) FROM decisions WHERE session_id = $1
    UNION ALL SELECT max(ts) FROM risk_events WHERE session_id = $1
    UNION ALL SELECT max(updated_at) FROM orders WHERE session_id = $1
    UNION ALL SELECT max(e.ts) FROM order_events e
              JOIN orders o ON o.client_order_id = e.client_order_id WHERE o.session_id = $1
    UNION ALL SELECT max(f.ts) FROM fills f
              JOIN orders o ON o.client_order_id = f.client_order_id WHERE o.session_id = $1
    UNION ALL SELECT max(updated_at) FROM positions WHERE session_id = $1
    UNION ALL SELECT max(closed_at) FROM trades WHERE session_id = $1
    UNION ALL SELECT max(ts) FROM bracket_transitions WHERE session_id = $1
    UNION ALL SELECT max(ts) FROM audit_log WHERE session_id = $1
) events
"""
_ABORT_SQL = (
    "UPDATE sessions SET status = 'ABORTED', ended_at = $2, summary = summary || $3::jsonb "
    "WHERE id = $1 AND status = 'RUNNING'"
)


async def abort_dead_sessions(
    conn: Conn,
    *,
    host: str | None = None,
    now: datetime | None = None,
    alive: Any = owner_alive,
) -> list[AbortedSession]:
    """Marks the RUNNING sessions of dead processes on this host ABORTED; returns them.

    ``ended_at`` is the session's last recorded event (simulated sessions record
    session time, so it is kept between the session's start and now).
    """
    host = host or this_host()
    now = now or datetime.now(UTC)
    rows = await conn.fetch(
        "SELECT id, pid, host, started_at FROM sessions WHERE status = 'RUNNING' "
        "ORDER BY started_at, id"
    )
    aborted: list[AbortedSession] = []
    for r in rows:
        sid, pid, where = r["id"], r["pid"], r["host"]
        if pid is None or where is None:
            log.warning("session %s is RUNNING with no recorded process: left alone", sid)
            continue
        if where != host:
            log.info("session %s is RUNNING on host %s: not checked from %s", sid, where, host)
            continue
        if alive(pid, r["started_at"]):
            continue
        last = await conn.fetchval(_LAST_EVENT_SQL, sid)
        ended = min(max(last or r["started_at"], r["started_at"]), max(now, r["started_at"]))
        detail = {
            "aborted": {
                "reason": f"process {pid} on {where} ended without closing the session",
                "pid": pid,
                "host": where,
                "last_event_at": last.isoformat() if last else None,
                "detected_at": now.isoformat(),
            }
        }
        status = await conn.execute(_ABORT_SQL, sid, ended, detail)
        if status.endswith(" 0"):
            continue  # ended by its process, or by another starter, meanwhile
        out = AbortedSession(sid, pid, where, ended, last)
        aborted.append(out)
        log.warning(
            "session %s of dead process %s marked ABORTED at its last event %s",
            sid,
            pid,
            ended.isoformat(),
            extra=out.as_dict(),
        )
    return aborted


# ---------------------------------------------------------------- reconciled closes
_LAST_PRICE_SQL = """
SELECT f.price FROM fills f JOIN orders o ON o.client_order_id = f.client_order_id
WHERE o.instrument_token = $1 AND f.ts >= $2
ORDER BY f.ts DESC, f.id LIMIT 1
"""


@dataclass(frozen=True, slots=True)
class ReconciledClose:
    """What a reconciled close books: its price and where it comes from, and the
    last time the position was known (the trade's close: the P&L belongs to the
    day of the session that held it, not to the day of the restart)."""

    plan_id: str
    exit_price: Decimal
    source: str
    last_known_at: datetime

    def describe(self) -> str:
        return f"exit price {self.exit_price} ({self.source})"


async def prepare_reconciled_close(
    conn: Conn, plan_id: str, broker_exit_price: Decimal | None
) -> ReconciledClose | None:
    """Read before the position row is closed; None if the plan has no OPEN position."""
    pos = await conn.fetchrow(
        "SELECT instrument_token, opened_at, updated_at, avg_entry FROM positions "
        "WHERE plan_id = $1 AND status = 'OPEN'",
        plan_id,
    )
    if pos is None:
        return None
    last_known = max(pos["updated_at"], pos["opened_at"])
    if broker_exit_price is not None and broker_exit_price > 0:
        return ReconciledClose(
            plan_id, broker_exit_price, "the exits the broker filled", last_known
        )
    last = await conn.fetchval(_LAST_PRICE_SQL, pos["instrument_token"], pos["opened_at"])
    if last is not None and last > 0:
        source = "the last fill price known for the instrument"
        return ReconciledClose(plan_id, Decimal(last), source, last_known)
    source = "no price known: the entry price (flat)"
    return ReconciledClose(plan_id, Decimal(pos["avg_entry"]), source, last_known)


async def settle_reconciled_close(conn: Conn, close: ReconciledClose, closed_qty: int) -> str:
    """The trade of a position reconciliation just closed (see :func:`prepare_reconciled_close`).

    The trade covers the whole bracket as a session's would: the entry
    fills, the exits recorded before the crash and the ``closed_qty`` that
    reconciliation closed. Returns a one-line description for the action log.
    """
    plan_id, exit_price = close.plan_id, close.exit_price
    pos = await conn.fetchrow(
        "SELECT p.*, i.segment FROM positions p "
        "LEFT JOIN instruments i ON i.instrument_token = p.instrument_token "
        "WHERE p.plan_id = $1 AND p.status = 'CLOSED' ORDER BY p.closed_at DESC, p.id LIMIT 1",
        plan_id,
    )
    if pos is None:
        return "no closed position: no trade"
    decision = await conn.fetchrow("SELECT id, strategy FROM decisions WHERE plan_id = $1", plan_id)
    if decision is None:
        log.error("reconciled close of %s: no decision row, no trade written", plan_id)
        return "no decision row: no trade (its P&L is in the position row only)"
    if await conn.fetchval(
        "SELECT count(*) FROM trades WHERE plan_id = $1 AND exit_reason = $2", plan_id, RECONCILED
    ):
        return "trade already written"
    fills = await conn.fetch(
        "SELECT o.client_order_id, o.side, f.qty, f.price FROM fills f "
        "JOIN orders o ON o.client_order_id = f.client_order_id WHERE o.plan_id = $1",
        plan_id,
    )
    side = pos["side"]
    entry_qty = sum(f["qty"] for f in fills if f["side"] == side)
    entry_value = sum((f["qty"] * f["price"] for f in fills if f["side"] == side), Decimal(0))
    exit_qty = sum(f["qty"] for f in fills if f["side"] != side)
    exit_value = sum((f["qty"] * f["price"] for f in fills if f["side"] != side), Decimal(0))
    qty = exit_qty + closed_qty
    if qty <= 0:
        return "nothing was open: no trade"
    entry_avg = entry_value / entry_qty if entry_qty else Decimal(pos["avg_entry"])
    exit_avg = (exit_value + exit_price * closed_qty) / qty
    sign = 1 if side == "BUY" else -1
    gross = (sign * (exit_avg - entry_avg) * qty).quantize(_MONEY)
    closed_at = max(close.last_known_at, pos["opened_at"])
    charges = _charges(fills, pos["segment"], pos["exchange"], closed_at)
    trade = repo.TradeRow(
        session_id=pos["session_id"],
        decision_id=decision["id"],
        plan_id=plan_id,
        strategy=decision["strategy"],
        exchange=pos["exchange"],
        tradingsymbol=pos["tradingsymbol"],
        side=side,
        qty=qty,
        entry_price=entry_avg.quantize(_MONEY),
        exit_price=exit_avg.quantize(_MONEY),
        gross_pnl=gross,
        charges=charges,
        net_pnl=gross - charges,
        exit_reason=RECONCILED,
        opened_at=pos["opened_at"],
        closed_at=closed_at,
    )
    await repo.execute(conn, trade)
    return f"trade {trade.id}: {qty} @ {trade.exit_price}, net {trade.net_pnl}"


def _charges(fills: list[Any], segment: str | None, exchange: str, closed_at: datetime) -> Decimal:
    """Charges of the orders that executed (one contract note); none for the close itself."""
    by_order: dict[str, tuple[str, int, Decimal]] = {}
    for f in fills:
        s, q, v = by_order.get(f["client_order_id"], (f["side"], 0, Decimal(0)))
        by_order[f["client_order_id"]] = (s, q + f["qty"], v + f["qty"] * f["price"])
    orders = [ExecutedOrder(s, q, v) for s, q, v in by_order.values() if q > 0]  # type: ignore[arg-type]
    if not orders or segment is None:
        return Decimal(0)
    ist_day = (closed_at + timedelta(hours=5, minutes=30)).date()
    try:
        note = contract_note_charges(segment, orders, ist_day, exchange)
    except Exception:  # an unknown segment must not block the repair: charges 0, said so
        log.exception("reconciled close: no charge schedule for %s %s", exchange, segment)
        return Decimal(0)
    return Decimal(note.total).quantize(_MONEY)


__all__ = [
    "RECONCILED",
    "AbortedSession",
    "ReconciledClose",
    "abort_dead_sessions",
    "owner_alive",
    "prepare_reconciled_close",
    "settle_reconciled_close",
    "this_host",
]
