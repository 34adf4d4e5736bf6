"""After a restart: give the engine back the day an earlier process traded.

A new engine starts with an empty book, so heat, open positions, "one bracket
per instrument", trades today, cooldowns and the daily PnL would be
understated until the day rolls. :func:`restore_engine` reads them from the
database and hands them to the engine:

* the day's realized PnL: the summed gross PnL of the trades closed on the
  IST session day (the engine is told gross rupees on each close);
* trades today: the decisions issued that day (the engine counts every plan
  it issues toward ``max_trades_per_day``, even one cancelled unfilled);
* cooldowns: the last close on each instrument that day;
* open brackets: every OPEN position, with its decision, as the start-up
  reconciliation left it (so call this after the reconciliation).

:func:`adopt_open_brackets` then hands the same positions, with their stop
and take-profit orders, to the live kernel's OCO machines, so one-cancels-other
keeps working after the restart (a filled stop cancels its take-profit).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Protocol
from uuid import UUID

from aitrapp._core import (
    AdoptedOrder,
    AitrappError,
    BracketSpec,
    Engine,
    Instrument,
    Kernel,
    LiveKernel,
    Price,
    parse_order_client_id,
)
from aitrapp.calendar import IST, datetime_to_ns
from aitrapp.db.pool import Conn
from aitrapp.exceptions import PortfolioError


class BracketAdopter(Protocol):
    """What takes over an adopted bracket: the live kernel (its OCO machines)."""

    async def adopt_bracket(
        self,
        spec: BracketSpec,
        *,
        entry_filled: int,
        entry_avg: Price,
        children: list[AdoptedOrder],
        order_ids: dict[str, str],
    ) -> None: ...


log = logging.getLogger(__name__)

_EPOCH = date(1970, 1, 1)
_TERMINAL = ("COMPLETE", "CANCELLED", "REJECTED")

# Sessions whose trading figures belong to this day (same mode: a paper run
# beside a live one must not eat into the live daily-loss budget).
_DAY_SESSIONS = (
    "SELECT id FROM sessions WHERE trading_date = $1 AND ($2::text IS NULL OR mode = $2)"
)

_DAY_SQL = f"""
SELECT
  (SELECT coalesce(sum(gross_pnl), 0) FROM trades
    WHERE session_id IN ({_DAY_SESSIONS}) AND closed_at >= $3 AND closed_at < $4) AS gross,
  (SELECT coalesce(sum(charges), 0) FROM trades
    WHERE session_id IN ({_DAY_SESSIONS}) AND closed_at >= $3 AND closed_at < $4) AS charges,
  (SELECT count(*) FROM trades
    WHERE session_id IN ({_DAY_SESSIONS}) AND closed_at >= $3 AND closed_at < $4) AS closed,
  (SELECT count(*) FROM decisions
    WHERE session_id IN ({_DAY_SESSIONS}) AND ts >= $3 AND ts < $4) AS decisions
"""

_COOLDOWN_SQL = f"""
SELECT o.instrument_token AS token, max(t.closed_at) AS closed_at
FROM trades t
JOIN LATERAL (SELECT instrument_token FROM orders WHERE plan_id = t.plan_id LIMIT 1) o ON true
WHERE t.session_id IN ({_DAY_SESSIONS}) AND t.closed_at >= $3 AND t.closed_at < $4
GROUP BY o.instrument_token
ORDER BY o.instrument_token
"""

# Every OPEN position, from any earlier session: it is held at the broker now.
_OPEN_SQL = """
SELECT p.plan_id, p.instrument_token, p.side, p.qty, p.avg_entry, p.opened_at,
       d.plan_id IS NOT NULL AS has_decision, d.id AS decision_id, d.side AS decision_side,
       d.strategy,
       d.qty AS planned_qty, d.entry, d.stop, d.tp, d.ts AS decided_at,
       EXISTS (SELECT 1 FROM orders o WHERE o.plan_id = p.plan_id AND o.role = 'ENTRY'
               AND o.status <> ALL($1::text[])) AS entry_working
FROM positions p
LEFT JOIN decisions d ON d.plan_id = p.plan_id
WHERE p.status = 'OPEN'
ORDER BY p.opened_at, p.id
"""


@dataclass(frozen=True, slots=True)
class AdoptedPlan:
    """An open bracket of an earlier process, as the live kernel books it."""

    plan_id: str
    decision_id: UUID
    instrument: Instrument
    side: str
    strategy: str
    entry_filled: int
    entry_avg: float  # rupees
    exited: int
    opened_at: datetime


BookAdopted = Callable[[AdoptedPlan], None]


@dataclass(frozen=True, slots=True)
class EngineRestore:
    """What :func:`restore_engine` gave the engine, and what it could not."""

    session_day: date
    realized_gross: Decimal
    closed_trades: int
    trades_today: int  # decisions issued that day
    brackets: tuple[str, ...]  # plan ids restored as open brackets
    cooldowns: int
    skipped: tuple[tuple[str, str], ...]  # (plan id, why) of positions not restored

    def summary(self) -> dict[str, Any]:
        """JSON-ready counts for the runtime's state and the log."""
        return {
            "session_day": self.session_day.isoformat(),
            "realized_gross": str(self.realized_gross),
            "closed_trades": self.closed_trades,
            "trades_today": self.trades_today,
            "open_brackets": len(self.brackets),
            "plan_ids": list(self.brackets),
            "cooldowns": self.cooldowns,
            "skipped": [{"plan_id": p, "why": w} for p, w in self.skipped],
        }


