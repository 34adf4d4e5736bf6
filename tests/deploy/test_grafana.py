"""Grafana: the provisioned dashboard parses, its panels are well formed, and every
PromQL expression reads metrics that the API's /metrics actually exposes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import yaml

from .conftest import DEPLOY
from .promql import PROMETHEUS_SERIES, exposed_names, metric_names

GRAFANA = DEPLOY / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "aitrapp.json"

# The seed's ten metric families (names are a contract) and the operational extras.
SEED = (
    "trader_signals_total",
    "trader_orders_placed_total",
    "trader_orders_filled_total",
    "trader_oco_children_created_total",
    "trader_risk_blocks_total",
    "trader_positions_open",
    "trader_portfolio_heat_percent",
    "trader_daily_pnl_rupees",
    "trader_tick_to_decision_ms",
    "trader_order_latency_ms",
)
EXTRAS = (
    "trader_ticks_rejected_total",
    "trader_writer_queue_depth",
    "trader_bus_publish_failures_total",
    "trader_db_healthy",
    "trader_oco_alerts_total",
    "trader_oco_watchdog_escalations_total",
)


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for p in panels:
        yield p
        yield from all_panels(p.get("panels", []))  # collapsed rows nest theirs


def expressions() -> list[tuple[str, str]]:
    return [
        (p["title"], t["expr"])
        for p in all_panels(dashboard()["panels"])
        for t in p.get("targets", [])
    ]


def test_panel_ids_are_unique_and_the_layout_is_sane() -> None:
    panels = list(all_panels(dashboard()["panels"]))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {ids}"
    for p in panels:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, p["title"]
        assert p.get("title"), f"panel {p['id']} has no title"
        if p["type"] != "row":
            assert p.get("targets"), p["title"]
            assert p["datasource"]["uid"] == "prometheus", p["title"]
            ref_ids = [t["refId"] for t in p["targets"]]
            assert len(ref_ids) == len(set(ref_ids)), p["title"]


def test_dashboard_uses_the_provisioned_datasource_and_folder() -> None:
    ds = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    (source,) = ds["datasources"]
    assert source["uid"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"  # the compose service
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/aitrapp.yml").read_text())
    (provider,) = providers["providers"]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    assert dashboard()["uid"] == "aitrapp"


def test_every_query_reads_metrics_the_api_exposes(exposition: str) -> None:
    exposed = exposed_names(exposition) | PROMETHEUS_SERIES
    for title, expr in expressions():
        read = metric_names(expr) - {"vector"}
        missing = read - exposed
        assert not missing, f"panel {title!r} reads {sorted(missing)}, not in /metrics"


def test_the_seed_metrics_and_the_extras_each_have_a_panel() -> None:
    read = set().union(*(metric_names(e) for _, e in expressions()))
    # A histogram is read through its _bucket / _count series.
    families = {n.removesuffix("_bucket").removesuffix("_count").removesuffix("_sum") for n in read}
    missing = [m for m in (*SEED, *EXTRAS) if m not in families]
    assert not missing, f"no panel for {missing}"
