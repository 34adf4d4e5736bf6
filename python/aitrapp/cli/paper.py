"""`aitrapp paper`: one full PAPER trading session with the control API up."""

from __future__ import annotations

import json
import os
import shlex
import sys
import tomllib
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from aitrapp.cli.report import parse_day
from aitrapp.cli.signals import Interrupted, exit_guard, run_interruptible, sigterm_as_interrupt
from aitrapp.config import EngineConfig
from aitrapp.exceptions import AitrappError
from aitrapp.feeds.base import Feed
from aitrapp.instruments_csv import FileUniverse, load_own_universe
from aitrapp.kite.session import (
    kite_access_from_env,
    kite_feed_factory,
    kite_universe,
    live_trading_day,
    session_end,
)
from aitrapp.logs import setup_logging
from aitrapp.runtime import Runtime, RuntimeOptions
from aitrapp.session import SessionPlan, run_session, summary_table
from aitrapp.settings import load_settings
from aitrapp.universe import Universe, load_universe


def _engine_config(path: Path | None) -> EngineConfig | None:
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc}", param_hint="--config") from exc
    try:
        data: dict[str, Any] = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise typer.BadParameter(f"{path}: {exc}", param_hint="--config") from exc
    return EngineConfig.parse(data)


def _ist_time(value: str | None) -> time | None:
    if value is None or value.lower() == "off":
        return None
    try:
        return time.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"expected HH:MM (IST) or 'off', got {value!r}", param_hint="--drill-at"
        ) from None


def _kite_feed(
    day: date | None,
    symbols: tuple[str, ...],
    duration_s: float | None,
    universe: Universe | None = None,
) -> tuple[date, Callable[[Universe, date], Feed]]:
    """Today's live session: access, universe and end are checked before any database work."""
    now = datetime.now(UTC)
    today = live_trading_day(now)
    if day is not None and day != today:
        raise typer.BadParameter(
            f"the live feed trades today ({today}), not {day}", param_hint="--date"
        )
    access = kite_access_from_env(now=now)
    kite_universe(universe if universe is not None else load_universe(on=today), symbols)
    session_end(today, now=now, duration_s=duration_s)
    return today, kite_feed_factory(access, duration_s=duration_s)


def _check_own(own: FileUniverse, symbols: tuple[str, ...], feed: str) -> None:
    """Symbols of your file are checked before any database work (errors name the row)."""
    chosen = own.select(symbols) if symbols else own.defaults()
    if feed == "synthetic":
        own.require_prices(chosen.symbols)