def ist_day_number(day: date) -> int:
    """The engine's day numbering: days since 1970-01-01 (IST dates)."""
    return (day - _EPOCH).days


def _ist_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=IST).astimezone(UTC)
    return start, start + timedelta(days=1)


def _paise(rupees: Decimal) -> int:
    # Trades are written in whole paise; rounding only guards hand-made rows.
    return int((rupees * 100).to_integral_value(ROUND_HALF_UP))


async def restore_engine(
    engine: Engine | LiveKernel | Kernel,
    pool: Conn,
    session_day: date,
    *,
    mode: str | None = None,
) -> EngineRestore:
    """Restores ``session_day``'s figures and the open brackets into a fresh ``engine``.

    ``mode`` ("PAPER"/"LIVE"), when given, limits the day's figures to
    sessions of that mode. A position the engine cannot hold (no decision,
    an instrument it does not trade, bad prices) is logged and listed in
    ``skipped``, never raised: the rest still counts.
    """
    start, end = _ist_bounds(session_day)
    day_row = await pool.fetchrow(_DAY_SQL, session_day, mode, start, end)
    if day_row is None:  # an aggregate always returns a row
        raise RuntimeError("restore_engine: the day's totals query returned nothing")
    gross = Decimal(day_row["gross"])
    trades_today = int(day_row["decisions"])
    charges = Decimal(day_row["charges"])
    engine.restore_day(
        ist_day_number(session_day), _paise(gross), trades_today, charges_paise=_paise(charges)
    )

    cooldowns = 0
    for r in await pool.fetch(_COOLDOWN_SQL, session_day, mode, start, end):
        try:
            engine.restore_cooldown(int(r["token"]), datetime_to_ns(r["closed_at"]))
            cooldowns += 1
        except PortfolioError as e:  # an instrument this engine does not trade
            log.info("restore: no cooldown for token %s: %s", r["token"], e)

    restored: list[str] = []
    skipped: list[tuple[str, str]] = []
    for r in await pool.fetch(_OPEN_SQL, list(_TERMINAL)):
        plan_id = str(r["plan_id"])
        why = _restore_bracket(engine, r)
        if why is None:
            restored.append(plan_id)
        else:
            skipped.append((plan_id, why))
            log.error("restore: open position %s not restored: %s", plan_id, why)

    out = EngineRestore(
        session_day=session_day,
        realized_gross=gross,
        closed_trades=int(day_row["closed"]),
        trades_today=trades_today,
        brackets=tuple(restored),
        cooldowns=cooldowns,
        skipped=tuple(skipped),
    )
    log.info(
        "restore: day %s realized gross %s over %d closed trades, %d plans issued, "
        "%d open brackets, %d cooldowns, %d skipped",
        session_day,
        gross,
        out.closed_trades,
        trades_today,
        len(restored),
        cooldowns,
        len(skipped),
    )
    return out


def _restore_bracket(engine: Engine | LiveKernel | Kernel, r: Any) -> str | None:
    """Restores one OPEN position; returns why not, or None when it was restored."""
    if not r["has_decision"]:
        return "no decision row for the plan"
    if r["decision_side"] != r["side"]:
        return f"position side {r['side']} differs from the decision's {r['decision_side']}"
    held = int(r["qty"])
    # An entry still working may fill the rest of the plan; otherwise only
    # the held units are at risk.
    planned = max(held, int(r["planned_qty"])) if r["entry_working"] else held
    try:
        engine.restore_bracket(
            str(r["plan_id"]),
            int(r["instrument_token"]),
            str(r["side"]),
            str(r["strategy"]),
            float(r["entry"]),
            float(r["stop"]),
            float(r["tp"]),
            planned,
            held,
            avg_fill=float(r["avg_entry"]),
            signal_ts=datetime_to_ns(r["decided_at"]),
        )
    except (PortfolioError, ValueError) as e:
        return str(e)
    return None


# Children of the open positions (market exits too: their ids are taken).
_CHILDREN_SQL = """
SELECT plan_id, client_order_id, role, side, status, broker_order_id, qty, filled_qty,
       avg_price, price, trigger_price
FROM orders
WHERE plan_id = ANY($1::text[]) AND role <> 'ENTRY'
ORDER BY plan_id, created_at, id
"""
_ENTRY_SQL = """
SELECT plan_id, filled_qty, avg_price FROM orders
WHERE plan_id = ANY($1::text[]) AND role = 'ENTRY'
"""
# Live at the broker: the machine treats them as working.
_LIVE = ("PENDING", "OPEN", "TRIGGER PENDING")


def _price(v: Any) -> Price | None:
    # numeric(18, 4) columns: "1445.0000" holds whole paise.
    return None if v is None else Price(_paise(Decimal(v)))


