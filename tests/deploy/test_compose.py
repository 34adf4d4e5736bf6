"""docker-compose.yml and .env.example: valid for docker-compose, and in step with the app.

No Docker engine runs here: ``docker-compose config`` (Debian's docker-compose,
``make deploy-tools``) validates and resolves the file; the rest reads the YAML.
The api service's environment must be settings the app reads (a typo would be
silently ignored by the app), and what the app needs inside compose must be set.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from aitrapp.exceptions import ConfigError
from aitrapp.kite import auth as kite_auth
from aitrapp.kite import session as kite_session
from aitrapp.report.burnin import BurninCriteria
from aitrapp.report.live_gate import LiveGateConfig
from aitrapp.settings import AppSettings, load_settings

from .conftest import DEPLOY, ROOT, tool

COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
FILLED = {
    "AITRAPP_API_TOKEN": "0123456789abcdef0123456789abcdef",
    "POSTGRES_PASSWORD": "pg-secret",
    "GRAFANA_ADMIN_PASSWORD": "grafana-secret",
}
# Inside compose the app must use the postgres and redis services (else it would
# quietly start an embedded PostgreSQL in the container) and listen beyond loopback,
# which the settings refuse without a token.
REQUIRED_IN_COMPOSE = {"DATABASE_URL", "REDIS_URL", "AITRAPP_API_HOST", "AITRAPP_API_TOKEN"}


def settings_env_names(cls: type[BaseSettings]) -> set[str]:
    """The environment variables a pydantic-settings class reads."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    names = set()
    for name, field in cls.model_fields.items():
        alias = field.validation_alias
        choices = getattr(alias, "choices", None)
        if choices:
            names |= {c for c in choices if isinstance(c, str) and c.isupper()}
        else:
            names.add((prefix + name).upper())
    return names


def app_env_names() -> set[str]:
    """Everything the app reads from the environment: the settings classes and Kite's keys."""
    names = set().union(
        *(settings_env_names(c) for c in (AppSettings, BurninCriteria, LiveGateConfig))
    )
    for module in (kite_auth, kite_session):
        names |= {v for k, v in vars(module).items() if k.startswith("ENV_") and isinstance(v, str)}
    return names


VARIABLE = re.compile(r"\$\{(\w+)(?::-([^}]*)|:\?[^}]*)?\}")


def substitute(m: re.Match[str]) -> str:
    """``${NAME}``, ``${NAME:-default}``, ``${NAME:?error}`` as compose reads a filled .env."""
    return FILLED.get(m[1]) or m[2] or ""


def required_settings() -> set[str]:
    return {
        ("AITRAPP_" + n).upper() for n, f in AppSettings.model_fields.items() if f.is_required()
    }


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def env_file(tmp_path: Path, **values: str) -> Path:
    """.env.example with the blanks filled in (what an operator's .env looks like)."""
    lines = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        key = line.split("=", 1)[0]
        filled = "=" in line and not line.startswith("#") and key in values
        lines.append(f"{key}={values[key]}" if filled else line)
    path = tmp_path / ".env"
    path.write_text("\n".join(lines) + "\n")
    return path


def compose_config(env: Path) -> subprocess.CompletedProcess[str]:
    exe = tool("docker-compose", "docker-compose")
    return subprocess.run(
        [exe, "--env-file", str(env), "-f", str(COMPOSE), "config"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )


def test_docker_compose_config_validates_and_resolves(tmp_path: Path) -> None:
    out = compose_config(env_file(tmp_path, **FILLED))
    assert out.returncode == 0, out.stderr
    resolved = yaml.safe_load(out.stdout)
    assert set(resolved["services"]) == {"postgres", "redis", "api", "prometheus", "grafana"}
    api = resolved["services"]["api"]
    assert api["environment"]["AITRAPP_API_TOKEN"] == FILLED["AITRAPP_API_TOKEN"]
    assert api["environment"]["DATABASE_URL"] == (
        "postgresql://aitrapp:pg-secret@postgres:5432/aitrapp"
    )
    assert api["command"] == "serve --feed synthetic --speed 1x"
    # The dashboard's name: the api process serves it.
    assert "web" in api["networks"]["default"]["aliases"]


@pytest.mark.parametrize("blank", sorted(FILLED))
def test_compose_refuses_to_start_without_each_secret(tmp_path: Path, blank: str) -> None:
    values = {k: v for k, v in FILLED.items() if k != blank}
    out = compose_config(env_file(tmp_path, **values))
    assert out.returncode != 0
    assert f"set {blank} in .env" in out.stderr


def test_every_api_variable_is_a_setting_the_app_reads() -> None:
    env = compose()["services"]["api"]["environment"]
    unknown = set(env) - app_env_names()
    assert not unknown, f"compose sets {sorted(unknown)}, which the app never reads"


def test_every_required_setting_is_set_for_the_api() -> None:
    env = set(compose()["services"]["api"]["environment"])
    missing = (required_settings() | REQUIRED_IN_COMPOSE) - env
    assert not missing, f"the api service lacks {sorted(missing)}"


def test_the_api_environment_makes_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    env = compose()["services"]["api"]["environment"]
    resolved = {k: VARIABLE.sub(substitute, str(v)) for k, v in env.items()}
    for key in app_env_names():
        monkeypatch.delenv(key, raising=False)
    for key, value in resolved.items():
        monkeypatch.setenv(key, value)
    s = load_settings()
    assert (s.api_host, s.api_port) == ("0.0.0.0", 8000)
    assert s.database_dsn() and s.redis_dsn()
    monkeypatch.delenv("AITRAPP_API_TOKEN")
    with pytest.raises(ConfigError, match="AITRAPP_API_TOKEN"):
        load_settings()


def test_env_example_names_only_app_settings_or_compose_variables() -> None:
    keys = {
        line.split("=", 1)[0]
        for line in ENV_EXAMPLE.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }
    used_by_compose = set(re.findall(r"\$\{(\w+)", COMPOSE.read_text())) | {"COMPOSE_PROJECT_NAME"}
    stray = keys - used_by_compose
    assert not stray, f".env.example sets {sorted(stray)}, which compose never passes on"
    assert used_by_compose - {"COMPOSE_PROJECT_NAME"} <= keys, "a compose variable is undocumented"


def test_services_have_health_checks_volumes_and_loopback_ports() -> None:
    c = compose()
    services = c["services"]
    for name, svc in services.items():
        assert "healthcheck" in svc, f"{name} has no health check"
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
        for volume in svc.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in c["volumes"], f"{name}: {source} is not a named volume"
    api_deps = services["api"]["depends_on"]
    assert api_deps == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    # Prometheus reads the token from the secret `make up` writes.
    assert c["secrets"]["api_token"]["file"] == "./deploy/secrets/api_token"
    assert (DEPLOY / "prometheus" / "prometheus.yml").exists()
