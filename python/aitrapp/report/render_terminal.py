"""The daily report, burn-in verdicts and LIVE-gate decisions as rich tables."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from rich.console import Console
from rich.table import Table

from aitrapp.report import fmt
from aitrapp.report.burnin import CriterionResult, Verdict
from aitrapp.report.data import DailyReport, LatencyFigures
from aitrapp.report.live_gate import GateDecision
from aitrapp.report.protection import Protection, describe

MAX_ROWS = 50  # longer lists are cut, with a note of how many were left out


def _ok(passed: bool | None) -> str:
    if passed is None:
        return "[dim]-[/dim]"
    return "[bold green]PASS[/bold green]" if passed else "[bold red]FAIL[/bold red]"


def _signed(text: str, negative: bool) -> str:
    return f"[red]{text}[/red]" if negative else text


def _counts(title: str, header: str, counts: Mapping[str, int]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column(header)
    table.add_column("count", justify="right")
    for key, n in counts.items():
        table.add_row(key, str(n))
    if not counts:
        table.add_row("[dim]none[/dim]", "0")
    return table


def render_report(report: DailyReport, console: Console) -> None:
    console.rule(f"[bold]{report.title}")
    console.print(f"generated {fmt.ist(report.generated_at, with_date=True)} IST")
    console.print(_sessions_table(report))
    console.print(_activity_table(report))
    console.print(_counts("Risk blocks by reason", "reason", report.risk_blocks))
    console.print(_counts("Orders by status", "status", report.orders_by_status))
    console.print(_positions_table(report))
    console.print(_trades_table(report))
    console.print(_pnl_table(report))
    if report.protection is not None:
        console.print(protection_table(report.protection))
    console.print(_latency_table("Tick to decision", report.tick_to_decision, slo=True))
    console.print(_latency_table("Order latency (decision to broker ack)", report.order_latency))
    for note in report.notes:
        console.print(f"[yellow]note:[/yellow] {note}")


def _sessions_table(report: DailyReport) -> Table:
    table = Table(title="Sessions", title_justify="left")
    for col in ("session", "mode", "feed", "status", "started", "ended", "ticks", "burn-in"):
        table.add_column(col)
    for s in report.sessions:
        feed = f"{s.feed_label} [bold yellow](SYNTHETIC)[/bold yellow]" if s.synthetic else (
            s.feed_label if s.feed_label == s.feed else f"{s.feed}: {s.feed_label}"
        )  # fmt: skip
        table.add_row(
            str(s.id),
            s.mode,
            feed,
            s.status,
            fmt.ist(s.started_at, with_date=True),
            fmt.ist(s.ended_at),
            "-" if s.ticks is None else f"{s.ticks:,}",
            _ok(s.burnin_passed),
        )
    return table


def _activity_table(report: DailyReport) -> Table:
    table = Table(title="Signals and decisions", title_justify="left")
    table.add_column("strategy")
    table.add_column("signals", justify="right")
    table.add_column("decisions", justify="right")
    names = sorted(set(report.signals_by_strategy) | set(report.decisions_by_strategy))
    for name in names:
        table.add_row(
            name,
            str(report.signals_by_strategy.get(name, 0)),
            str(report.decisions_by_strategy.get(name, 0)),
        )
    table.add_row("[bold]total", f"[bold]{report.signals}", f"[bold]{report.decisions}")
    return table


def _positions_table(report: DailyReport) -> Table:
    table = Table(
        title=f"Positions ({report.open_positions} open of {len(report.positions)})",
        title_justify="left",
    )
    for col in ("symbol", "side", "qty", "avg entry", "exit", "opened", "closed", "status"):
        table.add_column(col, justify="right" if col in ("qty", "avg entry", "exit") else "left")
    for p in report.positions[:MAX_ROWS]:
        table.add_row(
            p.tradingsymbol,
            p.side,
            str(p.qty),
            fmt.price(p.avg_entry),
            fmt.price(p.exit_price),
            fmt.ist(p.opened_at),
            fmt.ist(p.closed_at),
            p.status if p.status == "CLOSED" else "[bold yellow]OPEN",
        )
    if len(report.positions) > MAX_ROWS:
        table.caption = f"{len(report.positions) - MAX_ROWS} more not shown"
    return table


def _trades_table(report: DailyReport) -> Table:
    table = Table(title=f"Trades ({len(report.trades)})", title_justify="left")
    cols = ("closed", "strategy", "symbol", "side", "qty", "entry", "exit", "gross", "charges",
            "net", "exit reason")  # fmt: skip
    for col in cols:
        numeric = col in ("qty", "entry", "exit", "gross", "charges", "net")
        table.add_column(col, justify="right" if numeric else "left")
    for t in report.trades[:MAX_ROWS]:
        table.add_row(
            fmt.ist(t.closed_at),
            t.strategy,
            t.tradingsymbol,
            t.side,
            str(t.qty),
            fmt.price(t.entry_price),
            fmt.price(t.exit_price),
            _signed(fmt.money(t.gross_pnl), t.gross_pnl < 0),
            fmt.money(t.charges),
            _signed(fmt.money(t.net_pnl), t.net_pnl < 0),
            t.exit_reason,
        )
    if len(report.trades) > MAX_ROWS:
        table.caption = f"{len(report.trades) - MAX_ROWS} more not shown"
    return table


def _pnl_table(report: DailyReport) -> Table:
    p = report.pnl
    table = Table(title="PnL (rupees)", title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    dd = p.max_drawdown
    rows = (
        ("gross PnL", _signed(fmt.money(p.gross_pnl), p.gross_pnl < 0)),
        ("charges", fmt.money(p.charges)),
        ("net PnL", _signed(f"[bold]{fmt.money(p.net_pnl)}", p.net_pnl < 0)),
        ("trades (won / lost)", f"{p.trades} ({p.wins} / {p.losses})"),
        ("win rate", fmt.pct(p.win_rate)),
        ("max drawdown", fmt.money(dd.amount)
         + (f" ({fmt.ist(dd.peak_ts) if dd.peak_ts else 'open'} to {fmt.ist(dd.trough_ts)})"
            if dd.amount else "")),
    )  # fmt: skip
    for name, value in rows:
        table.add_row(name, value)
    for name, s in p.by_strategy.items():
        table.add_row(
            f"  {name}: net ({s.trades} trades)", _signed(fmt.money(s.net_pnl), s.net_pnl < 0)
        )
    return table


def protection_table(p: Protection) -> Table:
    table = Table(title="Protection: did the brackets hold their plans?", title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for label, text in describe(p):
        alarming = (label == "exit UNPROTECTED" and p.unprotected > 0) or (
            label == "double exits" and p.unraced_double_exits > 0
        )
        table.add_row(label, f"[red]{text}[/red]" if alarming else text)
    return table


def _latency_table(title: str, figs: Iterable[LatencyFigures], slo: bool = False) -> Table:
    table = Table(title=f"{title} (ms)", title_justify="left")
    cols = ["session", "source", "count", "p50", "p99", "p99.9"]
    if slo:
        cols += ["SLO", "within SLO"]
    for col in cols:
        table.add_column(col, justify="left" if col in ("session", "source") else "right")
    empty = True
    for f in figs:
        empty = False
        row = [str(f.session_id)[:8], f.source, f"{f.count:,}", fmt.ms(f.p50_ms),
               fmt.ms(f.p99_ms), fmt.ms(f.p999_ms)]  # fmt: skip
        if slo:
            row += [fmt.ms(f.slo_ms), fmt.pct(f.slo_compliance, 2)]
        table.add_row(*row)
    if empty:
        table.add_row("[dim]no data[/dim]", *[""] * (len(cols) - 1))
    return table


def _criteria_table(criteria: Sequence[CriterionResult]) -> Table:
    table = Table(show_header=True)
    for col in ("criterion", "required", "measured", "result", "detail"):
        table.add_column(col, overflow="fold")
    for c in criteria:
        table.add_row(c.name, c.threshold, fmt.measured(c.measured), _ok(c.passed), c.detail)
    return table


def render_verdict(verdict: Verdict, console: Console) -> None:
    synthetic = " SYNTHETIC" if verdict.synthetic else ""
    console.rule(
        f"[bold]Burn-in {verdict.session_id}[/bold] {verdict.trading_date} "
        f"{verdict.mode} {verdict.feed}{synthetic}: {_ok(verdict.passed)}"
    )
    console.print(_criteria_table(verdict.criteria))
    if verdict.protection is not None:
        console.print(protection_table(verdict.protection))


def render_gate(decision: GateDecision, console: Console) -> None:
    verdict = "[bold green]ALLOWED" if decision.allowed else "[bold red]REFUSED"
    console.rule(f"[bold]LIVE gate: {verdict}")
    b = decision.burnin
    table = Table(show_header=True)
    for col in ("condition", "result", "detail"):
        table.add_column(col, overflow="fold")
    days = ", ".join(d.isoformat() for d in b.days) or "none"
    table.add_row(
        f"burn-in ({b.required} passing PAPER sessions on the live feed)",
        _ok(b.satisfied),
        f"{len(b.days)} counted: {days}"
        + ("; not counted: " + ", ".join(f"{n} {w}" for w, n in b.excluded.items())
           if b.excluded else ""),
    )  # fmt: skip
    table.add_row(
        "broker credentials verified",
        _ok(decision.credentials_verified),
        decision.credentials_detail,
    )
    table.add_row(
        "API token set (AITRAPP_API_TOKEN)",
        _ok(decision.api_token_set),
        "set" if decision.api_token_set else "not set",
    )
    console.print(table)
    console.print(f"audited as {decision.audit_id}")
