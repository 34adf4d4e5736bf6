"""OCOManager against the in-memory fake broker: the bracket life cycle, races,
unknown outcomes, flatten."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from aitrapp import Instrument, OcoError
from aitrapp.brokers.base import OrderStatus, OrderType
from aitrapp.oco import (
    BracketExistsError,
    BracketResult,
    BracketSpec,
    EntryFill,
    ExitFill,
    FlattenTimeoutError,
    OcoAlert,
    OcoHaltedError,
    OCOManager,
    TransitionRecord,
)
from fakes import FakeBroker

T0 = 1_767_240_000_000_000_000  # 2026-01-01 09:30 IST
MIN = 60_000_000_000
TOKEN = 738561


def plan(n: int) -> str:
    return f"{n:02x}" * 12  # distinct in the first 16 chars, like real plan ids


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


def spec(n: int = 1, **over: object) -> BracketSpec:
    fields: dict[str, object] = {
        "plan_id": plan(n),
        "instrument": inst(),
        "side": "BUY",
        "qty": 10,
        "entry_price": "2500.00",
        "stop": "2480.00",
        "take_profit": "2540.00",
    }
    fields.update(over)
    return BracketSpec(**fields)  # type: ignore[arg-type]


def cid(n: int, tag: str) -> str:
    return f"{plan(n)}:{tag}"


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@dataclass
class Recorder:
    broker: FakeBroker
    transitions: list[TransitionRecord] = field(default_factory=list)
    requests_at_transition: list[int] = field(default_factory=list)
    entry_fills: list[EntryFill] = field(default_factory=list)
    exit_fills: list[ExitFill] = field(default_factory=list)
    results: list[BracketResult] = field(default_factory=list)
    alerts: list[OcoAlert] = field(default_factory=list)

    async def transition(self, r: TransitionRecord) -> None:
        self.transitions.append(r)
        self.requests_at_transition.append(len(self.broker.requests))

    async def entry_fill(self, f: EntryFill) -> None:
        self.entry_fills.append(f)

    async def exit_fill(self, f: ExitFill) -> None:
        self.exit_fills.append(f)

    async def result(self, r: BracketResult) -> None:
        self.results.append(r)

    async def alert(self, a: OcoAlert) -> None:
        self.alerts.append(a)

    def codes(self) -> list[str]:
        return [a.code for a in self.alerts]


@dataclass
class Env:
    broker: FakeBroker
    mgr: OCOManager
    rec: Recorder
    clock: Clock

    async def settle(self) -> None:
        await self.broker.settled()


def make_env(broker: FakeBroker | None = None) -> tuple[Env, asyncio.Task[None]]:
    clock = Clock(T0)
    broker = broker or FakeBroker(clock=clock)
    rec = Recorder(broker)
    mgr = OCOManager(
        broker,
        clock=clock,
        on_transition=rec.transition,
        on_entry_fill=rec.entry_fill,
        on_exit_fill=rec.exit_fill,
        on_terminal=rec.result,
        on_alert=rec.alert,
        retry_delay_s=0.0,
    )
    pump = asyncio.get_running_loop().create_task(mgr.pump(broker.updates()))
    return Env(broker, mgr, rec, clock), pump


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    e, pump = make_env()
    e.broker.set_price(TOKEN, 250_100)  # above the entry limit: nothing crosses yet
    yield e
    pump.cancel()


async def test_take_profit_closes_the_bracket(env: Env) -> None:
    b, rec = env.broker, env.rec
    bid = await env.mgr.open_bracket(spec())
    assert bid == plan(1)
    entry = b.order(cid(1, "ENTRY"))
    assert (entry.req.order_type, entry.req.price_paise, entry.req.side) == (
        OrderType.LIMIT,
        250_000,
        "BUY",
    )
    assert entry.req.tag == cid(1, "ENTRY")[:16] + "EN"
    # write-ahead: the opening record was published before the broker call
    assert (rec.transitions[0].seq, rec.transitions[0].from_state) == (0, "NEW")
    assert rec.requests_at_transition[0] == 0
    b.fill(cid(1, "ENTRY"))
    await env.settle()
    stop, tp = b.order(cid(1, "STOP")), b.order(cid(1, "TP"))
    assert (stop.req.order_type, stop.req.trigger_paise, stop.quantity) == (
        OrderType.SLM,
        248_000,
        10,
    )
    assert stop.req.market_protection == -1.0
    assert (tp.req.order_type, tp.price_paise, tp.quantity) == (OrderType.LIMIT, 254_000, 10)
    assert rec.entry_fills == [rec.entry_fills[0]]
    assert (rec.entry_fills[0].qty, rec.entry_fills[0].price) == (10, 2500.0)
    b.fill(cid(1, "TP"))
    await env.settle()
    assert stop.status is OrderStatus.CANCELLED
    snap = env.mgr.bracket(bid)
    assert (snap.state, snap.net_qty, snap.working_orders) == ("CLOSED", 0, ())
    assert [(f.tag, f.reason, f.qty, f.price) for f in rec.exit_fills] == [("TP", "TP", 10, 2540.0)]
    assert [(r.state, r.realized_pnl_paise, r.realized_pnl) for r in rec.results] == [
        ("CLOSED", 40_000, 400.0)
    ]
    seqs = [r.seq for r in rec.transitions]
    assert seqs == list(range(len(seqs)))
    assert rec.transitions[-1].to_state == "CLOSED"
    opening = rec.transitions[0].as_dict()
    assert opening["commands"] == [
        {
            "kind": "PLACE_ORDER",
            "client_order_id": cid(1, "ENTRY"),
            "tag": "ENTRY",
            "role": "ENTRY",
            "side": "BUY",
            "qty": 10,
            "order_type": "LIMIT",
            "price_paise": 250_000,
        }
    ]
    closing = next(r for r in rec.transitions if r.event == "CHILD_FILLED").as_dict()
    assert closing["fills"] == [
        {
            "client_order_id": cid(1, "TP"),
            "tag": "TP",
            "role": "TAKE_PROFIT",
            "side": "SELL",
            "qty": 10,
            "notional_paise": 2_540_000,
            "cum_filled": 10,
            "avg_price_paise": 254_000,
            "exit_reason": "TP",
        }
    ]
    assert json.loads(json.dumps(closing)) == closing
    assert b.net_position(TOKEN) == 0


async def test_partial_entry_is_protected_then_resized(env: Env) -> None:
    b = env.broker
    await env.mgr.open_bracket(spec())
    b.fill(cid(1, "ENTRY"), 4)
    await env.settle()
    assert (b.order(cid(1, "STOP")).quantity, b.order(cid(1, "TP")).quantity) == (4, 4)
    assert env.mgr.bracket(plan(1)).state == "ENTERING"
    b.fill(cid(1, "ENTRY"), 6)
    await env.settle()
    assert (b.order(cid(1, "STOP")).quantity, b.order(cid(1, "TP")).quantity) == (10, 10)
    # a partial take-profit shrinks the stop to what remains
    b.fill(cid(1, "TP"), 3)
    await env.settle()
    assert b.order(cid(1, "STOP")).quantity == 7
    assert env.mgr.bracket(plan(1)).state == "OPEN"


async def test_both_children_filling_is_corrected(env: Env) -> None:
    b, rec = env.broker, env.rec
    await env.mgr.open_bracket(spec())
    b.fill(cid(1, "ENTRY"))
    await env.settle()
    # both fill before any news reaches the manager: the cancel loses the race
    b.hold()
    b.fill(cid(1, "STOP"))
    b.fill(cid(1, "TP"))
    b.release()
    await env.settle()
    corrective = b.order(cid(1, "EXIT"))
    assert (corrective.req.side, corrective.req.order_type, corrective.filled) == (
        "BUY",
        OrderType.MARKET,
        10,
    )
    assert "DOUBLE_FILL" in rec.codes()
    assert next(a for a in rec.alerts if a.code == "DOUBLE_FILL").severity == "CRITICAL"
    assert b.net_position(TOKEN) == 0
    assert env.mgr.bracket(plan(1)).state == "CLOSED"
    assert rec.results[-1].realized_pnl_paise == b.gross_pnl_paise(TOKEN)


async def test_rejected_stop_exits_at_market(env: Env) -> None:
    b, rec = env.broker, env.rec
    b.reject_when(lambda r: r.tag.endswith("SL"), "Trigger price is higher than the LTP")
    await env.mgr.open_bracket(spec())
    b.fill(cid(1, "ENTRY"))
    await env.settle()
    assert b.order(cid(1, "STOP")).status is OrderStatus.REJECTED
    exit_ = b.order(cid(1, "EXIT"))
    assert (exit_.req.side, exit_.req.order_type, exit_.filled) == ("SELL", OrderType.MARKET, 10)
    assert b.order(cid(1, "TP")).status is OrderStatus.CANCELLED
    assert ("CRITICAL", "STOP_LOST") in [(a.severity, a.code) for a in rec.alerts]
    assert [f.reason for f in rec.exit_fills] == ["UNPROTECTED"]
    assert env.mgr.bracket(plan(1)).state == "CLOSED"
    assert b.net_position(TOKEN) == 0


async def test_entry_timeout_cancels_and_a_late_fill_is_exited(env: Env) -> None:
    b, rec = env.broker, env.rec
    await env.mgr.open_bracket(spec())
    env.clock.now += 5 * MIN - 1
    await env.mgr.advance_time()
    assert b.order(cid(1, "ENTRY")).is_live
    # the entry fills just as the timeout cancels it
    b.hold()
    b.fill(cid(1, "ENTRY"))
    env.clock.now += 1
    await env.mgr.advance_time()
    b.release()
    await env.settle()
    assert "LATE_FILL" in rec.codes()
    exit_ = b.order(cid(1, "EXIT"))
    assert (exit_.req.side, exit_.filled) == ("SELL", 10)
    assert [f.reason for f in rec.exit_fills] == ["ENTRY_TIMEOUT"]
    assert env.mgr.bracket(plan(1)).state == "CLOSED"
    assert b.net_position(TOKEN) == 0


async def test_entry_timeout_without_fill_cancels(env: Env) -> None:
    await env.mgr.open_bracket(spec())
    env.clock.now += 5 * MIN
    await env.mgr.advance_time()
    await env.settle()
    assert env.broker.order(cid(1, "ENTRY")).status is OrderStatus.CANCELLED
    assert [(r.state, r.realized_pnl_paise) for r in env.rec.results] == [("CANCELLED", None)]


async def test_end_of_day_square_off(env: Env) -> None:
    b = env.broker
    await env.mgr.open_bracket(spec())
    b.fill(cid(1, "ENTRY"))
    await env.settle()
    env.clock.now = T0 + (5 * 60 + 50) * MIN  # 15:20 IST
    b.set_price(TOKEN, 251_000)
    await env.mgr.advance_time()
    await env.settle()
    assert b.order(cid(1, "STOP")).status is OrderStatus.CANCELLED
    assert b.order(cid(1, "TP")).status is OrderStatus.CANCELLED
    assert b.order(cid(1, "EXIT")).filled == 10
    assert [f.reason for f in env.rec.exit_fills] == ["EOD"]
    assert env.rec.results[-1].realized_pnl_paise == 10 * 1_000


async def test_scale_out_breakeven_and_trailing(env: Env) -> None:
    b = env.broker
    await env.mgr.open_bracket(spec(scale_out=True, trail_atr_mult=2.0))
    b.fill(cid(1, "ENTRY"))
    await env.settle()
    assert (b.order(cid(1, "TP1")).quantity, b.order(cid(1, "TP1")).price_paise) == (5, 252_400)
    assert (b.order(cid(1, "TP2")).quantity, b.order(cid(1, "TP2")).price_paise) == (5, 254_000)
    b.fill(cid(1, "TP1"))
    await env.settle()
    stop = b.order(cid(1, "STOP"))
    assert (stop.quantity, stop.trigger_paise) == (5, 250_000)  # resized, at breakeven

    async def tick(token: int, paise: int) -> None:
        b.set_price(token, paise)
        await env.mgr.on_price(token, paise / 100, atr=5.0)

    await tick(TOKEN, 253_500)
    await env.settle()
    assert stop.trigger_paise == 252_500  # 2535 - 2 x 5
    await tick(TOKEN, 253_000)  # never loosens
    await tick(999, 260_000)  # another instrument
    await env.settle()
    assert stop.trigger_paise == 252_500
    b.fill(cid(1, "TP2"))
    await env.settle()
    assert stop.status is OrderStatus.CANCELLED
    assert env.rec.results[-1].realized_pnl_paise == 5 * 2_400 + 5 * 4_000


async def test_resize_refused_by_the_broker_exits(env: Env) -> None:
    b = env.broker
    b.reject_modify_when(lambda o: o.req.tag.endswith("SL"), "Maximum modifications exceeded")
    await env.mgr.open_bracket(spec())
    b.fill(cid(1, "ENTRY"), 4)
    await env.settle()
    b.fill(cid(1, "ENTRY"), 6)
    await env.settle()
    assert "STOP_MODIFY_REJECTED" in env.rec.codes()
    assert b.order(cid(1, "EXIT")).filled == 6  # what the 4-lot stop did not cover, at once
    assert env.mgr.bracket(plan(1)).state == "CLOSED"
    assert b.net_position(TOKEN) == 0


async def test_unknown_placement_outcome_is_never_placed_twice(env: Env) -> None:
    b = env.broker
    b.fail_next("place", applied=True)  # the broker took it, the call failed
    await env.mgr.open_bracket(spec(1))
    assert b.placements(cid(1, "ENTRY")) == 1
    b.fail_next("place", applied=False)  # the broker did not take it
    await env.mgr.open_bracket(spec(2))
    assert b.placements(cid(2, "ENTRY")) == 1
    await env.settle()
    assert {s.state for s in env.mgr.brackets()} == {"PENDING"}
    assert {o.broker_order_id for o in env.mgr.working_orders()} == {
        b.order(cid(1, "ENTRY")).order_id,
        b.order(cid(2, "ENTRY")).order_id,
    }


async def test_unverifiable_placement_is_cancelled_when_it_shows_up(env: Env) -> None:
    b = env.broker
    b.fail_next("place", applied=True)
    b.fail_next("find_by_tag")  # and the order book cannot be read
    await env.mgr.open_bracket(spec())
    await env.settle()
    assert b.placements(cid(1, "ENTRY")) == 1
    assert {"ENTRY_REJECTED", "ZOMBIE_ORDER"} <= set(env.rec.codes())
    assert b.order(cid(1, "ENTRY")).status is OrderStatus.CANCELLED
    assert env.mgr.bracket(plan(1)).state == "CANCELLED"


async def test_flatten_squares_everything_and_refuses_new_entries(env: Env) -> None:
    b = env.broker
    for n in (1, 2, 3):
        await env.mgr.open_bracket(spec(n))
    b.fill(cid(2, "ENTRY"))
    b.fill(cid(3, "ENTRY"), 4)
    await env.settle()
    states = {s.bracket_id: s.state for s in env.mgr.brackets()}
    assert states == {plan(1): "PENDING", plan(2): "OPEN", plan(3): "ENTERING"}
    await env.mgr.flatten(timeout_s=5)
    assert all(s.is_terminal for s in env.mgr.brackets())
    assert b.live_orders() == []
    assert b.net_position(TOKEN) == 0
    assert {r.closing_reason for r in env.rec.results} == {"FLATTEN"}
    with pytest.raises(OcoHaltedError):
        await env.mgr.open_bracket(spec(4))
    assert env.mgr.halted
    env.mgr.resume()
    await env.mgr.open_bracket(spec(4))
    assert b.order(cid(4, "ENTRY")).is_live


async def test_flatten_times_out_clearly() -> None:
    e, pump = make_env()
    try:
        await e.mgr.open_bracket(spec())
        e.broker.hold()  # no confirmation ever arrives
        with pytest.raises(FlattenTimeoutError, match=plan(1)):
            await e.mgr.flatten(timeout_s=0.2, tick_s=0.05)
    finally:
        pump.cancel()


async def test_duplicate_bracket_and_bad_spec_are_refused(env: Env) -> None:
    await env.mgr.open_bracket(spec())
    with pytest.raises(BracketExistsError):
        await env.mgr.open_bracket(spec())
    with pytest.raises(OcoError, match="square-off"):
        env.clock.now = T0 + 6 * 60 * MIN
        await env.mgr.open_bracket(spec(2))
    assert env.broker.placements(cid(1, "ENTRY")) == 1


async def test_impossible_update_alerts_without_stopping(env: Env) -> None:
    b = env.broker
    await env.mgr.open_bracket(spec())
    upd = b.order(cid(1, "ENTRY")).snapshot()
    from dataclasses import replace

    bad = replace(upd, filled_quantity=5, average_price=0.0)  # a fill at price zero
    assert await env.mgr.on_order_update(bad)
    assert "MACHINE_ERROR" in env.rec.codes()
    assert env.mgr.bracket(plan(1)).entry_filled == 0
    stranger = replace(upd, order_id="X9", client_order_id=None, tag="nope")
    assert not await env.mgr.on_order_update(stranger)
    b.fill(cid(1, "ENTRY"))
    await env.settle()
    assert env.mgr.bracket(plan(1)).state == "OPEN"


async def test_failing_hook_does_not_stop_protection() -> None:
    clock = Clock(T0)
    broker = FakeBroker(clock=clock)

    async def broken(_: TransitionRecord) -> None:
        raise RuntimeError("database down")

    mgr = OCOManager(broker, clock=clock, on_transition=broken, retry_delay_s=0.0)
    pump = asyncio.get_running_loop().create_task(mgr.pump(broker.updates()))
    try:
        await mgr.open_bracket(spec())
        broker.fill(cid(1, "ENTRY"), price_paise=250_000)
        await broker.settled()
        assert broker.order(cid(1, "STOP")).is_live
    finally:
        pump.cancel()
