# ruff: noqa: E501  (the old -> new mapping in the docstring: one line each)
"""The promises OCOManager's tests made, kept on the trading kernel: a LIVE
kernel (``LiveKernel`` through the production ``LiveKernelDriver``) trading on
the strict in-memory fake broker. Plans come from the kernel's own decisions
(SYNTHETIC V-shaped prices, see live_env); their prices are read from the
decision row, never hard-coded.

Mapping (old test -> where its promise is checked now):

test_oco_manager.py::test_take_profit_closes_the_bracket -> test_a_target_fill_cancels_the_stop_and_closes_with_its_pnl
test_oco_manager.py::test_partial_entry_is_protected_then_resized -> test_a_partial_entry_is_protected_then_resized
test_oco_manager.py::test_both_children_filling_is_corrected -> test_both_exits_filling_is_corrected_at_market
test_oco_manager.py::test_rejected_stop_exits_at_market -> test_a_rejected_stop_exits_at_market_with_stop_lost
test_oco_manager.py::test_entry_timeout_cancels_and_a_late_fill_is_exited -> test_an_entry_filling_as_its_timeout_cancels_it_is_exited
test_oco_manager.py::test_entry_timeout_without_fill_cancels -> test_an_entry_timeout_without_a_fill_cancels_the_plan
test_oco_manager.py::test_end_of_day_square_off -> test_the_end_of_day_square_off_exits_at_market
test_oco_manager.py::test_scale_out_breakeven_and_trailing -> test_scale_out_moves_the_stop_to_breakeven, test_a_trailing_stop_moves_only_on_its_own_instrument (never loosens: tests/kernel/test_kernel_trailing.py::test_trailing_stops_only_tighten_and_batches_agree, core-rs/aitrapp-core/tests/kernel_trail.rs::a_trailing_stop_only_tightens)
test_oco_manager.py::test_resize_refused_by_the_broker_exits -> test_a_stop_resize_the_broker_refuses_exits_the_uncovered_part
test_oco_manager.py::test_unknown_placement_outcome_is_never_placed_twice -> test_a_placement_with_an_unknown_outcome_is_never_placed_twice
test_oco_manager.py::test_unverifiable_placement_is_cancelled_when_it_shows_up -> test_an_unverifiable_placement_is_cancelled_when_it_shows_up
test_oco_manager.py::test_flatten_squares_everything_and_refuses_new_entries -> test_flatten_squares_every_state_and_halted_refuses_new_entries
test_oco_manager.py::test_flatten_times_out_clearly -> test_a_flatten_the_broker_never_confirms_leaves_the_plan_visible
test_oco_manager.py::test_duplicate_bracket_and_bad_spec_are_refused -> test_a_second_bracket_for_a_plan_or_after_square_off_is_refused
test_oco_manager.py::test_impossible_update_alerts_without_stopping -> test_an_impossible_report_is_logged_and_changes_nothing
test_oco_manager.py::test_failing_hook_does_not_stop_protection -> test_a_database_that_refuses_writes_does_not_stop_protection, test_a_writer_that_raises_does_not_stop_protection
(test_oco_protection.py, test_oco_paper.py: tests/kernel/test_oco_protection_promises.py;
 test_oco_chaos.py: tests/kernel/test_kernel_chaos.py)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from datetime import time
from typing import Any

import pytest

from aitrapp._core import BracketSpec, Kernel, OcoError
from aitrapp.brokers.base import OrderStatus, OrderType
from aitrapp.calendar import ist_ns
from aitrapp.config import EngineConfig
from aitrapp.kernel.events import rows

from .live_env import DAY, MIN, TOKENS, V_PRICES, Env, cid, instrument, make_env

TOKEN = TOKENS[0]


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    e = await make_env()
    yield e
    await e.close()


async def open_filled(env: Env, token: int = TOKEN, qty: int | None = None) -> dict[str, Any]:
    """A bracket whose entry filled (all of it, or ``qty``) at its limit; the
    broker's last price then sits 1.00 above the entry (nothing else crosses)."""
    d = await env.open(token)
    env.broker.set_price(token, int(d["entry"]) + 100)
    env.broker.fill(cid(str(d["plan_id"]), "ENTRY"), qty)
    await env.settle()
    return d


