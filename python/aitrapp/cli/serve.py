"""`aitrapp serve`: run the control API (and the PAPER trading runtime under it) with uvicorn.

The feed is a background task of the runtime: by default a synthetic day
paced in real time (``--speed 1x``), or your own files (``--feed replay
--replay PATH``). Ctrl-C ends the event streams, stops the feed, flattens
what is open and drains the database writer before exiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import uvicorn
from fastapi import FastAPI

from aitrapp.api.app import begin_shutdown, create_app
from aitrapp.api.auth import configured_token
from aitrapp.api.deps import RuntimeFactory
from aitrapp.cli.report import parse_day
from aitrapp.clock import Speed
from aitrapp.control import RuntimeHandle
from aitrapp.exceptions import AitrappError
from aitrapp.logs import setup_logging
from aitrapp.settings import ENV_PREFIX, AppSettings, load_settings

if TYPE_CHECKING:
    # The runtime pulls in the whole trading stack: imported when serving, not for --help.
    from aitrapp.runtime import RuntimeOptions

# Long-lived responses (/events) get this long to finish before they are cut.
GRACEFUL_SHUTDOWN_S = 5


class ApiServer(uvicorn.Server):
    """Ends the event streams first, so shutdown does not wait on idle clients.

    ``handle_signals=False``: the server leaves SIGINT/SIGTERM to its owner (a
    session serving its API stops itself, API included, on a signal).
    """

    def __init__(
        self, config: uvicorn.Config, app: FastAPI, *, handle_signals: bool = True
    ) -> None:
        super().__init__(config)
        self._app = app
        self._handle_signals = handle_signals

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if self._handle_signals:
            with super().capture_signals():
                yield
        else:
            yield

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        begin_shutdown(self._app)
        await super().shutdown(sockets)


def _url(settings: AppSettings) -> str:
    host = settings.api_host
    host = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{host}:{settings.api_port}"


def describe(settings: AppSettings) -> list[str]:
    """How to reach the API and what it runs on (printed at start)."""
    url = _url(settings)
    db = "DATABASE_URL" if settings.database_url else f"embedded PostgreSQL in {settings.pgdata}"
    bus = "Redis Streams (REDIS_URL)" if settings.redis_url else "in-process"
    auth = (
        f'POST needs -H "Authorization: Bearer ${ENV_PREFIX}API_TOKEN"'
        if configured_token(settings)
        else f"no token: loopback only (set {ENV_PREFIX}API_TOKEN to protect POSTs)"
    )
    return [
        f"AITRAPP control API on {url}  (docs: {url}/docs)",
        f"  curl -s {url}/state | jq     # {auth}",
        f"  database: {db}; bus: {bus}; mode: {settings.mode}",
    ]


def _runtime_factory(options: RuntimeOptions) -> RuntimeFactory:
    async def start(settings: AppSettings) -> RuntimeHandle:
        from aitrapp.runtime import start_runtime

        return await start_runtime(settings, options)

    return start


def runtime_options(
    feed: str,
    speed: str,
    day: str | None,
    replay: list[Path] | None,
    seed: int,
    mode: str = "PAPER",
    instruments: Path | None = None,
    freeze_file: Path | None = None,
) -> RuntimeOptions:
    """The session the server runs, from the command line (errors name the option)."""
    from aitrapp.runtime import RuntimeOptions

    if feed not in ("synthetic", "replay", "kite"):
        raise typer.BadParameter(f"synthetic, replay or kite, got {feed!r}", param_hint="--feed")
    if mode not in ("PAPER", "LIVE"):
        raise typer.BadParameter(f"PAPER or LIVE, got {mode!r}", param_hint="--mode")
    if mode == "LIVE" and feed != "kite":
        raise typer.BadParameter(
            "LIVE trades on the live feed: add --feed kite", param_hint="--mode"
        )
    if feed == "replay" and not replay:
        raise typer.BadParameter("--feed replay needs --replay PATH", param_hint="--replay")
    trading_day = parse_day(day, "--date")
    try:
        Speed.parse(speed)
    except AitrappError as exc:
        raise typer.BadParameter(str(exc), param_hint="--speed") from None
    from aitrapp.instruments_csv import load_own_universe

    try:
        own = load_own_universe(instruments, freeze_file)
        if own is not None:
            chosen = own.defaults()  # your file's tradable rows (errors name the row)
            if feed == "synthetic":
                own.require_prices(chosen.symbols)
    except AitrappError as exc:
        raise typer.BadParameter(str(exc), param_hint="--instruments") from None
    return RuntimeOptions(
        feed="replay" if feed == "replay" else "kite" if feed == "kite" else "synthetic",
        mode="LIVE" if mode == "LIVE" else "PAPER",
        day=trading_day,
        speed=speed,
        replay_paths=tuple(replay or ()),
        seed=seed,
        universe=own,
        # An operator's console session: when a replay ends, positions stay open at
        # their last price until flattened or the server stops (it flattens then).
        close_day_at_feed_end=False,
    )


def serve(
    host: Annotated[
        str | None, typer.Option(help=f"Bind address (default {ENV_PREFIX}API_HOST or 127.0.0.1)")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help=f"Port (default {ENV_PREFIX}API_PORT or 8000)")
    ] = None,
    feed: Annotated[
        str, typer.Option(help="synthetic, replay or kite (the live KiteTicker feed)")
    ] = "synthetic",
    mode: Annotated[
        str,
        typer.Option(
            help="PAPER, or LIVE (Kite broker and feed; refused unless the LIVE gate passes)"
        ),
    ] = "PAPER",
    speed: Annotated[str, typer.Option(help="Feed pace: 1x (real time), 10x, ... or max")] = "1x",
    day: Annotated[
        str | None, typer.Option("--date", help="Trading date YYYY-MM-DD (default: latest)")
    ] = None,
    replay: Annotated[
        list[Path] | None, typer.Option(help="Replay file or folder (CSV/Parquet); repeatable")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic feed")] = 7,
    instruments: Annotated[
        Path | None,
        typer.Option(
            help="Your own instruments: a CSV in Kite's instrument dump format "
            "(optionally with a freeze_qty column). Default: the built-in universe"
        ),
    ] = None,
    freeze_file: Annotated[
        Path | None, typer.Option(help="Freeze quantities for --instruments: CSV symbol,freeze_qty")
    ] = None,
) -> None:
    """Start the trading runtime and serve the control API until interrupted.

    PAPER by default. ``--mode LIVE --feed kite`` trades on Kite Connect and is
    refused (audited, with the reasons in the log) unless the LIVE gate passes:
    enough passing PAPER burn-ins on the live feed, verified credentials, a token."""
    overrides: dict[str, Any] = {}
    if host is not None:
        overrides["api_host"] = host
    if port is not None:
        overrides["api_port"] = port
    options = runtime_options(
        feed, speed, day, replay, seed, mode.upper(), instruments, freeze_file
    )
    try:
        settings = load_settings(**overrides)
        app = create_app(settings, runtime_factory=_runtime_factory(options))  # checks the bind
    except AitrappError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    setup_logging(settings.logs_dir, settings.log_level)
    for line in describe(settings):
        typer.echo(line)
    config = uvicorn.Config(
        app,
        host=settings.api_host,
        port=settings.api_port,
        lifespan="on",
        log_config=None,  # our handlers (JSON file + console) are already on the root logger
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    server = ApiServer(config, app)
    # uvicorn shuts down gracefully on Ctrl-C, then re-raises it: by then all is stopped.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(server.serve())
    if not server.started:
        typer.echo("error: the API did not start (see the log above)", err=True)
        raise typer.Exit(1)
