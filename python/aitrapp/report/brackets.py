"""Pure bracket analysis over a session's final order states, grouped by plan.

Roles come from ``orders.role``: ``ENTRY``; the bracket legs ``STOP`` and
``TP``/``TP1``/``TP2``...; market exits ``EXIT``/``EXIT1``... (flatten,
square-off). Only final states are judged, so the session must have ended.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

WORKING = frozenset({"NEW", "PENDING", "OPEN", "TRIGGER PENDING"})


@dataclass(frozen=True, slots=True)
class OrderState:
    client_order_id: str
    plan_id: str
    role: str
    side: str
    status: str
    qty: int
    filled_qty: int

    @property
    def kind(self) -> str:
        """ENTRY, LEG (stop or take-profit), EXIT, or OTHER."""
        role = self.role.upper()
        if role == "ENTRY":
            return "ENTRY"
        # STOPn / TARGETn: a lost stop / target placed again
        if role.startswith(("STOP", "TP", "TARGET")):
            return "LEG"
        if role.startswith("EXIT"):
            return "EXIT"
        return "OTHER"

    @property
    def working(self) -> bool:
        return self.status in WORKING


@dataclass(frozen=True, slots=True)
class Plan:
    plan_id: str
    orders: tuple[OrderState, ...]

    def of(self, kind: str) -> list[OrderState]:
        return [o for o in self.orders if o.kind == kind]

    @property
    def entry_side(self) -> str | None:
        entries = self.of("ENTRY")
        return entries[0].side if entries else None

    @property
    def entry_filled(self) -> int:
        return sum(o.filled_qty for o in self.of("ENTRY"))

    @property
    def exit_filled(self) -> int:
        """Quantity filled against the entry's direction (legs, market exits)."""
        side = self.entry_side
        return sum(o.filled_qty for o in self.orders if o.kind != "ENTRY" and o.side != side)

    @property
    def reentered(self) -> int:
        """Non-entry quantity filled in the entry's direction: corrective exits
        after an exit overshot (both legs filled)."""
        side = self.entry_side
        return sum(o.filled_qty for o in self.orders if o.kind != "ENTRY" and o.side == side)

    @property
    def closed(self) -> bool:
        """The position the plan opened is flat (or beyond) again."""
        return 0 < self.entry_filled <= self.exit_filled - self.reentered


def group_by_plan(orders: Iterable[OrderState]) -> list[Plan]:
    plans: dict[str, list[OrderState]] = {}
    for o in orders:
        plans.setdefault(o.plan_id, []).append(o)
    return [Plan(pid, tuple(os)) for pid, os in plans.items()]


def is_full_oco_lifecycle(plan: Plan) -> bool:
    """Entry filled, a leg filled, the sibling(s) cancelled, nothing left working,
    and the legs closed exactly what the entry opened."""
    entries, legs = plan.of("ENTRY"), plan.of("LEG")
    if not entries or not legs or any(o.working for o in plan.orders):
        return False
    if plan.entry_filled <= 0:
        return False
    if any(o.status not in ("COMPLETE", "CANCELLED") for o in legs):
        return False  # a rejected leg means the position was unprotected
    filled = any(o.status == "COMPLETE" for o in legs)
    cancelled = any(o.status == "CANCELLED" for o in legs)
    balanced = plan.exit_filled == plan.entry_filled and plan.reentered == 0
    return filled and cancelled and balanced


@dataclass(frozen=True, slots=True)
class SiblingProblem:
    plan_id: str
    detail: str


def sibling_problems(plan: Plan) -> list[SiblingProblem]:
    """Orders left working after the bracket closed, and exits beyond the entry.

    The OCO rule: once a TP or SL fill (or a market exit) has closed the
    position, no other order of the plan may stay live; a sibling that stayed
    live and then filled shows up as more exit quantity than entry quantity.
    """
    out: list[SiblingProblem] = []
    if plan.closed:
        closers = [
            o.role
            for o in plan.orders
            if o.kind != "ENTRY" and o.filled_qty > 0 and o.side != plan.entry_side
        ]
        for o in plan.orders:
            if o.working:
                out.append(
                    SiblingProblem(
                        plan.plan_id,
                        f"{o.role} {o.client_order_id} still {o.status} after "
                        f"{'+'.join(closers)} closed the position",
                    )
                )
    if plan.exit_filled > plan.entry_filled:
        # Even when a corrective exit flattened it afterwards, the sibling was
        # still working after the bracket closed: that is the failure.
        corrected = " and was corrected" if plan.reentered else ""
        out.append(
            SiblingProblem(
                plan.plan_id,
                f"plan {plan.plan_id}: exits filled {plan.exit_filled} > entry filled "
                f"{plan.entry_filled} (a sibling filled after the bracket closed{corrected})",
            )
        )
    return out