def walk(env: Env, plan: str) -> list[tuple[str, str, str]]:
    return [(t["from"], t["to"], t["event"]) for t in env.rows("transitions", plan)]


async def test_a_target_fill_cancels_the_stop_and_closes_with_its_pnl(env: Env) -> None:
    b = env.broker
    d = await env.open()
    plan, q = str(d["plan_id"]), int(d["qty"])
    entry = b.order(cid(plan, "ENTRY"))
    assert (entry.req.order_type, entry.req.price_paise, entry.req.side, entry.quantity) == (
        OrderType.LIMIT,
        d["entry"],
        "BUY",
        q,
    )
    assert entry.req.tag == cid(plan, "ENTRY")[:16] + "EN"
    # write-ahead: the opening rows were handed to the writer before the broker call
    opening = next(
        n
        for ev, n in env.driver.requests_at
        if any(r["event"] == "OPEN" for r in rows(ev, "transitions"))
    )
    assert opening == 0
    b.set_price(TOKEN, int(d["entry"]) + 100)
    b.fill(cid(plan, "ENTRY"))
    await env.settle()
    stop, tp = b.order(cid(plan, "STOP")), b.order(cid(plan, "TP"))
    assert (stop.req.order_type, stop.req.trigger_paise, stop.quantity, stop.req.side) == (
        OrderType.SLM,
        d["stop"],
        q,
        "SELL",
    )
    assert stop.req.market_protection == -1.0
    assert (tp.req.order_type, tp.price_paise, tp.quantity) == (OrderType.LIMIT, d["tp"], q)
    assert [(f["role"], f["qty"], f["price"]) for f in env.rows("fills")] == [
        ("ENTRY", q, d["entry"])
    ]
    b.fill(cid(plan, "TP"))
    await env.settle()
    assert stop.status is OrderStatus.CANCELLED
    assert (env.state(plan), env.kernel.open_brackets, env.kernel.working_orders) == (
        "CLOSED",
        0,
        0,
    )
    exits = [(f["role"], f["side"], f["qty"], f["price"]) for f in env.rows("fills")[1:]]
    assert exits == [("TAKE_PROFIT", "SELL", q, d["tp"])]
    (trade,) = env.rows("trades")
    gross = q * (int(d["tp"]) - int(d["entry"]))
    assert (trade["exit_reason"], trade["gross_paise"], trade["double_exit"]) == (
        "TP",
        gross,
        False,
    )
    assert b.gross_pnl_paise(TOKEN) == gross
    steps = walk(env, plan)
    assert steps[0] == ("NEW", "PENDING", "OPEN") and steps[-1][1] == "CLOSED"
    assert ("OPEN", "CLOSING", "CHILD_FILLED") in steps
    # every order row names the step of the walk that issued it (the persisted seq)
    for o in env.rows("orders", plan):
        assert 0 <= o["step"] < len(steps)
    doc = {t: rows(env.events, t) for t in ("orders", "fills", "transitions", "trades")}
    assert json.loads(json.dumps(doc)) == doc
    assert b.net_position(TOKEN) == 0


async def test_a_partial_entry_is_protected_then_resized(env: Env) -> None:
    b = env.broker
    d = await open_filled(env, qty=4)
    plan, q = str(d["plan_id"]), int(d["qty"])
    assert (b.order(cid(plan, "STOP")).quantity, b.order(cid(plan, "TP")).quantity) == (4, 4)
    assert env.state(plan) == "ENTERING"
    b.fill(cid(plan, "ENTRY"))
    await env.settle()
    assert (b.order(cid(plan, "STOP")).quantity, b.order(cid(plan, "TP")).quantity) == (q, q)
    assert env.state(plan) == "OPEN"
    # a partial take-profit shrinks the stop to what remains
    b.fill(cid(plan, "TP"), 3)
    await env.settle()
    assert b.order(cid(plan, "STOP")).quantity == q - 3
    assert env.state(plan) == "OPEN"
    assert b.net_position(TOKEN) == q - 3