def _adopted(o: Any) -> AdoptedOrder:
    """One child row as the machine adopts it. Dead ones too, filled or not:
    their ids are taken. A lost stop is placed again under the next stop id
    (STOP1, ...), a lost target under the next target id (TARGET1, ...); a
    lost scale-out TP1 is not placed again (TP2 takes its share)."""
    live, filled = o["status"] in _LIVE, int(o["filled_qty"])
    cid = str(o["client_order_id"])
    _, tag = parse_order_client_id(cid)
    return AdoptedOrder(
        tag,
        int(o["qty"]),
        filled,
        _price(o["avg_price"]) if filled else None,
        working=live,
        client_order_id=cid,
        price=_price(o["price"]),
        trigger=_price(o["trigger_price"]),
    )


async def adopt_open_brackets(
    oco: BracketAdopter,
    pool: Conn,
    instruments: dict[int, Instrument],
    spec_options: dict[str, Any],
    book: BookAdopted | None = None,
) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """Hands every OPEN position (as reconciled) to ``oco`` as an adopted bracket.

    ``spec_options`` are the BracketSpec keywords the runtime opens brackets
    with (entry/stop types, scale-out, ...). Returns (adopted plan ids,
    (plan id, why) of those not adopted); a position that cannot be adopted
    is logged, never raised.
    """
    rows = await pool.fetch(_OPEN_SQL, list(_TERMINAL))
    plan_ids = [str(r["plan_id"]) for r in rows]
    entries = {str(e["plan_id"]): e for e in await pool.fetch(_ENTRY_SQL, plan_ids)}
    children: dict[str, list[Any]] = {}
    for o in await pool.fetch(_CHILDREN_SQL, plan_ids):
        children.setdefault(str(o["plan_id"]), []).append(o)
    adopted: list[str] = []
    skipped: list[tuple[str, str]] = []
    for r in rows:
        plan_id = str(r["plan_id"])
        try:
            why = await _adopt_one(
                oco,
                r,
                entries.get(plan_id),
                children.get(plan_id, []),
                instruments,
                spec_options,
                book,
            )
        except (AitrappError, ValueError) as e:
            why = str(e)
        if why is None:
            adopted.append(plan_id)
        else:
            skipped.append((plan_id, why))
            log.error("restore: open bracket %s not adopted by the kernel: %s", plan_id, why)
    log.info("restore: %d open brackets adopted, %d not", len(adopted), len(skipped))
    return tuple(adopted), tuple(skipped)


async def _adopt_one(
    oco: BracketAdopter,
    r: Any,
    entry: Any,
    orders: list[Any],
    instruments: dict[int, Instrument],
    spec_options: dict[str, Any],
    book: BookAdopted | None = None,
) -> str | None:
    if not r["has_decision"]:
        return "no decision row for the plan"
    if r["entry_working"]:
        # The machine adopts a finished entry only: a working one could fill
        # unprotected later. Reconciliation or the operator must settle it.
        return "its ENTRY is still working"
    if any(o["side"] == r["side"] for o in orders):
        # Only a corrective (overfill) order trades in the entry direction.
        return "it has a corrective (overfill) order: settle it by hand"
    inst = instruments.get(int(r["instrument_token"]))
    if inst is None:
        return f"instrument {r['instrument_token']} is not in this session's universe"
    adopted = [_adopted(o) for o in orders]
    if entry is not None and int(entry["filled_qty"]) > 0 and entry["avg_price"] is not None:
        entry_filled, entry_avg = (
            int(entry["filled_qty"]),
            Price(_paise(Decimal(entry["avg_price"]))),
        )
    else:  # no entry row: what is held plus what already exited
        exited = sum(a.filled for a in adopted)
        entry_filled, entry_avg = int(r["qty"]) + exited, Price(_paise(Decimal(r["avg_entry"])))
    spec = BracketSpec(
        plan_id=str(r["plan_id"]),
        instrument=inst,
        side=str(r["side"]),
        qty=max(int(r["planned_qty"]), entry_filled),
        entry_price=Price(_paise(Decimal(r["entry"]))),
        stop=Price(_paise(Decimal(r["stop"]))),
        take_profit=Price(_paise(Decimal(r["tp"]))),
        **spec_options,
    )
    order_ids = {
        str(o["client_order_id"]): str(o["broker_order_id"])
        for o in orders
        if o["broker_order_id"] is not None
    }
    if book is not None:
        # Booked before the machine runs: its first commands may already fill.
        book(
            AdoptedPlan(
                plan_id=str(r["plan_id"]),
                decision_id=r["decision_id"],
                instrument=inst,
                side=str(r["side"]),
                strategy=str(r["strategy"]),
                entry_filled=entry_filled,
                entry_avg=entry_avg.paise / 100,
                exited=entry_filled - int(r["qty"]),
                opened_at=r["opened_at"],
            )
        )
    await oco.adopt_bracket(
        spec,
        entry_filled=entry_filled,
        entry_avg=entry_avg,
        children=adopted,
        order_ids=order_ids,
    )
    return None


__all__ = ["EngineRestore", "adopt_open_brackets", "ist_day_number", "restore_engine"]
