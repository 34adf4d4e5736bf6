"""LIVE on the trading kernel against the strict fake Kite on loopback.

The runtime is the real one (embedded PostgreSQL, writer, journal, Kite
broker with its rate limiter); only Kite is fake. Ticks go out through the
fake ticker; an EMA cross (synthetic V-shaped prices, labelled as such)
makes the kernel open a bracket whose orders must reach Kite through the
write-ahead journal, and whose reports must come back into the kernel.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from aitrapp.brokers.base import OrderRequest
from aitrapp.config import (
    EmaCrossConfig,
    EngineConfig,
    OrbConfig,
    RiskConfig,
    StrategiesConfig,
    TrendPullbackConfig,
    VwapReversionConfig,
)
from aitrapp.kernel.live import LiveKernelDriver
from aitrapp.kernel.options import BracketOptions
from aitrapp.kite.session import kite_access_from_env, kite_feed_factory
from aitrapp.kite.ticker_codec import Mode
from aitrapp.report import live_gate
from aitrapp.runtime import Runtime, RuntimeOptions, start_runtime

from .conftest import eventually
from .fake_kite import FakeKite
from .test_session_feed import DAY, RELIANCE, T10, FakeClock, full, kite_env, settings

pytestmark = pytest.mark.integration
__all__ = ["kite_env"]  # the fixture, used by name

# EmaCross alone, fast enough to cross on a few dozen ticks.
CROSS = EngineConfig(
    risk=RiskConfig(daily_loss_stop_pct=100.0, cooldown_seconds=0, max_trades_per_day=40),
    strategies=StrategiesConfig(
        orb=OrbConfig(enabled=False),
        trend_pullback=TrendPullbackConfig(enabled=False),
        vwap_reversion=VwapReversionConfig(enabled=False),
        ema_cross=EmaCrossConfig(enabled=True, fast_period=3, slow_period=6, stop_ticks=60,
                                 tp_ticks=60),
    ),
)  # fmt: skip
# Synthetic prices: down 20 ticks of 0.50, then up: the cross comes on the way up.
V_PRICES = [1450 - 0.5 * i for i in range(20)] + [1440.5 + 1.0 * i for i in range(20)]


async def _live(
    fake: FakeKite, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **kw: Any
) -> Runtime:
    async def gate_allows(_conn: object, _settings: object, **_kw: object) -> None:
        return None

    monkeypatch.setattr(live_gate, "enforce_live_gate", gate_allows)
    clock = FakeClock(datetime.now(UTC))
    factory = kite_feed_factory(
        kite_access_from_env(now=clock()),
        mode=Mode.FULL,
        duration_s=600,
        clock=clock,
        backoff_initial=0.02,
    )
    options = RuntimeOptions(
        feed="kite",
        mode="LIVE",
        day=DAY,
        symbols=("RELIANCE",),
        feed_factory=factory,
        engine=CROSS,
        bracket=BracketOptions(entry_type="MARKET"),
        **kw,
    )
    rt = await start_runtime(settings(db_url, tmp_path), options)
    assert isinstance(rt.live, LiveKernelDriver) and rt.kernel is rt.live
    await eventually(lambda: any(c.modes for c in fake.ws_clients))
    return rt


def _tags(fake: FakeKite, suffix: str) -> list[dict[str, Any]]:
    return [o for o in fake.orders.values() if o["tag"].endswith(suffix)]


async def _open_bracket(fake: FakeKite, rt: Runtime) -> dict[str, dict[str, Any]]:
    """Ticks until the kernel enters; the entry fills at once (Kite's last price)."""
    fake.set_ltp(RELIANCE, "1442.50")
    packets = [full(RELIANCE, p, T10 + i, 1000 + i) for i, p in enumerate(V_PRICES)]
    await fake.broadcast_ticks(packets)
    await eventually(lambda: len(_tags(fake, "SL")) == 1 and len(_tags(fake, "TP")) == 1)
    live = rt.live
    assert live is not None
    await live.drain()
    (entry,) = _tags(fake, "EN")
    (stop,) = _tags(fake, "SL")
    (tp,) = _tags(fake, "TP")
    assert entry["status"] == "COMPLETE"
    return {"entry": entry, "stop": stop, "tp": tp}


async def _settled(live: LiveKernelDriver) -> None:
    """Until Kite's reports stop coming (100 ms without one; bounded)."""
    for _ in range(100):
        before = live.reports
        await asyncio.sleep(0.1)
        await live.drain()
        if live.reports == before:
            return
    raise AssertionError("reports kept coming")


def _journal_first(rt: Runtime, seen: list[tuple[str, bool]]) -> None:
    """Records, at each placement's HTTP call, whether its journal row exists."""
    broker = rt.journal.inner if rt.journal is not None else None
    assert broker is not None
    place: Callable[[OrderRequest], Awaitable[str]] = broker.place_order

    async def checked(req: OrderRequest) -> str:
        row = await rt.pool.fetchval(
            "SELECT status FROM orders WHERE client_order_id = $1", req.client_order_id
        )
        seen.append((req.client_order_id, row == "NEW"))
        return await place(req)

    broker.place_order = checked  # type: ignore[method-assign]


async def test_a_live_kernel_bracket_reaches_kite_through_the_journal(
    fake: FakeKite,
    kite_env: Path,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rt = await _live(fake, db_url, tmp_path, monkeypatch)
    try:
        seen: list[tuple[str, bool]] = []
        _journal_first(rt, seen)
        o = await _open_bracket(fake, rt)
        roles = [cid.rpartition(":")[2] for cid, _ in seen]
        assert roles[0] == "ENTRY" and sorted(roles[1:]) == ["STOP", "TP"]
        assert all(journalled for _, journalled in seen), seen
        # Kite has one order per role, each with the journal's broker id.
        ids: dict[str, str] = {}
        for _ in range(500):  # the acknowledgements travel through the writer
            rows = await rt.pool.fetch("SELECT role, broker_order_id FROM orders")
            ids = {r["role"]: r["broker_order_id"] for r in rows}
            if all(ids.values()) and len(ids) == 3:
                break
            await asyncio.sleep(0.01)
        assert ids == {
            "ENTRY": o["entry"]["order_id"],
            "STOP": o["stop"]["order_id"],
            "TP": o["tp"]["order_id"],
        }
        assert o["stop"]["order_type"] == "SL-M" and o["stop"]["transaction_type"] == "SELL"

        # The same report again (a replayed stream) changes nothing.
        live = rt.live
        assert live is not None
        entry_update = await rt.journal.find_by_tag(o["entry"]["tag"]) if rt.journal else None
        assert entry_update is not None
        await _settled(live)
        reports, fills = live.reports, await rt.pool.fetchval("SELECT count(*) FROM fills")
        for _ in range(2):
            live.on_update(entry_update)
        await live.drain()
        assert live.reports == reports and live.reports_ignored >= 2
        assert len(fake.placed()) == 3
        assert rt.kernel is not None and rt.kernel.kernel.open_brackets == 1

        # The target fills: the kernel cancels the stop at Kite.
        await fake.fill(o["tp"]["order_id"])
        await eventually(lambda: fake.order(o["stop"]["order_id"])["status"] == "CANCELLED")
        await eventually(lambda: rt.kernel is not None and rt.kernel.kernel.open_brackets == 0)
        await rt.stop_trading()
        trade = await rt.pool.fetchrow("SELECT qty, exit_reason, gross_pnl FROM trades")
        assert trade is not None and trade["exit_reason"] == "TP"
        assert await rt.pool.fetchval("SELECT count(*) FROM fills") == fills + 1
        assert len(fake.placed()) == 3  # nothing placed twice
    finally:
        await rt.stop()


async def test_the_kill_switch_flattens_through_the_kernel(
    fake: FakeKite,
    kite_env: Path,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rt = await _live(fake, db_url, tmp_path, monkeypatch)
    try:
        o = await _open_bracket(fake, rt)
        result = await rt.flatten(actor="test", timeout_s=10.0)
        assert result.ok, result
        assert rt.trading_state == "HALTED"
        # One exit for the position: the stop itself, turned MARKET by one
        # modify (no new market order), filled for the entry's quantity.
        assert _tags(fake, "EX") == []
        stop = fake.order(o["stop"]["order_id"])
        assert (stop["order_type"], stop["status"]) == ("MARKET", "COMPLETE")
        assert stop["transaction_type"] == "SELL"
        assert stop["filled_quantity"] == o["entry"]["quantity"]
        assert (result.converted_stops, result.exit_orders) == (1, 1)
        assert fake.order(o["tp"]["order_id"])["status"] == "CANCELLED"
        assert rt.kernel is not None and rt.kernel.kernel.open_brackets == 0
    finally:
        await rt.stop()


async def test_a_restart_adopts_the_open_bracket_and_never_enters_twice(
    fake: FakeKite,
    kite_env: Path,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = await _live(fake, db_url, tmp_path, monkeypatch, flatten_on_stop=False)
    try:
        o = await _open_bracket(fake, first)
        # Kite's order book (polled) acknowledges the stop and the target, and
        # the kernel's rows say so; then the process is gone.
        for _ in range(1000):
            statuses = await first.pool.fetch("SELECT role, status FROM orders")
            if {r["role"]: r["status"] for r in statuses} == {
                "ENTRY": "COMPLETE",
                "STOP": "TRIGGER PENDING",
                "TP": "OPEN",
            }:
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError(f"not acknowledged: {statuses}")
    finally:
        await first.stop()  # the process is gone; its bracket is open at Kite
    assert fake.order(o["stop"]["order_id"])["status"] == "TRIGGER PENDING"
    placed = len(fake.placed())

    second = await _live(fake, db_url, tmp_path / "second", monkeypatch)
    try:
        assert second.reconcile is not None
        assert second.reconcile.may_trade(False), second.reconcile.lines()
        assert second.trading_state == "ACTIVE"
        assert second.kernel is not None and second.kernel.kernel.open_brackets == 1
        assert second.live is not None
        await second.live.drain()
        assert len(fake.placed()) == placed  # no second entry, no second stop or target
        # The adopted machine still runs the OCO: the stop fills, the target goes.
        await fake.trigger(o["stop"]["order_id"])
        await fake.fill(o["stop"]["order_id"], price="1439.50")
        await eventually(lambda: fake.order(o["tp"]["order_id"])["status"] == "CANCELLED")
        await eventually(
            lambda: second.kernel is not None and second.kernel.kernel.open_brackets == 0
        )
        assert len(_tags(fake, "EN")) == 1
    finally:
        await second.stop()
