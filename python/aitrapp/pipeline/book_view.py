"""What ``/state``, the session summary and the progress display read of a
session's book, whichever loop runs it (the kernel, or the Python pipeline
that drives Kite). Every part is O(open) or a running counter."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aitrapp._core import PortfolioSnapshot
from aitrapp.pipeline.latency import LatencyRecorder

if TYPE_CHECKING:
    from aitrapp._core import Engine
    from aitrapp.kernel.driver import KernelDriver
    from aitrapp.oco.manager import OCOManager
    from aitrapp.pipeline.orchestrator import Orchestrator


@dataclass(frozen=True, slots=True)
class BookView:
    portfolio: PortfolioSnapshot
    positions: list[dict[str, Any]]
    working_orders: list[dict[str, Any]]
    counters: dict[str, Any]
    last_tick_ns: int | None
    tick_rejections: dict[str, int]
    latency: LatencyRecorder
    order_latency: LatencyRecorder
    # What `latency` measures (a replay reports kernel time per tick).
    latency_measured: str
    alerts: list[dict[str, Any]]
    net_pnl_today: Decimal
    # Protection figures so far (aitrapp.report.protection); None: not kept on this path.
    protection: dict[str, Any] | None = None

    @staticmethod
    def of_kernel(k: KernelDriver) -> BookView:
        c = k.kernel.counters()
        p = k.portfolio()
        return BookView(
            portfolio=p,
            positions=k.open_positions(),
            working_orders=k.working_orders(),
            counters={
                "ticks": c["ticks"],
                "signals": (c["decisions"] or 0) + (c["blocks"] or 0),
                "decisions": c["decisions"],
                "risk_blocks": c["blocks"],
                "brackets_opened": c["brackets_opened"],
                "trades": k.trades,
                "wins": k.wins,
                "alerts": c["alerts"],
                "critical_alerts": c["critical_alerts"],
                "double_exits": c["double_exits"],
                "races": c["races"],
            },
            last_tick_ns=c["last_tick_ns"],
            tick_rejections=k.kernel.tick_rejections(),
            latency=k.latency,
            order_latency=k.order_latency,
            latency_measured=k.latency_measured,
            alerts=k.alerts,
            net_pnl_today=k.net_pnl_today,
            protection=k.protection.snapshot(),
        )

    @staticmethod
    def of_pipeline(orch: Orchestrator, oco: OCOManager, engine: Engine) -> BookView:
        positions = []
        for b in oco.brackets():
            if b.is_terminal or b.net_qty == 0:
                continue
            last = engine.last_price(b.instrument_token)
            sign = 1 if b.side == "BUY" else -1
            unreal = (
                None if last is None else round(sign * (last - b.entry_avg_price) * b.net_qty, 2)
            )
            positions.append(
                {
                    "plan_id": b.bracket_id,
                    "tradingsymbol": b.tradingsymbol,
                    "side": b.side,
                    "qty": b.net_qty,
                    "avg_entry": b.entry_avg_price,
                    "last_price": last,
                    "unrealized_pnl": unreal,
                    "stop_trigger": b.stop_trigger,
                    "state": b.state,
                }
            )
        working = [
            {
                "plan_id": w.bracket_id,
                "client_order_id": w.client_order_id,
                "broker_order_id": w.broker_order_id,
                "role": w.role,
                "side": w.side,
                "order_type": w.order_type,
                "qty": w.qty,
                "filled": w.filled,
                "price": w.price,
                "trigger": w.trigger,
                "status": w.status,
            }
            for w in oco.working_orders()
        ]
        c = orch.counters
        return BookView(
            portfolio=engine.portfolio(),
            positions=positions,
            working_orders=working,
            counters={
                "ticks": c.ticks,
                "signals": c.signals,
                "decisions": c.decisions,
                "risk_blocks": c.risk_blocks,
                "brackets_opened": c.brackets_opened,
                "trades": c.trades,
                "wins": c.wins,
                "alerts": c.alerts,
                "critical_alerts": c.critical_alerts,
            },
            last_tick_ns=c.last_tick_ns,
            tick_rejections=engine.tick_rejections(),
            latency=orch.latency,
            order_latency=orch.order_latency,
            latency_measured="tick receipt to the engine's decision",
            alerts=orch.alerts,
            net_pnl_today=orch.net_pnl_today,
        )
