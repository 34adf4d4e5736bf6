"""Prometheus: the scrape config, the alert rules and their unit tests, run through promtool.

promtool comes from Debian's ``prometheus`` package (``make deploy-tools``);
without it these tests skip with that reason. The metric-name checks need no
promtool: every series a rule reads must be one /metrics exposes.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from aitrapp.metrics import Metrics

from .conftest import DEPLOY, tool
from .promql import PROMETHEUS_SERIES, exposed_names, metric_names

PROM = DEPLOY / "prometheus"
SECRET_PATH = "/run/secrets/api_token"  # where compose mounts the API token

# Each alert the operations runbook promises (docs/runbook.md has a section for each).
ALERTS = {
    "AitrappDown",
    "AitrappNoTicks",
    "AitrappTickToDecisionSlo",
    "AitrappDatabaseUnhealthy",
    "AitrappBusPublishFailures",
    "AitrappDailyLossNearStop",
    "AitrappOcoCritical",
}


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


def rules() -> list[dict[str, object]]:
    doc = yaml.safe_load((PROM / "rules.yml").read_text())
    return [r for g in doc["groups"] for r in g["rules"]]


def test_promtool_check_config(tmp_path: Path) -> None:
    promtool = tool("promtool", "prometheus")
    # promtool stats the token file: point the copy at a stand-in for compose's secret.
    token = tmp_path / "api_token"
    token.write_text("0123456789abcdef")
    config = (PROM / "prometheus.yml").read_text()
    assert SECRET_PATH in config
    (tmp_path / "prometheus.yml").write_text(config.replace(SECRET_PATH, str(token)))
    shutil.copy(PROM / "rules.yml", tmp_path / "rules.yml")
    out = run(promtool, "check", "config", str(tmp_path / "prometheus.yml"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout + out.stderr


def test_scrape_config_targets_the_api_service() -> None:
    config = yaml.safe_load((PROM / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "aitrapp"  # the rules select job="aitrapp"
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"] == [{"targets": ["api:8000"]}]
    assert job["authorization"]["credentials_file"] == SECRET_PATH
    assert config["rule_files"] == ["rules.yml"]


def test_promtool_check_rules() -> None:
    promtool = tool("promtool", "prometheus")
    out = run(promtool, "check", "rules", "--lint-fatal", str(PROM / "rules.yml"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in out.stdout


def test_promtool_unit_tests_of_the_rules() -> None:
    promtool = tool("promtool", "prometheus")
    out = run(promtool, "test", "rules", str(PROM / "rules_test.yml"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def test_every_alert_is_promised_and_unit_tested() -> None:
    names = {str(r["alert"]) for r in rules() if "alert" in r}
    assert names == ALERTS
    tests = yaml.safe_load((PROM / "rules_test.yml").read_text())["tests"]
    tested = {c["alertname"] for t in tests for c in t.get("alert_rule_test", [])}
    assert tested == ALERTS
    # A test that never expects its alert to fire could not catch a broken rule.
    fired = {c["alertname"] for t in tests for c in t.get("alert_rule_test", []) if c["exp_alerts"]}
    assert fired == ALERTS
    for r in rules():
        assert r["labels"]["severity"] in ("critical", "warning"), r["alert"]  # type: ignore[index]
        assert str(r["annotations"]["runbook"]).startswith("docs/runbook.md#"), r["alert"]  # type: ignore[index]


def test_rules_read_only_metrics_the_api_exposes(exposition: str) -> None:
    exposed = exposed_names(exposition) | PROMETHEUS_SERIES
    for r in rules():
        read = metric_names(str(r["expr"]))
        assert read, f"{r['alert']}: no metric found in its expression"
        assert read <= exposed, f"{r['alert']} reads {sorted(read - exposed)}, not in /metrics"


# Latency histograms in milliseconds: the seed's two, and tick-to-order named after them.
MS_HISTOGRAMS = ("trader_order_latency_ms", "trader_tick_to_decision_ms", "trader_tick_to_order_ms")


def test_promtool_lints_only_the_ms_unit_of_the_latency_histograms(exposition: str) -> None:
    """The seed's names end in ``_ms``; Prometheus wants base units (seconds). The names
    are a contract with dashboards and alerts, so these lint lines are expected;
    anything else promtool finds is a new problem."""
    promtool = tool("promtool", "prometheus")
    out = run(promtool, "check", "metrics", stdin=exposition)
    problems = {line.strip() for line in (out.stdout + out.stderr).splitlines() if line.strip()}
    assert problems == {
        f"{name} metric names should not contain abbreviated units" for name in MS_HISTOGRAMS
    }


def test_the_daily_loss_stop_is_exported_for_the_alert() -> None:
    m = Metrics()
    assert "\ntrader_daily_loss_stop_rupees 0.0\n" in m.render()  # not set: the rule stays silent
    m.set_daily_loss_stop(1_000_000, 2.5)
    assert "\ntrader_daily_loss_stop_rupees 25000.0\n" in m.render()


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (reason) (rate(trader_x_total{a="b",le="1.0"}[5m])) > 1e3', {"trader_x_total"}),
        ("a and on() (hour() * 60 + minute() >= 226 < 600)", {"a"}),
        ("x unless y offset 5m", {"x", "y"}),
        ("histogram_quantile(0.99, sum by (le) (rate(h_bucket[$__rate_interval])))", {"h_bucket"}),
        ("-0.8 * sum(s) or vector(1)", {"s"}),
    ],
)
def test_metric_names_reads_promql(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names
