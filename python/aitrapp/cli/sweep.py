"""`aitrapp sweep`: one backtest per combination of a parameter grid, on Ray (each task
on the trading kernel, without a database)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from aitrapp.backtest.days import describe_skipped
from aitrapp.backtest.report import ReportSettings
from aitrapp.backtest.runner import load_backtest_data, session_settings
from aitrapp.cli.backtest import (
    ConfigOpt,
    FreezeOpt,
    FromOpt,
    InstrumentsOpt,
    ReplayOpt,
    SymbolsOpt,
    ToOpt,
    data_request,
)
from aitrapp.config import EngineConfig
from aitrapp.exceptions import AitrappError
from aitrapp.logs import setup_logging
from aitrapp.research.grid import load_grid
from aitrapp.settings import load_settings


def sweep(
    grid: Annotated[
        Path,
        typer.Option(help="TOML: config key -> values, e.g. risk.max_open_positions = [3, 5]."),
    ],
    replay: ReplayOpt,
    instruments: InstrumentsOpt = None,
    freeze_file: FreezeOpt = None,
    start: FromOpt = None,
    end: ToOpt = None,
    config: ConfigOpt = None,
    symbols: SymbolsOpt = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Where results.csv and the plots go (default: reports/sweep-...)."),
    ] = None,
    metric: Annotated[
        str,
        typer.Option(
            help="Sort by: net, sharpe, sortino, expectancy, win_rate, trades, max_drawdown."
        ),
    ] = "net",
    workers: Annotated[
        int | None, typer.Option(help="Ray workers of the local cluster (default: one per core).")
    ] = None,
    ray_address: Annotated[
        str | None, typer.Option(help="Join an existing Ray cluster (e.g. 10.0.0.5:6379).")
    ] = None,
    walk_forward: Annotated[
        int | None,
        typer.Option(help="Choose the best on the first N days, report it on the rest."),
    ] = None,
    risk_free_rate: Annotated[
        float, typer.Option(help="Annual risk-free rate in percent, for Sharpe and Sortino.")
    ] = 0.0,
    object_store_mb: Annotated[
        int | None, typer.Option(help="Ray object store size of a local cluster, MB.")
    ] = None,
) -> None:
    """Run one backtest per grid combination on Ray and rank them by a metric."""
    console = Console()
    try:
        from aitrapp.research import sweep as research

        research.import_ray()
        by = research.metric(metric)
        if workers is not None and workers < 1:
            raise typer.BadParameter(f"must be at least 1, got {workers}", param_hint="--workers")
        settings = load_settings()
        request = data_request(replay, instruments, freeze_file, start, end, config, symbols)
        the_grid = load_grid(grid, request.config)
        combinations = the_grid.combinations(request.config)
    except (AitrappError, ValueError) as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc
    handle = setup_logging(settings.logs_dir, settings.log_level, console=False)
    try:
        data = asyncio.run(load_backtest_data(request))
        split = data.split
        console.print(
            f"{data.label}: {len(split.days)} trading day(s) {split.first}..{split.last}, "
            f"{split.total_ticks:,} ticks; {the_grid.size} combination(s)"
        )
        for line in describe_skipped(split.skipped):
            console.print(f"  skipped {line}")

        def settings_for(cfg: EngineConfig) -> ReportSettings:
            return ReportSettings(Decimal(str(cfg.risk.capital_rupees)), risk_free_rate)

        columns = (TextColumn("combinations"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn())  # fmt: skip
        with Progress(*columns, console=console) as bar:
            task = bar.add_task("combinations", total=len(combinations))
            result = asyncio.run(
                research.run_sweep(
                    data,
                    the_grid,
                    combinations,
                    report_settings=settings_for,
                    workers=workers,
                    ray_address=ray_address,
                    object_store_bytes=object_store_mb * 2**20 if object_store_mb else None,
                    on_done=lambda done, _total: bar.update(task, completed=done),
                    bracket=session_settings(settings)[1],
                )
            )
        wf = research.walk_forward(result, walk_forward, by) if walk_forward else None
    except AitrappError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc
    finally:
        handle.stop()
    from aitrapp.research.plots import write_sweep_plots

    folder = out or Path("reports") / f"sweep-{split.first}_{split.last}"
    table = research.results_table(result, by)
    research.write_csv(folder / "results.csv", table)
    pngs = write_sweep_plots(result, by, folder)
    console.print(_rich(table, f"Sweep ranked by {by.name}", limit=20))
    if wf is not None:
        wf_table = research.walk_forward_table(wf, the_grid.keys)
        research.write_csv(folder / "walk_forward.csv", wf_table)
        best = wf.best
        console.print(
            f"walk-forward: best on {len(wf.in_days)} in-sample day(s) "
            f"({wf.in_days[0]}..{wf.in_days[-1]}) by {by.name}: {best.combination.label()}"
        )
        for name, g in (("in-sample", best.in_sample), ("out-of-sample", best.out_of_sample)):
            console.print(
                f"  {name}: trades {g.trades}, net ₹{g.net:,.2f}, "
                f"sharpe {'-' if g.sharpe is None else f'{g.sharpe:.2f}'}, "
                f"max drawdown ₹{g.max_drawdown:,.2f}"
            )
    console.print(f"results: {folder / 'results.csv'}; plots: {', '.join(p.name for p in pngs)}")


def _rich(table: list[list[str]], title: str, *, limit: int) -> Table:
    out = Table(title=title)
    for name in table[0]:
        if name != "config_sha":  # a grid key by its last part (the CSV has it whole)
            out.add_column(name.rsplit(".", 1)[-1], justify="right")
    for row in table[1 : limit + 1]:
        out.add_row(*row[:-1])
    return out
