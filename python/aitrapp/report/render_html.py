"""The daily report as an HTML file with two PNG charts beside it.

Layout: ``<base>/YYYY-MM-DD/report.html``, ``equity.png`` and ``latency.png``
(a single-session report goes to ``<base>/YYYY-MM-DD/session-<id8>/``); the
HTML references the PNGs by relative name, so the folder can be moved or
served as is. Charts are drawn with matplotlib's Agg canvas on a private
``Figure`` (no pyplot global state), so rendering is safe in a worker thread.
"""

from __future__ import annotations

import asyncio
import math
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, DateFormatter, date2num
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from aitrapp.report import fmt
from aitrapp.report.data import DailyReport
from aitrapp.report.protection import describe

DEFAULT_BASE_DIR = Path("reports")
HTML_NAME = "report.html"
EQUITY_PNG = "equity.png"
LATENCY_PNG = "latency.png"


@dataclass(frozen=True, slots=True)
class HtmlReport:
    html: Path
    equity_png: Path
    latency_png: Path


def default_out_dir(report: DailyReport, base_dir: Path = DEFAULT_BASE_DIR) -> Path:
    out = base_dir / report.day.isoformat()
    if report.session_id is not None:
        out /= f"session-{report.session_id.hex[:8]}"
    return out


def write_html_report(
    report: DailyReport, out_dir: Path | None = None, *, base_dir: Path = DEFAULT_BASE_DIR
) -> HtmlReport:
    """Write the HTML and both PNGs (blocking: call via :func:`write_html_report_async`
    from async code)."""
    out = out_dir if out_dir is not None else default_out_dir(report, base_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = HtmlReport(out / HTML_NAME, out / EQUITY_PNG, out / LATENCY_PNG)
    _save(_equity_figure(report), paths.equity_png)
    _save(_latency_figure(report), paths.latency_png)
    _atomic_write(paths.html, render_html(report))
    return paths


async def write_html_report_async(
    report: DailyReport, out_dir: Path | None = None, *, base_dir: Path = DEFAULT_BASE_DIR
) -> HtmlReport:
    return await asyncio.to_thread(write_html_report, report, out_dir, base_dir=base_dir)


def render_html(report: DailyReport) -> str:
    env = Environment(
        loader=PackageLoader("aitrapp.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    template = env.get_template("daily.html.j2")
    strategies = sorted(set(report.signals_by_strategy) | set(report.decisions_by_strategy))
    return template.render(
        r=report,
        generated=fmt.ist(report.generated_at, with_date=True),
        strategies=strategies,
        latency=[*report.tick_to_decision, *report.order_latency],
        protection=describe(report.protection) if report.protection is not None else [],
        equity_png=EQUITY_PNG,
        latency_png=LATENCY_PNG,
        money=fmt.money,
        price=fmt.price,
        pct=fmt.pct,
        ms=fmt.ms,
        ist=fmt.ist,
    )


# ---- charts ----
def _figure() -> Figure:
    fig = Figure(figsize=(9, 4), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fig.savefig(tmp, format="png")
    os.replace(tmp, path)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _empty(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#777")
    ax.set_xticks([])
    ax.set_yticks([])


def _day_numbers(times: list[datetime]) -> list[float]:
    """Matplotlib day numbers of aware datetimes (converted through UTC)."""
    return [float(x) for x in date2num(times)]  # type: ignore[no-untyped-call]


def _equity_figure(report: DailyReport) -> Figure:
    fig = _figure()
    ax = fig.add_subplot()
    ax.set_title("Equity curve: cumulative net PnL (rupees) by trade close time, IST")
    points = report.pnl.equity
    if not points:
        _empty(ax, "no trades")
        return fig
    start = min(t.opened_at for t in report.trades)
    xs = _day_numbers([start, *(p.ts for p in points)])
    ys = [0.0, *(float(p.equity) for p in points)]
    ax.step(xs, ys, where="post", color="#1f5fa8", linewidth=1.6)
    ax.axhline(0, color="#999", linewidth=0.8)
    dd = report.pnl.max_drawdown
    if dd.amount > 0 and dd.trough_ts is not None:
        peak, trough = _day_numbers([dd.peak_ts or start, dd.trough_ts])
        ax.axvspan(peak, trough, color="#d33", alpha=0.12,
                   label=f"max drawdown {fmt.money(dd.amount)}")  # fmt: skip
        ax.legend(loc="best")
    # Locate ticks in IST too, so they fall on round IST times.
    ax.xaxis.set_major_locator(AutoDateLocator(tz=fmt.IST, minticks=3, maxticks=9))  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(DateFormatter("%H:%M", tz=fmt.IST))  # type: ignore[no-untyped-call]
    ax.set_ylabel("rupees")
    ax.grid(alpha=0.3)
    return fig


def _latency_figure(report: DailyReport) -> Figure:
    fig = _figure()
    ax = fig.add_subplot()
    values = [v for v in report.decision_latencies_ms if math.isfinite(v) and v >= 0]
    ax.set_title(f"Tick-to-decision latency of decisions (n={len(values)}), ms")
    if not values:
        _empty(ax, "no latency samples")
        return fig
    lo, hi = min(values), max(values)
    if lo > 0 and hi / lo > 100:  # wide spread: log-spaced bins on a log axis
        edges = [lo * (hi / lo) ** (i / 40) for i in range(41)]
        ax.set_xscale("log")
        ax.hist(values, bins=edges, color="#1f5fa8")
    else:
        ax.hist(values, bins=min(40, max(5, len(values) // 2)), color="#1f5fa8")
    slos = {f.slo_ms for f in report.tick_to_decision if f.slo_ms is not None}
    for slo in sorted(slos):
        ax.axvline(slo, color="#d33", linestyle="--", label=f"SLO {slo:g} ms")
    if slos:
        ax.legend(loc="best")
    ax.set_xlabel("ms")
    ax.set_ylabel("decisions")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    return fig
