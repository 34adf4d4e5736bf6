"""One paper trading session, start to finish: what `aitrapp paper` runs.

Start the runtime (embedded PostgreSQL unless DATABASE_URL, in-process bus
unless REDIS_URL), optionally serve the control API, replay the day through
the trading kernel with a progress bar, run the flatten drill near the end, let the
OCO machines square off at the segment's cut-off, stop, then judge the
session (burn-in check, stored with it) and write the daily report.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from aitrapp.calendar import ist_ns
from aitrapp.report import burnin
from aitrapp.report.data import load_daily_report
from aitrapp.runtime import Runtime, RuntimeOptions, start_runtime
from aitrapp.settings import AppSettings

log = logging.getLogger(__name__)

DEFAULT_DRILL_AT = dtime(15, 10)  # IST: after most entries, before the 15:20 square-off
# Besides the drill near the end (often with nothing open: the day's trade
# budget tends to go early), a first drill runs the first time positions are
# open, so the kill switch is exercised on real exits too. Both are checked
# between feed batches, at most one second of session time apart, and both are
# judged by the burn-in.


@dataclass(slots=True)
class SessionOutcome:
    session_id: str
    summary: dict[str, Any]
    verdict: dict[str, Any] | None
    report_dir: Path | None
    passed: bool | None
    api_url: str | None = None
    elapsed_s: float = 0.0
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SessionPlan:
    options: RuntimeOptions
    drill_at: dtime | None = DEFAULT_DRILL_AT
    serve_api: bool = True
    keep_serving: bool = False
    report_dir: Path | None = None  # default: reports/YYYY-MM-DD
    write_report: bool = True
    progress: bool = True


async def _serve_api(settings: AppSettings, rt: Runtime) -> tuple[Any, asyncio.Task[None], str]:
    import uvicorn

    from aitrapp.api.app import create_app
    from aitrapp.cli.serve import ApiServer

    async def factory(_settings: AppSettings) -> Runtime:
        return rt

    app = create_app(settings, runtime_factory=factory)
    config = uvicorn.Config(
        app,
        host=settings.api_host,
        port=settings.api_port,
        log_level="warning",
        lifespan="on",
    )
    server = ApiServer(config, app, handle_signals=False)  # the session owns the signals
    task = asyncio.create_task(server.serve(), name="api")
    for _ in range(200):  # wait until it listens (or failed)
        if server.started or task.done():
            break
        await asyncio.sleep(0.025)
    if task.done():
        task.result()  # raises the bind error, with its reason
    return server, task, f"http://{settings.api_host}:{settings.api_port}"


async def _drill(rt: Runtime, console: Console | None) -> None:
    """The burn-in's flatten drill: kill switch, then trading resumes (a session that
    was PAUSED, e.g. by start-up reconciliation, stays PAUSED)."""
    before = rt.trading_state
    await rt.pause_feed()
    try:
        result = await rt.flatten(actor="drill", timeout_s=10.0)
        if console is not None:
            console.log(
                f"flatten drill: flat in {result.elapsed_ms:.1f} ms "
                f"({result.exit_orders} exits, {result.cancelled_orders} orders cancelled)"
            )
    finally:
        await rt.resume(actor="drill")
        if before == "PAUSED":
            await rt.pause(actor="drill")
        rt.resume_feed()


async def run_session(
    settings: AppSettings,
    plan: SessionPlan,
    *,
    console: Console | None = None,
    on_started: Callable[[Runtime], None] | None = None,
) -> SessionOutcome:
    t0 = time.perf_counter()
    rt = await start_runtime(settings, _no_autostart(plan.options))
    server = api_task = None
    api_url = None
    outcome: SessionOutcome | None = None
    try:
        if plan.serve_api:
            server, api_task, api_url = await _serve_api(settings, rt)
            if console is not None:
                console.log(f"control API on {api_url} (try: curl {api_url}/state)")
        if on_started is not None:
            on_started(rt)
        drill_ns = ist_ns(rt.day, plan.drill_at) if plan.drill_at is not None else None
        live_drill_pending = drill_ns is not None

        async def drill_when_due() -> None:
            nonlocal drill_ns, live_drill_pending
            if drill_ns is None:
                return
            now = rt.now_ns()
            if now >= drill_ns:
                drill_ns = None
                await _drill(rt, console)
            elif live_drill_pending and rt.book().positions:
                live_drill_pending = False
                await _drill(rt, console)

        rt.after_batch = drill_when_due
        label = rt.feed.label if rt.feed is not None else ""
        rt.start_feed()
        with _progress(console, plan.progress) as progress:
            task = progress.add_task(f"PAPER {rt.day} {label}", total=1.0)
            while not rt.feed_done.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(rt.feed_done.wait(), 0.1)
                st = rt.state()
                c = st["counters"]
                progress.update(
                    task,
                    completed=st["session"]["progress"] or 0.0,
                    description=(
                        f"PAPER {rt.day} {label} ticks={c['ticks']:,} signals={c['signals']:,} "
                        f"trades={c['trades']} net={st['daily_pnl']['net_after_charges']}"
                    ),
                )
            progress.update(task, completed=1.0)
        await rt.wait_feed()
        if drill_ns is not None:  # the feed ended before the drill time (short data)
            await _drill(rt, console)
        await rt.stop_trading()
        outcome = await _judge(rt, plan)
        outcome.api_url = api_url
        if plan.keep_serving and api_task is not None:
            if console is not None:
                console.log(f"session closed; API still serving on {api_url} (Ctrl-C to stop)")
            try:
                await asyncio.shield(api_task)  # the server shuts down gracefully below
            except asyncio.CancelledError:
                # Ctrl-C (or SIGTERM) is how serving after the close ends: not a failure.
                if console is not None:
                    console.log("stopping the API")
    finally:
        if server is not None and api_task is not None:
            server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(api_task, 5.0)
        await rt.stop()
    outcome.elapsed_s = time.perf_counter() - t0
    return outcome


def _no_autostart(options: RuntimeOptions) -> RuntimeOptions:
    from dataclasses import replace

    return replace(options, start_feed=False)


async def _judge(rt: Runtime, plan: SessionPlan) -> SessionOutcome:
    sid = rt.session_id
    assert sid is not None
    now = datetime.now(UTC)
    async with rt.pool.acquire() as conn:
        verdict = await burnin.check_session(conn, sid, now=now)
        rt.notify.burnin(verdict.to_json())  # sent before the runtime closes
        report_dir = None
        if plan.write_report:
            report = await load_daily_report(conn, now=now, session_id=sid)
            # matplotlib is loaded only when a report is drawn (every CLI start is faster).
            from aitrapp.report.render_html import write_html_report_async

            written = await write_html_report_async(report, plan.report_dir)
            report_dir = written.html.parent
    return SessionOutcome(
        session_id=str(sid),
        summary=rt.summary(),
        verdict=verdict.to_json(),
        report_dir=report_dir,
        passed=verdict.passed,
    )


def _progress(console: Console | None, enabled: bool) -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=console,
        disable=console is None or not enabled,
        transient=False,
    )


def summary_table(outcome: SessionOutcome) -> Table:
    s = outcome.summary
    t2d = s.get("tick_to_decision") or {}
    ol = s.get("order_latency") or {}
    drill = s.get("flatten_drill") or {}
    feed = s.get("feed") or {}
    table = Table(title=f"Paper session {outcome.session_id}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    rows = [
        ("feed", f"{feed.get('label', '')} ({feed.get('kind', '')})"),
        ("ticks", f"{s.get('ticks', 0):,}"),
        ("signals / decisions / blocks", f"{s['signals']} / {s['decisions']} / {s['risk_blocks']}"),
        ("trades", str(s.get("trades", 0))),
        ("net PnL (after charges)", f"₹ {s.get('net_pnl')}"),
        (
            "tick→decision p50 / p99 / p99.9",
            f"{t2d.get('p50_ms')} / {t2d.get('p99_ms')} / {t2d.get('p999_ms')} ms "
            f"(SLO {t2d.get('slo_ms')} ms met by {_pct(t2d.get('slo_compliance'))})",
        ),
        ("order latency p50 / p99", f"{ol.get('p50_ms')} / {ol.get('p99_ms')} ms"),
        ("flatten drill", f"{drill.get('elapsed_ms')} ms, ok={drill.get('ok')}"),
        ("OCO alerts (critical)", f"{s.get('alerts', 0)} ({s.get('critical_alerts', 0)})"),
        ("burn-in", "PASS" if outcome.passed else "FAIL"),
        ("report", str(outcome.report_dir / "report.html") if outcome.report_dir else "-"),
        ("wall time", f"{outcome.elapsed_s:.1f} s"),
    ]
    for k, v in rows:
        table.add_row(k, v)
    return table


def _pct(share: float | None) -> str:
    return "-" if share is None else f"{share * 100:.2f}%"
