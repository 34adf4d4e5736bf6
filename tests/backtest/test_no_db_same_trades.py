"""``--no-db`` and PostgreSQL give the same trades.

The same SYNTHETIC days (gappy candles with 1-3 % jumps: stops gap, some
fill late) run once as PAPER sessions of the runtime on the kernel, stored
in PostgreSQL and read back from the ``trades`` table, and once on the
kernel alone without a database. Every trade must match: plan id, side,
quantity, fill prices, times, exit reason, the plan's levels and risk,
gross, charges and net P&L to the paisa; so must the days' counters and
content hashes, and the report built from them.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from aitrapp.backtest.report import ReportSettings, build_report, report_json
from aitrapp.backtest.runner import BacktestRequest, run_backtest
from aitrapp.config import EngineConfig
from aitrapp.instruments_csv import load_instruments_file
from aitrapp.settings import AppSettings

from .conftest import BUSY, TRADING_DAYS

pytestmark = pytest.mark.integration

# Two open positions at most and a 3 % daily loss stop: the risk gate halts days early.
TIGHT = EngineConfig.parse(
    BUSY.model_dump() | {"risk": BUSY.risk.model_dump() | {"daily_loss_stop_pct": 3.0,
                                                           "max_open_positions": 2}}
)  # fmt: skip
CONFIGS = {"default": EngineConfig(), "ema_cross": BUSY, "tight": TIGHT}


@pytest.mark.parametrize("name", list(CONFIGS))
async def test_the_same_days_give_the_same_trades_with_and_without_the_database(
    name: str, settings: AppSettings, candles: list[Path], own_instruments: Path
) -> None:
    config = CONFIGS[name]
    request = BacktestRequest(
        replay=tuple(candles), universe=load_instruments_file(own_instruments), config=config
    )
    stored = await run_backtest(settings, request)
    kernel = await run_backtest(settings, replace(request, no_db=True))

    assert [d.day for d in stored.days] == [d.day for d in kernel.days] == list(TRADING_DAYS)
    assert all(d.session_id is not None for d in stored.days)
    assert all(d.session_id is None for d in kernel.days)
    trades = [t for d in stored.days for t in d.trades]
    assert len(trades) >= 10 and {t.exit_reason for t in trades} & {"STOP", "STOP_GAPPED"}
    for db_day, k_day in zip(stored.days, kernel.days, strict=True):
        assert [t.plan_id for t in k_day.trades] == [t.plan_id for t in db_day.trades]
        for a, b in zip(db_day.trades, k_day.trades, strict=True):
            # Field by field first, so a failure names what differs.
            for field in ("side", "qty", "entry_price", "exit_price", "opened_at", "closed_at",
                          "exit_reason", "planned_risk", "planned_entry", "planned_stop",
                          "planned_tp", "gross", "charges", "net"):  # fmt: skip
                assert getattr(b, field) == getattr(a, field), (a.plan_id, field)
            assert str(b.net) == str(a.net) and str(b.charges) == str(a.charges)
        assert k_day.trades == db_day.trades
        assert k_day.net == db_day.net
        counters = ("ticks", "signals", "decisions", "risk_blocks", "replay_sha")
        assert [getattr(k_day, c) for c in counters] == [getattr(db_day, c) for c in counters]

    settings_ = ReportSettings(Decimal(str(config.risk.capital_rupees)), risk_free_rate_pct=6.5)
    reports = [
        report_json(build_report(r.days, settings_, skipped=r.skipped)) for r in (stored, kernel)
    ]
    for r in reports:
        for d in r["days_run"]:
            d.pop("session_id")
    assert reports[0] == reports[1]


async def test_the_stop_fill_timeout_setting_reaches_both_paths(
    settings: AppSettings, candles: list[Path], own_instruments: Path
) -> None:
    """AITRAPP_OCO_STOP_FILL_TIMEOUT_S changes the trades (stops fill late on these gappy
    days), and the same way with and without the database."""
    quick = settings.model_copy(update={"oco_stop_fill_timeout_s": 1.0})
    request = BacktestRequest(
        replay=tuple(candles), universe=load_instruments_file(own_instruments), config=BUSY
    )
    stored = await run_backtest(quick, request)
    kernel = await run_backtest(quick, replace(request, no_db=True))
    default = await run_backtest(settings, replace(request, no_db=True))
    assert [d.trades for d in kernel.days] == [d.trades for d in stored.days]
    assert [d.replay_sha for d in kernel.days] == [d.replay_sha for d in stored.days]
    assert [d.trades for d in default.days] != [d.trades for d in stored.days]
    assert [d.replay_sha for d in default.days] != [d.replay_sha for d in stored.days]
