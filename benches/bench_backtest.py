"""Backtests and sweeps at the size issue 15 sets: 20 NSE trading days of 20
instruments, about a tick a second each (SYNTHETIC, seeded:
``python -m aitrapp.backtest.sample --ticks``), about 9M ticks replayed.

Targets, on 2 cores: ``aitrapp backtest --no-db`` <= 30 s, ``aitrapp backtest``
with PostgreSQL <= 60 s, a 16-combination ``aitrapp sweep`` of it on 2 Ray
workers <= 4 min. Each figure is the command a user runs, timed from its
start (interpreter, imports, loading and checking the files) to its report
written: a subprocess, with the default engine config. The PostgreSQL run
gets a fresh database on an embedded server started beforehand (durable, as
``aitrapp`` runs it); the sweep starts its own local Ray cluster.

``make bench`` runs the full size (the backtests three times each: the
median is the figure) and prints each against its target; under plain
``pytest`` each runs once on 2 trading days of 3 instruments as a test.
Nothing here asserts a time.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from aitrapp.backtest.sample import write_sample
from aitrapp.db.embedded import EmbeddedPostgres

# 2026-01-05 .. 2026-02-02: 21 weekdays, Republic Day (26 Jan) closed: 20 trading days.
FULL = {"first": date(2026, 1, 5), "last": date(2026, 2, 2), "symbols": 20, "days": 20}
# Fri 23 Jan, Mon 26 Jan (holiday), Tue 27 Jan: 2 trading days.
TINY = {"first": date(2026, 1, 23), "last": date(2026, 1, 27), "symbols": 3, "days": 2}
TARGET_S = {"no_db": 30.0, "postgres": 60.0, "sweep": 240.0}
# 2 x 2 x 2 x 2 = 16 combinations of the default strategies and risk settings.
GRID = """\
"strategies.orb.window_minutes" = [15, 30]
"strategies.vwap_reversion.stretch" = [2.0, 2.5]
"risk.per_trade_risk_pct" = [0.25, 0.5]
"risk.max_open_positions" = [3, 5]
"""


@dataclass(frozen=True)
class Sample:
    root: Path
    full: bool
    days: int

    @property
    def ticks(self) -> Path:
        return self.root / "ticks"

    @property
    def instruments(self) -> Path:
        return self.root / "instruments.csv"


def _full_size(config: pytest.Config) -> bool:
    session = getattr(config, "_benchmarksession", None)
    return session is not None and not session.disabled


@pytest.fixture(scope="module")
def sample(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Sample:
    full = _full_size(request.config)
    size = FULL if full else TINY
    root = tmp_path_factory.mktemp("bench-backtest")
    t0 = time.perf_counter()
    write_sample(root, size["first"], size["last"], symbols=size["symbols"], seed=7, ticks=True)
    if full:
        print(f"\nSYNTHETIC ticks written in {time.perf_counter() - t0:.1f} s")
    return Sample(root, full, size["days"])


@pytest.fixture(scope="module")
def postgres(sample: Sample) -> Iterator[EmbeddedPostgres]:
    # Outside pytest's tmp tree: the server (another OS user under root) must reach it.
    base = Path(tempfile.mkdtemp(prefix="aitrapp-bench-pg-"))
    base.chmod(0o755)
    server = EmbeddedPostgres(base / "data", durable=sample.full)
    try:
        server.start_blocking()
        yield server
    finally:
        server.stop_blocking("immediate")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def no_db_reports() -> dict[str, dict[str, Any]]:
    """The report of an ``aitrapp backtest --no-db`` of this module's sample, once one ran:
    the PostgreSQL run compares against it instead of running the same command again."""
    return {}


def _env(work: Path, database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        AITRAPP_DATA_DIR=str(work / "var"), AITRAPP_LOGS_DIR=str(work / "logs"), COLUMNS="160"
    )
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    return env


CPU_S: list[float] = []  # CPU seconds (user + system) of each command, in order


def _aitrapp(args: list[str], env: dict[str, str]) -> float:
    """Runs ``aitrapp ARGS`` and returns its wall time (it must succeed); its CPU
    time goes to CPU_S (on a shared machine the steadier figure)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "aitrapp", *args], env=env, capture_output=True, text=True,
        timeout=900, check=False,
    )  # fmt: skip
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU_S.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return elapsed


def _backtest_args(sample: Sample, out: Path) -> list[str]:
    return ["backtest", "--replay", str(sample.ticks), "--instruments", str(sample.instruments),
            "--report-dir", str(out), "--no-progress"]  # fmt: skip


def _report(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "report.json").read_text())
    return data


def _without_ids(report: dict[str, Any]) -> dict[str, Any]:
    out = dict(report, backtest_id=None)
    out["days_run"] = [dict(d, session_id=None) for d in report["days_run"]]
    return out


