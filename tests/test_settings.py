"""Settings: env names, defaults, and the refusals that protect a live account."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aitrapp.exceptions import ConfigError
from aitrapp.settings import AppSettings, is_loopback, load_settings

TOKEN = "t" * 32


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("AITRAPP_") or key in {"DATABASE_URL", "REDIS_URL"}:
            monkeypatch.delenv(key)


def test_defaults() -> None:
    s = load_settings()
    assert s.database_url is None
    assert s.redis_url is None
    assert s.data_dir == Path("var")
    assert s.pgdata == Path("var/pgdata")
    assert s.logs_dir == Path("logs")
    assert (s.api_host, s.api_port, s.api_token) == ("127.0.0.1", 8000, None)
    assert s.mode == "PAPER"


def test_reads_conventional_and_prefixed_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:pw@db/x")
    monkeypatch.setenv("REDIS_URL", "redis://r:6379/0")
    monkeypatch.setenv("AITRAPP_DATA_DIR", "/srv/aitrapp")
    monkeypatch.setenv("AITRAPP_API_PORT", "9000")
    s = load_settings()
    assert s.database_dsn() == "postgresql://u:pw@db/x"
    assert s.redis_dsn() == "redis://r:6379/0"
    assert s.pgdata == Path("/srv/aitrapp/pgdata")
    assert s.api_port == 9000
    assert "pw" not in repr(s)  # secrets stay out of logs and tracebacks
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.setenv("AITRAPP_DATABASE_URL", "postgresql://other/y")
    assert load_settings().database_dsn() == "postgresql://other/y"
    monkeypatch.setenv("AITRAPP_PGDATA_DIR", "/data/pg")
    assert load_settings().pgdata == Path("/data/pg")


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.9", "localhost", "::1", "[::1]"])
def test_loopback_needs_no_token(host: str) -> None:
    assert is_loopback(host)
    assert load_settings(api_host=host).api_host == host


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "::", "trader.example"])
def test_exposed_bind_without_token_is_refused(host: str) -> None:
    assert not is_loopback(host)
    with pytest.raises(ConfigError) as err:
        load_settings(api_host=host)
    assert "AITRAPP_API_HOST" in str(err.value)
    assert "AITRAPP_API_TOKEN" in str(err.value)
    assert load_settings(api_host=host, api_token=TOKEN).api_host == host


def test_token_from_env_is_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AITRAPP_API_HOST", "0.0.0.0")
    monkeypatch.setenv("AITRAPP_API_TOKEN", TOKEN)
    s = load_settings()
    assert s.api_token is not None
    assert s.api_token.get_secret_value() == TOKEN
    assert TOKEN not in repr(s)


def test_short_token_and_live_without_token_are_refused() -> None:
    with pytest.raises(ConfigError, match="AITRAPP_API_TOKEN is too short"):
        load_settings(api_token="short")
    with pytest.raises(ConfigError, match="AITRAPP_MODE=LIVE requires AITRAPP_API_TOKEN"):
        load_settings(mode="LIVE")
    assert load_settings(mode="LIVE", api_token=TOKEN).mode == "LIVE"


def test_bad_values_name_the_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AITRAPP_API_PORT", "70000")
    with pytest.raises(ConfigError, match="AITRAPP_API_PORT"):
        load_settings()
    monkeypatch.delenv("AITRAPP_API_PORT")
    monkeypatch.setenv("AITRAPP_MODE", "YOLO")
    with pytest.raises(ConfigError, match="AITRAPP_MODE"):
        load_settings()
    monkeypatch.delenv("AITRAPP_MODE")
    with pytest.raises(ConfigError, match="AITRAPP_DB_POOL_MIN"):
        load_settings(db_pool_min=5, db_pool_max=2)
    with pytest.raises(ConfigError, match="AITRAPP_WRITER_QUEUE_MAX"):
        load_settings(writer_queue_max=0)


def test_settings_are_frozen() -> None:
    s = load_settings()
    with pytest.raises(ValueError, match="frozen"):
        s.api_port = 1
    assert isinstance(s, AppSettings)
