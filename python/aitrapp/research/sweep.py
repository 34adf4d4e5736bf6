"""Parameter sweeps on Ray: one backtest per grid combination, one Ray task each.

The driver loads and validates the data once, puts the days in Ray's object
store and submits one task per combination. A task replays every day with
its config on the trading kernel without a database (what
``run_day(..., db=None)`` runs: :func:`aitrapp.backtest.runner.run_day_on_kernel`)
and returns the days' trades; the driver computes every figure (the same
report code as ``aitrapp backtest``) and reads results in submission order,
so the table does not depend on how many workers ran it or in what order
they finished.

``ray.init()`` starts a local cluster (``--workers`` CPUs, default one per
core); ``--ray-address`` joins an existing one.
"""

from __future__ import annotations

import asyncio
import csv
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from aitrapp._core import Instrument
from aitrapp.backtest.records import DayResult
from aitrapp.backtest.report import BacktestReport, GroupStats, ReportSettings, build_report
from aitrapp.backtest.runner import BacktestData, day_sha, run_day_on_kernel, session_settings
from aitrapp.config import EngineConfig
from aitrapp.exceptions import AitrappError, ConfigError
from aitrapp.feeds.base import TickBatch
from aitrapp.kernel.options import BracketOptions
from aitrapp.research.grid import Combination, Grid

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "aitrapp sweep runs on Ray, which is not installed: pip install 'aitrapp[research]' "
    "(or pip install ray)"
)


class RayMissingError(AitrappError):
    """Ray (the optional research extra) is not installed."""


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RayMissingError(INSTALL_HINT) from None
    return ray


# ------------------------------------------------------------------ metrics
@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    read: Callable[[GroupStats], float | None]
    higher_is_better: bool = True


def _f(value: Decimal | float | None) -> float | None:
    return None if value is None else float(value)


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("net", lambda g: _f(g.net)),
        Metric("sharpe", lambda g: g.sharpe),
        Metric("sortino", lambda g: g.sortino),
        Metric("expectancy", lambda g: _f(g.expectancy)),
        Metric("win_rate", lambda g: g.win_rate),
        Metric("trades", lambda g: float(g.trades)),
        Metric("max_drawdown", lambda g: _f(g.max_drawdown), higher_is_better=False),
    )
}


def metric(name: str) -> Metric:
    try:
        return METRICS[name]
    except KeyError:
        raise ConfigError(f"--metric: {name!r} is not one of {', '.join(METRICS)}") from None


def rank(
    rows: Sequence[tuple[Combination, GroupStats]], by: Metric
) -> list[tuple[Combination, GroupStats]]:
    """Best first; combinations without a value last; ties in grid order."""

    def key(row: tuple[Combination, GroupStats]) -> tuple[int, float, int]:
        value = by.read(row[1])
        if value is None:
            return (1, 0.0, row[0].index)
        return (0, -value if by.higher_is_better else value, row[0].index)

    return sorted(rows, key=key)


# ------------------------------------------------------------------ the task
@dataclass(frozen=True, slots=True)
class TaskSpec:
    """What a Ray task needs besides the days (plain data: it is pickled)."""

    index: int
    config_json: str
    instruments: tuple[tuple[str, str, int, str, str, int, int], ...]
    bracket: BracketOptions


def instrument_fields(i: Instrument) -> tuple[str, str, int, str, str, int, int]:
    tick = f"{Decimal(i.tick_paise) / 100:.2f}"
    return (i.exchange, i.tradingsymbol, i.instrument_token, i.segment, tick, i.lot_size,
            i.freeze_qty)  # fmt: skip


def _instrument(f: tuple[str, str, int, str, str, int, int]) -> Instrument:
    exchange, symbol, token, segment, tick, lot, freeze = f
    return Instrument(
        exchange=exchange,
        tradingsymbol=symbol,
        instrument_token=token,
        segment=segment,
        tick_size=tick,
        lot_size=lot,
        freeze_qty=freeze,
    )


SweepDay = tuple[date, TickBatch, str]  # the day, its ticks, its replay_sha


