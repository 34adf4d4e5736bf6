"""PAPER on the live Kite feed, on the trading kernel: time moves on a quiet feed.

The kernel's paper venue hears only ticks, so between them the session's
clock moves the kernel (``KernelDriver.run_clock``). With a clock the test
holds and the feed silent after one bracket opened, the 15:20 square-off
still happens at its time and the trade is booked at the clock's time, not
at the last tick's. Ticks are synthetic (a V that makes the EMA cross).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path

import pytest

from aitrapp.calendar import ist_ns
from aitrapp.config import (
    EmaCrossConfig,
    EngineConfig,
    OrbConfig,
    RiskConfig,
    StrategiesConfig,
    TrendPullbackConfig,
    VwapReversionConfig,
)
from aitrapp.kernel.options import BracketOptions
from aitrapp.kite.session import kite_access_from_env, kite_feed_factory
from aitrapp.kite.ticker_codec import Mode
from aitrapp.runtime import RuntimeOptions, start_runtime

from .conftest import eventually
from .fake_kite import FakeKite
from .test_live_kernel import V_PRICES
from .test_live_kernel_clock import AFTER_TICKS, SEC, HeldClock
from .test_session_feed import DAY, RELIANCE, T10, FakeClock, full, kite_env, settings

pytestmark = pytest.mark.integration
# The EMA cross of the live tests, with the stop and target far away: the
# paper venue matches the V's rise, and the bracket must stay open.
FAR = EngineConfig(
    risk=RiskConfig(daily_loss_stop_pct=100.0, cooldown_seconds=0, max_trades_per_day=40),
    strategies=StrategiesConfig(
        orb=OrbConfig(enabled=False),
        trend_pullback=TrendPullbackConfig(enabled=False),
        vwap_reversion=VwapReversionConfig(enabled=False),
        ema_cross=EmaCrossConfig(enabled=True, fast_period=3, slow_period=6, stop_ticks=2000,
                                 tp_ticks=2000),
    ),
)  # fmt: skip
__all__ = ["kite_env"]  # the fixture, used by name


async def test_paper_on_the_live_feed_squares_off_at_its_time_on_a_silent_feed(
    fake: FakeKite, kite_env: Path, db_url: str, tmp_path: Path
) -> None:
    clock = HeldClock(AFTER_TICKS)
    feed_clock = FakeClock(datetime.now(UTC))
    factory = kite_feed_factory(
        kite_access_from_env(now=feed_clock()),
        mode=Mode.FULL,
        duration_s=600,
        clock=feed_clock,
        backoff_initial=0.02,
    )
    options = RuntimeOptions(
        feed="kite",
        day=DAY,
        symbols=("RELIANCE",),
        feed_factory=factory,
        engine=FAR,
        bracket=BracketOptions(entry_type="MARKET"),
        live_clock=clock,
    )
    rt = await start_runtime(settings(db_url, tmp_path), options)
    try:
        assert rt.kernel is not None and rt.live is None  # the paper venue, in the kernel
        await eventually(lambda: any(c.modes for c in fake.ws_clients))
        packets = [full(RELIANCE, p, T10 + i, 1000 + i) for i, p in enumerate(V_PRICES)]
        await fake.broadcast_ticks(packets)
        k = rt.kernel.kernel
        await eventually(lambda: k.open_brackets == 1 and k.counters()["ticks"] == len(packets))
        square_off = ist_ns(DAY, dt_time(15, 20))
        clock.jump(square_off - SEC // 2)
        await asyncio.sleep(0.3)
        assert k.open_brackets == 1  # not yet
        # No tick comes: the clock alone runs past 15:20 and the bracket exits.
        await eventually(lambda: k.open_brackets == 0, within=5.0)
        assert k.counters()["ticks"] == len(packets)
        await rt.stop_trading()
        trade = await rt.pool.fetchrow("SELECT exit_reason, closed_at FROM trades")
        assert trade is not None and trade["exit_reason"] == "EOD"
        sq = datetime.fromtimestamp(square_off / SEC, UTC)
        assert sq <= trade["closed_at"] <= sq + timedelta(seconds=5), trade["closed_at"]
    finally:
        await rt.stop()
