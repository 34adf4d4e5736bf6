"""`aitrapp burnin check|report`: judge sessions against the burn-in criteria."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from typing import Annotated
from uuid import UUID

import typer
from rich.console import Console
from rich.table import Table

from aitrapp.cli.report import (
    EXPECTED_ERRORS,
    DateOpt,
    SessionOpt,
    fail,
    parse_day,
    parse_session,
    today_ist,
)
from aitrapp.db.pool import database
from aitrapp.db.repo import SessionRow
from aitrapp.notify import compose as notify_compose
from aitrapp.notify.service import send_notices
from aitrapp.report.burnin import (
    BurninCriteria,
    Verdict,
    check_session,
    load_criteria,
    recent_verdicts,
    sessions_on,
)
from aitrapp.report.errors import ReportError
from aitrapp.report.live_gate import exclusion_reason
from aitrapp.report.render_terminal import render_verdict
from aitrapp.settings import AppSettings, load_settings

app = typer.Typer(
    help="Burn-in: judge PAPER sessions before LIVE is allowed.", no_args_is_help=True
)


@app.command("check")
def check(
    date_: DateOpt = None,
    session: SessionOpt = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Judge every session of the date, not only the latest.")
    ] = False,
    store: Annotated[
        bool, typer.Option("--store/--no-store", help="Store the verdict with the session.")
    ] = True,
    min_signals: Annotated[
        int | None, typer.Option(help="Env AITRAPP_BURNIN_MIN_SIGNALS, default 50.")
    ] = None,
    min_decisions: Annotated[
        int | None, typer.Option(help="Env AITRAPP_BURNIN_MIN_DECISIONS, default 3.")
    ] = None,
    min_oco_lifecycles: Annotated[
        int | None, typer.Option(help="Env AITRAPP_BURNIN_MIN_OCO_LIFECYCLES, default 1.")
    ] = None,
    max_flatten_ms: Annotated[
        float | None, typer.Option(help="Env AITRAPP_BURNIN_MAX_FLATTEN_MS, default 2000.")
    ] = None,
    max_unprotected_pct: Annotated[
        float | None,
        typer.Option(help="Env AITRAPP_BURNIN_MAX_UNPROTECTED_PCT, default 5 (% of trades)."),
    ] = None,
    max_unraced_double_exits: Annotated[
        int | None, typer.Option(help="Env AITRAPP_BURNIN_MAX_UNRACED_DOUBLE_EXITS, default 0.")
    ] = None,
) -> None:
    """Judge a session against the burn-in criteria and store the verdict.

    Judges the latest session of the date (every one with --all) or --session.
    Exit 0 if every judged session passed, 1 otherwise.
    """
    session_id = parse_session(session)
    day = parse_day(date_)
    if day is None and session_id is None:
        day = today_ist()
    try:
        settings = load_settings()
        criteria = load_criteria(
            min_signals=min_signals,
            min_decisions=min_decisions,
            min_oco_lifecycles=min_oco_lifecycles,
            max_flatten_ms=max_flatten_ms,
            max_unprotected_pct=max_unprotected_pct,
            max_unraced_double_exits=max_unraced_double_exits,
        )
        verdicts = asyncio.run(_check(settings, criteria, day, session_id, all_, store))
    except ReportError as exc:
        raise fail(str(exc), 1) from None
    except EXPECTED_ERRORS as exc:
        raise fail(str(exc)) from None
    console = Console()
    for v in verdicts:
        render_verdict(v, console)
        if v.synthetic or v.feed != "kite" or v.mode != "PAPER":
            console.print(
                f"[yellow]note:[/yellow] a {v.mode} session on the {v.feed} feed"
                f"{' (synthetic)' if v.synthetic else ''} does not count toward LIVE"
            )
    passed = sum(v.passed for v in verdicts)
    typer.echo(
        f"burn-in: {passed} of {len(verdicts)} judged sessions passed"
        + (" (verdicts stored)" if store else " (not stored)")
    )
    raise typer.Exit(0 if passed == len(verdicts) else 1)


async def _check(
    settings: AppSettings,
    criteria: BurninCriteria,
    day: date | None,
    session_id: UUID | None,
    all_: bool,
    store: bool,
) -> list[Verdict]:
    async with database(settings, min_size=1, max_size=2) as db:
        if session_id is not None:
            ids = [session_id]
        else:
            assert day is not None
            sessions = await sessions_on(db.pool, day)
            if not sessions:
                raise ReportError(f"date: no sessions recorded for {day.isoformat()}")
            ids = [s.id for s in (sessions if all_ else sessions[-1:])]
        now = datetime.now(UTC)
        verdicts = [
            await check_session(db.pool, sid, now=now, criteria=criteria, store=store)
            for sid in ids
        ]
    if store:  # a stored verdict is news (AITRAPP_NOTIFY_URLS)
        await send_notices(settings, [notify_compose.burnin(v.to_json()) for v in verdicts])
    return verdicts


@app.command("report")
def report(
    last: Annotated[int, typer.Option("--last", help="How many sessions, newest first.")] = 10,
) -> None:
    """Stored verdicts of the last N judged sessions; which count toward LIVE."""
    if not 1 <= last <= 1000:
        raise typer.BadParameter(f"must be 1..1000, got {last}", param_hint="--last")
    try:
        settings = load_settings()
        criteria = load_criteria()
        rows = asyncio.run(_recent(settings, last))
    except EXPECTED_ERRORS as exc:
        raise fail(str(exc)) from None
    table = Table(title=f"Burn-in verdicts (last {last})", title_justify="left")
    for col in (
        "date",
        "session",
        "mode",
        "feed",
        "status",
        "verdict",
        "failed",
        "counts for LIVE",
    ):
        table.add_column(col, overflow="fold")
    for r in rows:
        doc = r.burnin_verdict or {}
        crits = doc.get("criteria")
        failed = [
            str(c.get("name"))
            for c in (crits if isinstance(crits, list) else [])
            if isinstance(c, dict) and c.get("passed") is not True
        ]
        why = exclusion_reason(
            {"id": r.id, "trading_date": r.trading_date, "mode": r.mode, "feed": r.feed,
             "status": r.status, "summary": r.summary, "burnin_verdict": r.burnin_verdict},
            criteria,
        )  # fmt: skip
        table.add_row(
            r.trading_date.isoformat(),
            str(r.id),
            r.mode,
            r.feed,
            r.status,
            "[green]PASS" if doc.get("passed") is True else "[red]FAIL",
            ", ".join(failed) or "-",
            "[green]yes" if why is None else f"no: {why}",
        )
    Console().print(table)
    if not rows:
        typer.echo("no judged sessions yet: run `aitrapp burnin check`")


async def _recent(settings: AppSettings, last: int) -> list[SessionRow]:
    async with database(settings, min_size=1, max_size=1) as db:
        return await recent_verdicts(db.pool, last)
