"""Start-up reconciliation: our open brackets against the broker's order book.

Run before trading starts, in LIVE and PAPER alike. The database says what
we *meant* (each open bracket's ENTRY, STOP and TP requests, and which
orders were sent); the broker's ``orders()`` and ``positions()`` say what
*is*. :func:`reconcile` is pure: it compares them and returns a
:class:`ReconcileReport` with

- the state of each bracket at the broker (awaiting entry, open, closed ...),
- protective children to place (missing STOP/TP, sized to the open quantity),
- children to resize (a live child not matching the open quantity),
- orphans to cancel (a live child whose bracket is flat or never filled),
- a market exit for a position whose stop is gone (REJECTED, CANCELLED or
  used up) and cannot be re-placed under the same client id,
- unknown broker orders (no tag we know) and net-position mismatches,
- problems only an operator can settle (a duplicate tag, over-exit,
  an order the database says was sent but the broker does not have),

and the verdict :meth:`ReconcileReport.may_trade`: only when nothing is left
to do and nothing disagrees, or when the operator accepts.

The broker's net position has the last word on placements: a missing child
or a market exit is placed only where the broker still holds (at least) the
position our fills account for, in the same direction, since a child placed
for a position that is gone opens a new one when it fills. Where the broker
is flat, every live exit order of ours on that instrument is cancelled:
nothing is left working on a flat account.

:func:`apply` carries the actions out through any ``Broker`` (cancels first,
so a new exit never races an old one), and :func:`reconcile_and_repair` runs
compare -> apply -> compare until nothing is left to do or a small bound of
passes is hit: one repair can call for another (a take-profit placed after a
restart fills at once when the price ran through it, and its stop must then
be cancelled).

Matching is by broker tag: ``broker_tag(order_client_id(role, plan_id))`` is
16 hex chars of the plan id plus a role code, so every order of a plan shares
a prefix and each role has its own tag. A tag at the broker is never placed
again unless every order under it was REJECTED (Kite records RMS rejections
as orders).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from enum import StrEnum

from aitrapp import broker_tag, order_client_id
from aitrapp.brokers.base import (
    Broker,
    BrokerError,
    BrokerPosition,
    OrderRequest,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Product,
)

log = logging.getLogger(__name__)

MAX_EXITS = 99  # EXIT, EXIT1 .. EXIT99
MAX_REPAIR_PASSES = 4  # compare -> apply rounds before giving up (each may enable the next)


@dataclass(frozen=True, slots=True)
class LocalOrder:
    """An order the database records for a bracket."""

    client_order_id: str
    tag: str
    broker_order_id: str | None = None  # None: written (NEW) but never acknowledged


@dataclass(frozen=True, slots=True)
class LocalBracket:
    """One bracket the database holds open, as planned.

    ``stop`` and ``tp`` are the child requests at the planned quantity;
    reconciliation resizes them to the quantity actually open.
    """

    plan_id: str
    entry: OrderRequest
    stop: OrderRequest
    tp: OrderRequest | None = None
    sent: tuple[LocalOrder, ...] = ()


class BracketState(StrEnum):
    ENTRY_NOT_PLACED = "ENTRY_NOT_PLACED"  # the intent never reached the broker
    AWAITING_ENTRY = "AWAITING_ENTRY"  # entry live, nothing filled
    OPEN = "OPEN"  # a position is open
    CLOSED = "CLOSED"  # entry dead unfilled, or everything filled has been exited
    CONFLICT = "CONFLICT"  # duplicates or over-exit: the operator must look


@dataclass(frozen=True, slots=True)
class BracketView:
    plan_id: str
    state: BracketState
    entry_filled: int = 0
    exit_filled: int = 0

    @property
    def open_quantity(self) -> int:
        return self.entry_filled - self.exit_filled


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    request: OrderRequest
    plan_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class CancelOrder:
    order_id: str
    tag: str | None
    client_order_id: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class ResizeOrder:
    order_id: str
    tag: str | None
    client_order_id: str | None
    quantity: int  # the new total quantity (Kite counts filled units in it)
    reason: str


@dataclass(frozen=True, slots=True)
class PositionMismatch:
    exchange: str
    tradingsymbol: str
    product: str
    expected: int  # net signed quantity our open brackets account for
    actual: int  # net signed quantity at the broker


@dataclass(frozen=True, slots=True)
class Problem:
    plan_id: str | None
    message: str


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    brackets: tuple[BracketView, ...] = ()
    to_place: tuple[PlaceOrder, ...] = ()
    to_resize: tuple[ResizeOrder, ...] = ()
    to_cancel: tuple[CancelOrder, ...] = ()
    unknown_orders: tuple[OrderUpdate, ...] = ()
    position_mismatches: tuple[PositionMismatch, ...] = ()
    problems: tuple[Problem, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def actions(self) -> int:
        return len(self.to_place) + len(self.to_resize) + len(self.to_cancel)

    @property
    def live_unknown_orders(self) -> tuple[OrderUpdate, ...]:
        return tuple(o for o in self.unknown_orders if not o.status.is_terminal)

    @property
    def in_agreement(self) -> bool:
        """Nothing left to do and nothing that disagrees."""
        return not (
            self.actions or self.live_unknown_orders or self.position_mismatches or self.problems
        )

    def may_trade(self, *, accept: bool = False) -> bool:
        """Whether trading may start; ``accept`` is the operator overriding a disagreement."""
        return self.in_agreement or accept

    def by_state(self, state: BracketState) -> list[str]:
        return [b.plan_id for b in self.brackets if b.state is state]

    def summary(self) -> list[str]:
        """Human-readable lines for the operator (no secrets, no raw payloads)."""
        lines = [
            f"{len(self.brackets)} bracket(s): "
            + ", ".join(
                f"{s.value}={n}"
                for s in BracketState
                if (n := sum(1 for b in self.brackets if b.state is s))
            )
        ]
        lines += [f"place {a.request.client_order_id}: {a.reason}" for a in self.to_place]
        lines += [f"resize {a.order_id} to {a.quantity}: {a.reason}" for a in self.to_resize]
        lines += [f"cancel {a.order_id} ({a.tag}): {a.reason}" for a in self.to_cancel]
        lines += [
            f"unknown order {o.order_id} {o.status.value} {o.side} {o.quantity} "
            f"{o.exchange}:{o.tradingsymbol} tag={o.tag}"
            for o in self.unknown_orders
        ]
        lines += [
            f"position {m.exchange}:{m.tradingsymbol} {m.product}: "
            f"expected {m.expected}, broker has {m.actual}"
            for m in self.position_mismatches
        ]
        lines += [
            f"problem{f' [{p.plan_id}]' if p.plan_id else ''}: {p.message}" for p in self.problems
        ]
        lines += list(self.notes)
        lines.append("verdict: " + ("in agreement" if self.in_agreement else "DISAGREES"))
        return lines


def tag_prefix(plan_id: str) -> str:
    """What every broker tag of the plan starts with."""
    entry_tag: str = broker_tag(order_client_id("ENTRY", plan_id))
    return entry_tag[: -len("EN")]


def _sign(side: str) -> int:
    return 1 if side == "BUY" else -1


def _live(o: OrderUpdate) -> bool:
    return not o.status.is_terminal


def _effective(orders: Sequence[OrderUpdate]) -> tuple[OrderUpdate | None, int]:
    """The order that counts under one tag, and how many non-rejected ones share it."""
    accepted = [o for o in orders if o.status is not OrderStatus.REJECTED]
    if accepted:
        return accepted[0], len(accepted)
    return (orders[-1] if orders else None), 0


@dataclass
class _Acc:
    views: list[BracketView] = field(default_factory=list)
    place: list[PlaceOrder] = field(default_factory=list)
    resize: list[ResizeOrder] = field(default_factory=list)
    cancel: list[CancelOrder] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    expected: dict[tuple[str, str, str], int] = field(default_factory=lambda: defaultdict(int))
    # live exit orders (stop, targets, market exits) of brackets open by our fills
    open_exits: dict[tuple[str, str, str], list[OrderUpdate]] = field(
        default_factory=lambda: defaultdict(list)
    )

    def cancel_order(self, o: OrderUpdate, reason: str) -> None:
        self.cancel.append(CancelOrder(o.order_id, o.tag, o.client_order_id, reason))


def _key(req: OrderRequest) -> tuple[str, str, str]:
    return (req.exchange, req.tradingsymbol, req.product.value)


def _hold_to_broker_position(acc: _Acc, actual: dict[tuple[str, str, str], int]) -> None:
    """Placements only where the broker holds what our fills say is open; no live
    exit of ours left on an instrument where the broker is flat."""
    for key, expected in acc.expected.items():
        held = actual.get(key, 0)
        if expected == 0 or (held * expected > 0 and abs(held) >= abs(expected)):
            continue
        where = f"{key[0]}:{key[1]} {key[2]}"
        dropped = [p for p in acc.place if _key(p.request) == key]
        if dropped:
            acc.place = [p for p in acc.place if _key(p.request) != key]
            acc.problems.append(
                Problem(
                    None,
                    f"{where}: our fills leave {expected} open but the broker holds {held}: "
                    f"{len(dropped)} placement(s) held back (an exit for a position that is "
                    "gone would open a new one)",
                )
            )
        if held != 0:
            continue
        cancelling = {c.order_id for c in acc.cancel}
        for o in acc.open_exits.get(key, ()):
            if o.order_id not in cancelling:
                acc.cancel_order(o, "the broker's position is flat: no exit may stay working")


def _market_exit(b: LocalBracket, quantity: int, used_tags: set[str]) -> OrderRequest | None:
    for n in range(MAX_EXITS + 1):
        role = "EXIT" if n == 0 else f"EXIT{n}"
        cid = order_client_id(role, b.plan_id)
        tag = broker_tag(cid)
        if tag not in used_tags:
            return dataclasses.replace(
                b.stop,
                client_order_id=cid,
                tag=tag,
                quantity=quantity,
                order_type=OrderType.MARKET,
                price_paise=None,
                trigger_paise=None,
                market_protection=b.stop.market_protection or -1,
            )
    return None


def market_exit_request(
    b: LocalBracket, quantity: int, used_tags: Iterable[str]
) -> OrderRequest | None:
    """A MARKET exit of ``quantity`` under the first EXIT client id whose tag is not in
    ``used_tags`` (a tag at the broker is never placed again); None when all are used."""
    return _market_exit(b, quantity, set(used_tags))


def _check_bracket(b: LocalBracket) -> str:
    prefix = tag_prefix(b.plan_id)
    reqs = [("entry", b.entry), ("stop", b.stop)] + ([("tp", b.tp)] if b.tp else [])
    for name, req in reqs:
        if not req.tag.startswith(prefix):
            raise ValueError(
                f"bracket {b.plan_id}: {name}.tag {req.tag!r} is not a tag of this plan "
                f"(expected prefix {prefix!r})"
            )
        if req.quantity <= 0:
            raise ValueError(f"bracket {b.plan_id}: {name}.quantity must be positive")
    if b.stop.side == b.entry.side or (b.tp and b.tp.side == b.entry.side):
        raise ValueError(f"bracket {b.plan_id}: stop/tp side must oppose the entry side")
    return prefix


def _reconcile_bracket(
    b: LocalBracket,
    group: dict[str, list[OrderUpdate]],
    broker_ids: set[str],
    acc: _Acc,
    exit_unprotected: bool,
) -> None:
    pid = b.plan_id
    for lo in b.sent:
        if lo.broker_order_id and lo.broker_order_id not in broker_ids:
            acc.problems.append(
                Problem(
                    pid,
                    f"{lo.client_order_id} was sent as order {lo.broker_order_id}, "
                    "which the broker does not have",
                )
            )
    entry_orders = group.get(b.entry.tag, [])
    exit_orders = [o for tag, orders in group.items() if tag != b.entry.tag for o in orders]
    live_exits = [o for o in exit_orders if _live(o)]

    if not entry_orders:
        acc.views.append(BracketView(pid, BracketState.ENTRY_NOT_PLACED))
        for o in live_exits:
            acc.cancel_order(
                o, "the entry never reached the broker: a live exit would open a position"
            )
        return

    duplicated = False
    for tag, orders in group.items():
        accepted = _effective(orders)[1]
        if accepted > 1:
            duplicated = True
            acc.problems.append(
                Problem(
                    pid,
                    f"tag {tag} has {accepted} accepted orders at the broker (duplicate client id)",
                )
            )
    entry, _ = _effective(entry_orders)
    assert entry is not None
    filled = sum(o.filled_quantity for o in entry_orders)
    exited = sum(o.filled_quantity for o in exit_orders)
    key = (b.entry.exchange, b.entry.tradingsymbol, b.entry.product.value)
    acc.expected[key] += _sign(b.entry.side) * (filled - exited)
    open_qty = filled - exited

    if open_qty < 0:
        acc.problems.append(
            Problem(pid, f"exits filled {exited} but the entry only {filled}: the position flipped")
        )
        acc.views.append(BracketView(pid, BracketState.CONFLICT, filled, exited))
        return
    if duplicated:  # which order is "the" stop? Only the operator can say.
        acc.views.append(BracketView(pid, BracketState.CONFLICT, filled, exited))
        return

    if open_qty == 0:
        why = (
            "the entry has no fill: a live exit would open a position"
            if filled == 0
            else "the bracket is flat: orphan child"
        )
        for o in live_exits:
            acc.cancel_order(o, why)
        if _live(entry) and filled > 0:
            acc.cancel_order(entry, "the bracket was exited while its entry still works")
            state = BracketState.CLOSED
        else:
            state = BracketState.AWAITING_ENTRY if _live(entry) else BracketState.CLOSED
        acc.views.append(BracketView(pid, state, filled, exited))
        return

    acc.views.append(BracketView(pid, BracketState.OPEN, filled, exited))
    acc.open_exits[key].extend(live_exits)
    market_exits = [o for o in live_exits if o.tag not in (b.stop.tag, b.tp.tag if b.tp else None)]
    if market_exits:
        acc.notes.append(
            f"[{pid}] {len(market_exits)} exit order(s) in flight for {open_qty} open: left alone"
        )
        return

    stop, _ = _effective(group.get(b.stop.tag, []))
    tp, _ = _effective(group.get(b.tp.tag, [])) if b.tp else (None, 0)
    stop_gone = stop is not None and not _live(stop)

    if stop_gone:
        assert stop is not None
        what = f"stop {stop.order_id} is {stop.status.value} with {open_qty} open"
        if not exit_unprotected:
            acc.problems.append(Problem(pid, f"{what}: the position is unprotected"))
            return
        req = _market_exit(b, open_qty, set(group))
        if req is None:
            acc.problems.append(Problem(pid, f"{what}: no unused EXIT client id left"))
            return
        if tp is not None and _live(tp):
            acc.cancel_order(tp, "its stop is gone; the position is exited at market")
        acc.place.append(PlaceOrder(req, pid, f"{what}: market exit"))
        return

    for name, template, child in (("stop", b.stop, stop), ("tp", b.tp, tp)):
        if template is None:
            continue
        if child is None:
            sized = dataclasses.replace(template, quantity=open_qty)
            acc.place.append(PlaceOrder(sized, pid, f"missing {name} for {open_qty} open"))
        elif _live(child):
            remaining = child.quantity - child.filled_quantity
            if remaining != open_qty:
                acc.resize.append(
                    ResizeOrder(
                        child.order_id,
                        child.tag,
                        child.client_order_id,
                        child.filled_quantity + open_qty,
                        f"{name} covers {remaining} but {open_qty} are open",
                    )
                )
        else:
            acc.notes.append(
                f"[{pid}] {name} {child.order_id} is {child.status.value}; the stop still protects"
            )


def reconcile(
    brackets: Iterable[LocalBracket],
    broker_orders: Iterable[OrderUpdate],
    broker_positions: Iterable[BrokerPosition],
    *,
    resolve: Callable[[str], str | None] | None = None,
    exit_unprotected: bool = True,
) -> ReconcileReport:
    """Compare; pure. ``resolve`` maps any tag of today to our client id (the DB).

    Orders whose tag resolves to a plan that is no longer open are ours: a live
    one is an orphan and is cancelled. Orders no one knows are reported; live
    ones block trading. With ``exit_unprotected`` false, a position whose stop
    is gone is reported as a problem instead of being exited at market.
    """
    orders = list(broker_orders)
    broker_ids = {o.order_id for o in orders}
    acc = _Acc()
    prefixes: dict[str, LocalBracket] = {}
    for b in brackets:
        prefix = _check_bracket(b)
        if prefix in prefixes:
            raise ValueError(f"bracket {b.plan_id}: listed twice (or its tag prefix collides)")
        prefixes[prefix] = b
    groups: dict[str, dict[str, list[OrderUpdate]]] = {p: defaultdict(list) for p in prefixes}
    unknown: list[OrderUpdate] = []
    plen = len(next(iter(prefixes))) if prefixes else 0
    for o in orders:
        tag = o.tag
        if tag and plen and tag[:plen] in groups:
            groups[tag[:plen]][tag].append(o)
            continue
        cid = resolve(tag) if (tag and resolve) else None
        if cid is None:
            unknown.append(o)
        elif _live(o):
            acc.cancel.append(
                CancelOrder(o.order_id, tag, cid, "its plan is no longer open here: orphan")
            )
    for prefix, b in prefixes.items():
        _reconcile_bracket(b, groups[prefix], broker_ids, acc, exit_unprotected)

    actual: dict[tuple[str, str, str], int] = defaultdict(int)
    for p in broker_positions:
        product = p.product.value if isinstance(p.product, Product) else str(p.product)
        actual[(p.exchange, p.tradingsymbol, product)] += p.quantity
    _hold_to_broker_position(acc, actual)
    mismatches = [
        PositionMismatch(k[0], k[1], k[2], acc.expected.get(k, 0), actual.get(k, 0))
        for k in sorted(set(acc.expected) | set(actual))
        if acc.expected.get(k, 0) != actual.get(k, 0)
    ]
    return ReconcileReport(
        brackets=tuple(acc.views),
        to_place=tuple(acc.place),
        to_resize=tuple(acc.resize),
        to_cancel=tuple(acc.cancel),
        unknown_orders=tuple(unknown),
        position_mismatches=tuple(mismatches),
        problems=tuple(acc.problems),
        notes=tuple(acc.notes),
    )


@dataclass(frozen=True, slots=True)
class ApplyResult:
    cancelled: tuple[str, ...] = ()  # broker order ids
    resized: tuple[str, ...] = ()
    placed: tuple[tuple[str, str], ...] = ()  # (client_order_id, broker order id)
    already_there: tuple[str, ...] = ()  # client ids found at the broker by tag
    errors: tuple[str, ...] = ()


async def apply(report: ReconcileReport, broker: Broker) -> ApplyResult:
    """Carry out the report's actions: cancels, then resizes, then placements.

    Every placement first looks its tag up at the broker, so applying the same
    report twice never places an order twice. Failures are collected, not
    raised: the caller reconciles again and sees what is still missing.
    """
    cancelled: list[str] = []
    resized: list[str] = []
    placed: list[tuple[str, str]] = []
    already: list[str] = []
    errors: list[str] = []
    for c in report.to_cancel:
        try:
            await broker.cancel_order(c.order_id)
            cancelled.append(c.order_id)
        except BrokerError as exc:
            errors.append(f"cancel {c.order_id} ({c.tag}): {exc}")
    for r in report.to_resize:
        try:
            await broker.modify_order(r.order_id, quantity=r.quantity)
            resized.append(r.order_id)
        except BrokerError as exc:
            errors.append(f"resize {r.order_id} ({r.tag}) to {r.quantity}: {exc}")
    for p in report.to_place:
        req = p.request
        try:
            existing = await broker.find_by_tag(req.tag)
            if existing is not None and existing.status is not OrderStatus.REJECTED:
                already.append(req.client_order_id)
                continue
            order_id = await broker.place_order(req)
            placed.append((req.client_order_id, order_id))
        except BrokerError as exc:
            errors.append(f"place {req.client_order_id}: {exc}")
    for e in errors:
        log.error("reconciliation: %s", e)
    return ApplyResult(
        tuple(cancelled), tuple(resized), tuple(placed), tuple(already), tuple(errors)
    )


def merge_results(results: Sequence[ApplyResult]) -> ApplyResult:
    """One result for several repair passes, in the order they ran."""
    return ApplyResult(
        *(tuple(x for r in results for x in getattr(r, f.name)) for f in fields(ApplyResult))
    )


@dataclass(frozen=True, slots=True)
class RepairOutcome:
    first: ReconcileReport
    applied: ApplyResult | None  # every pass's actions, merged
    final: ReconcileReport
    passes: int = 0  # compare -> apply rounds that ran

    def may_trade(self, *, accept: bool = False) -> bool:
        return self.final.may_trade(accept=accept)


async def reconcile_and_repair(
    brackets: Sequence[LocalBracket],
    broker: Broker,
    *,
    resolve: Callable[[str], str | None] | None = None,
    exit_unprotected: bool = True,
    settle: float = 1.0,
    max_passes: int = MAX_REPAIR_PASSES,
) -> RepairOutcome:
    """Compare; while there is something to do (and at most ``max_passes`` times):
    apply it, wait ``settle`` seconds for the broker to show it, compare again."""
    if max_passes < 1:
        raise ValueError(f"max_passes must be at least 1, got {max_passes}")

    async def compare() -> ReconcileReport:
        return reconcile(
            brackets,
            await broker.orders(),
            await broker.positions(),
            resolve=resolve,
            exit_unprotected=exit_unprotected,
        )

    first = report = await compare()
    results: list[ApplyResult] = []
    while report.actions and len(results) < max_passes:
        results.append(await apply(report, broker))
        await asyncio.sleep(settle)  # let cancels and placements show in the order book
        report = await compare()
    if report.actions:
        log.error(
            "reconciliation: still %d action(s) to do after %d passes", report.actions, len(results)
        )
    applied = merge_results(results) if results else None
    return RepairOutcome(first, applied, report, passes=len(results))
