"""The burn-in check: judge one session from the database, criterion by criterion.

Criteria (thresholds from ``AITRAPP_BURNIN_*``, defaults from the issue):

- ``signals``: at least ``min_signals`` (50) signals;
- ``decisions``: at least ``min_decisions`` (3) decisions;
- ``oco_lifecycle``: at least ``min_oco_lifecycles`` (1) full OCO lifecycle
  (entry filled, a leg filled, its sibling cancelled);
- ``flatten``: the flatten drill completed in at most ``max_flatten_ms``
  (2000) and reported ok, with nothing left open (``audit_log`` action
  ``flatten``, else ``sessions.summary.flatten_drill``); flat (no position)
  and clean (no working order) are checked, and timed, apart;
- ``unique_client_ids``: no client id placed twice (one client id with two
  broker order ids), no broker tag or broker order id shared by two orders,
  no plan with two ENTRY orders;
- ``no_orphan_siblings``: no order left working after a TP/SL fill (or an
  exit) closed its bracket, and no exit quantity beyond the entry's;
- ``trade_chain``: every trade links signal -> decision -> filled orders (a
  RECONCILED trade, of a position start-up reconciliation closed, has no exit fill);
- ``fills_match``: the fills of each order sum to its filled quantity, and the
  signed fills of each position's plan to its open quantity (0 once closed; a
  position closed by start-up reconciliation keeps the quantity it closed, which
  its RECONCILED trade accounts for), and no plan holds filled quantity without
  a position;
- ``session_completed``: the session ended normally (COMPLETED). Final order
  states are only meaningful once a session is over;
- ``protection``: at most ``max_unraced_double_exits`` (0) double exits
  outside the races the kernel recorded (``sessions.summary.races``), and
  ``UNPROTECTED`` exits at most ``max_unprotected_pct`` (5) % of the trades.
  The verdict carries the session's protection figures
  (:mod:`aitrapp.report.protection`).

The verdict is stored in ``sessions.burnin_verdict`` (``repo.BurninVerdict``)
as JSON with the thresholds used, so the LIVE gate can refuse verdicts that
were judged with weaker thresholds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Self
from uuid import UUID

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from aitrapp.db import repo
from aitrapp.db.pool import Conn
from aitrapp.exceptions import ConfigError
from aitrapp.report import brackets, summary
from aitrapp.report.errors import ReportError
from aitrapp.report.protection import Protection, headline, problems
from aitrapp.report.protection_load import load_protection

VERDICT_VERSION = 1
ENV_PREFIX = "AITRAPP_BURNIN_"
MAX_EXAMPLES = 5  # failures listed per criterion; the count is always complete


class BurninCriteria(BaseSettings):
    """Thresholds, read from ``AITRAPP_BURNIN_<NAME>``; construct via :func:`load_criteria`."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    min_signals: int = Field(50, ge=0)
    min_decisions: int = Field(3, ge=0)
    min_oco_lifecycles: int = Field(1, ge=0)
    max_flatten_ms: float = Field(2000.0, gt=0)
    max_unprotected_pct: float = Field(5.0, ge=0, le=100)
    max_unraced_double_exits: int = Field(0, ge=0)

    def at_least_as_strict_as(self, other: BurninCriteria) -> bool:
        return (
            self.min_signals >= other.min_signals
            and self.min_decisions >= other.min_decisions
            and self.min_oco_lifecycles >= other.min_oco_lifecycles
            and self.max_flatten_ms <= other.max_flatten_ms
            and self.max_unprotected_pct <= other.max_unprotected_pct
            and self.max_unraced_double_exits <= other.max_unraced_double_exits
        )


