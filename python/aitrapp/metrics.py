"""Prometheus metrics, on a registry owned by one :class:`Metrics` object.

Not the global registry: tests (and several engines in one process) can make
as many as they like. The ``trader_*`` names are a contract with dashboards
and alerts; do not rename them.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

# Tick-to-decision is microseconds in the core; buckets start at 1 µs.
TICK_TO_DECISION_BUCKETS_MS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 1000.0,
)  # fmt: skip
# Decision to broker ack: a local paper ack is sub-millisecond, Kite is tens to hundreds.
ORDER_LATENCY_BUCKETS_MS = (
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0,
    250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
)  # fmt: skip


class Metrics:
    """Every metric the trader exports. Attribute names drop the ``trader_`` prefix."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        # `*_created` timestamp series only add noise to every scrape (and a
        # confusing trader_oco_children_created_created); the switch is process-wide.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        # prometheus_client appends `_total` to counter names on exposition.
        # Every tick taken in, timed one by one (live) or in columns (replays): the
        # tick-to-decision histogram sees only the former, the no-tick alert needs both.
        self.ticks = Counter("trader_ticks", "Ticks received from the feed", registry=r)
        self.signals = Counter("trader_signals", "Signals produced by strategies", registry=r)
        self.orders_placed = Counter(
            "trader_orders_placed", "Orders accepted by the broker", registry=r
        )
        self.orders_filled = Counter("trader_orders_filled", "Orders completely filled", registry=r)
        self.oco_children_created = Counter(
            "trader_oco_children_created", "STOP/TP children placed for filled entries", registry=r
        )
        self.risk_blocks = Counter(
            "trader_risk_blocks", "Signals blocked by the risk gate", ["reason"], registry=r
        )
        self.positions_open = Gauge("trader_positions_open", "Open positions", registry=r)
        self.portfolio_heat_percent = Gauge(
            "trader_portfolio_heat_percent",
            "Open risk as a percent of capital",
            registry=r,
        )
        self.daily_pnl_rupees = Gauge(
            "trader_daily_pnl_rupees", "Realised plus unrealised P&L today, rupees", registry=r
        )
        # The alert "P&L within 20% of the daily-loss stop" needs the stop itself.
        self.daily_loss_stop_rupees = Gauge(
            "trader_daily_loss_stop_rupees",
            "Daily-loss stop as a positive amount (capital x daily_loss_stop_pct), rupees",
            registry=r,
        )
        self.tick_to_decision_ms = Histogram(
            "trader_tick_to_decision_ms",
            "Tick entering the process to the decision returned, milliseconds",
            buckets=TICK_TO_DECISION_BUCKETS_MS,
            registry=r,
        )
        self.tick_to_order_ms = Histogram(
            "trader_tick_to_order_ms",
            "Tick entering the process to the order command handed to the venue or broker, "
            "milliseconds",
            buckets=TICK_TO_DECISION_BUCKETS_MS,
            registry=r,
        )
        self.order_latency_ms = Histogram(
            "trader_order_latency_ms",
            "Decision to broker acknowledgement, milliseconds",
            buckets=ORDER_LATENCY_BUCKETS_MS,
            registry=r,
        )
        self.bus_publish_failures = Counter(
            "trader_bus_publish_failures",
            "Events the bus could not publish (dropped; trading goes on)",
            registry=r,
        )
        self.bus_subscriber_drops = Counter(
            "trader_bus_subscriber_drops",
            "Events dropped for a subscriber that fell behind",
            registry=r,
        )
        self.ticks_rejected = Counter(
            "trader_ticks_rejected", "Ticks refused by validation", ["reason"], registry=r
        )
        self.writer_queue_depth = Gauge(
            "trader_writer_queue_depth", "Database writes queued or in flight", registry=r
        )
        self.writer_dropped = Counter(
            "trader_writer_dropped",
            "Database writes that could not be stored (queue full or rejected row; logged)",
            registry=r,
        )
        self.oco_alerts = Counter(
            "trader_oco_alerts",
            "Alerts raised by OCO brackets (unprotected position, double fill, ...)",
            ["severity", "code"],
            registry=r,
        )
        self.oco_watchdog_escalations = Counter(
            "trader_oco_watchdog_escalations",
            "Triggered stops not filled in time: cancelled and exited at market (WARNING), "
            "then exited without waiting for the cancel (CRITICAL)",
            registry=r,
        )
        self.db_healthy = Gauge(
            "trader_db_healthy",
            "1 while the database answers its heartbeat and accepts writes, else 0",
            registry=r,
        )
        self.fill_conflicts = Counter(
            "trader_fill_conflicts",
            "Fills refused: their key already holds a different fill (each logged in full)",
            registry=r,
        )
        self.bus_up = Gauge(
            "trader_bus_up", "1 while the event bus can publish, else 0 (Redis down)", registry=r
        )
        self.notify_sent = Counter(
            "trader_notify_sent", "Notifications delivered to every configured service", registry=r
        )
        self.notify_failures = Counter(
            "trader_notify_failures",
            "Notifications not delivered: reason=send (a service refused or timed out; "
            "per service) or dropped (queue full, shutdown)",
            ["reason"],
            registry=r,
        )

    # ---- helpers for the hot path: no allocation beyond the observe ----
    def observe_tick_to_decision_ns(self, recv_ns: int, decided_ns: int) -> None:
        self.tick_to_decision_ms.observe((decided_ns - recv_ns) / 1e6)

    def observe_order_latency_ns(self, decided_ns: int, acked_ns: int) -> None:
        self.order_latency_ms.observe((acked_ns - decided_ns) / 1e6)

    def set_daily_loss_stop(self, capital_rupees: float, daily_loss_stop_pct: float) -> None:
        """Publish the engine's daily-loss stop (0 until a runtime sets it)."""
        self.daily_loss_stop_rupees.set(capital_rupees * daily_loss_stop_pct / 100)

    def bind_writer_depth(self, depth: Callable[[], float]) -> None:
        """Read the writer's queue depth at scrape time (no per-write cost)."""
        self.writer_queue_depth.set_function(depth)

    def render(self) -> str:
        """The Prometheus text exposition of this registry."""
        return generate_latest(self.registry).decode()
