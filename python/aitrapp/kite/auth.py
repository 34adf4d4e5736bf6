"""Kite login: the login URL, the request_token exchange, the token file, redaction.

The daily flow (``aitrapp kite login``): open the login URL, sign in, copy the
``request_token`` from the redirect, exchange it (with the api_secret, which
never leaves this process) for an access token, store that in a file only the
owner can read (mode 0600). Kite access tokens expire at 06:00 IST the next
morning.

Secrets travel as :class:`Secret`, whose ``repr``/``str`` are masked and
whose value is registered for :func:`redact`, so neither logs nor API
responses can show it by accident.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import stat
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aitrapp.exceptions import ConfigError

IST = timezone(timedelta(hours=5, minutes=30), "IST")
ENV_API_KEY = "KITE_API_KEY"
ENV_API_SECRET = "KITE_API_SECRET"
ENV_API_ROOT = "KITE_API_ROOT"  # tests point this at a fake Kite
ENV_TOKEN_FILE = "KITE_TOKEN_FILE"
DEFAULT_TOKEN_FILE = Path("var") / "kite_token.json"
LOGIN_ROOT = "https://kite.zerodha.com/connect/login"
TOKEN_EXPIRY = time(6, 0)  # Kite invalidates every access token at 06:00 IST
MASK = "***"

# ---- secrets and redaction ----

_secrets: set[str] = set()
_secrets_lock = threading.Lock()
# Query/form fields that carry credentials, whatever the value.
_FIELD_RE = re.compile(
    r"(?i)\b(access_token|api_secret|request_token|refresh_token|checksum|enctoken)"
    r"(\s*[=:]\s*|\"\s*:\s*\")([^&\s\"',;]+)"
)
_AUTH_HEADER_RE = re.compile(
    r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?token\s+[^:\s]+:)(\S+?)([\"'\s]|$)"
)
MIN_SECRET_LEN = 6  # shorter values would redact ordinary words


class Secret:
    """A string that never shows itself in repr/str/format; ``reveal()`` to use it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("Secret wraps a str")
        self._value = value
        register_secret(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> Any:
        raise TypeError("a Secret cannot be pickled")


def register_secret(value: str) -> None:
    """Make :func:`redact` mask ``value`` wherever it appears."""
    if len(value) >= MIN_SECRET_LEN:
        with _secrets_lock:
            _secrets.add(value)


def redact(text: str) -> str:
    """``text`` with every registered secret and every credential field masked."""
    with _secrets_lock:
        known = sorted(_secrets, key=len, reverse=True)
    for s in known:
        if s in text:
            text = text.replace(s, MASK)
    text = _FIELD_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    return _AUTH_HEADER_RE.sub(lambda m: f"{m.group(1)}{MASK}{m.group(3)}", text)


class RedactingFilter(logging.Filter):
    """Masks secrets in the rendered message and traceback of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install_log_redaction(logger: logging.Logger | None = None) -> RedactingFilter:
    """Attach one redacting filter to every handler of ``logger`` (default: root).

    Handler filters see records propagated from every child logger, so this
    covers kiteconnect, urllib3 and websockets as well as our own modules.
    """
    target = logger or logging.getLogger()
    filt = RedactingFilter()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(filt)
    return filt


# ---- credentials and the login flow ----


@dataclass(frozen=True, slots=True)
class KiteCredentials:
    api_key: str
    api_secret: Secret


def credentials_from_env(env: Mapping[str, str] | None = None) -> KiteCredentials:
    source = os.environ if env is None else env
    api_key = source.get(ENV_API_KEY, "").strip()
    api_secret = source.get(ENV_API_SECRET, "").strip()
    if not api_key:
        raise ConfigError(f"{ENV_API_KEY} is not set: export your Kite Connect api_key")
    if not api_secret:
        raise ConfigError(f"{ENV_API_SECRET} is not set: export your Kite Connect api_secret")
    return KiteCredentials(api_key, Secret(api_secret))


def login_url(api_key: str) -> str:
    """Where the operator signs in; Kite redirects back with ``request_token``."""
    if not api_key or not re.fullmatch(r"[A-Za-z0-9]+", api_key):
        raise ConfigError(f"{ENV_API_KEY} must be alphanumeric, got {api_key!r}")
    return f"{LOGIN_ROOT}?api_key={api_key}&v=3"


def parse_request_token(text: str) -> str:
    """The request_token from either the bare token or the whole redirect URL."""
    text = text.strip()
    if "request_token=" in text:
        query = urlsplit(text).query or text.split("?", 1)[-1]
        values = parse_qs(query).get("request_token", [])
        if not values or not values[0]:
            raise ConfigError("request_token: the redirect URL has an empty request_token")
        status = parse_qs(query).get("status", ["success"])[0]
        if status != "success":
            raise ConfigError(f"request_token: the login redirect reports status={status!r}")
        text = values[0]
    if not re.fullmatch(r"[A-Za-z0-9]{6,64}", text):
        raise ConfigError("request_token: expected 6-64 letters/digits (or the redirect URL)")
    return text


def expires_at(login_time: datetime) -> datetime:
    """The 06:00 IST after ``login_time``, when Kite invalidates the token."""
    local = login_time.astimezone(IST)
    cutoff = datetime.combine(local.date(), TOKEN_EXPIRY, IST)
    return cutoff if local < cutoff else cutoff + timedelta(days=1)


@dataclass(frozen=True, slots=True)
class KiteSession:
    api_key: str
    user_id: str
    access_token: Secret
    login_time: datetime  # aware
    user_name: str = ""

    @property
    def expires_at(self) -> datetime:
        return expires_at(self.login_time)

    def is_valid_at(self, now: datetime) -> bool:
        return now < self.expires_at


def _as_ist(value: object, field: str) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=IST) if value.tzinfo is None else value
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ConfigError(f"{field}: not a timestamp: {value!r}") from exc
        return parsed.replace(tzinfo=IST) if parsed.tzinfo is None else parsed
    raise ConfigError(f"{field}: expected a timestamp, got {type(value).__name__}")


def session_from_response(api_key: str, data: Mapping[str, Any], now: datetime) -> KiteSession:
    """A session from Kite's ``/session/token`` answer (``login_time`` is IST)."""
    token = data.get("access_token")
    if not isinstance(token, str) or not token:
        raise ConfigError("session response: no access_token")
    user_id = data.get("user_id")
    if not isinstance(user_id, str) or not user_id:
        raise ConfigError("session response: no user_id")
    raw_login = data.get("login_time")
    login = _as_ist(raw_login, "login_time") if raw_login else now
    return KiteSession(
        api_key=api_key,
        user_id=user_id,
        access_token=Secret(token),
        login_time=login,
        user_name=str(data.get("user_name") or ""),
    )


async def exchange_request_token(
    creds: KiteCredentials,
    request_token: str,
    *,
    root: str | None = None,
    now: datetime,
    http_timeout: float = 7.0,
) -> KiteSession:
    """POST /session/token: request_token + checksum for an access token."""
    import kiteconnect  # type: ignore[import-untyped]

    from aitrapp.kite.client import classify

    kite = kiteconnect.KiteConnect(creds.api_key, root=root, timeout=http_timeout)
    register_secret(request_token)
    try:
        data = await asyncio.to_thread(
            kite.generate_session, request_token, api_secret=creds.api_secret.reveal()
        )
    except Exception as exc:
        raise classify(exc) from None
    if not isinstance(data, dict):
        raise ConfigError("session response: expected an object")
    return session_from_response(creds.api_key, data, now)


# ---- the token file ----


class TokenStore:
    """The access token on disk: JSON, mode 0600, replaced atomically."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TokenStore:
        source = os.environ if env is None else env
        return cls(source.get(ENV_TOKEN_FILE) or DEFAULT_TOKEN_FILE)

    def __repr__(self) -> str:
        return f"TokenStore({str(self.path)!r})"

    def save(self, session: KiteSession) -> None:
        doc = {
            "api_key": session.api_key,
            "user_id": session.user_id,
            "user_name": session.user_name,
            "access_token": session.access_token.reveal(),
            "login_time": session.login_time.isoformat(),
            "expires_at": session.expires_at.isoformat(),
        }
        if not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, mode=0o700)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        # O_EXCL + 0600 at creation: the token is never readable by others, not even briefly.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(doc, fh, indent=2)
                fh.write("\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o600)  # in case a umask or ACL widened it
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise

    def load(self) -> KiteSession | None:
        """The stored session, or None when there is no file."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"token file {self.path} is accessible by group/others "
                f"(mode {stat.S_IMODE(st.st_mode):04o}): run chmod 600 on it"
            )
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ConfigError(f"token file {self.path}: not valid JSON") from exc
        if not isinstance(doc, dict):
            raise ConfigError(f"token file {self.path}: expected an object")
        for key in ("api_key", "user_id", "access_token", "login_time"):
            if not isinstance(doc.get(key), str) or not doc[key]:
                raise ConfigError(f"token file {self.path}: missing or empty {key!r}")
        return KiteSession(
            api_key=doc["api_key"],
            user_id=doc["user_id"],
            access_token=Secret(doc["access_token"]),
            login_time=_as_ist(doc["login_time"], "login_time"),
            user_name=str(doc.get("user_name") or ""),
        )

    def load_valid(self, *, api_key: str, now: datetime) -> KiteSession:
        """The stored session if it belongs to ``api_key`` and has not expired."""
        session = self.load()
        if session is None:
            raise ConfigError(f"no Kite token at {self.path}: run `aitrapp kite login`")
        if session.api_key != api_key:
            raise ConfigError(
                f"token file {self.path} belongs to api_key {session.api_key!r}, "
                f"not {api_key!r}: run `aitrapp kite login`"
            )
        if not session.is_valid_at(now):
            raise ConfigError(
                f"the Kite token in {self.path} expired at {session.expires_at:%Y-%m-%d %H:%M} "
                "IST: run `aitrapp kite login`"
            )
        return session


def today_ist(now: datetime) -> date:
    return now.astimezone(IST).date()
