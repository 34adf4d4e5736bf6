"""The backtest report's charts, drawn with matplotlib's Agg canvas.

Each chart is a private ``Figure`` (no pyplot global state), so drawing is
safe in worker threads and Ray workers. Files are written atomically.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from aitrapp.backtest.report import BacktestReport

EQUITY_PNG = "equity.png"
DAILY_PNG = "daily_pnl.png"
MONTHLY_PNG = "monthly.png"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_UP, _DOWN, _LINE = "#2a8a3e", "#c0392b", "#1f5fa8"


def figure(width: float = 10, height: float = 4.2) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig: Figure, path: Path) -> Path:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fig.savefig(tmp, format="png")
    os.replace(tmp, path)
    return path


def _title(report: BacktestReport, what: str) -> str:
    tag = " [SYNTHETIC DATA]" if report.synthetic else ""
    return f"{what}, {report.first} .. {report.last}{tag}"


def _day_axis(ax: Axes, labels: Sequence[str]) -> None:
    step = max(1, len(labels) // 12)
    ax.set_xticks(range(0, len(labels), step))
    ax.set_xticklabels(labels[::step], rotation=30, ha="right")


def equity_figure(report: BacktestReport) -> Figure:
    """Cumulative net P&L at each day's end, the running peak, drawdowns shaded."""
    fig = figure()
    ax = fig.add_subplot()
    ax.set_title(_title(report, "Equity across days: cumulative net P&L (rupees)"))
    labels = ["start", *(p.day.strftime("%d %b") for p in report.daily)]
    equity = np.array([0.0, *(float(p.equity) for p in report.daily)])
    peak = np.maximum.accumulate(equity)
    xs = np.arange(len(equity))
    ax.plot(xs, equity, color=_LINE, linewidth=1.8, marker="o", markersize=3, label="equity")
    ax.plot(xs, peak, color="#888", linewidth=0.8, linestyle="--", label="running peak")
    ax.fill_between(xs, equity, peak, where=peak > equity, color=_DOWN, alpha=0.2, label="drawdown")
    ax.axhline(0, color="#999", linewidth=0.8)
    total = report.total
    ax.legend(loc="best", title=f"max drawdown ₹{total.max_drawdown:,.2f}")
    _day_axis(ax, labels)
    ax.set_ylabel("rupees")
    ax.grid(alpha=0.3)
    return fig


def daily_figure(report: BacktestReport) -> Figure:
    """Net P&L of each day run, green up and red down."""
    fig = figure()
    ax = fig.add_subplot()
    ax.set_title(_title(report, "Daily net P&L (rupees, after charges)"))
    values = np.array([float(p.net) for p in report.daily])
    colors = [_UP if v >= 0 else _DOWN for v in values]
    ax.bar(np.arange(len(values)), values, color=colors)
    ax.axhline(0, color="#999", linewidth=0.8)
    _day_axis(ax, [p.day.strftime("%d %b") for p in report.daily])
    ax.set_ylabel("rupees")
    ax.grid(alpha=0.3, axis="y")
    return fig


def monthly_figure(report: BacktestReport) -> Figure:
    """Year x month table of net P&L (rupees) and return on capital, coloured by sign."""
    years = sorted({m.year for m in report.monthly})
    fig = figure(10, 1.2 + 0.55 * len(years))
    ax = fig.add_subplot()
    ax.set_title(_title(report, "Monthly net P&L (rupees / % of capital)"))
    grid = np.full((len(years), 12), np.nan)
    text = [["" for _ in range(12)] for _ in years]
    for m in report.monthly:
        r = years.index(m.year)
        grid[r, m.month - 1] = m.return_pct
        text[r][m.month - 1] = f"{float(m.net):,.0f}\n{m.return_pct:+.2f}%"
    limit = float(np.nanmax(np.abs(grid))) if np.isfinite(grid).any() else 1.0
    ax.imshow(grid, cmap="RdYlGn", vmin=-limit or -1, vmax=limit or 1, aspect="auto")
    for r in range(len(years)):
        for c in range(12):
            if text[r][c]:
                dark = abs(grid[r, c]) > 0.6 * limit  # deep colours: white text
                color = "white" if dark else "black"
                ax.text(c, r, text[r][c], ha="center", va="center", fontsize=8, color=color)
    ax.set_xticks(range(12))
    ax.set_xticklabels(_MONTHS)
    ax.set_yticks(range(len(years)))
    ax.set_yticklabels([str(y) for y in years])
    return fig


def write_plots(report: BacktestReport, out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    return {
        "equity": save(equity_figure(report), out / EQUITY_PNG),
        "daily": save(daily_figure(report), out / DAILY_PNG),
        "monthly": save(monthly_figure(report), out / MONTHLY_PNG),
    }


__all__ = [
    "DAILY_PNG",
    "EQUITY_PNG",
    "MONTHLY_PNG",
    "daily_figure",
    "equity_figure",
    "figure",
    "monthly_figure",
    "save",
    "write_plots",
]
