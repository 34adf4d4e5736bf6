"""Flatten at scale, against the in-memory fake broker: exits first, then clean-up.

Every working stop becomes a market exit with one modify before any
take-profit is cancelled; a refused conversion falls back to the machine's
cancel + market exit; a converted stop that hangs unfilled is cancelled.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace

import pytest

from aitrapp import Instrument
from aitrapp.brokers.base import OrderStatus, OrderType
from aitrapp.oco import BracketResult, BracketSpec, ExitFill, OCOManager, TransitionRecord
from aitrapp.oco.flatten import split_flatten
from fakes import FakeBroker

T0 = 1_767_240_000_000_000_000  # 2026-01-01 09:30 IST
TOKEN = 738561


def plan(n: int) -> str:
    return f"{n:02x}" * 12


def cid(n: int, tag: str) -> str:
    return f"{plan(n)}:{tag}"


def spec(n: int) -> BracketSpec:
    inst = Instrument(
        exchange="NSE",
        tradingsymbol="RELIANCE",
        instrument_token=TOKEN,
        segment="EQ",
        tick_size="0.05",
        lot_size=1,
        freeze_qty=100_000,
    )
    return BracketSpec(
        plan_id=plan(n),
        instrument=inst,
        side="BUY",
        qty=10,
        entry_price="2500.00",
        stop="2480.00",
        take_profit="2540.00",
    )


@dataclass
class Env:
    broker: FakeBroker
    mgr: OCOManager
    results: list[BracketResult] = field(default_factory=list)
    exits: list[ExitFill] = field(default_factory=list)
    transitions: list[TransitionRecord] = field(default_factory=list)

    def ids(self, tag: str, n: int) -> list[str]:
        return [self.broker.order(cid(i, tag)).order_id for i in range(1, n + 1)]


async def open_env(brackets: int, *, pending: int = 0, **broker_kw: object) -> Env:
    broker = FakeBroker(clock=lambda: T0, **broker_kw)  # type: ignore[arg-type]
    env = Env(broker, None)  # type: ignore[arg-type]

    async def result(r: BracketResult) -> None:
        env.results.append(r)

    async def exit_fill(f: ExitFill) -> None:
        env.exits.append(f)

    async def transition(t: TransitionRecord) -> None:
        env.transitions.append(t)

    env.mgr = OCOManager(
        broker,
        clock=lambda: T0,
        on_terminal=result,
        on_exit_fill=exit_fill,
        on_transition=transition,
        retry_delay_s=0.0,
    )
    asyncio.get_running_loop().create_task(env.mgr.pump(broker.updates()))
    broker.set_price(TOKEN, 250_100)
    for n in range(1, brackets + pending + 1):
        await env.mgr.open_bracket(spec(n))
    for n in range(1, brackets + 1):
        broker.fill(cid(n, "ENTRY"))
    await broker.settled()
    return env


@pytest.fixture
async def fifteen() -> AsyncIterator[Env]:
    env = await open_env(15, pending=1)
    yield env


async def test_every_stop_becomes_the_exit_before_any_target_is_cancelled(fifteen: Env) -> None:
    b = fifteen.broker
    calls_before = len(b.calls)
    report = await fifteen.mgr.flatten(timeout_s=5, tick_s=0.01)
    calls = [c for c in b.calls[calls_before:] if c[0] != "find_by_tag"]
    stops, tps = set(fifteen.ids("STOP", 15)), set(fifteen.ids("TP", 15))
    entry16 = b.order(cid(16, "ENTRY")).order_id
    modified = [i for i, (op, oid) in enumerate(calls) if op == "modify" and oid in stops]
    tp_cancels = [i for i, (op, oid) in enumerate(calls) if op == "cancel" and oid in tps]
    assert len(modified) == 15 and len(tp_cancels) == 15
    assert max(modified) < min(tp_cancels)  # every exit is out before the clean-up starts
    assert ("cancel", entry16) in calls
    assert not any(op == "place" for op, _ in calls)  # no market order needed
    for n in range(1, 16):
        stop = b.order(cid(n, "STOP"))
        assert (stop.req.order_type, stop.status, stop.filled, stop.modifications) == (
            OrderType.MARKET,
            OrderStatus.COMPLETE,
            10,
            1,
        )
        assert b.order(cid(n, "TP")).status is OrderStatus.CANCELLED
    assert b.live_orders() == [] and b.net_position(TOKEN) == 0
    assert (report.brackets, report.converted_stops, report.market_exits, report.cancels) == (
        16,
        15,
        0,
        16,
    )
    assert report.flat_after_s is not None and report.clean_after_s is not None
    assert report.flat_after_s <= report.clean_after_s
    assert fifteen.mgr.last_flatten == report
    assert {r.closing_reason for r in fifteen.results} == {"FLATTEN"}
    assert [(f.role, f.reason) for f in fifteen.exits] == [("STOP", "FLATTEN")] * 15
    notes = [t.event_detail for t in fifteen.transitions if t.event == "FLATTEN"]
    assert len(notes) == 16 and sum("market exit by modify" in d for d in notes) == 15


async def test_without_conversion_the_stop_is_cancelled_then_exited(fifteen: Env) -> None:
    b = fifteen.broker
    report = await fifteen.mgr.flatten(timeout_s=5, tick_s=0.01, convert_stops=False)
    for n in range(1, 16):
        assert b.order(cid(n, "STOP")).status is OrderStatus.CANCELLED
        assert b.order(cid(n, "EXIT")).filled == 10
    assert (report.converted_stops, report.market_exits, report.cancels) == (0, 15, 31)
    assert b.net_position(TOKEN) == 0 and b.live_orders() == []


async def test_a_refused_conversion_falls_back_to_cancel_and_exit() -> None:
    env = await open_env(2)
    b = env.broker
    refused = b.order(cid(1, "STOP")).order_id
    b.reject_modify_when(lambda o: o.order_id == refused, "Maximum allowed order modifications")
    report = await env.mgr.flatten(timeout_s=5, tick_s=0.01)
    assert b.order(cid(1, "STOP")).status is OrderStatus.CANCELLED
    assert b.order(cid(1, "EXIT")).filled == 10
    assert b.order(cid(2, "STOP")).req.order_type is OrderType.MARKET
    assert b.placements(cid(2, "EXIT")) == 0
    assert (report.converted_stops, report.market_exits) == (1, 1)
    assert b.net_position(TOKEN) == 0 and b.live_orders() == []
    reasons = sorted((f.tag, f.reason) for f in env.exits)
    assert reasons == [("EXIT", "FLATTEN"), ("STOP", "FLATTEN")]


async def test_a_stop_limit_without_protection_is_cancelled_and_exited() -> None:
    env = await open_env(1)
    b = env.broker
    stop = b.order(cid(1, "STOP"))
    stop.req = replace(stop.req, market_protection=None)  # a stop-limit placed without a band
    report = await env.mgr.flatten(timeout_s=5, tick_s=0.01)
    assert (report.converted_stops, report.market_exits) == (0, 1)
    assert b.order(cid(1, "STOP")).status is OrderStatus.CANCELLED
    assert b.net_position(TOKEN) == 0


async def test_a_converted_stop_that_hangs_is_cancelled_and_exited() -> None:
    env = await open_env(1, auto_fill_market=False)  # market orders wait for the test
    b = env.broker
    flatten = asyncio.create_task(env.mgr.flatten(timeout_s=5, tick_s=0.01, convert_grace_s=0.05))
    for _ in range(500):
        await asyncio.sleep(0.01)
        if b.placements(cid(1, "EXIT")):
            break
    stop = b.order(cid(1, "STOP"))
    assert (stop.req.order_type, stop.status) == (OrderType.MARKET, OrderStatus.CANCELLED)
    b.fill(cid(1, "EXIT"))
    report = await flatten
    assert (report.converted_stops, report.market_exits) == (1, 1)
    assert b.net_position(TOKEN) == 0 and b.live_orders() == []


async def test_split_keeps_exits_first_and_targets_last() -> None:
    env = await open_env(1)
    m = env.mgr._slots[plan(1)].machine
    t = m.flatten(now_ns=T0)
    split = split_flatten(t.commands, m)
    assert [c.tag for c in split.to_market] == ["STOP"]
    assert [c.tag for c in split.later] == ["TP"]
    assert split.now == ()
    plain = split_flatten(t.commands, m, convert_stops=False)
    assert [c.tag for c in plain.now] == ["STOP"] and [c.tag for c in plain.later] == ["TP"]
