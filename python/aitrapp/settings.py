"""Process settings, read once from the environment (prefix ``AITRAPP_``).

``DATABASE_URL`` and ``REDIS_URL`` keep their conventional names (the
``AITRAPP_`` spellings are accepted too). Unsafe combinations are refused
here, before anything starts: a non-loopback API bind or LIVE mode without
an API token. :func:`load_settings` turns validation failures into a
:class:`~aitrapp.exceptions.ConfigError` whose message names the env key.
"""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from aitrapp.exceptions import ConfigError

ENV_PREFIX = "AITRAPP_"
# Short tokens are guessable; 16 chars is the floor, `openssl rand -hex 32` the advice.
MIN_TOKEN_LEN = 16
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IPs; any other name counts as exposed."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class AppSettings(BaseSettings):
    """Everything a process needs to start. Construct via :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="ignore",
        validate_by_name=True,
        validate_by_alias=True,
        frozen=True,
    )

    # None: start the embedded PostgreSQL under pgdata_dir.
    database_url: SecretStr | None = Field(
        None, validation_alias=AliasChoices("DATABASE_URL", "AITRAPP_DATABASE_URL", "database_url")
    )
    # None: in-process event bus.
    redis_url: SecretStr | None = Field(
        None, validation_alias=AliasChoices("REDIS_URL", "AITRAPP_REDIS_URL", "redis_url")
    )
    data_dir: Path = Path("var")
    pgdata_dir: Path | None = None  # default: <data_dir>/pgdata
    pg_port: int = Field(0, ge=0, le=65535)  # embedded server; 0 picks a free port
    migrations_dir: Path | None = None  # default: the repository's migrations/
    logs_dir: Path = Path("logs")
    log_level: LogLevel = "INFO"

    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=1, le=65535)
    api_token: SecretStr | None = None

    mode: Literal["PAPER", "LIVE"] = "PAPER"

    db_pool_min: int = Field(1, ge=0, le=100)
    db_pool_max: int = Field(10, ge=1, le=100)
    db_connect_timeout_s: float = Field(5.0, gt=0)
    db_command_timeout_s: float = Field(15.0, gt=0)

    writer_queue_max: int = Field(100_000, ge=1)
    writer_batch_max: int = Field(500, ge=1, le=10_000)
    writer_retry_max_s: float = Field(5.0, gt=0)
    writer_probe_interval_s: float = Field(1.0, gt=0)  # the database heartbeat's period
    # Deadline of each writer statement, and of the heartbeat's SELECT 1 (a hung
    # server is declared down after this long without an answer).
    writer_command_timeout_s: float = Field(5.0, gt=0)
    db_heartbeat_timeout_s: float = Field(1.0, gt=0)

    bus_stream_prefix: str = Field("aitrapp", min_length=1)
    bus_maxlen: int = Field(100_000, ge=1)
    bus_queue_max: int = Field(10_000, ge=1)

    # Apprise URLs (tgram://, slack://, discord://, mailto://, json://, ...): a JSON
    # list or whitespace-separated. Empty: no notifications.
    # Secret: a URL often carries a bot token or a password.
    notify_urls: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    # oco.stop_fill_timeout_s: a stop triggered but not filled this long (exchange
    # time) is escalated: cancel and exit at market (WARN), then CRITICAL at twice it.
    oco_stop_fill_timeout_s: float = Field(5.0, gt=0, le=3600)

    @field_validator("notify_urls", mode="before")
    @classmethod
    def _split_notify_urls(cls, value: object) -> object:
        return split_urls(value) if isinstance(value, str) else value

    @field_validator("notify_urls", mode="after")
    @classmethod
    def _check_notify_urls(cls, urls: list[SecretStr]) -> list[SecretStr]:
        plain = [u.get_secret_value() for u in urls]
        for i, url in enumerate(plain, start=1):
            if not _URL.fullmatch(url):
                raise ValueError(f"entry {i} is not a URL like scheme://... (no spaces)")
        if plain:  # Apprise is imported only when there is something to check
            from aitrapp.notify.apprise_sender import url_problem

            for i, url in enumerate(plain, start=1):
                problem = url_problem(url)
                if problem is not None:
                    raise ValueError(f"entry {i}: {problem}")
        return urls

    @model_validator(mode="after")
    def _refuse_unsafe(self) -> Self:
        token = self.api_token.get_secret_value() if self.api_token else ""
        if token and len(token) < MIN_TOKEN_LEN:
            raise ValueError(
                f"{ENV_PREFIX}API_TOKEN is too short ({len(token)} chars, need >= {MIN_TOKEN_LEN})"
            )
        if not is_loopback(self.api_host) and not token:
            raise ValueError(
                f"{ENV_PREFIX}API_HOST={self.api_host!r} is not a loopback address: "
                f"set {ENV_PREFIX}API_TOKEN to expose the control API"
            )
        if self.mode == "LIVE" and not token:
            raise ValueError(f"{ENV_PREFIX}MODE=LIVE requires {ENV_PREFIX}API_TOKEN")
        if self.db_pool_min > self.db_pool_max:
            raise ValueError(
                f"{ENV_PREFIX}DB_POOL_MIN ({self.db_pool_min}) exceeds "
                f"{ENV_PREFIX}DB_POOL_MAX ({self.db_pool_max})"
            )
        return self

    @property
    def pgdata(self) -> Path:
        return self.pgdata_dir if self.pgdata_dir is not None else self.data_dir / "pgdata"

    def database_dsn(self) -> str | None:
        return self.database_url.get_secret_value() if self.database_url else None

    def redis_dsn(self) -> str | None:
        return self.redis_url.get_secret_value() if self.redis_url else None


_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")
# Separators: whitespace, or a comma right before the next scheme:// (a comma
# inside a URL, e.g. mailto://...?to=a@x,b@y, stays).
_URL_SEP = re.compile(r"\s+|,\s*(?=[A-Za-z][A-Za-z0-9+.-]*://)")


def split_urls(text: str) -> list[str]:
    """``AITRAPP_NOTIFY_URLS`` as written: a JSON list, or URLs separated by spaces."""
    text = text.strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"not a valid JSON list: {exc}") from None
        if not isinstance(parsed, list) or not all(isinstance(u, str) for u in parsed):
            raise ValueError("expected a JSON list of strings")
        return [u.strip() for u in parsed if u.strip()]
    return [u for u in _URL_SEP.split(text) if u]


def _env_key(loc: tuple[int | str, ...]) -> str:
    if not loc:
        return "settings"
    name = str(loc[0])
    if name.upper() in {"DATABASE_URL", "REDIS_URL"}:
        return name.upper()
    return name.upper() if name.upper().startswith(ENV_PREFIX) else ENV_PREFIX + name.upper()


def load_settings(**overrides: Any) -> AppSettings:
    """Read the environment (``overrides`` win) and validate.

    Raises :class:`ConfigError` naming the offending env key(s).
    """
    try:
        return AppSettings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            msg = str(err["msg"]).removeprefix("Value error, ")
            problems.append(msg if not err["loc"] else f"{_env_key(err['loc'])}: {msg}")
        raise ConfigError("invalid settings: " + "; ".join(problems)) from None
