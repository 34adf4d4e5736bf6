"""GET /health, /state and /metrics."""

from __future__ import annotations

from aitrapp import __version__
from aitrapp.control import ComponentHealth

from .conftest import Api


async def test_health_lists_every_component(api: Api) -> None:
    r = await api.client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["ok"] is True
    assert body["version"] == __version__
    assert body["mode"] == "PAPER" and body["trading_state"] == "ACTIVE"
    assert body["components"] == {
        "database": {"ok": True, "detail": "pool 1/4"},
        "feed": {"ok": True, "detail": "synthetic"},
        "api": {"ok": True, "detail": "event_streams=0/16"},
    }
    assert body["uptime_s"] >= 0


async def test_health_shows_a_failed_component(api: Api) -> None:
    api.runtime.components["order_watcher"] = ComponentHealth(
        ok=False, detail="task failed: RuntimeError('boom'); failures=1"
    )
    r = await api.client.get("/health")
    assert r.status_code == 200  # liveness: the process still serves
    body = r.json()
    assert body["ok"] is False
    assert body["components"]["order_watcher"] == {
        "ok": False,
        "detail": "task failed: RuntimeError('boom'); failures=1",
    }


async def test_state_is_the_runtime_snapshot(api: Api) -> None:
    r = await api.client.get("/state")
    assert r.status_code == 200
    body = r.json()
    assert body["mode"] == "PAPER"
    assert body["trading_state"] == "ACTIVE"
    assert len(body["positions"]) == 2 and body["positions"][0]["unrealized_pnl"] == 12.5
    assert len(body["working_orders"]) == 4
    assert body["daily_pnl"]["net_after_charges"] == "-120.75"
    assert body["tick_to_decision"]["slo_compliance"] == 1.0
    assert body["tick_to_decision"]["p99_ms"] == 0.01
    assert body["last_tick_at"] == "2026-01-05T04:00:00Z"
    assert body["counters"]["ticks"] == 1000
    assert body["session"]["progress"] == 0.25
    assert body["new_key"] == {"kept": True}  # keys the contract does not name yet pass through


async def test_state_follows_pause(api: Api) -> None:
    await api.client.post("/pause")
    assert (await api.client.get("/state")).json()["trading_state"] == "PAUSED"


async def test_metrics_is_prometheus_text(api: Api) -> None:
    api.runtime.metrics.signals.inc(3)
    api.runtime.metrics.risk_blocks.labels(reason="DAILY_LOSS").inc()
    api.runtime.metrics.observe_tick_to_decision_ns(0, 2_000)
    r = await api.client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=")
    text = r.text
    assert "trader_signals_total 3.0" in text
    assert 'trader_risk_blocks_total{reason="DAILY_LOSS"} 1.0' in text
    assert 'trader_tick_to_decision_ms_bucket{le="0.0025"} 1.0' in text


async def test_unknown_routes_and_methods(api: Api) -> None:
    assert (await api.client.get("/nope")).status_code == 404
    assert (await api.client.post("/state")).status_code == 405
    assert (await api.client.get("/flatten")).status_code == 405
    assert api.runtime.calls == []