def sweep_task(spec: TaskSpec, days: Sequence[SweepDay]) -> list[DayResult]:
    """One combination over every day, on the kernel without a database (runs in a
    Ray worker process; one day after another, like ``aitrapp backtest --no-db``)."""
    instruments = [_instrument(f) for f in spec.instruments]
    config = EngineConfig.model_validate_json(spec.config_json)
    return [
        run_day_on_kernel(d, ticks, instruments, config, sha=sha, bracket=spec.bracket)
        for d, ticks, sha in days
    ]


# ------------------------------------------------------------------ the driver
@dataclass(frozen=True, slots=True)
class SweepRow:
    combination: Combination
    days: tuple[DayResult, ...]
    report: BacktestReport


@dataclass(frozen=True, slots=True)
class SweepResult:
    grid: Grid
    rows: tuple[SweepRow, ...]  # grid order
    workers: int


async def run_sweep(
    data: BacktestData,
    grid: Grid,
    combinations: Sequence[Combination],
    *,
    report_settings: Callable[[EngineConfig], ReportSettings],
    workers: int | None = None,
    ray_address: str | None = None,
    object_store_bytes: int | None = None,
    on_done: Callable[[int, int], None] | None = None,
    bracket: BracketOptions | None = None,
) -> SweepResult:
    """Every combination as one Ray task; rows come back in grid order. ``bracket``:
    as ``aitrapp backtest`` has it (:func:`session_settings` of the settings)."""
    ray = import_ray()
    n_workers = workers or os.cpu_count() or 1
    if n_workers < 1:
        raise ConfigError(f"--workers: must be at least 1, got {n_workers}")
    instruments = tuple(instrument_fields(i) for i in data.instruments)
    bracket = bracket or session_settings()[1]
    specs = [TaskSpec(c.index, c.config.to_core_json(), instruments, bracket) for c in combinations]
    started_here = start_ray(ray, n_workers, ray_address, object_store_bytes)
    try:
        per_combo = await asyncio.to_thread(_run_tasks, ray, specs, data, n_workers, on_done)
    finally:
        if started_here:
            ray.shutdown()
    rows = []
    for combo, days in zip(combinations, per_combo, strict=True):
        report = build_report(
            days,
            report_settings(combo.config),
            skipped=data.split.skipped,
            label=data.label,
            synthetic=data.synthetic,
            first=data.split.first,
            last=data.split.last,
            config_sha=combo.config.config_sha,
        )
        rows.append(SweepRow(combo, tuple(days), report))
    return SweepResult(grid, tuple(rows), n_workers)


def start_ray(ray: Any, workers: int, address: str | None, object_store_bytes: int | None) -> bool:
    """Joins ``address`` or starts a local cluster of ``workers`` CPUs (in the main
    thread: Ray installs signal handlers). False when Ray was already running."""
    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    else:
        ray.init(
            num_cpus=workers,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
            object_store_memory=object_store_bytes,
        )
    return True


def _run_tasks(
    ray: Any,
    specs: Sequence[TaskSpec],
    data: BacktestData,
    workers: int,
    on_done: Callable[[int, int], None] | None,
) -> list[list[DayResult]]:
    """At most ``workers`` tasks in flight (on a shared cluster too); results by index."""
    # One copy of the days for every task; each day hashed once, not once per task.
    bracket = specs[0].bracket if specs else None
    days = ray.put([(td.day, td.ticks, day_sha(td.ticks, data.instruments, bracket))
                    for td in data.split.days])  # fmt: skip
    task = ray.remote(num_cpus=1, max_retries=0)(sweep_task)
    results: dict[int, list[DayResult]] = {}
    queue = list(enumerate(specs))
    running: dict[Any, int] = {}
    while queue or running:
        while queue and len(running) < workers:
            i, spec = queue.pop(0)
            running[task.remote(spec, days)] = i
        (ref,), _ = ray.wait(list(running), num_returns=1)
        results[running.pop(ref)] = list(ray.get(ref))
        if on_done is not None:
            on_done(len(results), len(specs))
    return [results[i] for i in range(len(specs))]  # grid order, whoever finished first


