"""Sweep charts: the chosen metric per combination, and a heatmap for 2-D grids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from aitrapp.backtest.plots import figure, save
from aitrapp.research.sweep import Metric, SweepResult, rank

METRIC_PNG = "metric.png"
HEATMAP_PNG = "heatmap.png"


def metric_figure(result: SweepResult, by: Metric) -> Figure:
    ranked = rank([(r.combination, r.report.total) for r in result.rows], by)
    fig = figure(10, 1.5 + 0.32 * len(ranked))
    ax = fig.add_subplot()
    labels = [c.label() for c, _ in ranked]
    values = [by.read(s) for _, s in ranked]
    ys = np.arange(len(ranked))[::-1]
    shown = [0.0 if v is None else v for v in values]
    ax.barh(ys, shown, color=["#2a8a3e" if v >= 0 else "#c0392b" for v in shown])
    ax.set_yticks(ys)
    ax.set_yticklabels(labels, fontsize=8)
    ax.axvline(0, color="#999", linewidth=0.8)
    better = "higher" if by.higher_is_better else "lower"
    ax.set_title(f"{by.name} per combination ({better} is better), best at the top")
    ax.grid(alpha=0.3, axis="x")
    return fig


def heatmap_figure(result: SweepResult, by: Metric) -> Figure:
    """The metric over the two grid keys (rows: first key, columns: second)."""
    (k1, k2), (v1, v2) = result.grid.keys, result.grid.values
    grid = np.full((len(v1), len(v2)), np.nan)
    for row in result.rows:
        params = dict(row.combination.params)
        value = by.read(row.report.total)
        if value is not None:
            grid[v1.index(params[k1]), v2.index(params[k2])] = value
    fig = figure(2.5 + 1.1 * len(v2), 1.8 + 0.7 * len(v1))
    ax = fig.add_subplot()
    cmap = "RdYlGn" if by.higher_is_better else "RdYlGn_r"
    image = ax.imshow(grid, cmap=cmap, aspect="auto")
    fig.colorbar(image, ax=ax, label=by.name)
    for i in range(len(v1)):
        for j in range(len(v2)):
            text = "-" if np.isnan(grid[i, j]) else f"{grid[i, j]:,.2f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=9)
    ax.set_xticks(range(len(v2)))
    ax.set_xticklabels([str(v) for v in v2])
    ax.set_yticks(range(len(v1)))
    ax.set_yticklabels([str(v) for v in v1])
    ax.set_xlabel(k2)
    ax.set_ylabel(k1)
    ax.set_title(f"{by.name} by {k1.rsplit('.', 1)[-1]} x {k2.rsplit('.', 1)[-1]}")
    return fig


def write_sweep_plots(result: SweepResult, by: Metric, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = [save(metric_figure(result, by), out / METRIC_PNG)]
    if len(result.grid.keys) == 2:
        written.append(save(heatmap_figure(result, by), out / HEATMAP_PNG))
    return written


__all__ = ["HEATMAP_PNG", "METRIC_PNG", "heatmap_figure", "metric_figure", "write_sweep_plots"]
