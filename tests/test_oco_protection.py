"""Stops the market has outrun, across the Python boundary: a stop through the
market is never sent (STOP_GAPPED), a triggered stop that does not fill is
escalated on time alone (the watchdog), and the paper broker's trigger
reports reach the machine as CHILD_TRIGGERED."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from aitrapp import Instrument, Price
from aitrapp.brokers.paper import PaperBroker
from aitrapp.bus import InProcessBus
from aitrapp.metrics import Metrics
from aitrapp.oco import (
    BracketResult,
    BracketSpec,
    OcoAlert,
    OcoBracket,
    OcoError,
    OCOManager,
    OcoTransition,
    TransitionRecord,
)
from aitrapp.pipeline.orchestrator import Orchestrator
from aitrapp.ticks import Tick

PLAN = "0123456789abcdef01234567"
T0 = 1_767_240_000_000_000_000  # 2026-01-01 09:30 IST
SEC = 1_000_000_000
TOKEN = 738561


def inst() -> Instrument:
    return Instrument(
        exchange="NSE",
        tradingsymbol="RELIANCE",
        instrument_token=TOKEN,
        segment="EQ",
        tick_size="0.05",
        lot_size=1,
        freeze_qty=100_000,
    )


def spec(**over: object) -> BracketSpec:
    fields: dict[str, object] = {
        "plan_id": PLAN,
        "instrument": inst(),
        "side": "BUY",
        "qty": 10,
        "entry_price": "2500.00",
        "stop": "2480.00",
        "take_profit": "2540.00",
    }
    fields.update(over)
    return BracketSpec(**fields)  # type: ignore[arg-type]


def alerts(t: OcoTransition) -> list[tuple[str | None, str | None]]:
    return [(c.severity, c.alert_code) for c in t.commands if c.kind == "ALERT"]


# ---------------------------------------------------------------- the machine


def test_stop_fill_timeout_is_a_validated_spec_field() -> None:
    assert spec().stop_fill_timeout_ns == 5 * SEC
    assert spec(stop_fill_timeout_s=2.5).stop_fill_timeout_ns == 2_500_000_000
    with pytest.raises(OcoError, match="stop_fill_timeout_s"):
        spec(stop_fill_timeout_s=0.0)
    with pytest.raises(OcoError, match="stop_fill_timeout"):
        spec(stop_fill_timeout_s=7200.0)


@pytest.mark.parametrize(
    ("side", "stop", "take_profit", "ltp", "exit_side"),
    [
        ("BUY", "2480.00", "2540.00", 2479.0, "SELL"),
        ("SELL", "2520.00", "2460.00", 2520.0, "BUY"),
    ],
)
def test_entry_fill_through_the_stop_exits_as_stop_gapped(
    side: str, stop: str, take_profit: str, ltp: float, exit_side: str
) -> None:
    b, _ = OcoBracket.open(spec(side=side, stop=stop, take_profit=take_profit), T0)
    quiet = b.on_price(ltp, now_ns=T0 + 1)
    assert not quiet.changed and b.last_price == Price.from_rupees(f"{ltp:.2f}")
    t = b.on_order("ENTRY", "COMPLETE", 10, 2500.0, now_ns=T0 + 2)
    assert alerts(t) == [("WARNING", "STOP_GAPPED")]
    places = [c for c in t.commands if c.kind in ("PLACE_ORDER", "EXIT_AT_MARKET")]
    assert [(c.kind, c.side, c.qty, c.exit_reason) for c in places] == [
        ("EXIT_AT_MARKET", exit_side, 10, "STOP_GAPPED")
    ]
    assert (t.to_state, b.closing_reason) == ("CLOSING", "STOP_GAPPED")
    t = b.on_order("EXIT", "COMPLETE", 10, ltp, now_ns=T0 + 3)
    assert t.to_state == "CLOSED" and t.fills[0].exit_reason == "STOP_GAPPED"


def test_a_stop_reported_open_has_triggered_and_the_watchdog_escalates_on_time() -> None:
    b, _ = OcoBracket.open(spec(), T0)
    b.on_order("ENTRY", "COMPLETE", 10, 2500.0, now_ns=T0)
    b.on_order("STOP", "TRIGGER PENDING", 0, 0, now_ns=T0)
    b.on_order("TP", "OPEN", 0, 0, now_ns=T0)
    t = b.on_order("STOP", "OPEN", 0, 0, now_ns=T0 + SEC)
    assert (t.event, t.changed) == ("CHILD_TRIGGERED", True)
    stop = next(o for o in b.orders() if o.tag == "STOP")
    assert stop.triggered_ns == T0 + SEC and not stop.abandoned
    assert not b.on_triggered("STOP", now_ns=T0 + 2 * SEC).changed  # duplicate
    assert b.next_deadline_ns == T0 + 6 * SEC
    assert not b.advance_time(T0 + 6 * SEC - 1).changed
    t = b.advance_time(T0 + 6 * SEC)
    assert alerts(t) == [("WARNING", "STOP_FILL_TIMEOUT")]
    assert sorted(c.tag or "" for c in t.commands if c.kind == "CANCEL") == ["STOP", "TP"]
    assert (b.watchdog_escalations, b.next_deadline_ns) == (1, T0 + 11 * SEC)
    assert b.cancel_sent_at("STOP") == T0 + 6 * SEC
    t = b.advance_time(T0 + 11 * SEC)
    assert alerts(t) == [("CRITICAL", "STOP_UNFILLED")]
    exits = [(c.qty, c.exit_reason) for c in t.commands if c.kind == "EXIT_AT_MARKET"]
    assert exits == [(10, "STOP")]
    assert b.watchdog_escalations == 2 and b.next_deadline_ns is None
    assert next(o for o in b.orders() if o.tag == "STOP").abandoned


def test_cancel_times_classify_a_double_exit() -> None:
    b, _ = OcoBracket.open(spec(), T0)
    b.on_order("ENTRY", "COMPLETE", 10, 2500.0, now_ns=T0)
    b.on_order("TP", "COMPLETE", 10, 2540.0, now_ns=T0 + SEC)
    sent = b.cancel_sent_at("STOP")
    assert sent == T0 + SEC
    stop = next(o for o in b.orders() if o.tag == "STOP")
    assert stop.cancel_sent_ns == sent
    latency = 5_000_000
    assert b.fill_raced_cancel("STOP", sent + 1_000_000, latency)
    assert not b.fill_raced_cancel("STOP", sent + 10_000_000, latency)
    assert b.fill_raced_cancel("TP", T0, latency)  # never cancelled
    assert b.cancel_sent_at("TP") is None


# ---------------------------------------------------------------- paper venue


@dataclass
class Session:
    paper: PaperBroker
    mgr: OCOManager
    now: int = T0
    alerts: list[OcoAlert] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    results: list[BracketResult] = field(default_factory=list)

    async def settle(self) -> None:
        for _ in range(50):  # let the pump deliver what the broker emitted
            await asyncio.sleep(0)

    async def tick(self, rupees: float, dt_s: float = 1.0) -> None:
        self.now += int(dt_s * SEC)
        self.paper.on_tick(Tick(TOKEN, self.now, rupees, last_qty=100, volume=0))
        await self.settle()
        await self.mgr.advance_time(self.now)
        await self.settle()

    async def quiet(self, dt_s: float) -> None:
        """Time passes without a tick (a sparse feed)."""
        self.now += int(dt_s * SEC)
        self.paper.advance_time(self.now)
        await self.settle()
        await self.mgr.advance_time(self.now)
        await self.settle()


@pytest.fixture
async def session() -> AsyncIterator[Session]:
    paper = PaperBroker([inst()], wall_clock_ns=lambda: 0)
    s = Session(paper, None)  # type: ignore[arg-type]

    async def on_alert(a: OcoAlert) -> None:
        s.alerts.append(a)

    async def on_transition(r: TransitionRecord) -> None:
        s.events.append(r.event)

    async def on_terminal(r: BracketResult) -> None:
        s.results.append(r)

    # A 1 % protection band: an SL-M triggered by a larger gap rests unfilled.
    s.mgr = OCOManager(
        paper,
        clock=lambda: s.now,
        market_protection=1.0,
        on_alert=on_alert,
        on_transition=on_transition,
        on_terminal=on_terminal,
        retry_delay_s=0.0,
    )
    pump = asyncio.get_running_loop().create_task(s.mgr.pump(paper.updates()))
    await s.tick(2501.0)
    yield s
    pump.cancel()


async def test_paper_sl_m_resting_past_its_protection_is_escalated(session: Session) -> None:
    await session.mgr.open_bracket(spec())
    await session.tick(2501.0)  # acknowledged
    await session.tick(2499.5)  # entry fills; children placed
    await session.tick(2490.0)  # children acknowledged
    assert session.mgr.bracket(PLAN).state == "OPEN"
    # A 3 % gap through the stop: it triggers, its protection (2455.20) holds it back.
    await session.tick(2400.0)
    assert "CHILD_TRIGGERED" in session.events
    assert session.mgr.bracket(PLAN).state == "OPEN"
    await session.quiet(4.0)
    assert not [a for a in session.alerts if a.code.startswith("STOP_")]
    await session.quiet(1.0)  # 5 s after the trigger, no tick in between
    codes = [(a.severity, a.code) for a in session.alerts]
    assert ("WARNING", "STOP_FILL_TIMEOUT") in codes
    assert session.mgr.bracket(PLAN).state == "CLOSING"
    # The cancel lands, the market exit goes out and fills on the next price.
    await session.quiet(1.0)
    await session.tick(2400.0)
    await session.tick(2400.0)
    snap = session.mgr.bracket(PLAN)
    assert (snap.state, snap.net_qty, snap.working_orders) == ("CLOSED", 0, ())
    assert session.results[-1].closing_reason == "STOP"
    assert not [a for a in session.alerts if a.severity == "CRITICAL"]
    positions = await session.paper.positions()
    assert all(p.quantity == 0 for p in positions)


# ---------------------------------------------------------------- metric


async def test_watchdog_alerts_count_as_escalations() -> None:
    metrics = Metrics()
    nothing = cast(Any, None)  # on_alert touches only the metrics and the bus
    orch = Orchestrator(
        engine=nothing,
        oco=nothing,
        writer=nothing,
        bus=InProcessBus(),
        metrics=metrics,
        session_id=uuid.uuid4(),
        instruments={},
    )
    for severity, code in [
        ("WARNING", "STOP_GAPPED"),
        ("WARNING", "STOP_FILL_TIMEOUT"),
        ("CRITICAL", "STOP_UNFILLED"),
        ("CRITICAL", "STOP_LOST"),
    ]:
        await orch.on_alert(OcoAlert(PLAN, severity, code, "m", T0))
    text = metrics.render()
    found = re.search(r"^trader_oco_watchdog_escalations_total (\S+)$", text, re.M)
    assert found is not None and float(found.group(1)) == 2.0
    assert orch.counters.critical_alerts == 2