def paper(
    speed: Annotated[str, typer.Option(help="Replay speed: 1x, 10x, ... or max.")] = "max",
    day: Annotated[
        str | None, typer.Option("--date", help="Trading date YYYY-MM-DD (default: latest).")
    ] = None,
    symbols: Annotated[
        str | None,
        typer.Option(help="Comma-separated symbols (default: the built-in 20-name universe)."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="Engine config (JSON or TOML: risk, session, strategies).")
    ] = None,
    feed: Annotated[
        str,
        typer.Option(
            help="synthetic, replay, or kite (the live Kite ticker, paper fills; "
            "needs KITE_API_KEY, KITE_API_SECRET and `aitrapp kite login`)."
        ),
    ] = "synthetic",
    duration: Annotated[
        float | None,
        typer.Option(
            help="--feed kite: stop after this many seconds (default: at the 15:30 IST close)."
        ),
    ] = None,
    replay: Annotated[
        list[Path] | None, typer.Option(help="Replay file or folder (CSV/Parquet); repeatable.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic feed.")] = 7,
    instruments: Annotated[
        Path | None,
        typer.Option(
            help="Your own instruments: a CSV in Kite's instrument dump format "
            "(optionally with a freeze_qty column). Default: the built-in universe."
        ),
    ] = None,
    freeze_file: Annotated[
        Path | None,
        typer.Option(help="Freeze quantities for --instruments: CSV symbol,freeze_qty."),
    ] = None,
    serve: Annotated[bool, typer.Option(help="Serve the control API during the session.")] = True,
    keep_serving: Annotated[
        bool, typer.Option(help="Keep the API up after the close (Ctrl-C to stop).")
    ] = False,
    drill_at: Annotated[
        str, typer.Option(help="IST time of the flatten drill, or 'off'.")
    ] = "15:10",
    report_dir: Annotated[
        Path | None, typer.Option(help="Where the HTML report goes (default: reports/DATE/...).")
    ] = None,
    accept_reconcile: Annotated[
        bool,
        typer.Option(
            help="Trade even if the broker and the database disagree at start (repairs first)."
        ),
    ] = False,
    strict: Annotated[bool, typer.Option(help="Exit 1 when the burn-in check fails.")] = False,
) -> None:
    """Run one PAPER session end to end and print its summary."""
    sigterm_as_interrupt()  # until the session's own handlers take over
    console = Console()
    try:
        settings = load_settings()
        trading_day = parse_day(day, "--date")
        if feed not in ("synthetic", "replay", "kite"):
            raise typer.BadParameter("expected synthetic, replay or kite", param_hint="--feed")
        chosen = tuple(s.strip() for s in symbols.split(",") if s.strip()) if symbols else ()
        own = load_own_universe(instruments, freeze_file)
        if own is not None:
            _check_own(own, chosen, feed)
        feed_factory = None
        if feed == "kite":
            trading_day, feed_factory = _kite_feed(trading_day, chosen, duration, own)
        elif duration is not None:
            raise typer.BadParameter("only with --feed kite", param_hint="--duration")
        options = RuntimeOptions(
            feed=feed,  # type: ignore[arg-type]
            day=trading_day,
            symbols=chosen,
            feed_factory=feed_factory,
            seed=seed,
            speed=speed,
            replay_paths=tuple(replay or ()),
            engine=_engine_config(config),
            accept_reconcile=accept_reconcile,
            universe=own,
        )
        plan = SessionPlan(
            options=options,
            drill_at=_ist_time(drill_at),
            serve_api=serve,
            keep_serving=keep_serving,
            report_dir=report_dir,
        )
    except (AitrappError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    handle = setup_logging(settings.logs_dir, settings.log_level, console=False)
    started: list[Runtime] = []

    def on_started(rt: Runtime) -> None:
        started.append(rt)
        print_start_findings(console, rt)

    try:
        outcome = run_interruptible(
            run_session(settings, plan, console=console, on_started=on_started)
        )
    except AitrappError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    except Interrupted as exc:
        sid = started[0].session_id if started else None
        console.print(
            f"stopped by {exc}: positions flattened, writer drained, database released"
            + (f"; session {sid} ended ABORTED" if sid else " (before the session started)")
        )
        handle.stop()
        exit_guard(exc.exit_code)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:  # before the event loop took the signals over
        console.print("interrupted during start-up: nothing was traded")
        raise typer.Exit(130) from None
    finally:
        handle.stop()
    console.print(summary_table(outcome))
    if outcome.verdict is not None:
        for c in outcome.verdict.get("criteria", []):
            mark = "[green]PASS[/green]" if c.get("passed") else "[red]FAIL[/red]"
            console.print(f"  {mark} {c.get('label') or c.get('name')}: {c.get('detail')}")
    console.print(f"logs: {settings.logs_dir / 'aitrapp.log'}")
    if started and started[0].paused_by_reconcile:
        # Nothing was traded: a summary alone would read like a quiet day.
        console.print(
            "[red]the whole session ran PAUSED[/red] (broker and database disagreed at "
            "start-up; no entries). To repair and trade:"
        )
        _print_command(console, accept_command())
        raise typer.Exit(EXIT_PAUSED)
    if strict and not outcome.passed:
        raise typer.Exit(1)


EXIT_PAUSED = 3  # the session ran PAUSED from start to end


def accept_command(argv: list[str] | None = None) -> str:
    """The command that was run, with ``--accept-reconcile`` (as typed via make, if so)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--accept-reconcile" not in args:
        args.append("--accept-reconcile")
    if os.environ.get("MAKELEVEL") and args[:1] == ["paper"]:
        return f"make paper ARGS={shlex.quote(shlex.join(args[1:]))}"
    return shlex.join(["aitrapp", *args])


def print_start_findings(console: Console, rt: Runtime) -> None:
    """What start-up found that the operator must know before the session runs."""
    for a in rt.aborted_sessions:
        console.print(
            f"[yellow]session {a.session_id}[/yellow] of dead process {a.pid} was still RUNNING: "
            f"marked ABORTED at its last event ({a.ended_at.isoformat()})"
        )
    rec = rt.reconcile
    if not rt.paused_by_reconcile or rec is None:
        return
    console.print(
        "[red]PAUSED:[/red] the broker and the database disagree at start-up; "
        "this session opens no new entries (open positions are still managed)."
    )
    lines = rec.lines()
    for line in lines[:8]:
        console.print(f"  {line}")
    if len(lines) > 8:
        console.print(f"  ... {len(lines) - 8} more in the log (audit_log action 'reconcile')")
    console.print("To repair (orphans cancelled, rows synced) and trade:")
    _print_command(console, accept_command())


def _print_command(console: Console, command: str) -> None:
    """On one line, as typed (never wrapped: it is meant to be copied)."""
    console.print(f"  {command}", soft_wrap=True, highlight=False, markup=False)
