"""Rows of the kernel's event batches: the session tables, keys and guards
(signals, decisions, risk events, orders, order events, fills, positions,
bracket transitions, trades) that reports, the burn-in and reconciliation read.

Each event batch becomes one :class:`~aitrapp.db.bulk.BulkWrite`: plain
tuples taken straight from the event columns (no object per row), COPYed and
moved into the tables in one transaction, so an order's status travels with
the fill that made it, the position it opens or closes and the trade. What
protects money is checked per column before anything is queued: quantities
and fill prices > 0, known order statuses, net = gross - charges.

Rows keyed by their place in the session's event log (a risk block, an order
update) get deterministic ids from the session and that place, so the same
batch written again lands once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from itertools import repeat
from typing import Any
from uuid import UUID

from aitrapp._core import Instrument, broker_tag
from aitrapp.db.bulk import (
    BLOCKS,
    DECISIONS,
    FILLS,
    ORDERS,
    POSITIONS,
    TRADES,
    TRANSITIONS,
    UPDATES,
    BulkWrite,
    Record,
    bulk_id,
)
from aitrapp.db.pool import json_dumps
from aitrapp.db.writer import DbWriter
from aitrapp.kernel.events import EventBatch
from aitrapp.kernel.replay import KernelTrade

_CENT = Decimal(100)
_Q4 = Decimal("0.0001")
# What the venue reports (Kite's statuses; OPEN PENDING is stored as PENDING).
VENUE_STATUSES = frozenset(
    {"OPEN PENDING", "PENDING", "OPEN", "TRIGGER PENDING", "COMPLETE", "CANCELLED", "REJECTED"}
)


def utc(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC)


def rupees(paise: int | float) -> Decimal:
    return (Decimal(str(paise)) / _CENT).quantize(_Q4)


def _positive(table: str, column: str, values: Sequence[Any], keys: Sequence[Any]) -> None:
    """Every value > 0, checked at C speed; the error names the row."""
    if values and min(values) <= 0:
        i = next(i for i, v in enumerate(values) if v <= 0)
        raise ValueError(f"{table}.{column}: must be > 0, got {values[i]} ({keys[i]})")


def _avg_e4(value_paise: int, qty: int) -> int:
    """value / qty in units of 0.0001 rupee, rounded half to even (Decimal.quantize)."""
    q, r = divmod(value_paise * 100, qty)
    if 2 * r > qty or (2 * r == qty and q % 2):
        q += 1
    return q


@dataclass(slots=True)
class _Plan:
    token: int
    entry_qty: int = 0
    entry_value: int = 0  # paise x shares
    exited: int = 0
    position_open: bool = False
    # An adopted plan's decision (an earlier process wrote it); None: this session's.
    decision_id: UUID | None = None


@dataclass(slots=True)
class KernelPersister:
    """Turns event batches into bulk writes for one session's writer."""

    writer: DbWriter
    session_id: UUID
    instruments: Mapping[int, Instrument]
    fill_scope: str
    config_sha: str
    plans: dict[str, _Plan] = field(default_factory=dict)
    # Steps of each plan's walk so far (kept after its trade: a late step still
    # gets the next number, never one already stored).
    steps: dict[str, int] = field(default_factory=dict)
    # The stored seq of each plan's first step in this process (an adopted plan's
    # walk goes on from an earlier process's; the kernel counts from 0 again).
    first_step: dict[str, int] = field(default_factory=dict)
    # LIVE: the write-ahead journal writes each order row before the broker
    # hears of it; the kernel's PLACE rows are then not written again.
    orders_journalled: bool = False
    # Rows of the session so far, per kind: a row's place is its key.
    blocks_seen: int = 0
    orders_seen: int = 0
    updates_seen: int = 0
    positions_seen: int = 0

    def persist(self, ev: EventBatch, trades: list[KernelTrade]) -> None:
        bulk = self.bulk(ev, trades)
        if bulk.rows:
            self.writer.submit_batch(bulk)

    def bulk(self, ev: EventBatch, trades: Sequence[KernelTrade]) -> BulkWrite:
        """The batch's rows (and the plans' state moved on past it)."""
        parts: dict[str, list[Record]] = {}
        if _n(ev, "decisions"):
            parts[DECISIONS.table] = self._decisions(ev["decisions"])
        if _n(ev, "blocks"):
            parts[BLOCKS.table] = self._blocks(ev["blocks"])
        if _n(ev, "orders") and not self.orders_journalled:
            parts[ORDERS.table] = self._orders(ev["orders"])
        if _n(ev, "updates"):
            parts[UPDATES.table] = self._updates(ev["updates"])
        if _n(ev, "fills"):
            fills = ev["fills"]
            parts[FILLS.table] = self._fills(fills)
            parts[POSITIONS.table] = self._positions(fills)
        if _n(ev, "transitions"):
            issued = _commands(ev["orders"]) if _n(ev, "orders") else {}
            parts[TRANSITIONS.table] = self._transitions(ev["transitions"], issued)
        if trades:
            parts[TRADES.table] = self._trades(trades)
        return BulkWrite(parts)

    # ---- one stage per kind of event ----
    def _symbols(self, tokens: Sequence[int]) -> list[str]:
        try:
            return [self.instruments[t].tradingsymbol for t in tokens]
        except KeyError as exc:
            token = exc.args[0]
            raise ValueError(
                f"instrument_token {token}: not an instrument of the session"
            ) from None

    def _decisions(self, d: Mapping[str, list[Any]]) -> list[Record]:
        _positive("decisions", "qty", d["qty"], d["plan_id"])
        heat = [str(round(h, 6)) for h in d["heat_after_pct"]]
        for plan_id, token in zip(d["plan_id"], d["token"], strict=True):
            self.plans[plan_id] = _Plan(token)
        return list(
            zip(
                repeat(self.session_id), d["plan_id"], d["ts_ns"], d["token"],
                self._symbols(d["token"]), d["strategy"], d["side"], d["qty"], d["entry"],
                d["stop"], d["tp"], d["reason"], d["risk_paise"], heat, repeat(self.config_sha),
            )
        )  # fmt: skip

    def _blocks(self, b: Mapping[str, list[Any]]) -> list[Record]:
        first = self.blocks_seen
        self.blocks_seen += len(b["ts_ns"])
        return list(
            zip(
                repeat(self.session_id), range(first, self.blocks_seen), b["ts_ns"], b["token"],
                self._symbols(b["token"]), b["strategy"], b["side"], b["reason"], b["entry"],
                b["stop"], b["tp"], b["details"],
            )
        )  # fmt: skip

    def _orders(self, o: Mapping[str, list[Any]]) -> list[Record]:
        """New orders (PLACE) of the session's plans; modifications and
        cancellations reach the table as the updates they cause."""
        out: list[Record] = []
        sid, plans, instruments = self.session_id, self.plans, self.instruments
        rows = zip(
            o["action"], o["client_order_id"], o["order_id"], o["side"], o["qty"],
            o["order_type"], o["ts_ns"], o["price"], o["trigger"], strict=True,
        )  # fmt: skip
        for action, coid, order_id, side, qty, order_type, ts_ns, price, trigger in rows:
            if action != "PLACE":
                continue
            plan_id, _, role = coid.partition(":")
            plan = plans.get(plan_id)
            if plan is None:
                continue
            if qty <= 0:
                raise ValueError(f"orders.qty: must be > 0, got {qty} ({coid})")
            inst = instruments[plan.token]
            self.orders_seen += 1
            out.append(
                (
                    sid, self.orders_seen, coid, plan_id, broker_tag(coid), role, inst.exchange,
                    inst.tradingsymbol, plan.token, side, order_type, qty, ts_ns, price,
                    trigger, str(order_id),
                )
            )  # fmt: skip
        return out

    def _updates(self, u: Mapping[str, list[Any]]) -> list[Record]:
        unknown = set(u["status"]) - VENUE_STATUSES
        if unknown:
            raise ValueError(
                f"order_events.status: unknown {sorted(unknown)}; known: {sorted(VENUE_STATUSES)}"
            )
        first = self.updates_seen
        self.updates_seen += len(u["ts_ns"])
        return list(
            zip(
                repeat(self.session_id), range(first, self.updates_seen), u["client_order_id"],
                map(str, u["order_id"]), u["ts_ns"], u["status"], u["filled_qty"],
                u["avg_price"], u["message"], u["triggered"],
            )
        )  # fmt: skip

    def _fills(self, f: Mapping[str, list[Any]]) -> list[Record]:
        _positive("fills", "qty", f["qty"], f["client_order_id"])
        _positive("fills", "price", f["price"], f["client_order_id"])
        return list(
            zip(
                repeat(self.fill_scope), f["order_id"], f["filled_qty"], f["client_order_id"],
                f["qty"], f["price"], f["ts_ns"],
            )
        )  # fmt: skip

    def _positions(self, f: Mapping[str, list[Any]]) -> list[Record]:
        """A plan's position opens with its first entry fill; every later fill
        that leaves it open resizes it (size and average entry)."""
        out: list[Record] = []
        rows = zip(
            f["plan_id"], f["role"], f["side"], f["qty"], f["price"], f["ts_ns"], strict=True
        )
        for plan_id, role, side, qty, price, ts_ns in rows:
            plan = self.plans.get(plan_id)
            if plan is None:
                continue
            if role == "ENTRY":
                plan.entry_qty += qty
                plan.entry_value += qty * price
            elif role == "CORRECTIVE":
                plan.exited -= qty
            else:
                plan.exited += qty
            if plan.entry_qty == 0:
                continue
            if not plan.position_open and role == "ENTRY":
                plan.position_open = True
                kind, size = "open", plan.entry_qty
            elif plan.entry_qty > plan.exited:
                kind, size = "update", plan.entry_qty - plan.exited
            else:
                continue  # flat: the trade closes it
            inst = self.instruments[plan.token]
            self.positions_seen += 1
            out.append(
                (
                    self.session_id, self.positions_seen, kind, plan_id, plan.token,
                    inst.exchange, inst.tradingsymbol, _entry_side(side), size,
                    _avg_e4(plan.entry_value, plan.entry_qty), ts_ns,
                )
            )  # fmt: skip
        return out

    def _transitions(
        self, t: Mapping[str, list[Any]], issued: Mapping[tuple[str, int], list[dict[str, Any]]]
    ) -> list[Record]:
        """Rows of the plans' walks, numbered from 0 as the pipeline's, each with
        the commands its step issued (the start-up reconciliation reads them)."""
        seqs: list[int] = []
        commands: list[str] = []
        steps, first = self.steps, self.first_step
        for plan_id in t["plan_id"]:
            n = steps.get(plan_id, 0)
            base = first.setdefault(plan_id, n)  # the kernel counts this process's steps
            seqs.append(n)
            steps[plan_id] = n + 1
            cmds = issued.get((plan_id, n - base))
            commands.append(json_dumps(cmds) if cmds else "[]")
        return list(
            zip(
                repeat(self.session_id), t["plan_id"], seqs, t["ts_ns"], t["from"], t["to"],
                t["event"], commands,
            )
        )  # fmt: skip

    def _trades(self, trades: Sequence[KernelTrade]) -> list[Record]:
        out: list[Record] = []
        for t in trades:
            plan = self.plans.pop(t.plan_id, None)
            if plan is None:
                continue
            decision_id = plan.decision_id or bulk_id(self.session_id, "decision", t.plan_id)
            if t.qty <= 0 or t.entry_price <= 0 or t.exit_price <= 0:
                raise ValueError(
                    f"trades: qty, entry_price and exit_price must be > 0, got {t.qty}, "
                    f"{t.entry_price}, {t.exit_price} ({t.plan_id})"
                )
            if t.net != t.gross - t.charges:
                raise ValueError(
                    f"trades.net_pnl: {t.net} != gross_pnl - charges ({t.gross} - {t.charges}) "
                    f"({t.plan_id})"
                )
            out.append(
                (
                    self.session_id, decision_id, t.plan_id, t.strategy, t.exchange,
                    t.tradingsymbol,
                    _entry_side(t.side), t.qty, t.entry_price, t.exit_price, t.gross, t.charges,
                    t.net, t.exit_reason, t.opened_ns, t.closed_ns,
                )
            )  # fmt: skip
        return out