def load_criteria(**overrides: Any) -> BurninCriteria:
    """Env (``AITRAPP_BURNIN_*``) plus ``overrides``; errors name the env key."""
    try:
        return BurninCriteria(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = [
            f"{ENV_PREFIX}{str(e['loc'][0]).upper() if e['loc'] else ''}: {e['msg']}"
            for e in exc.errors()
        ]
        raise ConfigError("invalid burn-in criteria: " + "; ".join(problems)) from None


@dataclass(frozen=True, slots=True)
class CriterionResult:
    name: str  # stable key, e.g. "signals"
    label: str  # what is required, for people
    passed: bool
    measured: float | None  # the measured value (count, ms); None: nothing to measure
    threshold: str  # e.g. ">= 50", "<= 2000 ms", "== 0"
    detail: str  # what was found; on failure, why

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "passed": self.passed,
            "measured": self.measured,
            "threshold": self.threshold,
            "detail": self.detail,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Self:
        measured = summary.number(doc.get("measured"))
        return cls(
            name=str(doc.get("name", "?")),
            label=str(doc.get("label", "")),
            passed=doc.get("passed") is True,
            measured=measured,
            threshold=str(doc.get("threshold", "")),
            detail=str(doc.get("detail", "")),
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    session_id: UUID
    trading_date: date
    mode: str
    feed: str
    synthetic: bool
    status: str
    evaluated_at: datetime
    criteria: tuple[CriterionResult, ...]
    thresholds: BurninCriteria
    protection: Protection | None = None  # the session's figures, shown with the verdict

    @property
    def passed(self) -> bool:
        return bool(self.criteria) and all(c.passed for c in self.criteria)

    @property
    def failed(self) -> tuple[CriterionResult, ...]:
        return tuple(c for c in self.criteria if not c.passed)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": VERDICT_VERSION,
            "passed": self.passed,
            "session_id": str(self.session_id),
            "trading_date": self.trading_date.isoformat(),
            "mode": self.mode,
            "feed": self.feed,
            "synthetic": self.synthetic,
            "status": self.status,
            "evaluated_at": self.evaluated_at.isoformat(),
            "thresholds": self.thresholds.model_dump(),
            "criteria": [c.to_json() for c in self.criteria],
            "protection": self.protection.to_json() if self.protection else None,
        }


def stored_thresholds(doc: Mapping[str, Any]) -> BurninCriteria | None:
    """The thresholds a stored verdict was judged with; None if absent or invalid."""
    raw = doc.get("thresholds")
    if not isinstance(raw, Mapping) or not set(BurninCriteria.model_fields) <= set(raw):
        return None
    try:
        # Validate the stored values alone: the environment must not fill gaps.
        return BurninCriteria.model_validate(dict(raw))
    except ValidationError:
        return None


# ---- evaluation ----
async def evaluate_session(
    conn: Conn, session_id: UUID, *, now: datetime, criteria: BurninCriteria | None = None
) -> Verdict:
    """Judge one session from the database (does not store the verdict)."""
    crit = criteria if criteria is not None else load_criteria()
    session = await repo.get_session(conn, session_id)
    if session is None:
        raise ReportError(f"session: no session with id {session_id}")
    orders = [
        brackets.OrderState(**dict(r))
        for r in await conn.fetch(
            "SELECT client_order_id, plan_id, role, side, status, qty, filled_qty FROM orders "
            "WHERE session_id = $1 ORDER BY created_at, id",
            session_id,
        )
    ]
    plans = brackets.group_by_plan(orders)
    protection = await load_protection(conn, [session.id], [session.summary])
    results = (
        await _count_criterion(conn, session_id, "signals", crit.min_signals),
        await _count_criterion(conn, session_id, "decisions", crit.min_decisions),
        _oco_criterion(plans, crit.min_oco_lifecycles),
        await _flatten_criterion(conn, session, crit.max_flatten_ms),
        await _unique_ids_criterion(conn, session_id),
        _siblings_criterion(plans),
        await _chain_criterion(conn, session_id, plans),
        await _fills_criterion(conn, session_id),
        _completed_criterion(session),
        _protection_criterion(protection, crit),
    )
    return Verdict(
        session_id=session.id,
        trading_date=session.trading_date,
        mode=session.mode,
        feed=session.feed,
        synthetic=summary.is_synthetic(session.summary, session.feed),
        status=session.status,
        evaluated_at=now,
        criteria=results,
        thresholds=crit,
        protection=protection,
    )


async def store_verdict(conn: Conn, verdict: Verdict) -> None:
    """Write the verdict onto its session (replacing an earlier one)."""
    changed = await repo.execute(
        conn, repo.BurninVerdict(session_id=verdict.session_id, verdict=verdict.to_json())
    )
    if not changed:
        raise ReportError(f"session: {verdict.session_id} vanished before its verdict was stored")


async def check_session(
    conn: Conn,
    session_id: UUID,
    *,
    now: datetime,
    criteria: BurninCriteria | None = None,
    store: bool = True,
) -> Verdict:
    """Evaluate and (by default) store: what the session runner calls once a session has ended."""
    verdict = await evaluate_session(conn, session_id, now=now, criteria=criteria)
    if store:
        await store_verdict(conn, verdict)
    return verdict


async def sessions_on(conn: Conn, day: date) -> list[repo.SessionRow]:
    """Every session of a trading date, oldest first."""
    rows = await conn.fetch(
        "SELECT * FROM sessions WHERE trading_date = $1 ORDER BY started_at, id", day
    )
    return [repo.SessionRow(**dict(r)) for r in rows]


async def recent_verdicts(conn: Conn, limit: int) -> list[repo.SessionRow]:
    """The newest ``limit`` sessions that carry a verdict."""
    if not 1 <= limit <= repo.MAX_PAGE:
        raise ReportError(f"last: must be 1..{repo.MAX_PAGE}, got {limit}")
    rows = await conn.fetch(
        "SELECT * FROM sessions WHERE burnin_verdict IS NOT NULL "
        "ORDER BY trading_date DESC, started_at DESC LIMIT $1",
        limit,
    )
    return [repo.SessionRow(**dict(r)) for r in rows]


# ---- criteria ----
def _examples(items: Sequence[str]) -> str:
    shown = "; ".join(items[:MAX_EXAMPLES])
    more = len(items) - MAX_EXAMPLES
    return shown + (f"; and {more} more" if more > 0 else "")


async def _count_criterion(
    conn: Conn, session_id: UUID, table: str, minimum: int
) -> CriterionResult:
    n = int(await conn.fetchval(f"SELECT count(*) FROM {table} WHERE session_id = $1", session_id))
    return CriterionResult(
        name=table,
        label=f"at least {minimum} {table}",
        passed=n >= minimum,
        measured=n,
        threshold=f">= {minimum}",
        detail=f"{n} {table}",
    )


def _oco_criterion(plans: Sequence[brackets.Plan], minimum: int) -> CriterionResult:
    full = [p.plan_id for p in plans if brackets.is_full_oco_lifecycle(p)]
    return CriterionResult(
        name="oco_lifecycle",
        label=f"at least {minimum} full OCO lifecycle (entry filled, one leg filled, "
        "sibling cancelled)",
        passed=len(full) >= minimum,
        measured=len(full),
        threshold=f">= {minimum}",
        detail=(f"{len(full)} of {len(plans)} plans, e.g. {full[0]}" if full else
                f"none of {len(plans)} plans completed a full OCO lifecycle"),
    )  # fmt: skip


async def _flatten_records(
    conn: Conn, session: repo.SessionRow
) -> tuple[str, list[Mapping[str, Any]]]:
    """The flatten results: audit_log first, else the runner's summary."""
    rows = await conn.fetch(
        "SELECT ts, result FROM audit_log WHERE action = 'flatten' AND (session_id = $1 "
        "OR (session_id IS NULL AND ts >= $2 AND ($3::timestamptz IS NULL OR ts <= $3))) "
        "ORDER BY ts, id",
        session.id,
        session.started_at,
        session.ended_at,
    )
    if rows:
        return "audit_log", [r["result"] if isinstance(r["result"], Mapping) else {} for r in rows]
    drill = session.summary.get("flatten_drill")
    if drill is not None:
        return "summary.flatten_drill", [drill if isinstance(drill, Mapping) else {}]
    return "", []


async def _flatten_criterion(
    conn: Conn, session: repo.SessionRow, max_ms: float
) -> CriterionResult:
    source, records = await _flatten_records(conn, session)
    problems: list[str] = []
    slowest: float | None = None
    for i, rec in enumerate(records, 1):
        where = f"{source} #{i}" if len(records) > 1 else source
        raw = rec.get("elapsed_ms")
        elapsed = summary.number(raw)
        if elapsed is None:
            problems.append(f"{where}: elapsed_ms missing or not a number ({raw!r})")
        else:
            slowest = elapsed if slowest is None else max(slowest, elapsed)
            if elapsed > max_ms:
                problems.append(f"{where}: took {elapsed:g} ms > {max_ms:g} ms")
        if rec.get("ok") is not True:
            problems.append(f"{where}: ok is {rec.get('ok')!r}, not true")
        # Recorded since flatten sends exits first: flat and clean, each with its time.
        for key, remains in (("flat", "positions left open"), ("clean", "orders left working")):
            if rec.get(key) is False:
                problems.append(f"{where}: not {key} afterwards ({remains})")
    drill = session.summary.get("flatten_drill")
    if isinstance(drill, Mapping):  # what was left behind is only in the summary
        for key in ("open_positions_after", "working_orders_after"):
            left = summary.number(drill.get(key))
            if left is not None and left > 0:
                problems.append(f"summary.flatten_drill.{key} = {left:g}")
    if not records:
        problems.append("no flatten drill recorded (audit_log action 'flatten' or "
                        "summary.flatten_drill)")  # fmt: skip
    ok_detail = f"{slowest:g} ms ({source})" if slowest is not None else ""
    for key, label in (("flat_after_ms", "flat after"), ("clean_after_ms", "clean after")):
        times = [summary.number(r.get(key)) for r in records]
        worst = max((t for t in times if t is not None), default=None)
        if worst is not None and ok_detail:
            ok_detail += f", {label} {worst:g} ms"
    return CriterionResult(
        name="flatten",
        label=f"flatten completed in <= {max_ms:g} ms",
        passed=not problems,
        measured=slowest,
        threshold=f"<= {max_ms:g} ms",
        detail=_examples(problems) if problems else ok_detail,
    )


async def _unique_ids_criterion(conn: Conn, session_id: UUID) -> CriterionResult:
    problems: list[str] = []
    placed_twice = await conn.fetch(
        """
        SELECT client_order_id, array_agg(DISTINCT broker_order_id ORDER BY broker_order_id) AS ids
        FROM (
            SELECT e.client_order_id, e.broker_order_id FROM order_events e
            JOIN orders o ON o.client_order_id = e.client_order_id
            WHERE o.session_id = $1 AND e.broker_order_id IS NOT NULL
            UNION ALL
            SELECT client_order_id, broker_order_id FROM orders
            WHERE session_id = $1 AND broker_order_id IS NOT NULL
        ) x
        GROUP BY client_order_id HAVING count(DISTINCT broker_order_id) > 1
        ORDER BY client_order_id
        """,
        session_id,
    )
    problems += [
        f"{r['client_order_id']} placed as broker orders {', '.join(r['ids'])}"
        for r in placed_twice
    ]
    for column, what in (("tag", "broker tag"), ("broker_order_id", "broker order id")):
        shared = await conn.fetch(
            f"SELECT {column} AS v, array_agg(client_order_id ORDER BY client_order_id) AS cids "
            f"FROM orders WHERE session_id = $1 AND {column} IS NOT NULL "
            f"GROUP BY {column} HAVING count(*) > 1 ORDER BY {column}",
            session_id,
        )
        problems += [f"{what} {r['v']} shared by {', '.join(r['cids'])}" for r in shared]
    two_entries = await conn.fetch(
        "SELECT plan_id, array_agg(client_order_id ORDER BY client_order_id) AS cids "
        "FROM orders WHERE session_id = $1 AND upper(role) = 'ENTRY' "
        "GROUP BY plan_id HAVING count(*) > 1 ORDER BY plan_id",
        session_id,
    )
    problems += [
        f"plan {r['plan_id']} has {len(r['cids'])} ENTRY orders: {', '.join(r['cids'])}"
        for r in two_entries
    ]
    return CriterionResult(
        name="unique_client_ids",
        label="no duplicate client ids (each placed once, distinct tags and broker ids)",
        passed=not problems,
        measured=len(problems),
        threshold="== 0",
        detail=_examples(problems) if problems else "every order placed once",
    )


def _siblings_criterion(plans: Sequence[brackets.Plan]) -> CriterionResult:
    problems = [p.detail for plan in plans for p in brackets.sibling_problems(plan)]
    closed = sum(1 for p in plans if p.closed)
    return CriterionResult(
        name="no_orphan_siblings",
        label="no sibling left working after a TP or SL fill",
        passed=not problems,
        measured=len(problems),
        threshold="== 0",
        detail=_examples(problems) if problems else f"{closed} closed brackets, none left working",
    )


async def _chain_criterion(
    conn: Conn, session_id: UUID, plans: Sequence[brackets.Plan]
) -> CriterionResult:
    rows = await conn.fetch(
        """
        SELECT t.id, t.plan_id, t.qty, t.exit_reason, d.id AS decision_id,
               d.plan_id AS decision_plan,
               d.session_id AS decision_session, s.id AS signal_id,
               s.session_id AS signal_session
        FROM trades t
        LEFT JOIN decisions d ON d.id = t.decision_id
        LEFT JOIN signals s ON s.id = d.signal_id
        WHERE t.session_id = $1 ORDER BY t.closed_at, t.id
        """,
        session_id,
    )
    by_plan = {p.plan_id: p for p in plans}
    traded: dict[str, int] = {}
    for r in rows:
        traded[r["plan_id"]] = traded.get(r["plan_id"], 0) + r["qty"]
    problems: list[str] = []
    broken: set[UUID] = set()
    for r in rows:
        tid, plan_id = r["id"], r["plan_id"]
        before = len(problems)
        if r["decision_id"] is None:
            problems.append(f"trade {tid}: no decision")
            broken.add(tid)
            continue
        if r["decision_plan"] != plan_id:
            problems.append(f"trade {tid}: plan {plan_id} but its decision is {r['decision_plan']}")
        if r["decision_session"] != session_id:
            problems.append(f"trade {tid}: decision belongs to session {r['decision_session']}")
        if r["signal_id"] is None:
            problems.append(f"trade {tid}: decision {r['decision_id']} has no signal")
        elif r["signal_session"] != session_id:
            problems.append(f"trade {tid}: signal belongs to session {r['signal_session']}")
        plan = by_plan.get(plan_id)
        if plan is None:
            problems.append(f"trade {tid}: no orders for plan {plan_id}")
            broken.add(tid)
            continue
        if plan.entry_filled <= 0:
            problems.append(f"trade {tid}: no filled ENTRY order for plan {plan_id}")
        elif traded[plan_id] > plan.entry_filled:
            problems.append(
                f"trade {tid}: trades of plan {plan_id} cover {traded[plan_id]}, "
                f"its entry filled {plan.entry_filled}"
            )
        if r["exit_reason"] == RECONCILED:
            pass  # closed by start-up reconciliation: the broker no longer held it
        elif plan.exit_filled <= 0:
            problems.append(f"trade {tid}: no filled exit order for plan {plan_id}")
        elif traded[plan_id] > plan.exit_filled:
            problems.append(
                f"trade {tid}: trades of plan {plan_id} cover {traded[plan_id]}, "
                f"its exits filled {plan.exit_filled}"
            )
        if len(problems) > before:
            broken.add(tid)
    return CriterionResult(
        name="trade_chain",
        label="every trade chains signal -> decision -> orders -> trade",
        passed=not problems,
        measured=len(broken),
        threshold="== 0",
        detail=_examples(problems) if problems else f"{len(rows)} trades, all chained",
    )


RECONCILED = repo.RECONCILED_EXIT  # the trade of a position reconciliation closed

_ORDER_FILLS_SQL = """
SELECT o.client_order_id, o.filled_qty, COALESCE(sum(f.qty), 0)::int AS fills
FROM orders o LEFT JOIN fills f ON f.client_order_id = o.client_order_id
WHERE ($1::uuid IS NULL OR o.session_id = $1)
GROUP BY o.client_order_id, o.filled_qty
HAVING COALESCE(sum(f.qty), 0) <> o.filled_qty
ORDER BY o.client_order_id
"""
# Per plan: its fills signed by the side of its entry (exits and buy-backs net out).
_PLAN_FILLS_SQL = """
WITH entry_side AS (
    SELECT DISTINCT ON (plan_id) plan_id, side FROM orders
    WHERE upper(role) = 'ENTRY' ORDER BY plan_id, created_at, id
), plan_fills AS (
    SELECT o.plan_id,
           sum(CASE WHEN o.side = e.side THEN f.qty ELSE -f.qty END)::int AS net
    FROM orders o
    JOIN entry_side e ON e.plan_id = o.plan_id
    JOIN fills f ON f.client_order_id = o.client_order_id
    GROUP BY o.plan_id
), reconciled AS (
    SELECT plan_id, sum(qty)::int AS qty FROM trades WHERE exit_reason = $2 GROUP BY plan_id
)
SELECT coalesce(p.plan_id, pf.plan_id) AS plan_id, p.status, p.qty,
       coalesce(pf.net, 0) AS net, coalesce(r.qty, 0) AS reconciled
FROM positions p
FULL JOIN plan_fills pf ON pf.plan_id = p.plan_id
LEFT JOIN reconciled r ON r.plan_id = coalesce(p.plan_id, pf.plan_id)
WHERE ($1::uuid IS NULL AND (p.id IS NOT NULL OR pf.net <> 0))
   OR p.session_id = $1
   OR (p.id IS NULL AND pf.net <> 0 AND EXISTS (
        SELECT 1 FROM orders x WHERE x.plan_id = pf.plan_id AND x.session_id = $1))
ORDER BY 1
"""


async def fill_mismatches(conn: Conn, session_id: UUID | None) -> list[str]:
    """Where fills and the order book or the positions disagree (one session, or all).

    Orders: the fills of an order sum to its filled quantity. Positions: the
    signed fills of the plan equal the open quantity while OPEN, and 0 once
    CLOSED, except that a position closed by start-up reconciliation (no exit
    fill: the broker no longer had it) keeps the quantity its RECONCILED trade
    accounts for. A plan with filled quantity and no position row is a mismatch.
    """
    problems = [
        f"order {r['client_order_id']}: filled {r['filled_qty']}, its fills sum to {r['fills']}"
        for r in await conn.fetch(_ORDER_FILLS_SQL, session_id)
    ]
    for r in await conn.fetch(_PLAN_FILLS_SQL, session_id, RECONCILED):
        plan, net = r["plan_id"], r["net"]
        if r["status"] is None:
            problems.append(f"plan {plan}: fills leave {net} open and there is no position")
        elif r["status"] == "OPEN" and net != r["qty"]:
            problems.append(f"position {plan}: OPEN {r['qty']}, its fills leave {net}")
        elif r["status"] == "CLOSED" and net != r["reconciled"]:
            closed_by = f"reconciliation closed {r['reconciled']}" if r["reconciled"] else "flat"
            problems.append(f"position {plan}: CLOSED ({closed_by}), its fills leave {net}")
    return problems


async def _fills_criterion(conn: Conn, session_id: UUID) -> CriterionResult:
    problems = await fill_mismatches(conn, session_id)
    n = int(
        await conn.fetchval(
            "SELECT count(*) FROM fills f JOIN orders o USING (client_order_id) "
            "WHERE o.session_id = $1",
            session_id,
        )
    )
    return CriterionResult(
        name="fills_match",
        label="fills add up to every order's filled quantity and to every position",
        passed=not problems,
        measured=len(problems),
        threshold="== 0",
        detail=_examples(problems) if problems else f"{n} fills, all accounted for",
    )


def _completed_criterion(session: repo.SessionRow) -> CriterionResult:
    return CriterionResult(
        name="session_completed",
        label="session ended normally (COMPLETED)",
        passed=session.status == "COMPLETED",
        measured=None,
        threshold="COMPLETED",
        detail=f"status {session.status}",
    )


def _protection_criterion(p: Protection, crit: BurninCriteria) -> CriterionResult:
    found = problems(
        p,
        max_unprotected_pct=crit.max_unprotected_pct,
        max_unraced_double_exits=crit.max_unraced_double_exits,
    )
    return CriterionResult(
        name="protection",
        label=f"no more than {crit.max_unraced_double_exits} double exits outside recorded "
        f"races, UNPROTECTED at most {crit.max_unprotected_pct:g} % of trades",
        passed=not found,
        measured=p.unraced_double_exits,
        threshold=f"<= {crit.max_unraced_double_exits} unraced, "
        f"<= {crit.max_unprotected_pct:g} % UNPROTECTED",
        detail=_examples(found) if found else headline(p),
    )
