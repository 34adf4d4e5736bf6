"""`aitrapp kite ...`: the daily login, the token's status, the instruments cache.

Credentials come from the environment (``KITE_API_KEY``, ``KITE_API_SECRET``);
the access token goes to ``KITE_TOKEN_FILE`` (default ``var/kite_token.json``,
mode 0600). Nothing here ever prints the api_secret or the access token.
"""

from __future__ import annotations

import asyncio
import os
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from aitrapp.exceptions import AitrappError
from aitrapp.kite.auth import (
    ENV_API_ROOT,
    IST,
    TokenStore,
    credentials_from_env,
    exchange_request_token,
    login_url,
    parse_request_token,
    redact,
    today_ist,
)
from aitrapp.kite.errors import KiteApiError, KiteTokenError

app = typer.Typer(
    help="Zerodha Kite Connect: login, token status, instruments.", no_args_is_help=True
)


TokenFileOpt = Annotated[
    Path | None,
    typer.Option(help="The token file [env KITE_TOKEN_FILE, default var/kite_token.json]"),
]


def _store(token_file: Path | None) -> TokenStore:
    return TokenStore(token_file) if token_file else TokenStore.from_env()


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {redact(message)}", err=True)
    return typer.Exit(2)


@app.command("login")
def login(
    request_token: Annotated[
        str | None,
        typer.Option(help="The request_token (or the whole redirect URL); prompted when absent."),
    ] = None,
    token_file: TokenFileOpt = None,
) -> None:
    """Print the login URL, exchange the request_token, store the access token (0600)."""
    store = _store(token_file)
    try:
        creds = credentials_from_env()
        typer.echo("Open this URL, sign in, and copy the request_token from the redirect:")
        typer.echo(f"  {login_url(creds.api_key)}")
        raw = request_token or typer.prompt("request_token (or the redirect URL)")
        token = parse_request_token(raw)
        now = datetime.now(IST)
        session = asyncio.run(
            exchange_request_token(creds, token, root=os.environ.get(ENV_API_ROOT), now=now)
        )
        store.save(session)
    except KiteTokenError as exc:
        raise _fail(f"Kite refused the login: {exc}") from None
    except KiteApiError as exc:
        raise _fail(f"Kite login failed ({exc.error_type or 'network'}): {exc}") from None
    except (AitrappError, OSError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(
        f"Logged in as {session.user_id}"
        + (f" ({session.user_name})" if session.user_name else "")
        + f"; token saved to {store.path} (mode 0600), "
        f"valid until {session.expires_at:%Y-%m-%d %H:%M} IST."
    )


@app.command("status")
def status(token_file: TokenFileOpt = None) -> None:
    """Whose token is stored and until when it is valid (never the token itself)."""
    store = _store(token_file)
    try:
        session = store.load()
    except AitrappError as exc:
        raise _fail(str(exc)) from None
    if session is None:
        typer.echo(f"no token at {store.path}: run `aitrapp kite login`")
        raise typer.Exit(1)
    valid = session.is_valid_at(datetime.now(IST))
    typer.echo(f"user      {session.user_id} {session.user_name}".rstrip())
    typer.echo(f"api_key   {session.api_key}")
    typer.echo(f"login     {session.login_time:%Y-%m-%d %H:%M:%S %Z}")
    typer.echo(
        f"expires   {session.expires_at:%Y-%m-%d %H:%M} IST ({'valid' if valid else 'EXPIRED'})"
    )
    if not valid:
        raise typer.Exit(1)


@app.command("instruments")
def instruments(
    exchange: Annotated[
        list[str] | None, typer.Option(help="Exchange to load (repeatable) [default NSE, NFO]")
    ] = None,
    cache_dir: Annotated[Path, typer.Option(help="Where the daily dumps are cached.")] = Path(
        "var/kite"
    ),
    freeze_file: Annotated[Path | None, typer.Option(help="CSV symbol,freeze_qty")] = None,
    refresh: Annotated[bool, typer.Option(help="Fetch even when today's dump is cached.")] = False,
    token_file: TokenFileOpt = None,
) -> None:
    """Download (or read from today's cache) the instruments master and summarise it."""
    from aitrapp.kite.client import KiteRest
    from aitrapp.kite.instruments import load_freeze_table, load_instruments, rows_to_csv

    exchanges = [e.upper() for e in (exchange or ["NSE", "NFO"])]
    now = datetime.now(IST)
    try:
        creds = credentials_from_env()
        session = _store(token_file).load_valid(api_key=creds.api_key, now=now)
        freeze = load_freeze_table(freeze_file) if freeze_file else {}
        rest = KiteRest(creds.api_key, session.access_token, root=os.environ.get(ENV_API_ROOT))

        async def fetch(ex: str) -> str:
            return rows_to_csv(await rest.instruments(ex))

        master = asyncio.run(
            load_instruments(
                fetch,
                exchanges=exchanges,
                cache_dir=cache_dir,
                day=today_ist(now),
                freeze=freeze,
                refresh=refresh,
            )
        )
    except (KiteApiError, KiteTokenError) as exc:
        raise _fail(f"Kite: {exc}") from None
    except (AitrappError, OSError) as exc:
        raise _fail(str(exc)) from None
    for ex in exchanges:
        rows = [i for i in master if i.exchange == ex]
        known = sum(1 for i in rows if i.freeze_qty is not None)
        typer.echo(f"{ex:<4} {len(rows):>7} instruments, {known} with a freeze quantity")
    typer.echo(f"cached under {cache_dir}")