def order_role(tag: str, reason: str) -> str:
    """The role an order plays in its bracket (as the orders table and /state name it)."""
    if reason == "CORRECTIVE":
        return "CORRECTIVE"
    if tag.startswith(("TP", "TARGET")):  # TARGETn: a lost target placed again
        return "TAKE_PROFIT"
    if tag == "ENTRY":
        return tag
    if tag.startswith("STOP"):  # STOP, or STOPn: a lost stop placed again
        return "STOP"
    return "EXIT"


def _commands(o: Mapping[str, list[Any]]) -> dict[tuple[str, int], list[dict[str, Any]]]:
    """The broker commands each step issued, keyed by (plan, the kernel's step), in
    the pipeline's shape: kind, client order id, role, side, qty, type, prices in rupees."""
    out: dict[tuple[str, int], list[dict[str, Any]]] = {}
    rows = zip(
        o["plan_id"], o["step"], o["action"], o["client_order_id"], o["side"], o["qty"],
        o["order_type"], o["price"], o["trigger"], o["reason"], strict=True,
    )  # fmt: skip
    for plan_id, step, action, coid, side, qty, otype, price, trigger, reason in rows:
        role = order_role(coid.partition(":")[2], reason)
        placed = "EXIT_AT_MARKET" if role in ("EXIT", "CORRECTIVE") else "PLACE_ORDER"
        kind = placed if action == "PLACE" else action  # MODIFY, CANCEL
        cmd: dict[str, Any] = {"kind": kind, "client_order_id": coid}
        if action == "PLACE":
            cmd.update(
                role=role, side=side, qty=qty,
                order_type=otype, price=str(rupees(price)) if price else None,
                trigger=str(rupees(trigger)) if trigger else None,
                exit_reason=reason or None,
            )  # fmt: skip
        elif action == "MODIFY":
            cmd.update(
                qty=qty or None, order_type=otype or None,
                price=str(rupees(price)) if price else None,
                trigger=str(rupees(trigger)) if trigger else None,
            )  # fmt: skip
        out.setdefault((plan_id, step), []).append(cmd)
    return out


def _n(ev: EventBatch, table: str) -> int:
    cols = ev.get(table)
    return len(cols["ts_ns" if table != "trades" else "plan_id"]) if cols else 0


def _entry_side(side: str) -> str:
    if side not in ("BUY", "SELL"):
        raise ValueError(f"side: must be BUY or SELL, got {side!r}")
    return side