async def test_both_exits_filling_is_corrected_at_market(env: Env) -> None:
    b = env.broker
    d = await open_filled(env)
    plan, q = str(d["plan_id"]), int(d["qty"])
    # both fill before any news reaches the kernel: the cancel loses the race
    b.hold()
    b.fill(cid(plan, "STOP"))
    b.fill(cid(plan, "TP"))
    b.release()
    await env.settle()
    corrective = b.order(cid(plan, "EXIT"))
    assert (corrective.req.side, corrective.req.order_type, corrective.filled) == (
        "BUY",
        OrderType.MARKET,
        q,
    )
    assert ("CRITICAL", "DOUBLE_FILL") in env.codes()
    assert b.net_position(TOKEN) == 0
    assert env.state(plan) == "CLOSED" and env.kernel.open_brackets == 0
    (trade,) = env.rows("trades")
    assert trade["double_exit"]
    assert trade["gross_paise"] == b.gross_pnl_paise(TOKEN)


async def test_a_rejected_stop_exits_at_market_with_stop_lost(env: Env) -> None:
    b = env.broker
    b.reject_when(lambda r: r.tag.endswith("SL"), "Trigger price is higher than the LTP")
    d = await open_filled(env)
    plan, q = str(d["plan_id"]), int(d["qty"])
    assert b.order(cid(plan, "STOP")).status is OrderStatus.REJECTED
    exit_ = b.order(cid(plan, "EXIT"))
    assert (exit_.req.side, exit_.req.order_type, exit_.filled) == ("SELL", OrderType.MARKET, q)
    assert b.order(cid(plan, "TP")).status is OrderStatus.CANCELLED
    assert ("CRITICAL", "STOP_LOST") in env.codes()
    placed = [o for o in env.rows("orders", plan) if o["client_order_id"] == cid(plan, "EXIT")]
    assert [o["reason"] for o in placed] == ["UNPROTECTED"]
    assert [t["exit_reason"] for t in env.rows("trades")] == ["UNPROTECTED"]
    assert env.state(plan) == "CLOSED"
    assert b.net_position(TOKEN) == 0


async def test_a_stop_refused_for_the_rate_is_placed_again_not_exited(env: Env) -> None:
    """Kite's 429 refuses an order on arrival (it is certainly not placed): the stop
    is sent again after a short wait, and the position keeps its stop; it is not
    exited at market as for a stop the broker rejected."""
    b = env.broker
    env.driver.rate_limited_backoff_s = 0.01
    d = await env.open()
    plan, q = str(d["plan_id"]), int(d["qty"])
    b.set_price(TOKEN, int(d["entry"]) + 100)
    b.fail_next("place", message="Too many requests", code=429)  # the first child
    b.fail_next("place", message="Too many requests", code=429)  # and its first retry
    b.fill(cid(plan, "ENTRY"))
    await env.settle()
    stop = b.order(cid(plan, "STOP"))
    assert stop.is_live and stop.req.quantity == q
    assert b.order(cid(plan, "TP")).is_live
    assert [c for c in b.calls if c[0] == "place"].count(("place", cid(plan, "STOP"))) >= 2
    assert ("CRITICAL", "STOP_LOST") not in env.codes()
    assert not [o for o in b.requests if o.client_order_id.startswith(f"{plan}:EXIT")]
    assert env.state(plan) == "OPEN"


