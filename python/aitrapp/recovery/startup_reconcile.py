"""Start-up reconciliation: the database's open brackets against the broker, before trading.

Run once at start, in LIVE and PAPER alike. :func:`reconcile_at_start` reads
what earlier sessions left open in the database (non-terminal orders and
OPEN positions, grouped into brackets by plan id), reads the broker's order
book and positions, and compares them with :func:`aitrapp.kite.reconcile.reconcile`.
On top of that comparison it checks the database side: orders the broker
does not have (a fresh paper broker after a restart knows none), order rows
whose broker state moved on, and position rows that no longer match.

Not in agreement and not accepted: nothing is changed, the report is audited
and logged, and the runtime starts PAUSED. Accepted by the operator: the
broker repairs are applied (orphans cancelled, missing stops placed or the
position exited at market, as the reconcile module decides), then the
database is brought in line with the broker as it is after the repairs.

Brackets of an earlier process are not re-created as OCO machines (the
manager has no restore API): a resumed bracket rests at the broker, so any
entry of an earlier process that still works is cancelled on accept, lest it
fill with nobody to place its stop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal
from uuid import UUID

from aitrapp import broker_tag, order_client_id, parse_order_client_id
from aitrapp.brokers.base import (
    Broker,
    BrokerError,
    BrokerPosition,
    OrderRequest,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Product,
    Validity,
)
from aitrapp.brokers.journal import JournaledBroker
from aitrapp.db import repo
from aitrapp.db.pool import Conn, Pool
from aitrapp.db.repo import (
    AuditRow,
    DecisionRow,
    OrderAck,
    OrderRow,
    OrderStatusUpdate,
    PositionRow,
)
from aitrapp.db.writer import DbWriter
from aitrapp.exceptions import AitrappError
from aitrapp.kite.reconcile import (
    MAX_REPAIR_PASSES,
    ApplyResult,
    BracketState,
    CancelOrder,
    LocalBracket,
    LocalOrder,
    PlaceOrder,
    Problem,
    ReconcileReport,
    apply,
    market_exit_request,
    reconcile,
    tag_prefix,
)
from aitrapp.recovery.crash_recovery import prepare_reconciled_close, settle_reconciled_close

log = logging.getLogger(__name__)

NOT_AT_BROKER = "not at the broker on restart (reconciled)"
EXAMPLES = 5  # per list in the summary
_TERMINAL = repo.TERMINAL_STATUSES
_MARKET_TYPES = (OrderType.MARKET, OrderType.SLM)
_RUPEE_4DP = Decimal("0.0001")
_PREFIX_LEN = len(tag_prefix("0" * 24))  # every tag of a plan starts with its 16 hex chars


def _prefix(tag: str | None) -> str:
    return (tag or "")[:_PREFIX_LEN]


class ReconcileError(AitrappError):
    """Start-up reconciliation could not read what it must compare."""


# ---------------------------------------------------------------- what the database holds
@dataclass(frozen=True, slots=True)
class _DbPlan:
    plan_id: str
    orders: tuple[OrderRow, ...]  # every order of the plan, any session, oldest first
    position: PositionRow | None  # the OPEN position of an earlier session
    decision: DecisionRow | None
    placements: Mapping[str, Mapping[str, Any]]  # role -> PLACE_ORDER command (transitions)


@dataclass(frozen=True, slots=True)
class _DbState:
    plans: tuple[_DbPlan, ...]
    live_orders: tuple[OrderRow, ...]  # non-terminal, earlier sessions
    open_positions: tuple[PositionRow, ...]  # OPEN, earlier sessions
    known_tags: Mapping[str, str]  # tag -> client order id, for broker orders outside the plans


_SCOPE_SQL = (
    "SELECT plan_id FROM orders WHERE session_id <> $1 "
    "AND status NOT IN ('COMPLETE', 'CANCELLED', 'REJECTED') "
    "UNION SELECT plan_id FROM positions WHERE session_id <> $1 AND status = 'OPEN'"
)


async def _load_db(conn: Conn, session_id: UUID, broker_tags: Iterable[str]) -> _DbState:
    plan_ids = [r["plan_id"] for r in await conn.fetch(_SCOPE_SQL, session_id)]
    orders = [
        repo.OrderRow(**dict(r))
        for r in await conn.fetch(
            "SELECT * FROM orders WHERE plan_id = ANY($1::text[]) ORDER BY created_at, id",
            plan_ids,
        )
    ]
    positions = [
        repo.PositionRow(**dict(r))
        for r in await conn.fetch(
            "SELECT * FROM positions WHERE session_id <> $1 AND status = 'OPEN' "
            "ORDER BY opened_at, id",
            session_id,
        )
    ]
    decisions = {
        r["plan_id"]: repo.DecisionRow(**dict(r))
        for r in await conn.fetch(
            "SELECT * FROM decisions WHERE plan_id = ANY($1::text[])", plan_ids
        )
    }
    placements: dict[str, dict[str, Mapping[str, Any]]] = defaultdict(dict)
    for r in await conn.fetch(
        "SELECT plan_id, commands FROM bracket_transitions WHERE plan_id = ANY($1::text[]) "
        "ORDER BY plan_id, seq",
        plan_ids,
    ):
        for cmd in r["commands"] or ():
            role = _placement_role(cmd)
            if role is not None:
                placements[r["plan_id"]].setdefault(role, cmd)  # the first placement of a role
    by_plan: dict[str, list[OrderRow]] = defaultdict(list)
    for o in orders:
        by_plan[o.plan_id].append(o)
    open_by_plan = {p.plan_id: p for p in positions}
    plans = tuple(
        _DbPlan(
            plan_id=pid,
            orders=tuple(by_plan.get(pid, ())),
            position=open_by_plan.get(pid),
            decision=decisions.get(pid),
            placements=placements.get(pid, {}),
        )
        for pid in sorted(set(plan_ids))
    )
    in_scope = {tag_prefix(pid) for pid in plan_ids}
    outside = sorted({t for t in broker_tags if t and _prefix(t) not in in_scope})
    known_tags = {
        r["tag"]: r["client_order_id"]
        for r in await conn.fetch(
            "SELECT DISTINCT ON (tag) tag, client_order_id FROM orders "
            "WHERE tag = ANY($1::text[]) ORDER BY tag, created_at DESC",
            outside,
        )
    }
    live = tuple(o for o in orders if o.session_id != session_id and o.status not in _TERMINAL)
    return _DbState(plans, live, tuple(positions), known_tags)


def _placement_role(cmd: object) -> str | None:
    if not isinstance(cmd, Mapping) or cmd.get("kind") != "PLACE_ORDER":
        return None
    cid = cmd.get("client_order_id")
    if not isinstance(cid, str):
        return None
    try:
        return parse_order_client_id(cid)[1]
    except AitrappError:
        return None


# ---------------------------------------------------------------- brackets from rows
class _RowError(ValueError):
    """A row cannot be turned into an order request (names the table and column)."""


def _paise(value: Decimal | None, what: str) -> int | None:
    if value is None:
        return None
    paise = (value * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    if paise <= 0:
        raise _RowError(f"{what} must be positive, got {value}")
    return int(paise)


def _protection(order_type: OrderType) -> float | None:
    # Kite rejects API market orders without a band; -1 asks for its automatic one.
    return -1.0 if order_type in _MARKET_TYPES else None


def _order_type(value: object, what: str) -> OrderType:
    try:
        return OrderType(str(value))
    except ValueError:
        raise _RowError(f"{what}: unknown order type {value!r}") from None


def _product(value: str, what: str) -> Product:
    try:
        return Product(value)
    except ValueError:
        raise _RowError(f"{what}: unknown product {value!r}") from None


def _request_from_row(row: OrderRow) -> OrderRequest:
    where = f"orders[{row.client_order_id}]"
    if row.tag != broker_tag(row.client_order_id):
        raise _RowError(
            f"{where}.tag: {row.tag!r} is not the broker tag of its client id "
            f"({broker_tag(row.client_order_id)!r})"
        )
    order_type = _order_type(row.order_type, f"{where}.order_type")
    return OrderRequest(
        client_order_id=row.client_order_id,
        tag=row.tag,
        exchange=row.exchange,
        tradingsymbol=row.tradingsymbol,
        instrument_token=row.instrument_token,
        side=row.side,
        quantity=row.qty,
        order_type=order_type,
        product=_product(row.product, f"{where}.product"),
        validity=Validity.DAY,
        price_paise=_paise(row.price, f"{where}.price"),
        trigger_paise=_paise(row.trigger_price, f"{where}.trigger_price"),
        market_protection=_protection(order_type),
    )


def _command_paise(cmd: Mapping[str, Any], key: str, what: str) -> int | None:
    if cmd.get(f"{key}_paise") is not None:
        value = cmd[f"{key}_paise"]
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise _RowError(f"{what}.{key}_paise must be a positive integer, got {value!r}")
        return value
    text = cmd.get(key if key == "price" else "trigger")
    if text is None:
        return None
    try:
        return _paise(Decimal(str(text)), f"{what}.{key}")
    except ArithmeticError:
        raise _RowError(f"{what}.{key}: not a price: {text!r}") from None


def _request_from_command(
    cmd: Mapping[str, Any], entry: OrderRequest, plan_id: str
) -> OrderRequest:
    cid = str(cmd["client_order_id"])
    what = f"bracket_transitions[{plan_id}].commands[{cid}]"
    side, qty = cmd.get("side"), cmd.get("qty")
    if side not in ("BUY", "SELL"):
        raise _RowError(f"{what}.side must be BUY or SELL, got {side!r}")
    if not isinstance(qty, int) or isinstance(qty, bool) or qty <= 0:
        raise _RowError(f"{what}.qty must be a positive integer, got {qty!r}")
    order_type = _order_type(cmd.get("order_type"), f"{what}.order_type")
    return OrderRequest(
        client_order_id=cid,
        tag=broker_tag(cid),
        exchange=entry.exchange,
        tradingsymbol=entry.tradingsymbol,
        instrument_token=entry.instrument_token,
        side=side,
        quantity=qty,
        order_type=order_type,
        product=entry.product,
        price_paise=_command_paise(cmd, "price", what),
        trigger_paise=_command_paise(cmd, "trigger", what),
        market_protection=_protection(order_type),
    )


def _request_from_decision(role: str, d: DecisionRow, entry: OrderRequest) -> OrderRequest:
    cid = order_client_id(role, d.plan_id)
    what = f"decisions[{d.plan_id}]"
    stop = role.startswith("STOP")
    # The stop as the bracket planned it, as a stop-market: it must fill.
    order_type = OrderType.SLM if stop else OrderType.LIMIT
    price = _paise(d.stop if stop else d.tp, f"{what}.{'stop' if stop else 'tp'}")
    return OrderRequest(
        client_order_id=cid,
        tag=broker_tag(cid),
        exchange=entry.exchange,
        tradingsymbol=entry.tradingsymbol,
        instrument_token=entry.instrument_token,
        side="SELL" if entry.side == "BUY" else "BUY",
        quantity=entry.quantity,
        order_type=order_type,
        product=entry.product,
        price_paise=None if stop else price,
        trigger_paise=price if stop else None,
        market_protection=_protection(order_type),
    )


def _child(
    role: str, plan: _DbPlan, rows: Mapping[str, OrderRow], entry: OrderRequest
) -> OrderRequest | None:
    """The child as first requested: its order row, else the transition that commanded
    it, else the decision (a crash between the entry fill and the child's row)."""
    if role in rows:
        return _request_from_row(rows[role])
    cmd = plan.placements.get(role)
    if cmd is not None:
        return _request_from_command(cmd, entry, plan.plan_id)
    if plan.decision is not None:
        return _request_from_decision(role, plan.decision, entry)
    return None


def _stop_generation(role: str) -> int | None:
    """0 for STOP, n for STOPn (a lost stop placed again by a later process)."""
    if role == "STOP":
        return 0
    rest = role.removeprefix("STOP")
    return int(rest) if rest != role and rest.isdigit() else None


def _stop_role(roles: Iterable[str]) -> str:
    """The stop that protects the plan now: the latest generation any row or
    transition names (the earlier ones were lost before it was placed)."""
    gens = [g for g in map(_stop_generation, roles) if g is not None]
    return "STOP" if not gens or max(gens) == 0 else f"STOP{max(gens)}"


def _target_generation(role: str) -> int | None:
    """0 for TP, n for TARGETn (a lost target placed again by a later process)."""
    if role == "TP":
        return 0
    rest = role.removeprefix("TARGET")
    return int(rest) if rest != role and rest.isdigit() else None


def _target_role(roles: Iterable[str]) -> str:
    """The target of the plan now: the latest generation any row or transition
    names (the earlier ones were lost before it was placed)."""
    gens = [g for g in map(_target_generation, roles) if g is not None]
    return "TP" if not gens or max(gens) == 0 else f"TARGET{max(gens)}"


def _build_bracket(plan: _DbPlan) -> tuple[LocalBracket, bool]:
    """The bracket as planned, and whether its stop had to be stood in for."""
    rows = {o.role: o for o in plan.orders}
    if "ENTRY" not in rows:
        raise _RowError(f"orders: plan {plan.plan_id} has no ENTRY order row")
    entry = _request_from_row(rows["ENTRY"])
    stop = _child(_stop_role((*rows, *plan.placements)), plan, rows, entry)
    stand_in = stop is None
    if stop is None:
        # No row, transition or decision says where the stop was: a stand-in
        # lets reconcile match the plan's tags; it is never placed (an open
        # position is exited at market instead).
        cid = order_client_id("STOP", plan.plan_id)
        stop = dataclasses.replace(
            entry,
            client_order_id=cid,
            tag=broker_tag(cid),
            side="SELL" if entry.side == "BUY" else "BUY",
            order_type=OrderType.SLM,
            price_paise=None,
            trigger_paise=None,
            market_protection=-1.0,
        )
    scale_out = any(r.startswith("TP") and r != "TP" for r in (*rows, *plan.placements))
    # Scale-out children (TP1/TP2) are not modelled by reconcile: they count as
    # exits in flight, and the unprotected check in _compare still applies.
    tp = None if scale_out else _child(_target_role((*rows, *plan.placements)), plan, rows, entry)
    for name, child in (("STOP", stop), ("TP", tp)):
        if child is not None and child.side == entry.side:
            raise _RowError(
                f"plan {plan.plan_id}: the {name} side ({child.side}) must oppose the ENTRY side"
            )
    sent = tuple(
        LocalOrder(o.client_order_id, o.tag, o.broker_order_id)
        for o in plan.orders
        if o.broker_order_id
    )
    return LocalBracket(plan.plan_id, entry, stop, tp, sent), stand_in


# ---------------------------------------------------------------- the comparison
@dataclass(frozen=True, slots=True)
class OrderFix:
    """An order row of an earlier session that the broker contradicts."""

    client_order_id: str
    plan_id: str
    role: str
    db_status: str
    kind: Literal["not_at_broker", "stale"]
    broker: OrderUpdate | None = None  # the broker's order (stale only)


@dataclass(frozen=True, slots=True)
class PositionFix:
    plan_id: str
    kind: Literal["close", "resize", "create"]
    db_qty: int
    broker_qty: int
    exit_price: Decimal | None = None  # close: average of the exits the broker filled
    row: PositionRow | None = None  # create: the row to insert


@dataclass(frozen=True, slots=True)
class Survey:
    """One comparison of the database with the broker."""

    report: ReconcileReport
    plans: tuple[str, ...]
    db_live_orders: int
    db_open_positions: int
    broker_orders: int
    broker_positions: int
    order_fixes: tuple[OrderFix, ...] = ()
    position_fixes: tuple[PositionFix, ...] = ()
    problems: tuple[Problem, ...] = ()  # beyond the report's: settled by the operator only
    unprotected: tuple[str, ...] = ()  # open at the broker with no live stop
    resumed: tuple[str, ...] = ()  # open at the broker, protected, left to rest there

    @property
    def in_agreement(self) -> bool:
        return (
            self.report.in_agreement
            and not self.order_fixes
            and not self.position_fixes
            and not self.problems
        )


def _group_by_tag(orders: Iterable[OrderUpdate]) -> dict[str, list[OrderUpdate]]:
    out: dict[str, list[OrderUpdate]] = defaultdict(list)
    for o in orders:
        if o.tag:
            out[o.tag].append(o)
    return out


def _effective(orders: Sequence[OrderUpdate]) -> OrderUpdate | None:
    accepted = [o for o in orders if o.status is not OrderStatus.REJECTED]
    return accepted[0] if accepted else (orders[-1] if orders else None)


def _net_positions(positions: Iterable[BrokerPosition]) -> dict[tuple[str, str, str], int]:
    net: dict[tuple[str, str, str], int] = defaultdict(int)
    for p in positions:
        product = p.product.value if isinstance(p.product, Product) else str(p.product)
        net[(p.exchange, p.tradingsymbol, product)] += p.quantity
    return net


def _aware(ts: datetime | None) -> datetime | None:
    return ts if ts is not None and ts.tzinfo is not None else None


def _exit_price(b: LocalBracket, by_tag: Mapping[str, list[OrderUpdate]]) -> Decimal | None:
    prefix = tag_prefix(b.plan_id)
    qty, value = 0, Decimal(0)
    for tag, orders in by_tag.items():
        if tag.startswith(prefix) and tag != b.entry.tag:
            for o in orders:
                if o.filled_quantity > 0 and o.average_price > 0:
                    qty += o.filled_quantity
                    value += Decimal(str(o.average_price)) * o.filled_quantity
    return (value / qty).quantize(_RUPEE_4DP) if qty else None


def _compare(
    db: _DbState,
    session_id: UUID,
    orders: list[OrderUpdate],
    positions: list[BrokerPosition],
    now: datetime,
) -> Survey:
    problems: list[Problem] = []
    brackets: list[LocalBracket] = []
    held: set[str] = set()  # tag prefixes of plans we cannot model: their orders are left alone
    stand_ins: set[str] = set()  # plans whose stop could not be derived
    for plan in db.plans:
        try:
            b, stand_in = _build_bracket(plan)
        except (_RowError, AitrappError) as exc:
            held.add(tag_prefix(plan.plan_id))
            problems.append(Problem(plan.plan_id, f"left alone: {exc}"))
            continue
        brackets.append(b)
        if stand_in:
            stand_ins.add(b.plan_id)
    ours = [o for o in orders if _prefix(o.tag) not in held]
    report = reconcile(brackets, ours, positions, resolve=db.known_tags.get)
    by_tag = _group_by_tag(orders)
    by_id = {o.order_id: o for o in orders}
    net = _net_positions(positions)
    report, extra = _guard_report(report, brackets, by_tag, by_id)
    report = _exit_stand_ins(report, [b for b in brackets if b.plan_id in stand_ins], by_tag)
    problems += extra

    views = {v.plan_id: v for v in report.brackets}
    placing = {p.plan_id for p in report.to_place}
    unprotected: list[str] = []
    resumed: list[str] = []
    position_fixes: list[PositionFix] = []
    plans = {p.plan_id: p for p in db.plans}
    for b in brackets:
        view, plan = views[b.plan_id], plans[b.plan_id]
        if view.state is BracketState.OPEN:
            stop = _effective(by_tag.get(b.stop.tag, []))
            exiting = any(
                not o.status.is_terminal
                for tag, group in by_tag.items()
                if _prefix(tag) == tag_prefix(b.plan_id) and tag[_PREFIX_LEN:].startswith("EX")
                for o in group
            )
            if stop is None or stop.status.is_terminal:
                unprotected.append(b.plan_id)
                if b.plan_id not in placing and not exiting:
                    problems.append(
                        Problem(
                            b.plan_id, f"{view.open_quantity} open and no live stop: unprotected"
                        )
                    )
            else:
                resumed.append(b.plan_id)
        position_fixes += _position_fixes(b, plan, view.state, view.open_quantity, by_tag, net, now)
        if view.state is BracketState.ENTRY_NOT_PLACED and plan.position is not None:
            key = (b.entry.exchange, b.entry.tradingsymbol, b.entry.product.value)
            if net.get(key, 0) != 0:
                problems.append(
                    Problem(
                        b.plan_id,
                        f"the database holds a position of {plan.position.qty} but the broker has "
                        f"no order of this plan and {net[key]} on {key[0]}:{key[1]}: "
                        "the operator must settle it",
                    )
                )
    modelled = {b.plan_id for b in brackets}
    order_fixes = [
        fix
        for row in db.live_orders
        if row.plan_id in modelled and (fix := _order_fix(row, by_tag, by_id)) is not None
    ]
    return Survey(
        report=report,
        plans=tuple(p.plan_id for p in db.plans),
        db_live_orders=len(db.live_orders),
        db_open_positions=len(db.open_positions),
        broker_orders=len(orders),
        broker_positions=sum(1 for p in positions if p.quantity),
        order_fixes=tuple(order_fixes),
        position_fixes=tuple(position_fixes),
        problems=tuple(problems),
        unprotected=tuple(unprotected),
        resumed=tuple(resumed),
    )


def _guard_report(
    report: ReconcileReport,
    brackets: Sequence[LocalBracket],
    by_tag: Mapping[str, list[OrderUpdate]],
    by_id: Mapping[str, OrderUpdate],
) -> tuple[ReconcileReport, list[Problem]]:
    """Cancels the live entries of earlier processes (nobody would place their stop) and
    holds back orphan cancels on an instrument whose broker position nobody explains
    (the order may be what protects it)."""
    problems: list[Problem] = []
    mismatched = {(m.exchange, m.tradingsymbol) for m in report.position_mismatches}
    modelled = {tag_prefix(b.plan_id) for b in brackets}
    keep: list[CancelOrder] = []
    for c in report.to_cancel:
        o = by_id.get(c.order_id)
        outside = _prefix(c.tag) not in modelled
        if outside and o is not None and (o.exchange, o.tradingsymbol) in mismatched:
            problems.append(
                Problem(
                    None,
                    f"orphan {c.order_id} ({c.client_order_id}) not cancelled: the broker holds "
                    f"an unexplained position on {o.exchange}:{o.tradingsymbol} it may protect",
                )
            )
            continue
        keep.append(c)
    cancelling = {c.order_id for c in keep}
    for b in brackets:
        entry = _effective(by_tag.get(b.entry.tag, []))
        if entry is not None and not entry.status.is_terminal and entry.order_id not in cancelling:
            keep.append(
                CancelOrder(
                    entry.order_id,
                    entry.tag,
                    b.entry.client_order_id,
                    "entry of an earlier process: nothing would protect its fill",
                )
            )
    return dataclasses.replace(report, to_cancel=tuple(keep)), problems


def _exit_stand_ins(
    report: ReconcileReport,
    brackets: Sequence[LocalBracket],
    by_tag: Mapping[str, list[OrderUpdate]],
) -> ReconcileReport:
    """A stand-in stop is never placed: the open quantity is exited at market instead."""
    if not brackets:
        return report
    views = {v.plan_id: v for v in report.brackets}
    stand_in_stops = {b.stop.client_order_id for b in brackets}
    place = [p for p in report.to_place if p.request.client_order_id not in stand_in_stops]
    for b in brackets:
        view = views[b.plan_id]
        missing = any(p.request.client_order_id == b.stop.client_order_id for p in report.to_place)
        if view.state is BracketState.OPEN and missing:
            req = market_exit_request(b, view.open_quantity, by_tag)
            if req is not None:
                reason = f"{view.open_quantity} open, the stop cannot be derived: market exit"
                place.append(PlaceOrder(req, b.plan_id, reason))
    return dataclasses.replace(report, to_place=tuple(place))


def _position_fixes(
    b: LocalBracket,
    plan: _DbPlan,
    state: BracketState,
    open_qty: int,
    by_tag: Mapping[str, list[OrderUpdate]],
    net: Mapping[tuple[str, str, str], int],
    now: datetime,
) -> list[PositionFix]:
    pos = plan.position
    if state is BracketState.CONFLICT:
        return []  # the report already asks the operator
    if state is BracketState.OPEN:
        if pos is None:
            entry = _effective(by_tag.get(b.entry.tag, []))
            avg = Decimal(str(entry.average_price)) if entry is not None else Decimal(0)
            if avg <= 0:
                return []
            session = next(o.session_id for o in plan.orders if o.role == "ENTRY")
            row = PositionRow(
                session_id=session,
                plan_id=b.plan_id,
                instrument_token=b.entry.instrument_token,
                exchange=b.entry.exchange,
                tradingsymbol=b.entry.tradingsymbol,
                side=b.entry.side,
                qty=open_qty,
                avg_entry=avg.quantize(_RUPEE_4DP),
                opened_at=_aware(entry.exchange_timestamp if entry else None) or now,
                updated_at=now,
            )
            return [PositionFix(b.plan_id, "create", 0, open_qty, row=row)]
        if pos.qty != open_qty:
            return [PositionFix(b.plan_id, "resize", pos.qty, open_qty)]
        return []
    if pos is None:
        return []
    if state is BracketState.ENTRY_NOT_PLACED:
        key = (b.entry.exchange, b.entry.tradingsymbol, b.entry.product.value)
        if net.get(key, 0) != 0:
            return []  # a problem: the broker may hold this position under other orders
        return [PositionFix(b.plan_id, "close", pos.qty, 0)]
    return [PositionFix(b.plan_id, "close", pos.qty, 0, exit_price=_exit_price(b, by_tag))]


def _order_fix(
    row: OrderRow, by_tag: Mapping[str, list[OrderUpdate]], by_id: Mapping[str, OrderUpdate]
) -> OrderFix | None:
    same = by_id.get(row.broker_order_id) if row.broker_order_id else None
    broker = same if same is not None and same.tag == row.tag else None
    if broker is None:
        broker = _effective(by_tag.get(row.tag, []))
    if broker is None:
        return OrderFix(row.client_order_id, row.plan_id, row.role, row.status, "not_at_broker")
    if (
        broker.status.is_terminal
        or broker.filled_quantity > row.filled_qty
        or row.broker_order_id is None
        or row.status == "NEW"  # sent, never acknowledged in the database
    ):
        return OrderFix(
            row.client_order_id, row.plan_id, row.role, row.status, "stale", broker=broker
        )
    return None


# ---------------------------------------------------------------- the outcome
@dataclass(frozen=True, slots=True)
class AppliedAction:
    kind: str  # cancel, resize, place, db_order_cancelled, db_order_synced, db_position_*
    target: str  # broker order id, client order id or plan id
    ok: bool
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "target": self.target, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class StartupReconcile:
    """What start-up reconciliation found and, when accepted, what it did."""

    first: Survey
    accepted: bool
    final: Survey | None = None  # after the repairs (accepted and not in agreement)
    actions: tuple[AppliedAction, ...] = ()
    errors: tuple[str, ...] = ()
    passes: int = 0  # broker repair passes (compare -> apply) that ran

    @property
    def in_agreement(self) -> bool:
        """Database and broker agreed at start: nothing needed fixing."""
        return self.first.in_agreement

    @property
    def agrees_now(self) -> bool:
        """Agreement after the repairs (or at start, when nothing was repaired)."""
        return (self.final or self.first).in_agreement

    def may_trade(self, accept: bool = False) -> bool:
        """Whether new entries may start; ``accept`` is the operator overriding a disagreement."""
        return self.in_agreement or accept

    def summary(self) -> dict[str, Any]:
        """JSON-ready counts and a few examples of each finding (for the audit and the log)."""
        out: dict[str, Any] = {
            "in_agreement": self.in_agreement,
            "accepted": self.accepted,
            "may_trade": self.may_trade(self.accepted),
            **_survey_dict(self.first),
        }
        if self.final is not None:
            out["after_repair"] = {
                "in_agreement": self.final.in_agreement,
                **_survey_dict(self.final),
            }
        if self.actions or self.accepted:
            out["actions"] = {
                "passes": self.passes,
                "count": len(self.actions),
                "failed": sum(1 for a in self.actions if not a.ok),
                "items": [a.as_dict() for a in self.actions],
            }
        if self.errors:
            out["errors"] = list(self.errors)
        return out

    def lines(self) -> list[str]:
        """Readable lines for the log and the console."""
        s = self.first
        lines = list(s.report.summary()[:-1])
        lines += [f"db order {f.client_order_id} ({f.db_status}): {f.kind}" for f in s.order_fixes]
        lines += [
            f"db position {f.plan_id}: {f.kind} (db {f.db_qty}, broker {f.broker_qty})"
            for f in s.position_fixes
        ]
        lines += [f"problem [{p.plan_id or '-'}]: {p.message}" for p in s.problems]
        lines += [
            f"applied {a.kind} {a.target}: {'ok' if a.ok else a.detail}" for a in self.actions
        ]
        verdict = "in agreement" if self.in_agreement else "DISAGREES"
        if not self.in_agreement:
            verdict += " (accepted by the operator)" if self.accepted else " (trading paused)"
        lines.append("verdict: " + verdict)
        return lines


def _examples(items: Sequence[Any], fn: Any) -> dict[str, Any]:
    return {"count": len(items), "examples": [fn(i) for i in items[:EXAMPLES]]}


def _survey_dict(s: Survey) -> dict[str, Any]:
    r = s.report
    states: dict[str, int] = defaultdict(int)
    for v in r.brackets:
        states[v.state.value] += 1
    return {
        "database": {
            "plans": len(s.plans),
            "live_orders": s.db_live_orders,
            "open_positions": s.db_open_positions,
        },
        "broker": {"orders": s.broker_orders, "open_positions": s.broker_positions},
        "brackets": {"count": len(r.brackets), "by_state": dict(states)},
        "to_place": _examples(
            r.to_place,
            lambda p: {
                "client_order_id": p.request.client_order_id,
                "order_type": p.request.order_type.value,
                "quantity": p.request.quantity,
                "reason": p.reason,
            },
        ),
        "to_resize": _examples(
            r.to_resize,
            lambda a: {"order_id": a.order_id, "quantity": a.quantity, "reason": a.reason},
        ),
        "to_cancel": _examples(
            r.to_cancel, lambda c: {"order_id": c.order_id, "tag": c.tag, "reason": c.reason}
        ),
        "unknown_broker_orders": {
            "live": len(r.live_unknown_orders),
            **_examples(
                r.unknown_orders,
                lambda o: {
                    "order_id": o.order_id,
                    "status": o.status.value,
                    "side": o.side,
                    "quantity": o.quantity,
                    "instrument": f"{o.exchange}:{o.tradingsymbol}",
                    "tag": o.tag,
                },
            ),
        },
        "position_mismatches": _examples(
            r.position_mismatches,
            lambda m: {
                "instrument": f"{m.exchange}:{m.tradingsymbol}",
                "product": m.product,
                "expected": m.expected,
                "actual": m.actual,
            },
        ),
        "db_orders_not_at_broker": _examples(
            [f for f in s.order_fixes if f.kind == "not_at_broker"],
            lambda f: {"client_order_id": f.client_order_id, "status": f.db_status},
        ),
        "db_orders_stale": _examples(
            [f for f in s.order_fixes if f.kind == "stale"],
            lambda f: {
                "client_order_id": f.client_order_id,
                "status": f.db_status,
                "broker_status": f.broker.status.value if f.broker else None,
            },
        ),
        "db_positions": _examples(
            s.position_fixes,
            lambda f: {"plan_id": f.plan_id, "fix": f.kind, "db": f.db_qty, "broker": f.broker_qty},
        ),
        "unprotected": _examples(s.unprotected, str),
        "resumed": _examples(s.resumed, str),
        "problems": _examples(
            [*r.problems, *s.problems], lambda p: {"plan_id": p.plan_id, "message": p.message}
        ),
        "notes": list(r.notes[:EXAMPLES]),
    }


# ---------------------------------------------------------------- database repairs
_CANCEL_ORDER_SQL = (
    "UPDATE orders SET status = 'CANCELLED', status_message = $2, "
    "updated_at = GREATEST(updated_at, $3) "
    "WHERE client_order_id = $1 AND session_id <> $4 "
    "AND status NOT IN ('COMPLETE', 'CANCELLED', 'REJECTED')"
)
_CLOSE_POSITION_SQL = (
    "UPDATE positions SET status = 'CLOSED', closed_at = $2, exit_price = $3, "
    "updated_at = GREATEST(updated_at, $2) "
    "WHERE plan_id = $1 AND status = 'OPEN' AND session_id <> $4 AND qty = $5"
)
_RESIZE_POSITION_SQL = (
    "UPDATE positions SET qty = $2, updated_at = GREATEST(updated_at, $3) "
    "WHERE plan_id = $1 AND status = 'OPEN' AND session_id <> $4 AND qty = $5"
)
_CREATE_POSITION_SQL = (
    "INSERT INTO positions (id, session_id, plan_id, instrument_token, exchange, tradingsymbol, "
    "side, qty, avg_entry, opened_at, updated_at, status) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'OPEN') ON CONFLICT DO NOTHING"
)


def _changed(status: str) -> bool:
    return not status.endswith(" 0")


async def _repair_db(pool: Pool, s: Survey, session_id: UUID, now: datetime) -> list[AppliedAction]:
    """Brings the database in line with the broker, in one transaction of guarded writes."""
    done: list[AppliedAction] = []
    async with pool.acquire() as conn, conn.transaction():
        # One reconciliation at a time, whichever process runs it.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('aitrapp.startup_reconcile'))")
        for f in s.order_fixes:
            if f.kind == "not_at_broker":
                status = await conn.execute(
                    _CANCEL_ORDER_SQL, f.client_order_id, NOT_AT_BROKER, now, session_id
                )
                done.append(
                    AppliedAction(
                        "db_order_cancelled",
                        f.client_order_id,
                        _changed(status),
                        f"was {f.db_status}",
                    )
                )
                continue
            b = f.broker
            assert b is not None
            avg = Decimal(str(b.average_price)).quantize(_RUPEE_4DP) if b.filled_quantity else None
            ok = await repo.execute(
                conn,
                OrderStatusUpdate(
                    client_order_id=f.client_order_id,
                    status=b.status.value,
                    filled_qty=b.filled_quantity,
                    avg_price=avg if avg is not None and avg > 0 else None,
                    broker_order_id=b.order_id,
                    status_message=b.status_message,
                    ts=now,
                ),
            )
            done.append(
                AppliedAction(
                    "db_order_synced",
                    f.client_order_id,
                    ok,
                    f"{f.db_status} -> {b.status.value} filled {b.filled_quantity}",
                )
            )
        for p in s.position_fixes:
            if p.kind == "close":
                # The position becomes a trade at the price used, so no P&L vanishes.
                rc = await prepare_reconciled_close(conn, p.plan_id, p.exit_price)
                price = rc.exit_price if rc is not None else p.exit_price
                status = await conn.execute(
                    _CLOSE_POSITION_SQL, p.plan_id, now, price, session_id, p.db_qty
                )
                detail = rc.describe() if rc is not None else "no exit fill"
                if rc is not None and _changed(status):
                    detail += "; " + await settle_reconciled_close(conn, rc, p.db_qty)
            elif p.kind == "resize":
                status = await conn.execute(
                    _RESIZE_POSITION_SQL, p.plan_id, p.broker_qty, now, session_id, p.db_qty
                )
                detail = f"{p.db_qty} -> {p.broker_qty}"
            else:
                r = p.row
                assert r is not None
                status = await conn.execute(
                    _CREATE_POSITION_SQL,
                    r.id,
                    r.session_id,
                    r.plan_id,
                    r.instrument_token,
                    r.exchange,
                    r.tradingsymbol,
                    r.side,
                    r.qty,
                    r.avg_entry,
                    r.opened_at,
                    r.updated_at,
                )
                detail = f"{r.side} {r.qty} @ {r.avg_entry}"
            done.append(AppliedAction(f"db_position_{p.kind}", p.plan_id, _changed(status), detail))
    return done


# ---------------------------------------------------------------- broker repairs
async def _journal_placements(
    pool: Pool, report: ReconcileReport, session_id: UUID, now: datetime
) -> None:
    """Write-ahead rows for placements (an earlier session's row of the same id is
    kept: it is the same order, placed now for the first time)."""
    for p in report.to_place:
        req = p.request
        plan_id, role = parse_order_client_id(req.client_order_id)
        await repo.insert_order_new(
            pool,
            OrderRow(
                session_id=session_id,
                client_order_id=req.client_order_id,
                plan_id=plan_id,
                tag=req.tag,
                role=role,
                exchange=req.exchange,
                tradingsymbol=req.tradingsymbol,
                instrument_token=req.instrument_token,
                side=req.side,
                order_type=req.order_type.value,
                product=req.product.value,
                qty=req.quantity,
                price=None if req.price_paise is None else repo.rupees(req.price_paise),
                trigger_price=None if req.trigger_paise is None else repo.rupees(req.trigger_paise),
                created_at=now,
                updated_at=now,
            ),
        )


def _broker_actions(report: ReconcileReport, result: ApplyResult) -> list[AppliedAction]:
    out = [AppliedAction("cancel", oid, True) for oid in result.cancelled]
    out += [AppliedAction("resize", oid, True) for oid in result.resized]
    out += [AppliedAction("place", cid, True, f"order {oid}") for cid, oid in result.placed]
    out += [
        AppliedAction("place", cid, True, "already at the broker") for cid in result.already_there
    ]
    done = set(result.cancelled) | set(result.resized)
    done |= {cid for cid, _ in result.placed} | set(result.already_there)
    for c in report.to_cancel:
        if c.order_id not in done:
            out.append(AppliedAction("cancel", c.order_id, False, "failed: see errors"))
    for r in report.to_resize:
        if r.order_id not in done:
            out.append(AppliedAction("resize", r.order_id, False, "failed: see errors"))
    for p in report.to_place:
        if p.request.client_order_id not in done:
            out.append(
                AppliedAction("place", p.request.client_order_id, False, "failed: see errors")
            )
    return out


# ---------------------------------------------------------------- entry point
async def _survey(pool: Pool, broker: Broker, session_id: UUID) -> Survey:
    try:
        orders = await broker.orders()
        positions = await broker.positions()
    except BrokerError as exc:
        raise ReconcileError(f"cannot read the broker's orders and positions: {exc}") from exc
    db = await _load_db(pool, session_id, (o.tag for o in orders if o.tag))
    return _compare(db, session_id, orders, positions, datetime.now(UTC))


async def _audit(
    pool: Pool,
    writer: DbWriter | None,
    session_id: UUID,
    params: dict[str, Any],
    result: dict[str, Any],
) -> None:
    row = AuditRow(
        ts=datetime.now(UTC),
        actor="system",
        action="reconcile",
        session_id=session_id,
        params=params,
        result=result,
    )
    if writer is None or not writer.submit(row):
        await repo.execute(pool, row)


async def reconcile_at_start(
    *,
    pool: Pool,
    broker: Broker,
    session_id: UUID,
    accept: bool,
    writer: DbWriter | None = None,
    settle_s: float = 0.5,
    flush_timeout_s: float = 10.0,
    max_passes: int = MAX_REPAIR_PASSES,
) -> StartupReconcile:
    """Compares what earlier sessions left open with the broker; repairs only if ``accept``.

    ``session_id`` is the session starting now (its own orders are not
    reconciled). ``writer``, when given, is flushed first (rows spilled by a
    crashed process land before the comparison) and carries the audit row.
    ``settle_s`` is how long the broker gets to show each pass of repairs
    before the next comparison; at most ``max_passes`` passes run, until the
    broker leaves nothing to repair. Raises :class:`ReconcileError` when the broker cannot be
    read; database errors propagate (there is nothing to compare against).
    """
    if writer is not None:
        try:
            async with asyncio.timeout(flush_timeout_s):
                await writer.flush()
        except TimeoutError:
            log.warning("reconcile: the writer did not flush in %.0f s", flush_timeout_s)
    params = {"accept": accept, "broker": getattr(broker, "name", type(broker).__name__)}
    first = await _survey(pool, broker, session_id)
    if first.in_agreement or not accept:
        outcome = StartupReconcile(first, accepted=accept)
        _log(outcome)
        await _audit(pool, writer, session_id, params, outcome.summary())
        return outcome

    # Repair the broker until it agrees: one repair can call for another (a
    # take-profit placed now fills at once if the price ran through it while we
    # were down, and its stop must then go). Cancels come first in every pass.
    actions: list[AppliedAction] = []
    errors: list[str] = []
    survey, passes = first, 0
    # Repairs go to the broker itself and are journalled here (the row before the
    # call, every placement looked up by tag first). Not through the journal: it
    # refuses an id an earlier session journalled that the broker does not have
    # (a replay into the same database), yet that is exactly a child row whose
    # process died before the call, which the comparison just found missing.
    repairer = broker.inner if isinstance(broker, JournaledBroker) else broker
    while survey.report.actions and passes < max_passes:
        passes += 1
        now = datetime.now(UTC)
        await _journal_placements(pool, survey.report, session_id, now)
        result = await apply(survey.report, repairer)
        actions += _broker_actions(survey.report, result)
        errors += result.errors
        for cid, oid in result.placed:
            await repo.execute(pool, OrderAck(client_order_id=cid, broker_order_id=oid, ts=now))
        await asyncio.sleep(settle_s)  # let cancels and placements show in the order book
        survey = await _survey(pool, broker, session_id)
    if survey.report.actions:
        log.error("reconcile: broker repairs still pending after %d passes", passes)
    # The database follows the broker as it is now, after the repairs.
    actions += await _repair_db(pool, survey, session_id, datetime.now(UTC))
    final = await _survey(pool, broker, session_id)
    outcome = StartupReconcile(
        first,
        accepted=True,
        final=final,
        actions=tuple(actions),
        errors=tuple(errors),
        passes=passes,
    )
    _log(outcome)
    await _audit(pool, writer, session_id, params, outcome.summary())
    return outcome


def _log(outcome: StartupReconcile) -> None:
    level = logging.INFO if outcome.in_agreement else logging.WARNING
    for line in outcome.lines():
        log.log(level, "reconcile: %s", line)
    if outcome.final is not None and not outcome.final.in_agreement:
        log.error("reconcile: still disagrees after the accepted repairs")


__all__ = [
    "NOT_AT_BROKER",
    "AppliedAction",
    "OrderFix",
    "PositionFix",
    "ReconcileError",
    "StartupReconcile",
    "Survey",
    "reconcile_at_start",
]
