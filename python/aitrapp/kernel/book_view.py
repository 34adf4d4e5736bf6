"""What ``/state``, the session summary and the progress display read of a
session's book (the kernel's, PAPER or LIVE). Every part is O(open) or a
running counter."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aitrapp._core import PortfolioSnapshot
from aitrapp.kernel.latency import LatencyRecorder

if TYPE_CHECKING:
    from aitrapp.kernel.driver import KernelDriver


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
    # Protection figures so far (aitrapp.report.protection).
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
                "risk_blocks": (c["blocks"] or 0) + k.shell_risk_events,
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
