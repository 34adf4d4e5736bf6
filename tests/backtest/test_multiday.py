"""A multi-day replay of your own SYNTHETIC candles across an NSE holiday.

One session per trading day, stamped with its own date and tied to the
backtest; the holiday (with its ticks) and the weekend are listed as skipped.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest
from typer.testing import CliRunner

from aitrapp.backtest.runner import BacktestRequest, run_backtest
from aitrapp.cli import app
from aitrapp.exceptions import ConfigError
from aitrapp.instruments_csv import load_instruments_file
from aitrapp.settings import AppSettings, load_settings

from .conftest import BUSY, TRADING_DAYS
from .test_no_db_same_trades import TIGHT

pytestmark = pytest.mark.integration


def _request(candles: list[Path], instruments: Path, **kw: object) -> BacktestRequest:
    return BacktestRequest(
        replay=tuple(candles),
        universe=load_instruments_file(instruments),
        config=BUSY,
        **kw,  # type: ignore[arg-type]
    )


async def test_one_session_per_trading_day_and_the_holiday_skipped(
    settings: AppSettings, candles: list[Path], own_instruments: Path, db_url: str
) -> None:
    result = await run_backtest(settings, _request(candles, own_instruments))
    assert [d.day for d in result.days] == list(TRADING_DAYS)
    assert all(d.status == "COMPLETED" and d.session_id for d in result.days)
    assert sum(len(d.trades) for d in result.days) > 0
    skipped = {s.day: s for s in result.skipped}
    assert set(skipped) == {date(2026, 1, 24), date(2026, 1, 25), date(2026, 1, 26)}
    holiday = skipped[date(2026, 1, 26)]
    assert holiday.reason == "holiday: Republic Day" and holiday.ticks > 0
    assert skipped[date(2026, 1, 24)].reason == "weekend"

    conn = await asyncpg.connect(db_url)
    try:
        rows = await conn.fetch(
            "SELECT id, trading_date, status, feed, replay_sha, summary FROM sessions "
            "WHERE backtest_id = $1 ORDER BY trading_date",
            result.backtest_id,
        )
        bt = await conn.fetchrow("SELECT status, days, skipped FROM backtests WHERE id = $1",
                                 result.backtest_id)  # fmt: skip
        symbols = {
            r["tradingsymbol"]
            for r in await conn.fetch(
                "SELECT DISTINCT tradingsymbol FROM trades t JOIN sessions s "
                "ON s.id = t.session_id WHERE s.backtest_id = $1",
                result.backtest_id,
            )
        }
    finally:
        await conn.close()
    assert [r["trading_date"] for r in rows] == list(TRADING_DAYS)
    assert all(r["status"] == "COMPLETED" and r["feed"] == "replay" for r in rows)
    assert len({r["replay_sha"] for r in rows}) == 3
    assert symbols == {"RELX", "ACME"}
    for r, d in zip(rows, result.days, strict=True):
        assert r["id"] == d.session_id
        summary = json.loads(r["summary"])
        assert Decimal(summary["net_pnl"]) == d.net  # the report's trades are the session's
        assert "SYNTHETIC" in summary["feed"]["label"]
    assert bt is not None and bt["status"] == "COMPLETED"
    assert [d["day"] for d in json.loads(bt["days"])] == [d.isoformat() for d in TRADING_DAYS]
    assert {"day": "2026-01-26", "reason": "holiday: Republic Day"}.items() <= next(
        s for s in json.loads(bt["skipped"]) if s["day"] == "2026-01-26"
    ).items()

    # The same data and config again: nothing reruns, the stored days are reused.
    again = await run_backtest(settings, _request(candles, own_instruments))
    assert [d.status for d in again.days] == ["REUSED"] * 3
    assert [d.session_id for d in again.days] == [d.session_id for d in result.days]
    assert [d.trades for d in again.days] == [d.trades for d in result.days]


async def test_range_and_symbols(
    settings: AppSettings, candles: list[Path], own_instruments: Path
) -> None:
    result = await run_backtest(
        settings,
        _request(
            candles, own_instruments, start=date(2026, 1, 23), end=date(2026, 1, 28),
            symbols=("ACME",),
        ),
    )  # fmt: skip
    assert [d.day for d in result.days] == [date(2026, 1, 23), date(2026, 1, 27)]
    assert [i.tradingsymbol for i in result.data.instruments] == ["ACME"]
    assert {t.symbol for d in result.days for t in d.trades} <= {"ACME"}
    reasons = {s.day: s.reason for s in result.skipped}
    assert reasons[date(2026, 1, 28)] == "no data"


async def test_no_db_runs_on_the_kernel_without_a_database(
    candles: list[Path], own_instruments: Path, tmp_path: Path
) -> None:
    # A database URL nothing listens on: any connection attempt would fail the run.
    settings = load_settings(
        database_url="postgresql://nobody@127.0.0.1:1/none", redis_url=None,
        data_dir=tmp_path / "var", logs_dir=tmp_path / "logs",
    )  # fmt: skip
    request = _request(candles, own_instruments, no_db=True)
    result = await run_backtest(settings, request)
    assert [d.day for d in result.days] == list(TRADING_DAYS)
    assert all(d.session_id is None and d.replay_sha for d in result.days)
    assert date(2026, 1, 26) in {s.day for s in result.skipped}
    assert sum(len(d.trades) for d in result.days) > 0


def test_the_cli_writes_the_report(
    db_url: str, candles: list[Path], own_instruments: Path, tmp_path: Path
) -> None:
    config = tmp_path / "engine.json"
    config.write_text(BUSY.model_dump_json())
    out = tmp_path / "report"
    env = {
        "DATABASE_URL": db_url,
        "AITRAPP_DATA_DIR": str(tmp_path / "var"),
        "AITRAPP_LOGS_DIR": str(tmp_path / "logs"),
        "COLUMNS": "200",
    }
    args = ["backtest", "--replay", str(candles[0].parent), "--instruments", str(own_instruments),
            "--config", str(config), "--report-dir", str(out), "--no-progress"]  # fmt: skip
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    assert "2026-01-26 Mon: holiday: Republic Day" in result.output
    data = json.loads((out / "report.json").read_text())
    assert [d["day"] for d in data["days_run"]] == [d.isoformat() for d in TRADING_DAYS]
    assert data["synthetic"] is True and data["total"]["trades"] > 0
    assert (out / "report.html").exists() and (out / "equity.png").stat().st_size > 5000
    # --no-db: the same report, figure for figure and trade for trade, without the ids.
    args[args.index("--report-dir") + 1] = str(tmp_path / "report-no-db")
    result = CliRunner().invoke(app, [*args, "--no-db"], env=env)
    assert result.exit_code == 0, result.output
    no_db = json.loads((tmp_path / "report-no-db" / "report.json").read_text())
    assert data["backtest_id"] and no_db["backtest_id"] is None
    assert all(d["session_id"] for d in data["days_run"])
    for d in (*data["days_run"], *no_db["days_run"]):
        d.pop("session_id")
    data.pop("backtest_id"), no_db.pop("backtest_id")
    assert no_db == data


async def test_leftovers_of_earlier_sessions_stop_the_backtest_with_a_clear_error(
    settings: AppSettings, candles: list[Path], own_instruments: Path, db_url: str
) -> None:
    """An open position an earlier session left in the database would start every day
    PAUSED (no trades, figures unlike --no-db): the backtest stops, saying what to do."""
    first = await run_backtest(settings, _request(candles, own_instruments))
    conn = await asyncpg.connect(db_url)
    try:
        leftover = await conn.fetchval(
            "INSERT INTO positions (id, session_id, plan_id, instrument_token, exchange, "
            "tradingsymbol, side, qty, avg_entry, opened_at, updated_at, status) "
            "VALUES (gen_random_uuid(), $1, 'c0ffeec0ffeec0ffeec0ffee', 990001, 'NSE', 'RELX', "
            "'BUY', 10, 500, now(), now(), 'OPEN') RETURNING id",
            first.days[0].session_id,
        )
        request = replace(_request(candles, own_instruments), config=TIGHT)  # not a rerun
        with pytest.raises(ConfigError, match=r"2026-01-22: the database holds orders or "
                           r"positions that earlier sessions left open .*c0ffeec0ffeec0ffeec0ffee.*"
                           r"database of its own .* or with --no-db"):  # fmt: skip
            await run_backtest(settings, request)
        refused = await conn.fetchrow(
            "SELECT s.status, (SELECT count(*) FROM orders o WHERE o.session_id = s.id) AS n, "
            "b.status AS backtest FROM sessions s JOIN backtests b ON b.id = s.backtest_id "
            "WHERE s.config_sha = $1",
            TIGHT.config_sha,
        )
        assert refused is not None and dict(refused) == {
            "status": "FAILED", "n": 0, "backtest": "FAILED"
        }  # fmt: skip
        # Settled, the same request runs (the refused day is not reused) like --no-db.
        await conn.execute(
            "UPDATE positions SET status = 'CLOSED', closed_at = now() WHERE id = $1", leftover
        )
        stored = await run_backtest(settings, request)
        alone = await run_backtest(settings, replace(request, no_db=True))
    finally:
        await conn.close()
    assert [d.status for d in stored.days] == ["COMPLETED"] * 3
    assert [d.trades for d in stored.days] == [d.trades for d in alone.days]
    assert sum(len(d.trades) for d in stored.days) > 0
