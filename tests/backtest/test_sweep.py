"""aitrapp sweep: the grid, ranking, walk-forward, Ray (1 worker and 2 give one table, on
the kernel without a database, the same trades as ``aitrapp backtest --no-db``)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aitrapp.backtest.records import DayResult, round_trip
from aitrapp.backtest.report import ReportSettings, build_report
from aitrapp.backtest.runner import BacktestRequest, load_backtest_data, run_day
from aitrapp.calendar import IST
from aitrapp.cli import app
from aitrapp.config import EngineConfig
from aitrapp.exceptions import ConfigError
from aitrapp.instruments_csv import load_instruments_file
from aitrapp.research.grid import parse_grid
from aitrapp.research.sweep import (
    METRICS,
    SweepResult,
    SweepRow,
    rank,
    results_table,
    run_sweep,
    walk_forward,
    walk_forward_table,
)

from .conftest import BUSY, TRADING_DAYS

BASE = EngineConfig()


# ------------------------------------------------------------------ the grid
def test_grid_keys_dotted_or_as_tables() -> None:
    grid = parse_grid(
        {"strategies.orb.window_minutes": [15, 30], "risk": {"per_trade_risk_pct": [0.25, 0.5]}},
        BASE,
    )
    assert grid.keys == ("strategies.orb.window_minutes", "risk.per_trade_risk_pct")
    combos = grid.combinations(BASE)
    assert [c.params for c in combos][1] == (
        ("strategies.orb.window_minutes", 15),
        ("risk.per_trade_risk_pct", 0.5),
    )
    assert combos[3].config.strategies.orb.window_minutes == 30
    assert combos[3].config.risk.per_trade_risk_pct == 0.5
    assert len({c.config.config_sha for c in combos}) == 4


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ({"strategies.orb.range_minutes": [15]}, r"'range_minutes' is not a setting of "
         r"strategies\.orb \(it has atr_period, .*window_minutes\)"),
        ({"risk": {"per_trade_risk_pct": 0.5}}, r"risk\.per_trade_risk_pct: expected a non-empty"),
        ({"risk.per_trade_risk_pct": []}, "expected a non-empty list"),
        ({"risk.per_trade_risk_pct": [0.5, 0.5]}, "a value appears twice"),
        ({"strategies.orb": [1]}, r"key strategies\.orb: is a section"),
        ({}, "no keys"),
    ],
)  # fmt: skip
def test_bad_grids_name_the_key(raw: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_grid(raw, BASE)


def test_an_invalid_combination_is_refused_before_anything_runs() -> None:
    grid = parse_grid({"risk.per_trade_risk_pct": [1.0, 3.0]}, BASE)
    with pytest.raises(ConfigError, match=r"combination risk\.per_trade_risk_pct=3\.0: .*heat"):
        grid.combinations(BASE)


# ------------------------------------------------------------------ ranking, walk-forward
D1, D2, D3 = date(2026, 1, 22), date(2026, 1, 23), date(2026, 1, 27)
SETTINGS = ReportSettings(Decimal("1000000"))


def _day(day: date, exit_price: str) -> DayResult:
    """One BUY of 100 at 1000.00, closed at ``exit_price`` (charges as on a contract note)."""
    t = round_trip(
        day=day, plan_id=f"{day}-{exit_price}", strategy="S", symbol="RELX", side="BUY",
        qty=100, entry_price=Decimal("1000.00"), exit_price=Decimal(exit_price),
        opened_at=datetime(day.year, day.month, day.day, 10, tzinfo=IST),
        closed_at=datetime(day.year, day.month, day.day, 11, tzinfo=IST),
        exit_reason="TP", planned_risk=Decimal("500"),
    )  # fmt: skip
    return DayResult(day, "COMPLETED", (t,), ticks=10)


def _result() -> SweepResult:
    grid = parse_grid({"strategies.ema_cross.fast_period": [3, 5]}, BASE)
    a, b = grid.combinations(BASE)
    days = {
        a.index: (_day(D1, "1010.00"), _day(D2, "1010.00"), _day(D3, "990.00")),  # wins early
        b.index: (_day(D1, "1002.00"), _day(D2, "1002.00"), _day(D3, "1020.00")),  # wins late
    }
    rows = tuple(SweepRow(c, days[c.index], build_report(days[c.index], SETTINGS)) for c in (a, b))
    return SweepResult(grid, rows, workers=1)


def test_ranking_by_metric() -> None:
    result = _result()
    by_net = results_table(result, METRICS["net"])
    assert by_net[0][:3] == ["rank", "combination", "strategies.ema_cross.fast_period"]
    assert [r[2] for r in by_net[1:]] == ["5", "3"]  # 1,204.45 ahead of 973.26 (after charges)
    by_dd = rank([(r.combination, r.report.total) for r in result.rows], METRICS["max_drawdown"])
    assert [c.index for c, _ in by_dd] == [1, 0]  # no drawdown beats 1,000 + charges


def test_walk_forward_reports_in_and_out_of_sample_separately() -> None:
    result = _result()
    wf = walk_forward(result, 2, METRICS["net"])
    assert wf.in_days == (D1, D2) and wf.out_days == (D3,)
    best = wf.best
    assert best.combination.index == 0  # the better first two days
    a = result.rows[0].days
    assert best.in_sample.trades == 2 and best.out_of_sample.trades == 1
    assert best.in_sample.net == a[0].net + a[1].net
    assert best.out_of_sample.net == a[2].net < 0  # what it did after the choice
    table = walk_forward_table(wf, result.grid.keys)
    assert table[1][:3] == ["1", "0", "3"] and "is_net" in table[0] and "oos_net" in table[0]
    with pytest.raises(ConfigError, match="must leave at least one"):
        walk_forward(result, 3, METRICS["net"])


def test_sweep_without_ray_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    grid = tmp_path / "grid.toml"
    grid.write_text('"risk.max_open_positions" = [3, 5]\n')
    result = CliRunner().invoke(
        app, ["sweep", "--grid", str(grid), "--replay", str(tmp_path)], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 2
    assert "pip install 'aitrapp[research]'" in result.output


# ------------------------------------------------------------------ on Ray
@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             object_store_memory=100 * 2**20)  # fmt: skip
    try:
        yield
    finally:
        ray.shutdown()


async def test_one_worker_and_two_give_the_same_table(
    ray_cluster: None, candles: list[Path], own_instruments: Path, tmp_path: Path
) -> None:
    request = BacktestRequest(
        replay=(candles[0],),
        universe=load_instruments_file(own_instruments),
        config=BUSY,
    )
    data = await load_backtest_data(request)
    grid = parse_grid(
        {"strategies": {"ema_cross": {"fast_period": [3, 5], "stop_ticks": [60]}}}, BUSY
    )
    combos = grid.combinations(BUSY)
    tables = []
    walks = []
    for workers in (1, 2):
        result = await run_sweep(
            data, grid, combos, workers=workers,
            report_settings=lambda c: ReportSettings(Decimal(str(c.risk.capital_rupees))),
        )  # fmt: skip
        assert [d.day for d in result.rows[0].days] == list(TRADING_DAYS)
        tables.append(results_table(result, METRICS["net"]))
        walks.append(walk_forward_table(walk_forward(result, 2, METRICS["net"]), grid.keys))
    assert tables[0] == tables[1]
    assert walks[0] == walks[1]
    trades = [int(row[tables[0][0].index("trades")]) for row in tables[0][1:]]
    assert sum(trades) > 0
    # Each task ran the days as run_day(db=None) does: the same trades, day by day.
    for row in result.rows:
        alone = [
            await run_day(td.day, td.ticks, data.instruments, row.combination.config, db=None)
            for td in data.split.days
        ]
        assert [d.trades for d in row.days] == [d.trades for d in alone]
        assert [(d.ticks, d.signals, d.replay_sha) for d in row.days] == [
            (d.ticks, d.signals, d.replay_sha) for d in alone
        ]
    # Walk-forward on the real days: chosen on the first two, reported on the third apart.
    wf = walk_forward(result, 2, METRICS["net"])
    assert wf.in_days == TRADING_DAYS[:2] and wf.out_days == TRADING_DAYS[2:]
    for wrow in wf.rows:
        days = next(r.days for r in result.rows if r.combination == wrow.combination)
        assert wrow.in_sample.trades == len(days[0].trades) + len(days[1].trades)
        assert wrow.out_of_sample.trades == len(days[2].trades)
        assert wrow.in_sample.net == days[0].net + days[1].net
        assert wrow.out_of_sample.net == days[2].net
    in_nets = [r.in_sample.net for r in wf.rows]
    assert in_nets == sorted(in_nets, reverse=True) and wf.best == wf.rows[0]
    from aitrapp.research.plots import write_sweep_plots

    pngs = write_sweep_plots(result, METRICS["net"], tmp_path / "out")
    assert {p.name for p in pngs} == {"metric.png", "heatmap.png"}  # a 2-D grid