def _show(name: str, times: list[float], report: dict[str, Any]) -> None:
    ticks = sum(d["ticks"] for d in report["days_run"])
    median = sorted(times)[len(times) // 2]
    cpu = sorted(CPU_S[-len(times) :])[len(times) // 2]
    verdict = "met" if median <= TARGET_S[name] else "MISSED"
    print(
        f"\n{name}: median {median:.1f} s of {[round(t, 1) for t in times]} "
        f"(target {TARGET_S[name]:.0f} s: {verdict}; CPU {cpu:.1f} s); "
        f"{len(report['days_run'])} days, "
        f"{ticks:,} ticks ({ticks / median / 1e6:.2f}M ticks/s end to end), "
        f"{report['total']['trades']} trades"
    )


def _check(sample: Sample, report: dict[str, Any]) -> None:
    assert len(report["days_run"]) == sample.days
    assert report["synthetic"] is True
    assert {s["reason"] for s in report["skipped"]} >= {"holiday: Republic Day"}
    assert all(d["ticks"] > 0 for d in report["days_run"])
    assert report["total"]["trades"] > 0


def test_bench_backtest_no_db(
    benchmark: Any, sample: Sample, no_db_reports: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    times: list[float] = []
    out = tmp_path / "report"

    def once() -> None:
        times.append(_aitrapp([*_backtest_args(sample, out), "--no-db"], _env(tmp_path, None)))

    benchmark.pedantic(once, rounds=3 if sample.full else 1, iterations=1)
    report = _report(out)
    _check(sample, report)
    assert report["backtest_id"] is None
    no_db_reports["no_db"] = report
    if sample.full:
        _show("no_db", times, report)


def test_bench_backtest_postgres(
    benchmark: Any,
    sample: Sample,
    postgres: EmbeddedPostgres,
    no_db_reports: dict[str, dict[str, Any]],
    tmp_path: Path,
) -> None:
    times: list[float] = []
    rounds: list[str] = []

    def fresh_database() -> tuple[tuple[str], dict[str, Any]]:
        name = f"bench_{len(rounds)}"
        rounds.append(name)

        async def create() -> None:
            conn = await asyncpg.connect(postgres.url())
            try:
                await conn.execute(f"CREATE DATABASE {name}")
            finally:
                await conn.close()

        asyncio.run(create())
        return (postgres.url(name),), {}

    def once(url: str) -> None:
        out = tmp_path / rounds[-1]
        times.append(_aitrapp(_backtest_args(sample, out), _env(tmp_path, url)))

    benchmark.pedantic(once, setup=fresh_database, rounds=3 if sample.full else 1, iterations=1)
    report = _report(tmp_path / rounds[-1])
    _check(sample, report)
    assert report["backtest_id"] is not None
    assert all(d["status"] == "COMPLETED" and d["session_id"] for d in report["days_run"])
    if sample.full:
        _show("postgres", times, report)
    # The same figures without the database (not timed; run here unless the no-db test did).
    if "no_db" not in no_db_reports:
        no_db = tmp_path / "no-db"
        _aitrapp([*_backtest_args(sample, no_db), "--no-db"], _env(tmp_path, None))
        no_db_reports["no_db"] = _report(no_db)
    assert _without_ids(no_db_reports["no_db"]) == _without_ids(report)


def test_bench_sweep_on_two_ray_workers(benchmark: Any, sample: Sample, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID)
    out = tmp_path / "sweep"
    in_sample = sample.days * 7 // 10
    args = ["sweep", "--grid", str(grid), "--replay", str(sample.ticks), "--instruments",
            str(sample.instruments), "--workers", "2", "--walk-forward", str(in_sample),
            "--out", str(out)]  # fmt: skip
    times: list[float] = []

    def once() -> None:
        times.append(_aitrapp(args, _env(tmp_path, None)))

    benchmark.pedantic(once, rounds=1, iterations=1)
    rows = (out / "results.csv").read_text().splitlines()
    assert len(rows) == 1 + 16
    wf = (out / "walk_forward.csv").read_text().splitlines()
    assert len(wf) == 1 + 16 and "is_net" in wf[0] and "oos_net" in wf[0]
    header = rows[0].split(",")
    trades = sum(int(r.split(",")[header.index("trades")]) for r in rows[1:])
    assert trades > 0
    if sample.full:
        verdict = "met" if times[0] <= TARGET_S["sweep"] else "MISSED"
        print(
            f"\nsweep: {times[0]:.1f} s for 16 combinations x {sample.days} days on 2 Ray "
            f"workers (target {TARGET_S['sweep']:.0f} s: {verdict}); {trades} trades in all"
        )
