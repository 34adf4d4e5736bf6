"""The backtest report as terminal tables, an HTML page with PNGs, and JSON.

Layout of ``--report-dir DIR``: ``report.html`` (references the PNGs by
relative name, so the folder can be moved), ``report.json``, ``equity.png``,
``daily_pnl.png`` and ``monthly.png``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined
from rich.console import Console
from rich.table import Table

from aitrapp.backtest.days import describe_skipped
from aitrapp.backtest.report import (
    BacktestReport,
    GroupStats,
    format_minutes,
    paise,
    report_json,
)

HTML_NAME = "report.html"
JSON_NAME = "report.json"


@dataclass(frozen=True, slots=True)
class ReportFiles:
    html: Path
    json: Path
    pngs: dict[str, Path]


# ------------------------------------------------------------------ formatting
def money(value: Decimal | None) -> str:
    return "-" if value is None else f"{paise(value):,.2f}"


def ratio(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def exits(stats: GroupStats) -> str:
    return " ".join(f"{k}:{v}" for k, v in stats.exits.items()) or "-"


COLUMNS: tuple[tuple[str, str], ...] = (
    ("trades", "trades"),
    ("win", "win rate"),
    ("exp", "expectancy"),
    ("gross", "gross"),
    ("charges", "charges"),
    ("net", "net"),
    ("chg", "charges/gross"),
    ("dd", "max DD"),
    ("ddt", "DD duration"),
    ("sharpe", "Sharpe"),
    ("sortino", "Sortino"),
    ("exposure", "exposure"),
    ("avgr", "avg loss/risk"),
    ("worstr", "worst loss/risk"),
    ("slip", "avg slippage"),
    ("exits", "exits"),
)


def cells(g: GroupStats) -> dict[str, str]:
    return {
        "trades": str(g.trades),
        "win": pct(g.win_rate),
        "exp": money(g.expectancy),
        "gross": money(g.gross),
        "charges": money(g.charges),
        "net": money(g.net),
        "chg": pct(g.charges_share),
        "dd": money(g.max_drawdown),
        "ddt": format_minutes(g.max_drawdown_minutes) + ("" if g.drawdown_recovered else "+"),
        "sharpe": ratio(g.sharpe),
        "sortino": ratio(g.sortino),
        "exposure": pct(g.exposure_share),
        "avgr": ratio(g.avg_loss_r),
        "worstr": ratio(g.worst_loss_r),
        "slip": money(g.avg_slippage),
        "exits": exits(g),
    }


# ------------------------------------------------------------------ terminal
def terminal_tables(report: BacktestReport) -> list[Table]:
    """Totals, then per day, per strategy and per symbol (compact columns)."""
    tag = " [SYNTHETIC DATA]" if report.synthetic else ""
    t = report.total
    head = Table(title=f"Backtest {report.first} .. {report.last}{tag}", show_header=False)
    head.add_column("what", style="bold")
    head.add_column("value")
    rows = [
        ("backtest", str(report.backtest_id or "- (no database)")),
        ("data", report.label),
        ("days run / skipped", f"{len(report.days)} / {len(report.skipped)}"),
        ("trades (win rate)", f"{t.trades} ({pct(t.win_rate)})"),
        ("gross / charges / net", f"₹ {money(t.gross)} / {money(t.charges)} / {money(t.net)}"),
        ("charges / gross", pct(t.charges_share)),
        ("expectancy per trade", f"₹ {money(t.expectancy)}"),
        (
            "max drawdown",
            f"₹ {money(t.max_drawdown)} ({t.max_drawdown_pct:.2f}% of capital), "
            f"{format_minutes(t.max_drawdown_minutes)} market time"
            + ("" if t.drawdown_recovered else ", not recovered"),
        ),
        (
            "Sharpe / Sortino",
            f"{ratio(t.sharpe)} / {ratio(t.sortino)} (daily, 252 days, "
            f"rf {report.settings.risk_free_rate_pct:g}%)",
        ),
        ("exposure", f"{pct(t.exposure_share)} of market time"),
        ("loss / planned risk", f"avg {ratio(t.avg_loss_r)}, worst {ratio(t.worst_loss_r)}"),
        ("avg slippage per trade", f"₹ {money(t.avg_slippage)}"),
        ("exits", exits(t)),
    ]
    for k, v in rows:
        head.add_row(k, v)
    out = [head]
    short = ("trades", "win", "gross", "charges", "net", "dd", "sharpe", "exposure", "exits")
    for title, groups in (
        ("Per day", report.by_day),
        ("Per strategy", report.by_strategy),
        ("Per symbol", report.by_symbol),
    ):
        table = Table(title=title)
        table.add_column(title.split()[-1])
        names = dict(COLUMNS)
        for key in short:
            table.add_column(names[key], justify="right" if key != "exits" else "left")
        for g in groups:
            c = cells(g)
            table.add_row(g.key, *(c[k] for k in short))
        out.append(table)
    if report.skipped:
        skipped = Table(title="Skipped days", show_header=False)
        skipped.add_column("day")
        for line in describe_skipped(report.skipped):
            skipped.add_row(line)
        out.append(skipped)
    return out


def print_report(report: BacktestReport, console: Console) -> None:
    for table in terminal_tables(report):
        console.print(table)


# ------------------------------------------------------------------ files
def render_html(report: BacktestReport, pngs: dict[str, Path]) -> str:
    env = Environment(
        loader=PackageLoader("aitrapp.backtest", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    groups: Sequence[tuple[str, Sequence[GroupStats]]] = (
        ("Per day", report.by_day),
        ("Per strategy", report.by_strategy),
        ("Per symbol", report.by_symbol),
    )
    return env.get_template("backtest.html.j2").render(
        r=report,
        total=cells(report.total),
        groups=[(title, [(g.key, cells(g), g.net < 0) for g in gs]) for title, gs in groups],
        columns=COLUMNS,
        skipped=describe_skipped(report.skipped),
        pngs={k: p.name for k, p in pngs.items()},
        money=money,
        months=("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
    )


def write_report(report: BacktestReport, out: Path) -> ReportFiles:
    """HTML with its PNGs and the JSON, in ``out`` (created)."""
    out.mkdir(parents=True, exist_ok=True)
    from aitrapp.backtest import plots  # matplotlib only when a report is drawn

    pngs = plots.write_plots(report, out)
    html = _atomic_write(out / HTML_NAME, render_html(report, pngs))
    data = json.dumps(report_json(report), indent=2, ensure_ascii=False) + "\n"
    js = _atomic_write(out / JSON_NAME, data)
    return ReportFiles(html, js, pngs)


def _atomic_write(path: Path, text: str) -> Path:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


__all__ = ["ReportFiles", "print_report", "render_html", "terminal_tables", "write_report"]
