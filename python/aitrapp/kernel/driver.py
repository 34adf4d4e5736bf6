"""The shell around one session's kernel: feeds it, and turns what it
reports into rows (through the writer), bus messages, metrics and the O(open)
read-outs that ``/state`` serves.

Latency is measured where it is true: on a live feed from the tick's
receipt (``recv_ns``, monotonic) to the kernel's answer, which includes the
decision and, with the paper venue, the order handed to it; in a replay the
kernel's time per tick (batch time / rows), reported as such.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from aitrapp._core import Instrument, Kernel, LiveKernel, PortfolioSnapshot
from aitrapp.bus import EventBus
from aitrapp.charges import ChargeSchedule
from aitrapp.db.writer import DbWriter
from aitrapp.feeds.base import TickBatch
from aitrapp.kernel.events import EventBatch, count, rows
from aitrapp.kernel.latency import LatencyRecorder
from aitrapp.kernel.persist import KernelPersister, order_role, rupees, utc
from aitrapp.kernel.replay import trades_of
from aitrapp.logs import order_log
from aitrapp.metrics import Metrics
from aitrapp.report.protection import ProtectionTally

log = logging.getLogger(__name__)
# A batch with more order commands than this logs them in one line (a replay);
# fewer (the live path, a paced session) get a line each.
ORDER_LINES_MAX = 8

_ALERT_LEVEL = {"INFO": logging.INFO, "WARNING": logging.WARNING, "ERROR": logging.ERROR}
LIVE_LATENCY = "tick receipt to the kernel's answer (live feed)"
REPLAY_LATENCY = "kernel time per tick (replay: not a live latency)"


def _log_orders(orders: dict[str, list[Any]]) -> None:
    """Every order command in the JSON log, each line carrying its client_order_id
    (refusals always on their own line); cheap when INFO is off."""
    coids = orders["client_order_id"]
    for i, refused in enumerate(orders["refused"]):
        if refused:
            order_log(log, coids[i], order_id=orders["order_id"][i]).warning(
                "%s refused by the venue: %s", orders["action"][i], refused
            )
    if not log.isEnabledFor(logging.INFO):
        return
    sent = [i for i, refused in enumerate(orders["refused"]) if not refused]
    if len(sent) > ORDER_LINES_MAX:
        actions = Counter(orders["action"][i] for i in sent)
        log.info(
            "%d order commands (%s)",
            len(sent),
            ", ".join(f"{a} {n}" for a, n in sorted(actions.items())),
            extra={
                "client_order_ids": [coids[i] for i in sent],
                "order_ids": [orders["order_id"][i] for i in sent],
            },
        )
        return
    for i in sent:
        log.info(
            "%s %s %s %s qty=%d",
            orders["action"][i], orders["side"][i], orders["order_type"][i], coids[i],
            orders["qty"][i],
            extra={"client_order_id": coids[i], "order_id": orders["order_id"][i]},
        )  # fmt: skip


@dataclass(slots=True)
class CommandCounts:
    """Order commands the kernel sent, by kind (refused ones left out)."""

    market_exits: int = 0  # new MARKET orders that close a position
    cancels: int = 0
    converted_stops: int = 0  # stops modified into market orders (one request each)

    def add(self, orders: dict[str, list[Any]]) -> None:
        rows = zip(
            orders["action"], orders["order_type"], orders["client_order_id"], orders["refused"],
            strict=True,
        )  # fmt: skip
        for action, otype, coid, refused in rows:
            if refused:
                continue
            if action == "CANCEL":
                self.cancels += 1
            elif otype == "MARKET" and action == "MODIFY":
                self.converted_stops += 1
            elif otype == "MARKET" and not coid.endswith(":ENTRY"):
                self.market_exits += 1


class KernelDriver:
    def __init__(
        self,
        kernel: Kernel | LiveKernel,
        *,
        writer: DbWriter,
        bus: EventBus,
        metrics: Metrics,
        session_id: UUID,
        instruments: Mapping[int, Instrument],
        fill_scope: str,
        charges: ChargeSchedule | None = None,
        slo_ms: float = 1.0,
    ) -> None:
        self.kernel = kernel
        self.writer = writer
        self.bus = bus
        self.metrics = metrics
        self.instruments = instruments
        self.charges = charges or ChargeSchedule.default()
        self.persister = KernelPersister(
            writer, session_id, instruments, fill_scope, kernel.config_sha
        )
        self.latency = LatencyRecorder(slo_ms)
        self.order_latency = LatencyRecorder(slo_ms)
        self.latency_measured = REPLAY_LATENCY
        self.alerts: list[dict[str, Any]] = []
        self.net_pnl_today = Decimal(0)
        self.trades = 0
        self.wins = 0
        # O(open) read-outs, kept from the events.
        self.positions: dict[str, dict[str, Any]] = {}
        self.working: dict[str, dict[str, Any]] = {}
        self._plan_fills: dict[str, list[dict[str, Any]]] = {}
        self._plan_side: dict[str, tuple[str, int]] = {}
        self._rejections_seen: dict[str, int] = {}
        # Why the shell holds entries back while the kernel is PAUSED for it (the
        # database is away): its gate's TRADING_STATE blocks say this reason instead.
        self.entry_refusal: str | None = None
        self.protection = ProtectionTally()  # the /state and summary protection figures
        # Order commands so far, by what they do: a flatten reports its own share.
        self.commands = CommandCounts()
        # Risk events the shell recorded itself (an entry the journal could not write).
        self.shell_risk_events = 0

    # ---------------------------------------------------------------- feeding
    def run_batch(self, batch: TickBatch) -> None:
        if not isinstance(self.kernel, Kernel):
            raise TypeError("run_batch: a replay runs on the paper kernel")
        t0 = time.perf_counter_ns()
        ev = self.kernel.run(
            batch.token, batch.ts_ns, batch.last_price, batch.last_qty,
            batch.volume, batch.bid, batch.ask, batch.oi,
        )  # fmt: skip
        dt = time.perf_counter_ns() - t0
        n = len(batch)
        if n:
            self.latency.record_many(dt // n, n)
        self.absorb(ev)

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
    ) -> None:
        self.latency_measured = LIVE_LATENCY
        ev = self.kernel.on_tick(token, ts_ns, last_price, last_qty, volume, bid, ask, oi)
        done = time.perf_counter_ns()
        self.latency.record(done - recv_ns)
        self.metrics.observe_tick_to_decision_ns(recv_ns, done)
        if ev is not None:
            if count(ev, "orders"):
                self.order_latency.record(done - recv_ns)
                self.metrics.tick_to_order_ms.observe((done - recv_ns) / 1e6)
            self.absorb(ev)

    def advance_time(self, ts_ns: int) -> None:
        self.absorb(self.kernel.advance_time(ts_ns))

    async def run_clock(self, clock: Callable[[], int], interval_s: float = 0.2) -> None:
        """A real-time session (paper on the live feed): exchange time moves between
        ticks too, so an entry timeout or the 15:20 square-off fires at its own time
        on a quiet feed. ``clock`` is exchange time now (UTC ns); runs until cancelled."""
        while True:
            try:
                self.advance_time(clock())
            except Exception:  # the clock must outlive one bad batch
                log.exception("kernel clock step failed")
            await asyncio.sleep(interval_s)

    def finish(self, ts_ns: int, until_ns: int) -> None:
        self.absorb(self.kernel.finish(ts_ns, until_ns))

    def flatten(self, ts_ns: int) -> None:
        """Every open bracket exits at market now (what it sends: :attr:`commands`)."""
        self.absorb(self.kernel.flatten(ts_ns))

    def alert(self, ts_ns: int, severity: str, code: str, message: str) -> None:
        """An alert of the session itself (database health), shown like the kernel's."""
        self._on_alert(
            {"ts_ns": ts_ns, "plan_id": "", "severity": severity, "code": code, "reason": message}
        )

    # ---------------------------------------------------------------- output
    def _order_event(self, o: dict[str, Any]) -> dict[str, Any]:
        """An order command on the ``orders`` topic: what it does and to which order."""
        plan_id, _, role = o["client_order_id"].partition(":")
        token = self._plan_side.get(plan_id, ("", 0))[1]
        inst = self.instruments.get(token)
        return {
            "client_order_id": o["client_order_id"],
            "action": o["action"],  # PLACE, MODIFY or CANCEL
            "order_id": str(o["order_id"]),
            "plan_id": plan_id,
            "role": role,
            "symbol": inst.tradingsymbol if inst is not None else None,
            "side": o["side"],
            "qty": o["qty"],
            "order_type": o["order_type"],
            "price": float(rupees(o["price"])) if o["price"] else None,
            "trigger": float(rupees(o["trigger"])) if o["trigger"] else None,
            "session_time": utc(o["ts_ns"]).isoformat(),
        }

    def absorb(self, ev: EventBatch | None) -> None:
        if not ev:
            return
        if self.entry_refusal is not None and count(ev, "blocks"):
            why = self.entry_refusal
            blocks = ev["blocks"]
            blocks["reason"] = [why if r == "TRADING_STATE" else r for r in blocks["reason"]]
        trades = trades_of(ev, self.instruments, self.charges, self._plan_fills)
        self.persister.persist(ev, trades)
        self.protection.absorb(ev, trades)
        # Counters move once per batch; a topic nobody listens to gets no events
        # built (each event a listener gets is the same as ever).
        m, bus = self.metrics, self.bus
        if count(ev, "decisions"):
            d = ev["decisions"]
            self._plan_side.update(
                zip(d["plan_id"], zip(d["side"], d["token"], strict=True), strict=True)
            )
            m.signals.inc(len(d["plan_id"]))
            if bus.listens("decisions"):
                for decision in rows(ev, "decisions"):
                    bus.publish(
                        "decisions",
                        {k: decision[k] for k in ("plan_id", "strategy", "side", "qty")},
                    )
        if count(ev, "blocks"):  # refusals come by the ten thousand: counted per reason
            reasons, strategies = ev["blocks"]["reason"], ev["blocks"]["strategy"]
            m.signals.inc(len(reasons))
            for reason, n in Counter(reasons).items():
                m.risk_blocks.labels(reason=reason).inc(n)
            if bus.listens("risk"):
                for reason, strategy in zip(reasons, strategies, strict=True):
                    bus.publish("risk", {"reason": reason, "strategy": strategy})
        if count(ev, "orders"):
            self._absorb_orders(ev["orders"])
        if count(ev, "updates"):
            u = ev["updates"]
            working, filled = self.working, 0
            for coid, status, filled_qty, message in zip(
                u["client_order_id"], u["status"], u["filled_qty"], u["message"], strict=True
            ):
                if status == "REJECTED":
                    order_log(log, coid).warning("order rejected: %s", message)
                if status in ("COMPLETE", "CANCELLED", "REJECTED"):
                    working.pop(coid, None)
                    filled += status == "COMPLETE"
                elif (w := working.get(coid)) is not None:
                    w["status"], w["filled"] = status, filled_qty
            if filled:
                m.orders_filled.inc(filled)
            if bus.listens("order_updates"):
                for coid, status, filled_qty, message in zip(
                    u["client_order_id"], u["status"], u["filled_qty"], u["message"], strict=True
                ):
                    bus.publish(
                        "order_updates",
                        {
                            "client_order_id": coid,
                            "status": status,
                            "filled_qty": filled_qty,
                            "message": message,
                        },
                    )
        for f in rows(ev, "fills"):
            self._on_fill(f)
        for a in rows(ev, "alerts"):
            self._on_alert(a)
        for t in trades:
            self.positions.pop(t.plan_id, None)
            self._plan_side.pop(t.plan_id, None)
            self.trades += 1
            self.wins += t.net > 0
            self.net_pnl_today += t.net
        if trades and bus.listens("trades"):
            for t in trades:
                bus.publish(
                    "trades",
                    {
                        "plan_id": t.plan_id,
                        "strategy": t.strategy,
                        "symbol": t.tradingsymbol,
                        "side": t.side,
                        "qty": t.qty,
                        "gross": str(t.gross),
                        "charges": str(t.charges),
                        "net": str(t.net),
                        "exit_reason": t.exit_reason,
                    },
                )
        self._refresh_gauges()

    def _absorb_orders(self, orders: dict[str, list[Any]]) -> None:
        """The batch's order commands: logged, counted, new ones kept as working
        orders, each published on ``orders`` when anyone listens."""
        _log_orders(orders)
        self.commands.add(orders)
        working, placed = self.working, 0
        for action, coid, order_id, plan_id, side, otype, qty, price, trigger, reason in zip(
            orders["action"], orders["client_order_id"], orders["order_id"], orders["plan_id"],
            orders["side"], orders["order_type"], orders["qty"], orders["price"],
            orders["trigger"], orders["reason"], strict=True,
        ):  # fmt: skip
            if action != "PLACE":
                continue
            placed += 1
            working[coid] = {
                "plan_id": plan_id,
                "client_order_id": coid,
                "broker_order_id": str(order_id),
                "role": order_role(coid.partition(":")[2], reason),
                "side": side,
                "order_type": otype,
                "qty": qty,
                "filled": 0,
                "price": float(rupees(price)) if price else None,
                "trigger": float(rupees(trigger)) if trigger else None,
                "status": "NEW",
            }
        if placed:
            self.metrics.orders_placed.inc(placed)
        if self.bus.listens("orders"):
            for o in rows({"orders": orders}, "orders"):
                self.bus.publish("orders", self._order_event(o))

    def _on_fill(self, f: dict[str, Any]) -> None:
        plan = f["plan_id"]
        side, token = self._plan_side.get(plan, (f["side"], 0))
        p = self.positions.get(plan)
        if f["role"] == "ENTRY":
            if p is None:
                inst = self.instruments.get(token)
                p = self.positions[plan] = {
                    "plan_id": plan,
                    "instrument_token": token,
                    "tradingsymbol": inst.tradingsymbol if inst else "",
                    "side": side,
                    "qty": 0,
                    "entry_value": 0.0,
                }
            p["qty"] += f["qty"]
            p["entry_value"] += f["qty"] * f["price"] / 100
        elif p is not None:
            p["qty"] += f["qty"] if f["role"] == "CORRECTIVE" else -f["qty"]

    def _on_alert(self, a: dict[str, Any]) -> None:
        m = self.metrics
        m.oco_alerts.labels(severity=a["severity"], code=a["code"]).inc()
        if a["code"] in ("STOP_FILL_TIMEOUT", "STOP_UNFILLED"):
            m.oco_watchdog_escalations.inc()
        log.log(
            _ALERT_LEVEL.get(a["severity"], logging.CRITICAL),
            "OCO %s %s: %s",
            a["code"],
            a["plan_id"],
            a["reason"],
            extra={"plan_id": a["plan_id"], "alert": a["code"]},
        )
        entry = {
            "ts": utc(a["ts_ns"]).isoformat(),
            "plan_id": a["plan_id"],
            "severity": a["severity"],
            "code": a["code"],
            "message": a["reason"],
        }
        self.alerts.append(entry)
        del self.alerts[:-50]
        self.bus.publish("risk", {"alert": entry})

    def _refresh_gauges(self) -> None:
        p = self.kernel.portfolio()
        m = self.metrics
        m.positions_open.set(p.open_positions)
        m.portfolio_heat_percent.set(p.heat_pct)
        m.daily_pnl_rupees.set(p.daily_pnl)

    def sync_tick_rejections(self) -> None:
        for reason, n in self.kernel.tick_rejections().items():
            delta = n - self._rejections_seen.get(reason, 0)
            if delta > 0:
                self.metrics.ticks_rejected.labels(reason=reason).inc(delta)
                self._rejections_seen[reason] = n

    # ---------------------------------------------------------------- read side
    def portfolio(self) -> PortfolioSnapshot:
        return self.kernel.portfolio()

    def open_positions(self) -> list[dict[str, Any]]:
        stops = {w["plan_id"]: w["trigger"] for w in self.working.values() if w["role"] == "STOP"}
        out = []
        for p in self.positions.values():
            if p["qty"] <= 0:
                continue
            avg = p["entry_value"] / max(p["qty"], 1)
            last = self.kernel.last_price(p["instrument_token"])
            sign = 1 if p["side"] == "BUY" else -1
            out.append(
                {
                    "plan_id": p["plan_id"],
                    "tradingsymbol": p["tradingsymbol"],
                    "side": p["side"],
                    "qty": p["qty"],
                    "avg_entry": round(avg, 4),
                    "last_price": last,
                    "unrealized_pnl": None
                    if last is None
                    else round(sign * (last - avg) * p["qty"], 2),
                    "stop_trigger": stops.get(p["plan_id"]),
                    "state": "OPEN",
                }
            )
        return out

    def working_orders(self) -> list[dict[str, Any]]:
        return list(self.working.values())
