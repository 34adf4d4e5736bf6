"""LIVE on the trading kernel: time moves on a quiet feed.

A live kernel hears ticks and broker reports; between them only its clock
moves it. These sessions run against the strict fake Kite with a clock the
test holds (exchange time, moved by the monotonic clock, and jumped by the
test): the feed goes silent with a bracket working, and the entry timeout
and the square-off must still happen at their time, through Kite, with the
reports booked at the clock's time (not at the last tick's).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path
from typing import Any

import pytest

from aitrapp.calendar import ist_ns
from aitrapp.kernel.live import LiveKernelDriver
from aitrapp.kernel.options import BracketOptions
from aitrapp.kite.session import kite_access_from_env, kite_feed_factory
from aitrapp.kite.ticker_codec import Mode
from aitrapp.report import live_gate
from aitrapp.runtime import Runtime, RuntimeOptions, start_runtime

from .conftest import eventually
from .fake_kite import FakeKite
from .test_live_kernel import CROSS, V_PRICES, _open_bracket, _tags
from .test_session_feed import DAY, RELIANCE, T10, FakeClock, full, kite_env, settings

pytestmark = pytest.mark.integration
__all__ = ["kite_env"]  # the fixture, used by name

SEC = 1_000_000_000
AFTER_TICKS = (T10 + len(V_PRICES)) * SEC  # the feed's last tick is just before this


class HeldClock:
    """Exchange time (UTC ns) that runs with the monotonic clock from where the
    test last put it."""

    def __init__(self, start_ns: int) -> None:
        self.jump(start_ns)

    def jump(self, to_ns: int) -> None:
        self._base, self._mono = to_ns, time.monotonic_ns()

    def __call__(self) -> int:
        return self._base + time.monotonic_ns() - self._mono


async def _session(
    fake: FakeKite,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    clock: HeldClock,
    bracket: BracketOptions,
) -> Runtime:
    async def gate_allows(_conn: object, _settings: object, **_kw: object) -> None:
        return None

    monkeypatch.setattr(live_gate, "enforce_live_gate", gate_allows)
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
        mode="LIVE",
        day=DAY,
        symbols=("RELIANCE",),
        feed_factory=factory,
        engine=CROSS,
        bracket=bracket,
        live_clock=clock,
    )
    rt = await start_runtime(settings(db_url, tmp_path), options)
    assert isinstance(rt.live, LiveKernelDriver) and rt.live.clock is clock
    await eventually(lambda: any(c.modes for c in fake.ws_clients))
    return rt


def _status(fake: FakeKite, o: dict[str, Any]) -> str:
    return str(fake.order(o["order_id"])["status"])


async def test_a_resting_entry_times_out_on_a_silent_feed(
    fake: FakeKite,
    kite_env: Path,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = HeldClock(AFTER_TICKS)
    bracket = BracketOptions(entry_type="LIMIT", entry_timeout_s=60.0)
    rt = await _session(fake, db_url, tmp_path, monkeypatch, clock, bracket)
    try:
        fake.set_ltp(RELIANCE, "1500.00")  # the BUY limit (near 1459) rests
        packets = [full(RELIANCE, p, T10 + i, 1000 + i) for i, p in enumerate(V_PRICES)]
        await fake.broadcast_ticks(packets)
        await eventually(lambda: len(_tags(fake, "EN")) == 1)
        (entry,) = _tags(fake, "EN")
        assert entry["order_type"] == "LIMIT"
        # The feed is silent from here on. Before its timeout the entry works...
        await asyncio.sleep(0.6)
        assert _status(fake, entry) == "OPEN"
        ticks = rt.live.kernel.counters()["ticks"] if rt.live else 0
        # ...and once the clock passes it, the kernel cancels it at Kite.
        clock.jump(AFTER_TICKS + 61 * SEC)
        jumped = clock()
        await eventually(lambda: _status(fake, entry) == "CANCELLED", within=3.0)
        await eventually(lambda: rt.kernel is not None and rt.kernel.kernel.open_brackets == 0)
        assert rt.live is not None and rt.live.kernel.counters()["ticks"] == ticks
        assert _tags(fake, "SL") == [] and _tags(fake, "TP") == []
        assert rt.now_ns() >= jumped
    finally:
        await rt.stop()


async def test_the_square_off_happens_at_its_time_on_a_silent_feed(
    fake: FakeKite,
    kite_env: Path,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = HeldClock(AFTER_TICKS)
    bracket = BracketOptions(entry_type="MARKET")
    rt = await _session(fake, db_url, tmp_path, monkeypatch, clock, bracket)
    try:
        o = await _open_bracket(fake, rt)
        square_off = ist_ns(DAY, dt_time(15, 20))
        # Half a second before the square-off: nothing happens yet.
        clock.jump(square_off - SEC // 2)
        await asyncio.sleep(0.2)
        assert _status(fake, o["stop"]) == "TRIGGER PENDING" and _status(fake, o["tp"]) == "OPEN"
        assert [x for x in fake.orders.values() if "EX" in x["tag"]] == []
        # The clock runs past 15:20 by itself (no tick): the bracket exits through Kite.
        await eventually(lambda: _status(fake, o["stop"]) == "CANCELLED", within=3.0)
        await eventually(lambda: any(x["status"] == "COMPLETE" for x in _tags(fake, "EX")))
        assert _status(fake, o["tp"]) == "CANCELLED"
        (exit_order,) = _tags(fake, "EX")
        assert exit_order["transaction_type"] == "SELL"
        assert exit_order["quantity"] == o["entry"]["quantity"]
        await eventually(lambda: rt.kernel is not None and rt.kernel.kernel.open_brackets == 0)
        await rt.stop_trading()
        # Booked at the clock's time: after the square-off, not at the last tick.
        trade = await rt.pool.fetchrow("SELECT exit_reason, closed_at FROM trades")
        assert trade is not None and trade["exit_reason"] == "EOD"
        sq = datetime.fromtimestamp(square_off / SEC, UTC)
        assert sq <= trade["closed_at"] <= sq + timedelta(seconds=5), trade["closed_at"]
    finally:
        await rt.stop()