async def test_an_entry_filling_as_its_timeout_cancels_it_is_exited(env: Env) -> None:
    b = env.broker
    d = await env.open()
    plan, q = str(d["plan_id"]), int(d["qty"])
    b.set_price(TOKEN, int(d["entry"]) + 100)
    opened = int(d["ts_ns"])
    await env.advance(opened + 5 * MIN - 1 - env.clock.now)
    assert b.order(cid(plan, "ENTRY")).is_live
    # the entry fills just as the timeout cancels it
    b.hold()
    b.fill(cid(plan, "ENTRY"))
    env.clock.now += 1
    env.driver.advance_time(env.clock.now)
    await env.driver.drain()
    b.release()
    await env.settle()
    assert "LATE_FILL" in [c for _, c in env.codes()]
    exit_ = b.order(cid(plan, "EXIT"))
    assert (exit_.req.side, exit_.filled) == ("SELL", q)
    assert [t["exit_reason"] for t in env.rows("trades")] == ["ENTRY_TIMEOUT"]
    assert env.state(plan) == "CLOSED"
    assert b.net_position(TOKEN) == 0


async def test_an_entry_timeout_without_a_fill_cancels_the_plan(env: Env) -> None:
    d = await env.open()
    plan = str(d["plan_id"])
    await env.advance(int(d["ts_ns"]) + 5 * MIN - env.clock.now)
    entry = env.broker.order(cid(plan, "ENTRY"))
    assert entry.status is OrderStatus.CANCELLED
    (cancel,) = [o for o in env.rows("orders", plan) if o["action"] == "CANCEL"]
    assert cancel["ts_ns"] == int(d["ts_ns"]) + 5 * MIN  # at its own time, not a tick's
    assert env.state(plan) == "CANCELLED"
    assert env.rows("trades") == [] and env.kernel.open_brackets == 0


async def test_the_end_of_day_square_off_exits_at_market(env: Env) -> None:
    b = env.broker
    d = await open_filled(env)
    plan, q = str(d["plan_id"]), int(d["qty"])
    b.set_price(TOKEN, int(d["entry"]) + 200)  # below the target: nothing fills
    await env.advance(ist_ns(DAY, time(15, 20)) - 1 - env.clock.now)
    assert b.order(cid(plan, "STOP")).is_live  # not a nanosecond early
    await env.advance(1)
    assert b.order(cid(plan, "STOP")).status is OrderStatus.CANCELLED
    assert b.order(cid(plan, "TP")).status is OrderStatus.CANCELLED
    assert b.order(cid(plan, "EXIT")).filled == q
    (trade,) = env.rows("trades")
    assert (trade["exit_reason"], trade["gross_paise"]) == ("EOD", q * 200)
    assert b.net_position(TOKEN) == 0


