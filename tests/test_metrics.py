"""Metrics: the exact exported names, private registries, bucket edges."""

from __future__ import annotations

import re

from aitrapp.metrics import TICK_TO_DECISION_BUCKETS_MS, Metrics

REQUIRED = {
    "trader_signals_total": "counter",
    "trader_orders_placed_total": "counter",
    "trader_orders_filled_total": "counter",
    "trader_oco_children_created_total": "counter",
    "trader_oco_watchdog_escalations_total": "counter",
    "trader_risk_blocks_total": "counter",
    "trader_positions_open": "gauge",
    "trader_portfolio_heat_percent": "gauge",
    "trader_daily_pnl_rupees": "gauge",
    "trader_tick_to_decision_ms": "histogram",
    "trader_order_latency_ms": "histogram",
    "trader_bus_publish_failures_total": "counter",
    "trader_ticks_rejected_total": "counter",
    "trader_writer_queue_depth": "gauge",
    "trader_db_healthy": "gauge",
}


def sample(text: str, name: str, labels: str = "") -> float:
    m = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.M)
    assert m is not None, f"{name}{labels} not exported"
    return float(m.group(1))


def test_every_contract_name_is_exported_with_its_type() -> None:
    text = Metrics().render()
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    for name, kind in REQUIRED.items():
        assert types.get(name) == kind, name
    assert all(family.startswith("trader_") for family in types)


def test_counters_and_labels() -> None:
    m = Metrics()
    m.signals.inc()
    m.signals.inc()
    m.risk_blocks.labels(reason="heat").inc()
    m.risk_blocks.labels(reason="db_unavailable").inc(3)
    m.ticks_rejected.labels(reason="stale").inc()
    m.positions_open.set(2)
    m.daily_pnl_rupees.set(-1250.5)
    text = m.render()
    assert sample(text, "trader_signals_total") == 2
    assert sample(text, "trader_risk_blocks_total", '{reason="db_unavailable"}') == 3
    assert sample(text, "trader_ticks_rejected_total", '{reason="stale"}') == 1
    assert sample(text, "trader_positions_open") == 2
    assert sample(text, "trader_daily_pnl_rupees") == -1250.5


def test_registries_are_independent() -> None:
    a, b = Metrics(), Metrics()
    a.orders_placed.inc()
    assert sample(a.render(), "trader_orders_placed_total") == 1
    assert sample(b.render(), "trader_orders_placed_total") == 0


def test_tick_to_decision_buckets_reach_microseconds() -> None:
    assert TICK_TO_DECISION_BUCKETS_MS[0] == 0.001  # 1 µs
    m = Metrics()
    m.observe_tick_to_decision_ns(recv_ns=1_000, decided_ns=1_800)  # 0.8 µs
    m.observe_tick_to_decision_ns(recv_ns=0, decided_ns=40_000)  # 40 µs
    text = m.render()
    name = "trader_tick_to_decision_ms_bucket"
    assert sample(text, name, '{le="0.001"}') == 1
    assert sample(text, name, '{le="0.025"}') == 1
    assert sample(text, name, '{le="0.05"}') == 2
    assert sample(text, "trader_tick_to_decision_ms_count") == 2
    m.observe_order_latency_ns(decided_ns=0, acked_ns=3_000_000)  # 3 ms
    assert sample(m.render(), "trader_order_latency_ms_bucket", '{le="5.0"}') == 1


def test_writer_depth_is_read_at_scrape_time() -> None:
    m = Metrics()
    depth = [7]
    m.bind_writer_depth(lambda: depth[0])
    assert sample(m.render(), "trader_writer_queue_depth") == 7
    depth[0] = 0
    assert sample(m.render(), "trader_writer_queue_depth") == 0
    assert m.content_type.startswith("text/plain")
