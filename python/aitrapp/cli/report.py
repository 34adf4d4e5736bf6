"""`aitrapp report`: the daily report in the terminal and as HTML with two charts."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Literal
from uuid import UUID

import asyncpg
import typer
from rich.console import Console

from aitrapp.db.pool import database
from aitrapp.exceptions import AitrappError
from aitrapp.report import fmt
from aitrapp.report.data import DEFAULT_TICK_TO_DECISION_SLO_MS, DailyReport, load_daily_report
from aitrapp.report.errors import ReportError
from aitrapp.settings import AppSettings, load_settings


def today_ist() -> date:
    return datetime.now(fmt.IST).date()


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_day(value: str | None, option: str = "--date") -> date | None:
    """A ``YYYY-MM-DD`` option value; an error names the option and the format."""
    if value is None:
        return None
    text = value.strip()
    if not _DAY.fullmatch(text):
        raise typer.BadParameter(f"expected YYYY-MM-DD, got {value!r}", param_hint=option)
    try:
        return date.fromisoformat(text)
    except ValueError as exc:  # the right shape, not a calendar day (2026-02-30)
        raise typer.BadParameter(
            f"expected YYYY-MM-DD, got {value!r} ({exc})", param_hint=option
        ) from None


def parse_session(value: str | None, option: str = "--session") -> UUID | None:
    if value is None:
        return None
    try:
        return UUID(value.strip())
    except ValueError:
        raise typer.BadParameter(f"not a session id (UUID): {value!r}", param_hint=option) from None


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


# Errors a command reports in one line instead of a traceback.
EXPECTED_ERRORS = (AitrappError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError)

DateOpt = Annotated[
    str | None, typer.Option("--date", help="Trading date YYYY-MM-DD (default: today, IST).")
]
SessionOpt = Annotated[str | None, typer.Option("--session", help="One session id (UUID).")]


def report(
    date_: DateOpt = None,
    session: SessionOpt = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Folder for report.html and the PNGs (default: reports/DATE)."),
    ] = None,
    mode: Annotated[
        str | None, typer.Option("--mode", help="Only PAPER or only LIVE sessions of the date.")
    ] = None,
    html: Annotated[bool, typer.Option("--html/--no-html", help="Also write the HTML.")] = True,
    slo_ms: Annotated[
        float,
        typer.Option(
            "--slo-ms",
            help="Tick-to-decision SLO for sessions whose summary does not carry one.",
        ),
    ] = DEFAULT_TICK_TO_DECISION_SLO_MS,
) -> None:
    """Daily report: signals, decisions, risk blocks, orders, trades, PnL, latency.

    Covers every session of a date, or one session; prints tables and writes
    report.html with an equity curve and a latency histogram.
    """
    session_id = parse_session(session)
    day = parse_day(date_)
    if day is None and session_id is None:
        day = today_ist()
    mode_: Literal["PAPER", "LIVE"] | None = None
    if mode is not None:
        if mode.upper() not in ("PAPER", "LIVE"):
            raise typer.BadParameter(f"PAPER or LIVE, got {mode!r}", param_hint="--mode")
        mode_ = "PAPER" if mode.upper() == "PAPER" else "LIVE"
    if slo_ms <= 0:
        raise typer.BadParameter(f"must be > 0, got {slo_ms}", param_hint="--slo-ms")
    try:
        settings = load_settings()
        data = asyncio.run(_load(settings, day, session_id, mode_, slo_ms))
    except ReportError as exc:
        raise fail(str(exc), 1) from None
    except EXPECTED_ERRORS as exc:
        raise fail(str(exc)) from None
    from aitrapp.report.render_terminal import render_report

    render_report(data, Console())
    if html:
        from aitrapp.report.render_html import write_html_report

        try:
            paths = write_html_report(data, out)
        except OSError as exc:
            raise fail(f"cannot write the HTML report: {exc}") from None
        typer.echo(f"HTML report: {paths.html}")


async def _load(
    settings: AppSettings,
    day: date | None,
    session_id: UUID | None,
    mode: Literal["PAPER", "LIVE"] | None,
    slo_ms: float,
) -> DailyReport:
    async with database(settings, min_size=1, max_size=2) as db:
        return await load_daily_report(
            db.pool,
            now=datetime.now(UTC),
            day=day,
            session_id=session_id,
            mode=mode,
            default_slo_ms=slo_ms,
        )