# ------------------------------------------------------------------ walk-forward
@dataclass(frozen=True, slots=True)
class WalkForwardRow:
    combination: Combination
    in_sample: GroupStats
    out_of_sample: GroupStats


@dataclass(frozen=True, slots=True)
class WalkForward:
    in_days: tuple[date, ...]
    out_days: tuple[date, ...]
    metric: Metric
    rows: tuple[WalkForwardRow, ...]  # ranked by the in-sample metric
    best: WalkForwardRow


def walk_forward(result: SweepResult, n_in: int, by: Metric) -> WalkForward:
    """The best combination on the first ``n_in`` days, reported on the rest."""
    days = [d.day for d in result.rows[0].days]
    if not 0 < n_in < len(days):
        raise ConfigError(
            f"--walk-forward: {n_in} in-sample day(s) must leave at least one of the "
            f"{len(days)} day(s) run out of sample"
        )
    inside, outside = set(days[:n_in]), set(days[n_in:])
    rows = []
    for row in result.rows:
        settings = row.report.settings
        is_days = [d for d in row.days if d.day in inside]
        oos_days = [d for d in row.days if d.day in outside]
        rows.append(
            WalkForwardRow(
                row.combination,
                build_report(is_days, settings).total,
                build_report(oos_days, settings).total,
            )
        )
    ranked = rank([(r.combination, r.in_sample) for r in rows], by)
    by_index = {r.combination.index: r for r in rows}
    ordered = tuple(by_index[c.index] for c, _ in ranked)
    return WalkForward(tuple(days[:n_in]), tuple(days[n_in:]), by, ordered, ordered[0])


# ------------------------------------------------------------------ tables
_FIGURES = (
    "trades", "win_rate", "expectancy", "gross", "charges", "net", "max_drawdown",
    "sharpe", "sortino", "exposure_share", "avg_loss_r",
)  # fmt: skip


def figures(g: GroupStats) -> list[str]:
    out = []
    for name in _FIGURES:
        value = getattr(g, name)
        if value is None:
            out.append("")
        elif isinstance(value, Decimal):
            out.append(f"{value:.2f}")
        elif isinstance(value, float):
            out.append(f"{value:.6f}")
        else:
            out.append(str(value))
    return out


def results_table(result: SweepResult, by: Metric) -> list[list[str]]:
    """Header + one row per combination, best first by ``by``."""
    keys = list(result.grid.keys)
    header = ["rank", "combination", *keys, *_FIGURES, "config_sha"]
    ranked = rank([(r.combination, r.report.total) for r in result.rows], by)
    table = [header]
    for i, (combo, stats) in enumerate(ranked, start=1):
        values = [str(v) for _, v in combo.params]
        table.append([str(i), str(combo.index), *values, *figures(stats), combo.config.config_sha])
    return table


def walk_forward_table(wf: WalkForward, keys: Sequence[str]) -> list[list[str]]:
    header = ["rank_in_sample", "combination", *keys]
    header += [f"is_{f}" for f in _FIGURES] + [f"oos_{f}" for f in _FIGURES]
    table = [header]
    for i, row in enumerate(wf.rows, start=1):
        values = [str(v) for _, v in row.combination.params]
        table.append(
            [str(i), str(row.combination.index), *values, *figures(row.in_sample),
             *figures(row.out_of_sample)]
        )  # fmt: skip
    return table


def write_csv(path: Path, table: Sequence[Sequence[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f, lineterminator="\n").writerows(table)
    os.replace(tmp, path)
    return path


__all__ = [
    "INSTALL_HINT",
    "METRICS",
    "Metric",
    "RayMissingError",
    "SweepResult",
    "SweepRow",
    "TaskSpec",
    "WalkForward",
    "import_ray",
    "metric",
    "rank",
    "results_table",
    "run_sweep",
    "sweep_task",
    "walk_forward",
    "walk_forward_table",
    "write_csv",
]
