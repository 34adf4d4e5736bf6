"""The `aitrapp` command line. Each sub-command group lives in its own module."""

from __future__ import annotations

import typer

from aitrapp import __version__
from aitrapp.cli import backtest as backtest_cmd
from aitrapp.cli import burnin as burnin_cmd
from aitrapp.cli import ids
from aitrapp.cli import kite as kite_cmd
from aitrapp.cli import live as live_cmd
from aitrapp.cli import migrate as migrate_cmd
from aitrapp.cli import paper as paper_cmd
from aitrapp.cli import report as report_cmd
from aitrapp.cli import serve as serve_cmd
from aitrapp.cli import sweep as sweep_cmd

app = typer.Typer(
    name="aitrapp",
    help="AITRAPP: automated intraday trading for NSE (Rust core, Python control plane).",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(ids.app, name="ids")
app.add_typer(kite_cmd.app, name="kite")
app.command("migrate")(migrate_cmd.migrate)
app.command("serve")(serve_cmd.serve)
app.command("paper")(paper_cmd.paper)
app.command("report")(report_cmd.report)
app.add_typer(burnin_cmd.app, name="burnin")
app.command("live")(live_cmd.live)
app.command("backtest")(backtest_cmd.backtest)
app.command("sweep")(sweep_cmd.sweep)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"aitrapp {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """AITRAPP command line."""


def main() -> None:
    app()
