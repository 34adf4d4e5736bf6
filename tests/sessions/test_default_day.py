"""The default configuration on the built-in synthetic day looks like a trading day.

What `make paper` shows a new user (default engine config, the default 20-name
universe, seed 7): decisions spread over the session, not a trade budget spent
in the first minutes by the benchmark strategy. The day is one on which the
daily-loss stop does not end trading early (on a losing day it rightly does:
2026-03-04, seed 7, halts at 11:06 IST, 2.6% down net of charges).
`make paper` runs on the trading kernel.
"""

from __future__ import annotations

from datetime import date, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from aitrapp.config import EngineConfig

from .conftest import MakeDb
from .helpers import SEED, options, run_session, settings_for

pytestmark = pytest.mark.integration

IST = ZoneInfo("Asia/Kolkata")
DAY = date(2026, 3, 9)


async def test_the_default_day_trades_across_the_session(make_db: MakeDb, tmp_path: Path) -> None:
    url = await make_db()
    cfg = EngineConfig()
    opts = options(day=DAY, symbols=(), seed=SEED)
    rt = await run_session(settings_for(url, tmp_path), opts)
    try:
        assert rt.kernel is not None
        rows = await rt.pool.fetch("SELECT ts, strategy FROM decisions ORDER BY ts")
        signals = await rt.pool.fetchval("SELECT count(*) FROM signals")
        halted = await rt.pool.fetchval(
            "SELECT count(*) FROM risk_events WHERE reason='DAILY_LOSS'"
        )
    finally:
        await rt.close()
    times = [r["ts"].astimezone(IST) for r in rows]
    assert halted == 0
    hours = {t.hour for t in times}
    assert len(hours) >= 4, f"decisions only in hours {sorted(hours)}"
    # The trade budget, if spent at all, lasts past the first half hour.
    budget = cfg.risk.max_trades_per_day
    if len(times) >= budget:
        spent_at = times[budget - 1].timetz()
        assert spent_at > time(9, 45, tzinfo=spent_at.tzinfo), f"budget spent at {spent_at}"
    assert "EmaCross" not in {r["strategy"] for r in rows}
    assert signals >= 50  # what the burn-in asks of a day
    assert all(t.date() == DAY for t in times)
