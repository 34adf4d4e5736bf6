"""Orchestrator: tick -> engine -> decision -> bracket, and fills back into the engine.

Per tick (the hot path) the orchestrator only calls the Rust engine and
records the latency; anything it produces is persisted through the writer
(never awaited), published on the bus (never blocking) and counted.

A Decision becomes a bracket through the OCO manager, whose orders go
through the write-ahead journal. The manager's hooks come back here:
entry fills open a position, exit fills reduce it, a terminal bracket
closes it and records the trade (gross from actual fills, charges per
Zerodha contract note, net), and every fill and close is fed back to the
engine so heat, daily PnL, cooldowns and counts stay exact.

While the database is unhealthy no new entry is opened (a DB_UNAVAILABLE risk
event says why); brackets already open keep being managed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from aitrapp._core import (
    BracketSpec,
    Decision,
    Engine,
    Instrument,
    PortfolioError,
    Price,
    RiskBlock,
)
from aitrapp.bus import EventBus
from aitrapp.calendar import datetime_to_ns
from aitrapp.charges import ChargeSchedule, ExecutedOrder, charge_kind
from aitrapp.db.repo import (
    BracketTransitionRow,
    DecisionRow,
    PositionClose,
    PositionRow,
    PositionUpdate,
    RiskEventRow,
    SignalRow,
    TradeRow,
)
from aitrapp.db.writer import DbWriter
from aitrapp.exceptions import AitrappError
from aitrapp.metrics import Metrics
from aitrapp.oco.manager import OCOManager
from aitrapp.oco.records import (
    BracketResult,
    EntryFill,
    ExitFill,
    OcoAlert,
    TransitionRecord,
)
from aitrapp.pipeline.engine_restore import AdoptedPlan
from aitrapp.pipeline.latency import LatencyRecorder

log = logging.getLogger(__name__)

_IST_OFFSET_NS = 19_800_000_000_000
_ALERT_LEVEL = {"INFO": logging.INFO, "WARNING": logging.WARNING, "ERROR": logging.ERROR}
_CHILD_ROLES = ("STOP", "TAKE_PROFIT")
_MONEY = Decimal("0.0001")


def utc(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC)


def _money(x: float | Decimal) -> Decimal:
    return Decimal(repr(x) if isinstance(x, float) else x).quantize(_MONEY)


@dataclass(frozen=True, slots=True)
class BracketOptions:
    """How a decision is turned into a bracket (see BracketSpec)."""

    entry_type: str = "LIMIT"
    stop_type: str = "SL-M"
    stop_limit_buffer_ticks: int = 0
    scale_out: bool = False
    trail_atr_mult: float | None = None
    time_stop_minutes: float | None = None
    entry_timeout_s: float = 300.0
    # A triggered stop not filled this long after is cancelled and exited at market.
    stop_fill_timeout_s: float = 5.0


@dataclass(slots=True)
class _Book:
    """What the orchestrator remembers of one plan until its trade is written."""

    plan_id: str
    side: str
    strategy: str
    signal_ts: int
    decision_id: UUID
    instrument: Instrument
    decided_ns: int
    signal_id: UUID | None = None
    opened_ns: int | None = None
    entry_cum: int = 0
    entry_avg: float = 0.0
    exited: int = 0
    # client_order_id -> (side, cumulative qty, average price): one executed order each
    orders: dict[str, tuple[str, int, float]] = field(default_factory=dict)
    exit_notional: float = 0.0
    exit_qty: int = 0


@dataclass(slots=True)
class Counters:
    ticks: int = 0
    signals: int = 0
    decisions: int = 0
    risk_blocks: int = 0
    brackets_opened: int = 0
    trades: int = 0
    wins: int = 0
    alerts: int = 0
    critical_alerts: int = 0
    last_tick_ns: int | None = None


class Orchestrator:
    def __init__(
        self,
        *,
        engine: Engine,
        oco: OCOManager,
        writer: DbWriter,
        bus: EventBus,
        metrics: Metrics,
        session_id: UUID,
        instruments: dict[int, Instrument],
        bracket: BracketOptions | None = None,
        charges: ChargeSchedule | None = None,
        slo_ms: float = 1.0,
        entries_allowed: Callable[[], str | None] | None = None,
    ) -> None:
        self.engine = engine
        self.oco = oco
        self.writer = writer
        self.bus = bus
        self.metrics = metrics
        self.session_id = session_id
        self.instruments = instruments
        self.bracket = bracket or BracketOptions()
        self.charges = charges or ChargeSchedule.default()
        self.latency = LatencyRecorder(slo_ms)
        self.order_latency = LatencyRecorder()
        self.counters = Counters()
        self.net_pnl_today = Decimal(0)
        self.alerts: list[dict[str, Any]] = []
        self._entries_allowed = entries_allowed
        self._books: dict[str, _Book] = {}
        self._observe = metrics.tick_to_decision_ms.observe
        self._rejections_seen: dict[str, int] = {}
        self._plans_seen: set[str] = set()  # every plan id handled this session

    # ------------------------------------------------------------------ hot path
    def on_tick(
        self,
        token: int,
        ts_ns: int,
        last_price: float,
        last_qty: int,
        volume: int,
        bid: float | None,
        ask: float | None,
        oi: int | None,
        recv_ns: int,
    ) -> list[Decision | RiskBlock]:
        """Runs the engine on one tick; returns what it decided (usually nothing).

        ``recv_ns`` is ``time.perf_counter_ns()`` when the tick entered the
        process; the latency to the engine's answer is recorded for every tick.
        """
        out = self.engine.on_tick(token, ts_ns, last_price, last_qty, volume, bid, ask, oi)
        done = time.perf_counter_ns()
        self.latency.record(done - recv_ns)
        self._observe((done - recv_ns) / 1e6)
        c = self.counters
        c.ticks += 1
        c.last_tick_ns = ts_ns
        return out

    # ------------------------------------------------------------------ outcomes
    async def handle(self, outcomes: list[Decision | RiskBlock], recv_ns: int) -> None:
        for o in outcomes:
            if isinstance(o, Decision):
                await self._on_decision(o, recv_ns)
            else:
                self._on_block(o)

    def _signal_row(self, o: Decision | RiskBlock, **prices: Decimal) -> SignalRow:
        inst = self.instruments[o.instrument_token]
        return SignalRow(
            session_id=self.session_id,
            ts=utc(o.signal_ts),
            instrument_token=o.instrument_token,
            tradingsymbol=inst.tradingsymbol,
            strategy=o.strategy,
            side=o.side,  # type: ignore[arg-type]
            entry=prices["entry"],
            stop=prices["stop"],
            tp=prices["tp"],
            reason=getattr(o, "reason", "") or "",
        )

    def _count_signal(self, payload: dict[str, Any]) -> None:
        self.counters.signals += 1
        self.metrics.signals.inc()
        self.bus.publish("signals", payload)

    def _on_block(self, b: RiskBlock) -> None:
        sig = self._signal_row(b, entry=_money(b.entry), stop=_money(b.stop), tp=_money(b.tp))
        self.writer.submit(sig)
        self._count_signal({"strategy": b.strategy, "side": b.side, "blocked": b.reason})
        self._risk_event(b.reason, {**dict(b.details), "strategy": b.strategy}, b.signal_ts, sig.id)

    def _risk_event(
        self, reason: str, details: dict[str, Any], ts_ns: int, signal_id: UUID | None
    ) -> None:
        self.counters.risk_blocks += 1
        self.metrics.risk_blocks.labels(reason=reason).inc()
        self.writer.submit(
            RiskEventRow(
                ts=utc(ts_ns),
                reason=reason,
                session_id=self.session_id,
                signal_id=signal_id,
                details=details,
            )
        )
        self.bus.publish("risk", {"reason": reason, **details})

    async def _on_decision(self, d: Decision, recv_ns: int) -> None:
        inst = self.instruments[d.instrument_token]
        t2d_ms = (d.decided_ns - recv_ns) / 1e6 if d.decided_ns >= recv_ns else None
        sig = self._signal_row(d, entry=_money(d.entry), stop=_money(d.stop), tp=_money(d.tp))
        if d.plan_id in self._plans_seen:
            # The same decision delivered again (a retry, a redelivered message). Its
            # plan already has its decision row, bracket, book and engine reservation:
            # touching any of them would orphan the live bracket's trade. Say why only.
            self.writer.submit(sig)
            self._count_signal({"strategy": d.strategy, "side": d.side, "duplicate": d.plan_id})
            self._risk_event("DUPLICATE_PLAN", {"plan_id": d.plan_id}, d.signal_ts, sig.id)
            return
        self._plans_seen.add(d.plan_id)
        row = DecisionRow(
            session_id=self.session_id,
            signal_id=sig.id,
            plan_id=d.plan_id,
            ts=utc(d.signal_ts),
            tradingsymbol=inst.tradingsymbol,
            strategy=d.strategy,
            side=d.side,  # type: ignore[arg-type]
            qty=d.qty,
            entry=_money(d.entry),
            stop=_money(d.stop),
            tp=_money(d.tp),
            risk_rupees=_money(d.risk_rupees),
            heat_after_pct=_money(d.heat_after_pct),
            config_sha=d.config_sha,
            tick_to_decision_ms=t2d_ms,
        )
        self.writer.submit(sig)
        self.writer.submit(row)
        self._count_signal({"strategy": d.strategy, "side": d.side, "plan_id": d.plan_id})
        self.counters.decisions += 1
        self.bus.publish("decisions", d.to_dict())

        refusal = self._entry_refusal()
        if refusal is not None:
            self._risk_event(refusal, {"plan_id": d.plan_id}, d.signal_ts, sig.id)
            self._release(d.plan_id, d.signal_ts)
            return
        self._books[d.plan_id] = _Book(
            d.plan_id, d.side, d.strategy, d.signal_ts, row.id, inst, d.decided_ns, signal_id=sig.id
        )
        o = self.bracket
        spec = BracketSpec(
            plan_id=d.plan_id,
            instrument=inst,
            side=d.side,
            qty=d.qty,
            entry_price=Price(d.entry_paise),
            stop=Price(d.stop_paise),
            take_profit=Price(d.tp_paise),
            entry_type=o.entry_type,
            stop_type=o.stop_type,
            stop_limit_buffer_ticks=o.stop_limit_buffer_ticks,
            scale_out=o.scale_out,
            trail_atr_mult=o.trail_atr_mult,
            time_stop_minutes=o.time_stop_minutes,
            entry_timeout_s=o.entry_timeout_s,
            stop_fill_timeout_s=o.stop_fill_timeout_s,
        )
        try:
            await self.oco.open_bracket(spec)
        except AitrappError as exc:
            # Refused before any order went out (flatten in progress, duplicate plan).
            log.warning("bracket %s not opened: %s", d.plan_id, exc)
            self._books.pop(d.plan_id, None)
            self._risk_event(
                "BRACKET_REFUSED", {"plan_id": d.plan_id, "error": str(exc)}, d.signal_ts, sig.id
            )
            self._release(d.plan_id, d.signal_ts)
            return
        self.counters.brackets_opened += 1

    def entry_refused(self, plan_id: str, reason: str) -> None:
        """The journal could not record a plan's ENTRY (the database went away before
        the writer noticed): nothing was placed. Say why, as for a refusal up front;
        the bracket then ends CANCELLED and ``on_terminal`` releases the engine."""
        book = self._books.get(plan_id)
        if book is None:
            return
        details = {"plan_id": plan_id, "error": reason}
        self._risk_event("DB_UNAVAILABLE", details, book.signal_ts, book.signal_id)

    def _entry_refusal(self) -> str | None:
        if not self.writer.healthy:
            return "DB_UNAVAILABLE"
        if self._entries_allowed is not None:
            return self._entries_allowed()
        return None

    def _release(self, plan_id: str, ts_ns: int) -> None:
        try:
            self.engine.on_plan_cancelled(plan_id, ts_ns)
        except PortfolioError:
            log.exception("engine refused to release plan %s", plan_id)

    def book_adopted(self, plan: AdoptedPlan) -> None:
        """Books an open bracket of an earlier process (adopted by the OCO manager
        at start), so its exits, close and trade are recorded like any other."""
        opened_ns = datetime_to_ns(plan.opened_at)
        book = _Book(
            plan.plan_id,
            plan.side,
            plan.strategy,
            opened_ns,
            plan.decision_id,
            plan.instrument,
            time.perf_counter_ns(),
            opened_ns=opened_ns,
            entry_cum=plan.entry_filled,
            entry_avg=plan.entry_avg,
            exited=plan.exited,
        )
        # The entry is one of the bracket's executed orders (charges).
        book.orders[f"{plan.plan_id}:ENTRY"] = (plan.side, plan.entry_filled, plan.entry_avg)
        self._books[plan.plan_id] = book
        self._plans_seen.add(plan.plan_id)

    # ------------------------------------------------------------------ OCO hooks
    async def on_transition(self, t: TransitionRecord) -> None:
        commands = []
        for c in t.commands:
            if c.kind == "ALERT":
                continue
            commands.append(
                {
                    "kind": c.kind,
                    "client_order_id": c.client_order_id,
                    "role": c.role,
                    "side": c.side,
                    "qty": c.qty,
                    "order_type": c.order_type,
                    "price": str(c.price) if c.price is not None else None,
                    "trigger": str(c.trigger) if c.trigger is not None else None,
                    "exit_reason": c.exit_reason,
                }
            )
            if c.kind == "PLACE_ORDER" and c.role in _CHILD_ROLES:
                self.metrics.oco_children_created.inc()
        self.writer.submit(
            BracketTransitionRow(
                plan_id=t.bracket_id,
                seq=t.seq,
                ts=utc(t.now_ns),
                from_state=t.from_state,
                to_state=t.to_state,
                event=t.event,
                session_id=self.session_id,
                detail=t.event_detail[:2000],
                commands=commands,
            )
        )

    async def on_entry_fill(self, f: EntryFill) -> None:
        book = self._books.get(f.bracket_id)
        if book is None:
            log.error("entry fill for unknown plan %s", f.bracket_id)
            return
        try:
            self.engine.on_entry_filled(f.bracket_id, f.cum_qty, f.avg_price)
        except PortfolioError:
            log.exception("engine refused entry fill of %s", f.bracket_id)
        book.orders[f.client_order_id] = (book.side, f.cum_qty, f.avg_price)
        first = book.opened_ns is None
        book.entry_cum, book.entry_avg = f.cum_qty, f.avg_price
        ts = utc(f.now_ns)
        if first:
            book.opened_ns = f.now_ns
            inst = book.instrument
            self.writer.submit(
                PositionRow(
                    session_id=self.session_id,
                    plan_id=f.bracket_id,
                    instrument_token=inst.instrument_token,
                    exchange=inst.exchange,
                    tradingsymbol=inst.tradingsymbol,
                    side=book.side,  # type: ignore[arg-type]
                    qty=f.cum_qty,
                    avg_entry=_money(f.avg_price),
                    opened_at=ts,
                    updated_at=ts,
                )
            )
        else:
            self._position_update(f.bracket_id, book, ts)
        self._refresh_gauges()

    def _position_update(self, plan_id: str, book: _Book, ts: datetime) -> None:
        net = max(book.entry_cum - book.exited, 0)
        if net > 0:
            self.writer.submit(
                PositionUpdate(plan_id=plan_id, qty=net, avg_entry=_money(book.entry_avg), ts=ts)
            )

    async def on_exit_fill(self, f: ExitFill) -> None:
        book = self._books.get(f.bracket_id)
        if book is None:
            log.error("exit fill for unknown plan %s", f.bracket_id)
            return
        book.orders[f.client_order_id] = (f.side, f.cum_qty, f.avg_price)
        if f.role == "CORRECTIVE":
            book.exited -= f.qty  # an overfill bought (sold) back
            return
        room = max(book.entry_cum - book.exited, 0)
        book.exited += f.qty
        book.exit_qty += f.qty
        book.exit_notional += f.qty * f.price
        if room > 0:
            try:
                self.engine.on_exit_filled(f.bracket_id, min(f.qty, room), f.price)
            except PortfolioError:
                log.exception("engine refused exit fill of %s", f.bracket_id)
        self._position_update(f.bracket_id, book, utc(f.now_ns))

    async def on_terminal(self, r: BracketResult) -> None:
        book = self._books.pop(r.bracket_id, None)
        if book is None:
            log.error("terminal bracket %s was never booked", r.bracket_id)
            return
        if r.entry_qty == 0:
            self._release(book.plan_id, book.signal_ts)
            self._refresh_gauges()
            return
        gross_paise = r.realized_pnl_paise or 0
        charges = self._charges(book, r.now_ns)
        try:  # the daily-loss stop counts the net: the contract note's charges
            self.engine.on_bracket_closed(
                r.bracket_id, gross_paise / 100, r.now_ns, charges_rupees=float(charges)
            )
        except PortfolioError:
            log.exception("engine refused close of %s", r.bracket_id)
        closed = utc(r.now_ns)
        exit_price = book.exit_notional / book.exit_qty if book.exit_qty else r.entry_avg_price
        gross = Decimal(gross_paise) / 100
        net = gross - charges
        self.writer.submit(
            PositionClose(plan_id=r.bracket_id, closed_at=closed, exit_price=_money(exit_price))
        )
        self.writer.submit(
            TradeRow(
                session_id=self.session_id,
                decision_id=book.decision_id,
                plan_id=r.bracket_id,
                strategy=book.strategy,
                exchange=book.instrument.exchange,
                tradingsymbol=book.instrument.tradingsymbol,
                side=book.side,  # type: ignore[arg-type]
                qty=r.entry_qty,
                entry_price=_money(r.entry_avg_price),
                exit_price=_money(exit_price),
                gross_pnl=gross,
                charges=charges,
                net_pnl=net,
                exit_reason=r.closing_reason or r.state,
                opened_at=utc(book.opened_ns or r.now_ns),
                closed_at=closed,
            )
        )
        c = self.counters
        c.trades += 1
        c.wins += net > 0
        self.net_pnl_today += net
        self.bus.publish(
            "trades",
            {
                "plan_id": r.bracket_id,
                "strategy": book.strategy,
                "symbol": book.instrument.tradingsymbol,
                "side": book.side,
                "qty": r.entry_qty,
                "gross": str(gross),
                "charges": str(charges),
                "net": str(net),
                "exit_reason": r.closing_reason,
            },
        )
        self._refresh_gauges()

    def _charges(self, book: _Book, now_ns: int) -> Decimal:
        """Zerodha charges for the bracket's executed orders, as on one contract note."""
        orders = [
            ExecutedOrder.at(side, qty, _money(avg))
            for side, qty, avg in book.orders.values()
            if qty > 0 and avg > 0
        ]
        if not orders:
            return Decimal(0)
        day = date.fromtimestamp((now_ns + _IST_OFFSET_NS) / 1e9)
        kind = charge_kind(book.instrument.segment)
        rates = self.charges.rates_for(book.instrument.exchange, kind, day)
        return self.charges.contract_note(rates, orders).total

    async def on_alert(self, a: OcoAlert) -> None:
        self.counters.alerts += 1
        if a.severity == "CRITICAL":
            self.counters.critical_alerts += 1
        self.metrics.oco_alerts.labels(severity=a.severity, code=a.code).inc()
        if a.is_watchdog_escalation:
            self.metrics.oco_watchdog_escalations.inc()
        log.log(
            _ALERT_LEVEL.get(a.severity, logging.CRITICAL),
            "OCO %s %s: %s",
            a.code,
            a.bracket_id,
            a.message,
            extra={"plan_id": a.bracket_id, "alert": a.code},
        )
        entry = {
            "ts": utc(a.now_ns).isoformat(),
            "plan_id": a.bracket_id,
            "severity": a.severity,
            "code": a.code,
            "message": a.message,
        }
        self.alerts.append(entry)
        del self.alerts[:-50]
        self.bus.publish("risk", {"alert": entry})

    # ------------------------------------------------------------------ read side
    def book(self, plan_id: str) -> _Book | None:
        return self._books.get(plan_id)

    def open_positions(self) -> int:
        """Plans holding filled quantity right now (cheap: live plans only)."""
        return sum(1 for b in self._books.values() if b.entry_cum > b.exited)

    def _refresh_gauges(self) -> None:
        p = self.engine.portfolio()
        self.metrics.positions_open.set(p.open_positions)
        self.metrics.portfolio_heat_percent.set(p.heat_pct)
        self.metrics.daily_pnl_rupees.set(p.daily_pnl)

    def sync_tick_rejections(self) -> None:
        """Moves the engine's rejected-tick counts into the metric (cheap; call now and then)."""
        for reason, n in self.engine.tick_rejections().items():
            delta = n - self._rejections_seen.get(reason, 0)
            if delta > 0:
                self.metrics.ticks_rejected.labels(reason=reason).inc(delta)
                self._rejections_seen[reason] = n