async def test_scale_out_moves_the_stop_to_breakeven() -> None:
    env = await make_env(bracket='{"scale_out": true}', tp_ticks=120)
    try:
        b = env.broker
        d = await open_filled(env)
        plan, q = str(d["plan_id"]), int(d["qty"])
        entry, stop = int(d["entry"]), int(d["stop"])
        spec = BracketSpec(
            plan_id=plan, instrument=instrument(TOKEN), side="BUY", qty=q,
            entry_price=f"{entry / 100:.2f}", stop=f"{stop / 100:.2f}",
            take_profit=f"{int(d['tp']) / 100:.2f}", scale_out=True,
        )  # fmt: skip
        tp1, tp2 = b.order(cid(plan, "TP1")), b.order(cid(plan, "TP2"))
        assert tp1.price_paise == spec.target_for("TP1").paise == entry + 360  # 1.2 R
        assert tp2.price_paise == int(d["tp"])
        assert (tp1.quantity, tp2.quantity) == (q // 2, q - q // 2)
        env.tick(TOKEN, (entry + 360) / 100)  # the market reaches TP1, which fills
        b.fill(cid(plan, "TP1"))
        await env.settle()
        s = b.order(cid(plan, "STOP"))
        assert (s.quantity, s.trigger_paise) == (q - q // 2, entry)  # resized, at breakeven
        b.fill(cid(plan, "TP2"))
        await env.settle()
        assert s.status is OrderStatus.CANCELLED
        (trade,) = env.rows("trades")
        gross = (q // 2) * 360 + (q - q // 2) * (int(d["tp"]) - entry)
        assert trade["gross_paise"] == gross == b.gross_pnl_paise(TOKEN)
        assert b.net_position(TOKEN) == 0
    finally:
        await env.close()


async def test_a_stop_resize_the_broker_refuses_exits_the_uncovered_part(env: Env) -> None:
    b = env.broker
    b.reject_modify_when(lambda o: o.req.tag.endswith("SL"), "Maximum modifications exceeded")
    d = await open_filled(env, qty=4)
    plan, q = str(d["plan_id"]), int(d["qty"])
    b.fill(cid(plan, "ENTRY"))
    await env.settle()
    assert "STOP_MODIFY_REJECTED" in [c for _, c in env.codes()]
    assert b.order(cid(plan, "EXIT")).filled == q - 4  # what the 4-lot stop did not cover
    assert env.state(plan) == "CLOSED"
    assert b.net_position(TOKEN) == 0


async def test_a_placement_with_an_unknown_outcome_is_never_placed_twice(env: Env) -> None:
    b = env.broker
    b.fail_next("place", applied=True)  # the broker took it, the call failed
    d1 = await env.open(TOKENS[0])
    p1 = str(d1["plan_id"])
    assert b.placements(cid(p1, "ENTRY")) == 1
    b.fail_next("place", applied=False)  # the broker did not take it
    d2 = await env.open(TOKENS[1])
    p2 = str(d2["plan_id"])
    assert b.placements(cid(p2, "ENTRY")) == 0
    await env.settle()
    # the first goes on under the broker's id; the second is over (never placed)
    assert (env.state(p1), env.state(p2)) == ("PENDING", "CANCELLED")
    assert set(env.driver.broker_ids.values()) == {b.order(cid(p1, "ENTRY")).order_id}
    assert [o.req.client_order_id for o in b.live_orders()] == [cid(p1, "ENTRY")]
    b.set_price(TOKENS[0], int(d1["entry"]) + 100)
    b.fill(cid(p1, "ENTRY"))
    await env.settle()
    assert b.order(cid(p1, "STOP")).is_live
    assert all(b.placements(r.client_order_id) == 1 for r in b.requests)


async def test_an_unverifiable_placement_is_cancelled_when_it_shows_up(env: Env) -> None:
    b = env.broker
    b.hold()  # its report comes only after every look-up failed
    b.fail_next("place", applied=True)
    for _ in range(env.driver.lookup_attempts):
        b.fail_next("find_by_tag")  # and the order book cannot be read
    d = await env.open(settle=False)
    plan = str(d["plan_id"])
    assert env.state(plan) == "CANCELLED"  # the kernel heard REJECTED
    b.release()
    await env.settle()
    assert b.placements(cid(plan, "ENTRY")) == 1
    assert ("CRITICAL", "ORPHAN_ORDER") in [(a["severity"], a["code"]) for a in env.driver.alerts]
    assert b.order(cid(plan, "ENTRY")).status is OrderStatus.CANCELLED
    assert b.live_orders() == [] and b.net_position(TOKEN) == 0


async def test_flatten_squares_every_state_and_halted_refuses_new_entries(env: Env) -> None:
    b = env.broker
    d1 = await env.open(TOKENS[0])
    d2 = await env.open(TOKENS[1])
    d3 = await env.open(TOKENS[2])
    plans = [str(d["plan_id"]) for d in (d1, d2, d3)]
    for tok, d in zip(TOKENS, (d1, d2, d3), strict=True):
        b.set_price(tok, int(d["entry"]) + 100)
    b.fill(cid(plans[1], "ENTRY"))
    b.fill(cid(plans[2], "ENTRY"), 4)
    await env.settle()
    assert [env.state(p) for p in plans] == ["PENDING", "OPEN", "ENTERING"]
    env.kernel.set_trading_state("HALTED")  # the kill switch halts first (Runtime.flatten)
    env.driver.flatten(env.clock.now)
    await env.settle()
    assert [env.state(p) for p in plans] == ["CANCELLED", "CLOSED", "CLOSED"]
    assert env.kernel.open_brackets == 0 and b.live_orders() == []
    assert all(b.net_position(t) == 0 for t in TOKENS)
    assert {t["exit_reason"] for t in env.rows("trades")} == {"FLATTEN"}
    # HALTED: a new cross is refused, nothing is placed
    placed = len(b.requests)
    for p in V_PRICES:
        env.tick(TOKENS[0], p)
    await env.settle()
    assert len(b.requests) == placed
    assert "TRADING_STATE" in [r["reason"] for r in env.rows("blocks")]
    env.kernel.set_trading_state("ACTIVE")
    d4 = await env.open(TOKENS[0])
    assert b.order(cid(str(d4["plan_id"]), "ENTRY")).is_live


async def test_a_flatten_the_broker_never_confirms_leaves_the_plan_visible(env: Env) -> None:
    d = await open_filled(env)
    plan = str(d["plan_id"])
    env.broker.hold()  # no confirmation ever arrives
    env.kernel.set_trading_state("HALTED")
    env.driver.flatten(env.clock.now)
    await env.driver.drain()
    rows = env.rows("orders", plan)[3:]
    sent = [(o["action"], o["client_order_id"], o["order_type"]) for o in rows]
    # The stop is turned into the market exit (one modify, answered), then the
    # target is cancelled; no fill or cancel is ever reported back.
    assert sent == [("MODIFY", cid(plan, "STOP"), "MARKET"), ("CANCEL", cid(plan, "TP"), "")]
    assert env.kernel.open_brackets == 1 and env.state(plan) == "CLOSING"
    assert [p["plan_id"] for p in env.driver.open_positions()] == [plan]
    assert {w["plan_id"] for w in env.driver.working_orders()} == {plan}


async def test_a_second_bracket_for_a_plan_or_after_square_off_is_refused(env: Env) -> None:
    d = await open_filled(env)
    plan = str(d["plan_id"])
    spec = BracketSpec(
        plan_id=plan, instrument=instrument(TOKEN), side="BUY", qty=int(d["qty"]),
        entry_price=f"{int(d['entry']) / 100:.2f}", stop=f"{int(d['stop']) / 100:.2f}",
        take_profit=f"{int(d['tp']) / 100:.2f}",
    )  # fmt: skip
    with pytest.raises(OcoError, match="already open"):
        env.kernel.adopt(env.clock.now, spec, "EmaCross", int(d["qty"]), int(d["entry"]) / 100, [])
    # after the square-off no cross opens a bracket
    env.clock.now = ist_ns(DAY, time(15, 21))
    env.driver.advance_time(env.clock.now)
    await env.settle()
    placed = len(env.broker.requests)
    for p in V_PRICES:
        env.tick(TOKENS[1], p)
    await env.settle()
    assert len(env.broker.requests) == placed
    assert env.broker.placements(cid(plan, "ENTRY")) == 1


async def test_an_impossible_report_is_logged_and_changes_nothing(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    from dataclasses import replace

    b = env.broker
    d = await env.open()
    plan = str(d["plan_id"])
    upd = b.order(cid(plan, "ENTRY")).snapshot()
    bad = replace(upd, filled_quantity=5, average_price=0.0)  # a fill at price zero
    with caplog.at_level(logging.ERROR, logger="aitrapp.kernel.live"):
        env.driver.on_update(bad)
    assert any(cid(plan, "ENTRY") in r.getMessage() or "malformed" in r.getMessage()
               for r in caplog.records)  # fmt: skip
    assert env.rows("fills") == [] and env.state(plan) == "PENDING"
    ignored = env.driver.reports_ignored
    env.driver.on_update(replace(upd, order_id="X9", client_order_id=None, tag="nope"))
    assert env.driver.reports_ignored == ignored + 1
    b.set_price(TOKEN, int(d["entry"]) + 100)
    b.fill(cid(plan, "ENTRY"))
    await env.settle()
    assert env.state(plan) == "OPEN" and b.order(cid(plan, "STOP")).is_live


async def test_a_database_that_refuses_writes_does_not_stop_protection(env: Env) -> None:
    d = await env.open()
    plan = str(d["plan_id"])
    env.writer.down = True  # every batch refused from now on (queue full, closing)
    env.broker.set_price(TOKEN, int(d["entry"]) + 100)
    env.broker.fill(cid(plan, "ENTRY"))
    await env.settle()
    assert env.broker.order(cid(plan, "STOP")).is_live
    assert env.driver.running


async def eventually(cond: Callable[[], bool], within_s: float = 2.0) -> bool:
    for _ in range(int(within_s / 0.01)):
        if cond():
            return True
        await asyncio.sleep(0.01)
    return cond()


async def test_a_writer_that_raises_does_not_stop_protection() -> None:
    env = await make_env()
    try:
        d = await env.open()
        plan = str(d["plan_id"])
        env.writer.broken = RuntimeError("database down")
        env.broker.set_price(TOKEN, int(d["entry"]) + 100)
        env.broker.fill(cid(plan, "ENTRY"))
        stop_id = cid(plan, "STOP")
        assert await eventually(lambda: any(o.req.client_order_id == stop_id and o.is_live
                                            for o in env.broker.live_orders()))  # fmt: skip
        assert env.driver.running  # the order stream is still read
        env.broker.fill(cid(plan, "TP"))
        stop = env.broker.order(cid(plan, "STOP"))
        assert await eventually(lambda: stop.status is OrderStatus.CANCELLED)
        assert env.driver.absorb_failures > 0  # counted, and shown in /health
    finally:
        env.writer.broken = None
        with contextlib.suppress(RuntimeError):  # the consumer's own failure, if it died
            await env.close()


def test_a_trailing_stop_moves_only_on_its_own_instrument() -> None:
    """(test_scale_out_breakeven_and_trailing's "another instrument" step) Every
    trailing move of a stop is sent at a tick of its own instrument: the other
    instrument's ticks (1 ms apart from its own, SYNTHETIC gappy data) never move it."""
    from .gappy import gappy_day
    from .gappy import instrument as gappy_instrument

    tokens = [201, 202]
    ticks = gappy_day(DAY, tokens, seed=23)
    trailing = {"entry_type": "MARKET", "trail_atr_mult": 0.5, "trail_min_step_ticks": 2}
    config = EngineConfig.parse(
        {
            "risk": {"max_trades_per_day": 1000, "cooldown_seconds": 0, "max_open_positions": 50,
                     "daily_loss_stop_pct": 100.0, "max_portfolio_heat_pct": 100.0,
                     "min_stop_distance_bps": 0.0, "min_stop_spread_multiple": 0.0},
            "strategies": {"orb": {"enabled": False}, "trend_pullback": {"enabled": False},
                           "vwap_reversion": {"enabled": False},
                           "ema_cross": {"enabled": True, "stop_ticks": 80, "tp_ticks": 400}},
        }
    )  # fmt: skip
    k = Kernel(
        config.to_core_json(),
        [gappy_instrument(t) for t in tokens],
        "{}",
        json.dumps(trailing),
    )
    ev = k.run(ticks.token, ticks.ts_ns, ticks.last_price, ticks.last_qty, ticks.volume,
               ticks.bid, ticks.ask)  # fmt: skip
    token_of = {d["plan_id"]: d["token"] for d in rows(ev, "decisions")}
    ticked = {(int(t), int(ts)) for t, ts in zip(ticks.token, ticks.ts_ns, strict=True)}
    last: dict[str, int] = {}
    moves = 0
    for o in rows(ev, "orders"):
        if not o["client_order_id"].endswith(":STOP") or o["refused"]:
            continue
        coid = o["client_order_id"]
        if o["action"] == "MODIFY" and o["trigger"] != last.get(coid):
            assert (token_of[o["plan_id"]], o["ts_ns"]) in ticked, f"{coid} moved off its ticks"
            moves += 1
        if o["action"] in ("PLACE", "MODIFY"):
            last[coid] = o["trigger"]
    assert moves >= 3, moves
