"""`aitrapp backtest`: each NSE trading day of your data as its own session, and the report."""

from __future__ import annotations

import asyncio
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from aitrapp.backtest.days import describe_skipped
from aitrapp.backtest.records import DayResult
from aitrapp.backtest.report import ReportSettings, build_report
from aitrapp.backtest.runner import BacktestRequest, load_backtest_data, run_backtest
from aitrapp.config import EngineConfig
from aitrapp.exceptions import AitrappError
from aitrapp.instruments_csv import load_own_universe
from aitrapp.logs import setup_logging
from aitrapp.settings import load_settings
from aitrapp.universe import Universe, load_universe

ReplayOpt = Annotated[
    list[Path],
    typer.Option(help="Replay file or folder (CSV/Parquet, ticks or candles); repeatable."),
]
InstrumentsOpt = Annotated[
    Path | None,
    typer.Option(
        help="Your own instruments: a CSV in Kite's instrument dump format (optionally with "
        "a freeze_qty column). Default: the built-in universe."
    ),
]
FreezeOpt = Annotated[
    Path | None, typer.Option(help="Freeze quantities for --instruments: CSV symbol,freeze_qty.")
]
FromOpt = Annotated[
    str | None, typer.Option("--from", help="First day YYYY-MM-DD (default: the data's).")
]
ToOpt = Annotated[
    str | None, typer.Option("--to", help="Last day YYYY-MM-DD (default: the data's).")
]
ConfigOpt = Annotated[
    Path | None, typer.Option(help="Engine config (JSON or TOML: risk, session, strategies).")
]
SymbolsOpt = Annotated[
    str | None, typer.Option(help="Comma-separated symbols to trade (default: all in the data).")
]


def parse_day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"expected YYYY-MM-DD, got {value!r}", param_hint=option) from None


def data_request(
    replay: list[Path],
    instruments: Path | None,
    freeze_file: Path | None,
    start: str | None,
    end: str | None,
    config: Path | None,
    symbols: str | None,
    *,
    no_db: bool = False,
) -> BacktestRequest:
    """The data options shared by `backtest` and `sweep` (errors name the option)."""
    from aitrapp.cli.paper import _engine_config

    if not replay:
        raise typer.BadParameter("give at least one file or folder", param_hint="--replay")
    first, last = parse_day(start, "--from"), parse_day(end, "--to")
    if first and last and last < first:
        raise typer.BadParameter(f"{last} is before --from {first}", param_hint="--to")
    try:
        own = load_own_universe(instruments, freeze_file)
    except AitrappError as exc:
        raise typer.BadParameter(str(exc), param_hint="--instruments") from None
    universe: Universe = own if own is not None else load_universe(on=first or date.today())
    chosen = tuple(s.strip() for s in symbols.split(",") if s.strip()) if symbols else ()
    return BacktestRequest(
        replay=tuple(replay),
        universe=universe,
        config=_engine_config(config) or EngineConfig(),
        start=first,
        end=last,
        symbols=chosen,
        no_db=no_db,
    )


class _Bar:
    """Days and ticks on one rich progress display."""

    def __init__(self, progress: Progress, days: int, ticks: int) -> None:
        self.progress = progress
        self.days = progress.add_task("days", total=days)
        self.ticks = progress.add_task("ticks", total=ticks)
        self._base = 0

    def day_started(self, day: date, ticks: int) -> None:
        self.progress.update(self.days, description=f"days (now {day})")

    def ticks_done(self, day: date, ticks: int) -> None:
        self.progress.update(self.ticks, completed=self._base + ticks)

    def day_finished(self, result: DayResult) -> None:
        self._base += result.ticks
        self.progress.update(self.ticks, completed=self._base)
        self.progress.advance(self.days)


def backtest(
    replay: ReplayOpt,
    instruments: InstrumentsOpt = None,
    freeze_file: FreezeOpt = None,
    start: FromOpt = None,
    end: ToOpt = None,
    config: ConfigOpt = None,
    symbols: SymbolsOpt = None,
    report_dir: Annotated[
        Path | None,
        typer.Option(help="Where report.html, report.json and the PNGs go (default: reports/)."),
    ] = None,
    no_db: Annotated[
        bool,
        typer.Option(
            "--no-db",
            help="Run each day on the trading kernel without a database (the same trades; "
            "faster, nothing stored).",
        ),
    ] = False,
    risk_free_rate: Annotated[
        float, typer.Option(help="Annual risk-free rate in percent, for Sharpe and Sortino.")
    ] = 0.0,
    progress: Annotated[bool, typer.Option(help="Show the progress bar.")] = True,
) -> None:
    """Replay each NSE trading day of your data as its own PAPER session, then report."""
    console = Console()
    try:
        settings = load_settings()
        request = data_request(
            replay, instruments, freeze_file, start, end, config, symbols, no_db=no_db
        )
    except (AitrappError, ValueError) as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc
    handle = setup_logging(settings.logs_dir, settings.log_level, console=False)
    try:
        data = asyncio.run(load_backtest_data(request))
        split = data.split
        console.print(
            f"{data.label}: {len(split.days)} trading day(s) {split.first}..{split.last}, "
            f"{split.total_ticks:,} ticks, {len(data.instruments)} instrument(s)"
        )
        for line in describe_skipped(split.skipped):
            console.print(f"  skipped {line}")
        columns = (
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console, disable=not progress) as bar:
            tracker = _Bar(bar, len(split.days), split.total_ticks)
            result = asyncio.run(run_backtest(settings, request, data=data, progress=tracker))
    except AitrappError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc
    except KeyboardInterrupt:
        console.print("interrupted: the day in progress was flattened and stopped")
        raise typer.Exit(130) from None
    finally:
        handle.stop()
    from aitrapp.backtest.render import print_report, write_report

    report = build_report(
        result.days,
        ReportSettings(Decimal(str(request.config.risk.capital_rupees)), risk_free_rate),
        skipped=result.skipped,
        backtest_id=None if no_db else result.backtest_id,
        label=data.label,
        synthetic=data.synthetic,
        first=split.first,
        last=split.last,
        config_sha=request.config.config_sha,
    )
    print_report(report, console)
    out = report_dir or Path("reports") / f"backtest-{split.first}_{split.last}"
    files = write_report(report, out)
    console.print(f"report: {files.html}  (json: {files.json})")
    reused = [d for d in result.days if d.status == "REUSED"]
    if reused:
        console.print(
            f"{len(reused)} day(s) had run before with the same data and config: "
            "their stored trades were reused"
        )
