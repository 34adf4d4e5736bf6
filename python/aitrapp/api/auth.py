"""Bearer-token access control for the control API.

With ``AITRAPP_API_TOKEN`` set, every mutating endpoint (POST) needs
``Authorization: Bearer <token>``; reads stay open on a loopback bind and
need the token too once the API is exposed beyond loopback. Without a token
the settings only allow a loopback bind, so nothing is reachable from
another machine. Tokens are compared in constant time.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from aitrapp.exceptions import ConfigError
from aitrapp.settings import ENV_PREFIX, MIN_TOKEN_LEN, AppSettings, is_loopback

log = logging.getLogger(__name__)

# auto_error=False: we answer 401 ourselves (FastAPI's default would be 403),
# and a missing header is fine when no token is configured.
bearer_scheme = HTTPBearer(
    auto_error=False,
    description=f"Required when {ENV_PREFIX}API_TOKEN is set: `Authorization: Bearer <token>`.",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling; ``actor`` is what the audit log records."""

    host: str
    authenticated: bool

    @property
    def actor(self) -> str:
        return f"api:{self.host}" + ("+token" if self.authenticated else "")


def configured_token(settings: AppSettings) -> str | None:
    return settings.api_token.get_secret_value() if settings.api_token else None


def check_bind(settings: AppSettings) -> None:
    """Refuse unsafe settings even if they bypassed ``load_settings`` validation."""
    token = configured_token(settings)
    if token is not None and len(token) < MIN_TOKEN_LEN:
        raise ConfigError(
            f"{ENV_PREFIX}API_TOKEN is too short ({len(token)} chars, need >= {MIN_TOKEN_LEN})"
        )
    if not is_loopback(settings.api_host) and not token:
        raise ConfigError(
            f"{ENV_PREFIX}API_HOST={settings.api_host!r} is not a loopback address: "
            f"set {ENV_PREFIX}API_TOKEN to expose the control API"
        )


def token_matches(credentials: HTTPAuthorizationCredentials | None, token: str) -> bool:
    if credentials is None:
        return False
    # Header values arrive latin-1 decoded: encoding back gives the raw bytes,
    # so any header compares without raising.
    given = credentials.credentials.strip().encode("latin-1", errors="replace")
    return hmac.compare_digest(given, token.encode())


def _client_host(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def _authorize(
    request: Request, settings: AppSettings, credentials: HTTPAuthorizationCredentials | None
) -> Caller:
    host = _client_host(request)
    token = configured_token(settings)
    if token is None:
        return Caller(host=host, authenticated=False)
    if token_matches(credentials, token):
        return Caller(host=host, authenticated=True)
    log.warning(
        "api: refused unauthenticated %s %s",
        request.method,
        request.url.path,
        extra={"client": host, "has_credentials": credentials is not None},
    )
    raise HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail="missing or invalid bearer token",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _settings(request: Request) -> AppSettings:
    settings = getattr(request.app.state, "settings", None)
    if not isinstance(settings, AppSettings):
        raise RuntimeError("app.state.settings is missing: build the app with create_app()")
    return settings


def require_writer(request: Request, credentials: Credentials) -> Caller:
    """Dependency of every mutating endpoint."""
    return _authorize(request, _settings(request), credentials)


def require_reader(request: Request, credentials: Credentials) -> Caller:
    """Dependency of the reads: open on loopback, token-protected when exposed."""
    settings = _settings(request)
    if is_loopback(settings.api_host):
        return Caller(host=_client_host(request), authenticated=False)
    return _authorize(request, settings, credentials)
