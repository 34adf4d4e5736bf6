"""The operator console: pages at ``/``, ``/ui/`` and ``/ui/history``, and the
HTML fragments the page scripts swap in.

The pages are static shells: they carry no trading data, so they are served
to anyone who can reach the API. The data comes from the fragments (and the
existing ``/state`` and ``/events``), which need the bearer token whenever
one is configured, on any bind (stricter than the JSON reads, which are
open on loopback). Every action the console offers is an existing API call
(``POST /pause``, ``/resume``, ``/flatten``, ``/mode``) made by the browser
with the token. None of these routes is in the OpenAPI contract.
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import ChainableUndefined, Environment, FileSystemLoader

from aitrapp import __version__
from aitrapp.api.auth import Caller, Credentials, configured_token, require_writer
from aitrapp.api.deps import PoolDep, RuntimeDep, SettingsDep

from . import fmt, views

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
STATIC_URL = "/ui/static"
NO_STORE = {"Cache-Control": "no-store"}
# The pages run only their own script: nothing injected into a fragment could run.
# Inline style attributes stay allowed (the risk gauges' widths).
PAGE_HEADERS = {
    **NO_STORE,
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

_env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=ChainableUndefined,  # a key the runtime does not report renders as "-"
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(fmt.FILTERS)
templates = Jinja2Templates(env=_env)

# Token required whenever one is configured (also on loopback): the console
# shows nothing to a browser that does not hold it.
ConsoleDep = Annotated[Caller, Depends(require_writer)]

router = APIRouter(include_in_schema=False)


def _page(request: Request, name: str, active: str) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        name,
        {"active": active, "version": __version__, "static": STATIC_URL},
        headers=PAGE_HEADERS,
    )


@router.get("/", response_class=HTMLResponse)
@router.get("/ui", response_class=HTMLResponse)
@router.get("/ui/", response_class=HTMLResponse)
async def live_page(request: Request) -> HTMLResponse:
    return _page(request, "live.html", "live")


@router.get("/ui/history", response_class=HTMLResponse)
async def history_page(request: Request) -> HTMLResponse:
    return _page(request, "history.html", "history")


@router.get("/ui/auth")
async def auth_check(
    request: Request, credentials: Credentials, settings: SettingsDep
) -> dict[str, Any]:
    """Whether the console needs a token, and whether the one sent is right:
    401 for a wrong token (a first visit without one gets 200 and the prompt)."""
    if configured_token(settings) is None:
        return {"token_required": False, "authenticated": False}
    if credentials is None:
        return {"token_required": True, "authenticated": False}
    require_writer(request, credentials)  # 401 (and a log line) when it does not match
    return {"token_required": True, "authenticated": True}


def _fragment(request: Request, name: str, context: dict[str, Any]) -> Response:
    return templates.TemplateResponse(request, name, context, headers=NO_STORE)


@router.get("/ui/fragments/live", response_class=HTMLResponse)
async def live_fragment(request: Request, runtime: RuntimeDep, _: ConsoleDep) -> Response:
    return _fragment(request, "fragments/live.html", views.live_view(runtime))


def _trading_day(runtime: RuntimeDep) -> date:
    state = runtime.state()
    raw = (state.get("session") or {}).get("trading_date")
    try:
        return date.fromisoformat(str(raw))
    except ValueError:
        return date.today()


@router.get("/ui/fragments/trades", response_class=HTMLResponse)
async def trades_fragment(
    request: Request, runtime: RuntimeDep, pool: PoolDep, _: ConsoleDep
) -> Response:
    try:
        ctx = await views.trades_view(pool, _trading_day(runtime), runtime.session_id)
    except views.DB_ERRORS as exc:
        return _unavailable(request, "trades", exc)
    return _fragment(request, "fragments/trades.html", ctx)


@router.get("/ui/fragments/sessions", response_class=HTMLResponse)
async def sessions_fragment(
    request: Request, runtime: RuntimeDep, pool: PoolDep, _: ConsoleDep
) -> Response:
    try:
        rows = await views.sessions_view(pool, runtime.session_id)
    except views.DB_ERRORS as exc:
        return _unavailable(request, "sessions", exc)
    return _fragment(request, "fragments/sessions.html", {"sessions": rows})


@router.get("/ui/fragments/gate", response_class=HTMLResponse)
async def gate_fragment(
    request: Request, pool: PoolDep, settings: SettingsDep, _: ConsoleDep
) -> Response:
    try:
        ctx = await views.gate_view(pool, settings)
    except views.DB_ERRORS as exc:
        return _unavailable(request, "LIVE gate", exc)
    return _fragment(request, "fragments/gate.html", {"g": ctx, "reasons_of": views.reasons_of})


def _unavailable(request: Request, what: str, exc: BaseException) -> Response:
    log.warning("console: %s unavailable: %s", what, exc)
    return templates.TemplateResponse(
        request,
        "fragments/unavailable.html",
        {"what": what, "why": f"{type(exc).__name__}: {exc}"},
        status_code=503,
        headers=NO_STORE,
    )
