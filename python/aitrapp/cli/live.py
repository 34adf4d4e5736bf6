"""`aitrapp live`: ask for LIVE trading, through the LIVE gate.

With the control API running (``AITRAPP_API_HOST``/``AITRAPP_API_PORT``) the
switch goes where it takes effect: ``POST /mode {"mode": "LIVE"}`` with the
bearer token, and the running trader's gate answers. Without a running API
the gate is evaluated here (and audited, actor ``cli:<user>``) so the
operator sees what is missing; nothing is switched.
"""

from __future__ import annotations

import asyncio
import getpass
import ipaddress
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console

from aitrapp.cli.report import EXPECTED_ERRORS, fail
from aitrapp.db.pool import database
from aitrapp.report.credentials import kite_verifier
from aitrapp.report.live_gate import GateDecision, evaluate_live_gate
from aitrapp.report.render_terminal import render_gate
from aitrapp.settings import AppSettings, load_settings

# The gate verifies credentials with Kite (10 s by default): leave room for it.
DEFAULT_TIMEOUT_S = 30.0


def api_url(settings: AppSettings) -> str:
    """Where a local client reaches the API (a wildcard bind is reached on loopback)."""
    host = settings.api_host.strip("[]")
    if host in ("0.0.0.0", "", "*"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass  # a host name
    return f"http://{host}:{settings.api_port}"


def live(
    local: Annotated[
        bool,
        typer.Option("--local", help="Do not contact the API: evaluate the gate here only."),
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for the API's answer.")
    ] = DEFAULT_TIMEOUT_S,
) -> None:
    """Switch to LIVE through the LIVE gate (POST /mode to a running API).

    Without a running API, evaluates the gate here and explains what is
    missing. Exit 0: allowed (and switched, via the API); 1: refused.
    """
    try:
        settings = load_settings()
        code = asyncio.run(_live(settings, local, timeout))
    except EXPECTED_ERRORS as exc:
        raise fail(str(exc)) from None
    raise typer.Exit(code)


async def _live(settings: AppSettings, local: bool, http_timeout_s: float) -> int:
    if not local:
        url = api_url(settings) + "/mode"
        token = settings.api_token.get_secret_value() if settings.api_token else None
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            async with httpx.AsyncClient(timeout=http_timeout_s) as client:
                resp = await client.post(url, json={"mode": "LIVE"}, headers=headers)
        except httpx.ConnectError:
            typer.echo(f"no API at {url}: evaluating the LIVE gate here (nothing is switched)")
        except httpx.HTTPError as exc:
            typer.echo(f"error: POST {url} failed: {type(exc).__name__}: {exc}", err=True)
            return 2
        else:
            return _api_answer(url, resp)
    async with database(settings, min_size=1, max_size=2) as db:
        decision = await evaluate_live_gate(
            db.pool,
            settings=settings,
            verify_credentials=kite_verifier(),
            actor=f"cli:{getpass.getuser()}",
            params={"via": "aitrapp live"},
        )
    _explain(decision)
    return 0 if decision.allowed else 1


def _api_answer(url: str, resp: httpx.Response) -> int:
    try:
        body: Any = resp.json()
    except ValueError:
        body = {"detail": resp.text}
    body = body if isinstance(body, dict) else {"detail": body}
    if resp.is_success:
        typer.echo(f"LIVE: mode {body.get('previous', '?')} -> {body.get('mode', '?')} ({url})")
        return 0
    if resp.status_code == 409:
        typer.echo(f"LIVE refused by the running trader ({url}):")
        for reason in body.get("reasons") or [body.get("detail", "")]:
            typer.echo(f"  - {reason}")
        return 1
    if resp.status_code == 401:
        typer.echo(
            f"LIVE refused: the API at {url} did not accept our token (401); "
            "set AITRAPP_API_TOKEN to the API's token"
        )
        return 1
    typer.echo(
        f"error: POST {url} answered {resp.status_code}: {body.get('detail', body)}", err=True
    )
    return 2


def _explain(decision: GateDecision) -> None:
    render_gate(decision, Console())
    if decision.allowed:
        typer.echo(
            "The LIVE gate allows LIVE. No trader API is running here: start one with "
            "AITRAPP_MODE=LIVE, or run `aitrapp live` again while it runs."
        )
    else:
        typer.echo("LIVE refused:")
        for reason in decision.reasons:
            typer.echo(f"  - {reason}")
