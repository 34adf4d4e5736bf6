"""Rows of the kernel's event batches: the same tables, keys and guards as
the Python pipeline writes (signals, decisions, risk events, orders, order
events, fills, positions, bracket transitions, trades), so reports, the
burn-in and reconciliation read a kernel session like any other.

An order's status and the fill that made it travel in one transaction
(``submit_many(atomic=True)``), as the order watcher does."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from aitrapp._core import Instrument
from aitrapp.db.repo import (
    BracketTransitionRow,
    DecisionRow,
    FillRow,
    OrderEventRow,
    OrderRow,
    OrderStatusUpdate,
    PositionClose,
    PositionRow,
    PositionUpdate,
    RiskEventRow,
    SignalRow,
    TradeRow,
    Write,
)
from aitrapp.db.writer import DbWriter
from aitrapp.kernel.events import EventBatch, rows
from aitrapp.kernel.replay import KernelTrade

_CENT = Decimal(100)
_Q4 = Decimal("0.0001")


def utc(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC)


def rupees(paise: int | float) -> Decimal:
    return (Decimal(str(paise)) / _CENT).quantize(_Q4)


def _price(paise: int) -> Decimal | None:
    return None if paise == 0 else rupees(paise)


def _details(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in filter(None, text.split(";")):
        key, _, value = part.partition("=")
        out[key] = value
    return out


@dataclass(slots=True)
class _Plan:
    decision_id: UUID
    token: int
    entry_qty: int = 0
    entry_value: Decimal = Decimal(0)
    exited: int = 0
    seq: int = 0
    position_open: bool = False


@dataclass(slots=True)
class KernelPersister:
    """Turns event batches into rows for one session's writer."""

    writer: DbWriter
    session_id: UUID
    instruments: Mapping[int, Instrument]
    fill_scope: str
    config_sha: str
    plans: dict[str, _Plan] = field(default_factory=dict)

    def persist(self, ev: EventBatch, trades: list[KernelTrade]) -> None:
        w = self.writer
        sid = self.session_id
        for d in rows(ev, "decisions"):
            inst = self.instruments[d["token"]]
            sig = SignalRow(
                session_id=sid,
                ts=utc(d["ts_ns"]),
                instrument_token=d["token"],
                tradingsymbol=inst.tradingsymbol,
                strategy=d["strategy"],
                side=d["side"],
                entry=rupees(d["entry"]),
                stop=rupees(d["stop"]),
                tp=rupees(d["tp"]),
                reason=d["reason"],
            )
            row = DecisionRow(
                session_id=sid,
                signal_id=sig.id,
                plan_id=d["plan_id"],
                ts=utc(d["ts_ns"]),
                tradingsymbol=inst.tradingsymbol,
                strategy=d["strategy"],
                side=d["side"],
                qty=d["qty"],
                entry=rupees(d["entry"]),
                stop=rupees(d["stop"]),
                tp=rupees(d["tp"]),
                risk_rupees=rupees(d["risk_paise"]),
                heat_after_pct=Decimal(str(round(d["heat_after_pct"], 6))),
                config_sha=self.config_sha,
            )
            w.submit_many([sig, row])
            self.plans[d["plan_id"]] = _Plan(row.id, d["token"])
        for b in rows(ev, "blocks"):
            inst = self.instruments[b["token"]]
            sig = SignalRow(
                session_id=sid,
                ts=utc(b["ts_ns"]),
                instrument_token=b["token"],
                tradingsymbol=inst.tradingsymbol,
                strategy=b["strategy"],
                side=b["side"],
                entry=rupees(b["entry"]),
                stop=rupees(b["stop"]),
                tp=rupees(b["tp"]),
            )
            risk = RiskEventRow(
                ts=utc(b["ts_ns"]),
                reason=b["reason"],
                session_id=sid,
                signal_id=sig.id,
                details={**_details(b["details"]), "strategy": b["strategy"]},
            )
            w.submit_many([sig, risk])
        self._orders(ev)
        self._updates(ev)
        for t in rows(ev, "transitions"):
            plan = self.plans.get(t["plan_id"])
            seq = 0
            if plan is not None:
                plan.seq += 1
                seq = plan.seq
            w.submit(
                BracketTransitionRow(
                    plan_id=t["plan_id"],
                    seq=seq,
                    ts=utc(t["ts_ns"]),
                    from_state=t["from"],
                    to_state=t["to"],
                    event=t["event"],
                    session_id=sid,
                )
            )
        for tr in trades:
            self._trade(tr)

    def _orders(self, ev: EventBatch) -> None:
        for o in rows(ev, "orders"):
            if o["action"] != "PLACE":
                continue
            plan_id, _, role = o["client_order_id"].partition(":")
            plan = self.plans.get(plan_id)
            if plan is None:
                continue
            token = plan.token
            inst = self.instruments[token]
            ts = utc(o["ts_ns"])
            self.writer.submit(
                OrderRow(
                    session_id=self.session_id,
                    client_order_id=o["client_order_id"],
                    plan_id=plan_id,
                    tag=_broker_tag(o["client_order_id"]),
                    role=role,
                    exchange=inst.exchange,
                    tradingsymbol=inst.tradingsymbol,
                    instrument_token=token,
                    side=o["side"],
                    order_type=o["order_type"],
                    product="MIS",
                    qty=o["qty"],
                    created_at=ts,
                    updated_at=ts,
                    price=_price(o["price"]),
                    trigger_price=_price(o["trigger"]),
                    broker_order_id=str(o["order_id"]),
                )
            )

    def _updates(self, ev: EventBatch) -> None:
        fills = rows(ev, "fills")
        fill_at = {(f["order_id"], f["filled_qty"]): f for f in fills}
        for u in rows(ev, "updates"):
            ts = utc(u["ts_ns"])
            oid = str(u["order_id"])
            avg = _price(u["avg_price"])
            batch: list[Write] = [
                OrderEventRow(
                    ts=ts,
                    status=u["status"],
                    client_order_id=u["client_order_id"],
                    broker_order_id=oid,
                    filled_qty=u["filled_qty"],
                    avg_price=avg,
                    payload={"message": u["message"] or None, "triggered": u["triggered"]},
                ),
                OrderStatusUpdate(
                    client_order_id=u["client_order_id"],
                    status=u["status"] if u["status"] != "OPEN PENDING" else "PENDING",
                    filled_qty=u["filled_qty"],
                    avg_price=avg,
                    broker_order_id=oid,
                    status_message=u["message"] or None,
                    ts=ts,
                ),
            ]
            f = fill_at.get((u["order_id"], u["filled_qty"]))
            if f is not None and f["ts_ns"] == u["ts_ns"]:
                batch.append(
                    FillRow(
                        fill_scope=self.fill_scope,
                        broker_fill_key=f"{oid}:{f['filled_qty']}",
                        qty=f["qty"],
                        price=rupees(f["price"]),
                        ts=ts,
                        client_order_id=f["client_order_id"],
                        broker_order_id=oid,
                    )
                )
                batch.extend(self._position(f))
            self.writer.submit_many(batch, atomic=True)

    def _position(self, f: Mapping[str, Any]) -> list[Write]:
        plan = self.plans.get(f["plan_id"])
        if plan is None:
            return []
        ts = utc(f["ts_ns"])
        if f["role"] == "ENTRY":
            plan.entry_qty += f["qty"]
            plan.entry_value += Decimal(f["qty"]) * rupees(f["price"])
        elif f["role"] == "CORRECTIVE":
            plan.exited -= f["qty"]
        else:
            plan.exited += f["qty"]
        if plan.entry_qty == 0:
            return []
        avg = (plan.entry_value / plan.entry_qty).quantize(_Q4)
        net = max(plan.entry_qty - plan.exited, 0)
        if not plan.position_open and f["role"] == "ENTRY":
            plan.position_open = True
            token = plan.token
            inst = self.instruments[token]
            return [
                PositionRow(
                    session_id=self.session_id,
                    plan_id=f["plan_id"],
                    instrument_token=token,
                    exchange=inst.exchange,
                    tradingsymbol=inst.tradingsymbol,
                    side=_entry_side(f["side"]),
                    qty=plan.entry_qty,
                    avg_entry=avg,
                    opened_at=ts,
                    updated_at=ts,
                )
            ]
        if net > 0:
            return [PositionUpdate(plan_id=f["plan_id"], qty=net, avg_entry=avg, ts=ts)]
        return []

    def _trade(self, t: KernelTrade) -> None:
        plan = self.plans.pop(t.plan_id, None)
        if plan is None:
            return
        closed = utc(t.closed_ns)
        self.writer.submit_many(
            [
                PositionClose(plan_id=t.plan_id, closed_at=closed, exit_price=t.exit_price),
                TradeRow(
                    session_id=self.session_id,
                    decision_id=plan.decision_id,
                    plan_id=t.plan_id,
                    strategy=t.strategy,
                    exchange=t.exchange,
                    tradingsymbol=t.tradingsymbol,
                    side=t.side,  # type: ignore[arg-type]
                    qty=t.qty,
                    entry_price=t.entry_price,
                    exit_price=t.exit_price,
                    gross_pnl=t.gross,
                    charges=t.charges,
                    net_pnl=t.net,
                    exit_reason=t.exit_reason,
                    opened_at=utc(t.opened_ns),
                    closed_at=closed,
                ),
            ],
            atomic=True,
        )


def _entry_side(fill_side: str) -> Any:
    return "BUY" if fill_side == "BUY" else "SELL"


def _broker_tag(client_order_id: str) -> str:
    from aitrapp._core import broker_tag

    return broker_tag(client_order_id)
