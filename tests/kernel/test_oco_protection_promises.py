# ruff: noqa: E501  (the old -> new mapping in the docstring: one line each)
"""Stops the market has outrun, and the paper protocol, kept on the trading
kernel: a LIVE kernel through the production ``LiveKernelDriver`` on the
strict fake broker (see live_env), and the paper kernel (``Kernel``, its
``SimVenue`` inside) fed tick by tick. Prices are SYNTHETIC (a V or a
Lambda that makes EmaCross 3/6 cross), plans are the kernel's own decisions.

Mapping (old test -> where its promise is checked now):

test_oco_protection.py::test_stop_fill_timeout_is_a_validated_spec_field -> test_a_triggered_stop_is_escalated_on_its_timeout (5 s default and 2.5 s reach the bracket), test_a_bad_stop_fill_timeout_is_refused_naming_the_key
test_oco_protection.py::test_entry_fill_through_the_stop_exits_as_stop_gapped -> test_an_entry_fill_through_the_stop_exits_as_stop_gapped (BUY and SELL)
test_oco_protection.py::test_a_stop_reported_open_has_triggered_and_the_watchdog_escalates_on_time -> test_a_triggered_stop_is_escalated_on_its_timeout
test_oco_protection.py::test_cancel_times_classify_a_double_exit -> test_the_cancel_time_classifies_a_double_exit (and core-rs/aitrapp-core/src/oco/tests/protection.rs::the_cancel_time_classifies_a_double_exit, tests/kernel_flow.rs::double_exits_are_only_races)
test_oco_protection.py::test_paper_sl_m_resting_past_its_protection_is_escalated -> test_paper_sl_m_resting_past_its_protection_is_escalated
test_oco_protection.py::test_watchdog_alerts_count_as_escalations -> test_watchdog_alerts_count_as_escalations
test_oco_paper.py::test_paper_take_profit -> test_paper_take_profit
test_oco_paper.py::test_paper_stop_and_flatten -> test_paper_stop_and_flatten
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any
from uuid import uuid4

import pytest

from aitrapp._core import Kernel, LiveKernel, OcoError
from aitrapp.brokers.base import OrderStatus, OrderType
from aitrapp.bus import InProcessBus
from aitrapp.kernel.driver import KernelDriver
from aitrapp.kernel.events import EventBatch, extend, rows
from aitrapp.metrics import Metrics

from .live_env import A_PRICES, SEC, T0, TOKENS, V_PRICES, Writer, cid, engine_config, instrument
from .live_env import make_env as make_live_env

TOKEN = TOKENS[0]


# ---------------------------------------------------------------- LIVE kernel


@pytest.mark.parametrize(("prices", "side", "exit_side"), [(V_PRICES, "BUY", "SELL"),
                                                          (A_PRICES, "SELL", "BUY")])  # fmt: skip
async def test_an_entry_fill_through_the_stop_exits_as_stop_gapped(
    prices: list[float], side: str, exit_side: str
) -> None:
    env = await make_live_env()
    try:
        b = env.broker
        d = await env.open(prices=prices)
        plan, q = str(d["plan_id"]), int(d["qty"])
        assert d["side"] == side
        through = int(d["stop"]) + (-100 if side == "BUY" else 100)  # 1.00 past the stop
        env.tick(TOKEN, through / 100)  # the feed shows it before the entry's fill arrives
        b.set_price(TOKEN, through)  # the entry fills at its limit, the exit at this price
        await env.settle()
        assert b.order(cid(plan, "ENTRY")).filled == q
        assert ("WARNING", "STOP_GAPPED") in env.codes()
        placed = [(o["client_order_id"], o["side"], o["qty"], o["reason"])
                  for o in env.rows("orders", plan) if o["action"] == "PLACE"][1:]  # fmt: skip
        assert placed == [(cid(plan, "EXIT"), exit_side, q, "STOP_GAPPED")]  # no stop is sent
        (trade,) = env.rows("trades")
        assert (trade["exit_reason"], env.state(plan)) == ("STOP_GAPPED", "CLOSED")
        assert b.order(cid(plan, "EXIT")).req.order_type is OrderType.MARKET
        assert b.net_position(TOKEN) == 0 and b.live_orders() == []
    finally:
        await env.close()


@pytest.mark.parametrize(
    ("bracket", "timeout_ns"), [("{}", 5 * SEC), ('{"stop_fill_timeout_s": 2.5}', 2_500_000_000)]
)
async def test_a_triggered_stop_is_escalated_on_its_timeout(bracket: str, timeout_ns: int) -> None:
    env = await make_live_env(bracket=bracket)
    try:
        b = env.broker
        d = await env.open()
        plan, q = str(d["plan_id"]), int(d["qty"])
        b.set_price(TOKEN, int(d["entry"]) + 100)
        b.fill(cid(plan, "ENTRY"))
        await env.settle()
        stop = b.order(cid(plan, "STOP"))
        # Kite reports the SL-M OPEN: it triggered and rests (beyond its protection).
        env.clock.now += SEC
        triggered_at = env.clock.now
        stop.updated_ns = triggered_at
        report = replace(stop.snapshot(), status=OrderStatus.OPEN)
        env.driver.on_update(report)
        await env.settle()
        assert env.rows("transitions", plan)[-1]["event"] == "CHILD_TRIGGERED"
        ignored = env.driver.reports_ignored
        env.clock.now += SEC
        env.driver.on_update(report)  # the same report again keeps the first time
        assert env.driver.reports_ignored == ignored + 1
        await env.advance(triggered_at + timeout_ns - 1 - env.clock.now)
        assert not [c for _, c in env.codes() if c.startswith("STOP_")]
        b.hold()  # the cancels are not confirmed
        env.clock.now += 1
        env.driver.advance_time(env.clock.now)
        await env.driver.drain()
        assert env.codes() == [("WARNING", "STOP_FILL_TIMEOUT")]
        cancels = [
            o["client_order_id"] for o in env.rows("orders", plan) if o["action"] == "CANCEL"
        ]
        assert sorted(cancels) == [cid(plan, "STOP"), cid(plan, "TP")]
        assert [o["ts_ns"] for o in env.rows("orders", plan) if o["action"] == "CANCEL"] == [
            triggered_at + timeout_ns
        ] * 2
        await env.driver.drain()
        env.clock.now += timeout_ns
        env.driver.advance_time(env.clock.now)
        await env.driver.drain()
        assert env.codes()[-1] == ("CRITICAL", "STOP_UNFILLED")
        exits = [(o["qty"], o["reason"]) for o in env.rows("orders", plan)
                 if o["client_order_id"] == cid(plan, "EXIT")]  # fmt: skip
        assert exits == [(q, "STOP")]
        assert env.kernel.counters()["critical_alerts"] == 1
        b.release()
        await env.settle()
        assert (env.state(plan), b.net_position(TOKEN), b.live_orders()) == ("CLOSED", 0, [])
        assert [t["exit_reason"] for t in env.rows("trades")] == ["STOP"]
    finally:
        await env.close()


@pytest.mark.parametrize(("value", "where"), [(0, "construction"), (7200, "construction")])
def test_a_bad_stop_fill_timeout_is_refused_naming_the_key(value: float, where: str) -> None:
    """Refused when the kernel is built (not one decision at a time later)."""
    with pytest.raises(OcoError, match="stop_fill_timeout"):
        LiveKernel(engine_config().to_core_json(), [instrument(TOKEN)], "{}",
                   json.dumps({"stop_fill_timeout_s": value}))  # fmt: skip


@pytest.mark.parametrize(("fill_after_ns", "race"), [(1_000_000, True), (60_000_000, False)])
def test_the_cancel_time_classifies_a_double_exit(fill_after_ns: int, race: bool) -> None:
    """The stop fills after the target: within the venue's command latency (50 ms)
    of our cancel it is a race the cancel could not win; later it is not."""
    k = LiveKernel(engine_config().to_core_json(), [instrument(TOKEN)], "{}", "{}")
    ev: EventBatch = {}
    now = T0
    for p in V_PRICES:
        now += SEC
        extend(ev, k.on_tick(TOKEN, now, p, 10, 0, p - 0.05, p + 0.05))
        if rows(ev, "decisions"):
            break
    (d,) = rows(ev, "decisions")
    plan, q = d["plan_id"], d["qty"]
    extend(ev, k.on_order_update(cid(plan, "ENTRY"), "COMPLETE", q, d["entry"] / 100, now))
    t1 = now + SEC
    extend(ev, k.on_order_update(cid(plan, "TP"), "COMPLETE", q, d["tp"] / 100, t1))
    cancel = [o for o in rows(ev, "orders") if o["action"] == "CANCEL"]
    assert [(o["client_order_id"], o["ts_ns"]) for o in cancel] == [(cid(plan, "STOP"), t1)]
    extend(ev, k.on_order_update(cid(plan, "STOP"), "COMPLETE", q, d["stop"] / 100,
                                 t1 + fill_after_ns))  # fmt: skip
    assert ("CRITICAL", "DOUBLE_FILL") in [(a["severity"], a["code"]) for a in rows(ev, "alerts")]
    extend(ev, k.on_order_update(cid(plan, "EXIT"), "COMPLETE", q, d["entry"] / 100,
                                 t1 + 2 * fill_after_ns))  # fmt: skip
    (trade,) = rows(ev, "trades")
    assert (trade["double_exit"], trade["race"]) == (True, race)
    assert k.counters()["races"] == int(race) and k.counters()["double_exits"] == 1


async def test_watchdog_alerts_count_as_escalations() -> None:
    metrics = Metrics()
    kernel = Kernel(engine_config().to_core_json(), [instrument(TOKEN)], "{}", "{}")
    driver = KernelDriver(
        kernel, writer=Writer(), bus=InProcessBus(), metrics=metrics,  # type: ignore[arg-type]
        session_id=uuid4(), instruments={TOKEN: instrument(TOKEN)}, fill_scope="paper:test",
    )  # fmt: skip
    codes = [("WARNING", "STOP_GAPPED"), ("WARNING", "STOP_FILL_TIMEOUT"),
             ("CRITICAL", "STOP_UNFILLED"), ("CRITICAL", "STOP_LOST")]  # fmt: skip
    plan = "0123456789abcdef01234567"
    driver.absorb(
        {"alerts": {"ts_ns": [T0] * 4, "plan_id": [plan] * 4, "severity": [s for s, _ in codes],
                    "code": [c for _, c in codes], "reason": ["m"] * 4}}
    )  # fmt: skip
    text = metrics.render()
    found = re.search(r"^trader_oco_watchdog_escalations_total (\S+)$", text, re.M)
    assert found is not None and float(found.group(1)) == 2.0
    critical = re.findall(r'^trader_oco_alerts_total\{[^}]*severity="CRITICAL"[^}]*\} (\S+)$',
                          text, re.M)  # fmt: skip
    assert sum(float(n) for n in critical) == 2.0
    assert [a["code"] for a in driver.alerts] == [c for _, c in codes]


# ---------------------------------------------------------------- paper kernel


class Paper:
    """The paper kernel fed one tick at a time; every event kept."""

    def __init__(self, bracket: dict[str, Any]) -> None:
        self.k = Kernel(engine_config().to_core_json(), [instrument(t) for t in TOKENS], "{}",
                        json.dumps(bracket))  # fmt: skip
        self.ev: EventBatch = {}
        self.now = T0

    def tick(self, rupees: float, dt_s: float = 1.0, token: int = TOKEN) -> None:
        self.now += int(dt_s * SEC)
        extend(self.ev, self.k.on_tick(token, self.now, rupees, 100, 0, rupees - 0.05,
                                       rupees + 0.05))  # fmt: skip

    def quiet(self, dt_s: float) -> None:
        """Time passes without a tick (a sparse feed)."""
        self.now += int(dt_s * SEC)
        extend(self.ev, self.k.advance_time(self.now))

    def open(self, token: int = TOKEN) -> dict[str, Any]:
        before = len(rows(self.ev, "decisions"))
        for p in V_PRICES:
            self.tick(p, token=token)
            if len(rows(self.ev, "decisions")) > before:
                return rows(self.ev, "decisions")[-1]
        raise AssertionError("the V did not open a bracket")

    def rows(self, table: str, plan: str) -> list[dict[str, Any]]:
        return [r for r in rows(self.ev, table) if r["plan_id"] == plan]

    def state(self, plan: str) -> str:
        return str(self.rows("transitions", plan)[-1]["to"])

    def net(self) -> int:
        return sum(f["qty"] if f["side"] == "BUY" else -f["qty"] for f in rows(self.ev, "fills"))

    def codes(self) -> list[tuple[str, str]]:
        return [(a["severity"], a["code"]) for a in rows(self.ev, "alerts")]


def tick_of(paise: float) -> float:
    return round(paise / 5) * 5 / 100


def test_paper_sl_m_resting_past_its_protection_is_escalated() -> None:
    s = Paper({"market_protection": 1.0})  # a 1 % band: a larger gap leaves the SL-M resting
    d = s.open()
    plan = d["plan_id"]
    e = d["entry"] / 100
    s.tick(e + 0.5)  # acknowledged
    s.tick(e - 0.5)  # the entry fills; stop and target placed
    s.tick(e + 1.0)  # children acknowledged
    assert s.state(plan) == "OPEN"
    gap = tick_of(d["stop"] * 0.97)  # a 3 % gap through the stop
    s.tick(gap)
    assert "CHILD_TRIGGERED" in [t["event"] for t in s.rows("transitions", plan)]
    assert s.state(plan) == "OPEN"
    s.quiet(4.0)
    assert not [c for _, c in s.codes() if c.startswith("STOP_")]
    s.quiet(1.0)  # 5 s after the trigger, no tick in between
    assert ("WARNING", "STOP_FILL_TIMEOUT") in s.codes()
    assert s.state(plan) == "CLOSING"
    # The cancel lands, the market exit goes out and fills on the next price.
    s.quiet(1.0)
    s.tick(gap)
    s.tick(gap)
    assert s.state(plan) == "CLOSED"
    assert (s.k.open_brackets, s.k.working_orders) == (0, 0)
    assert [t["exit_reason"] for t in rows(s.ev, "trades")] == ["STOP"]
    assert not [a for a in s.codes() if a[0] == "CRITICAL"]
    assert s.net() == 0


def test_paper_take_profit() -> None:
    s = Paper({})
    d = s.open()
    plan, q = d["plan_id"], d["qty"]
    e, tp = d["entry"] / 100, d["tp"] / 100
    s.tick(e + 0.5)  # acknowledged
    s.tick(e - 0.5)  # the entry fills; children placed
    s.tick(e + 1.0)  # children acknowledged
    assert s.state(plan) == "OPEN"
    working = {o["client_order_id"] for o in s.rows("orders", plan) if o["action"] == "PLACE"}
    assert working == {cid(plan, "ENTRY"), cid(plan, "STOP"), cid(plan, "TP")}
    assert s.k.working_orders == 2
    s.tick(tp + 0.5)  # the target fills, the stop is cancelled
    s.tick(tp + 0.5)
    assert s.state(plan) == "CLOSED" and (s.k.open_brackets, s.k.working_orders) == (0, 0)
    fills = {f["role"]: f for f in s.rows("fills", plan)}
    # paper fills a limit at the better traded price: bought at the ask of the tick
    # that crossed the entry, sold at the bid of the tick through the target
    assert fills["ENTRY"]["price"] == round((e - 0.5 + 0.05) * 100) < d["entry"]
    assert fills["TAKE_PROFIT"]["price"] == round((tp + 0.5 - 0.05) * 100) > d["tp"]
    (trade,) = rows(s.ev, "trades")
    gross = q * (fills["TAKE_PROFIT"]["price"] - fills["ENTRY"]["price"])
    assert (trade["exit_reason"], trade["gross_paise"]) == ("TP", gross)
    assert s.net() == 0


def test_paper_stop_and_flatten() -> None:
    s = Paper({})
    d = s.open()
    plan = d["plan_id"]
    e, stop = d["entry"] / 100, d["stop"] / 100
    s.tick(e + 0.5)
    s.tick(e - 0.5)
    s.tick(e + 1.0)
    s.tick(stop - 0.5)  # the stop triggers and fills at market (with slippage)
    s.tick(stop - 0.5)
    assert s.state(plan) == "CLOSED"
    (trade,) = rows(s.ev, "trades")
    assert trade["exit_reason"] == "STOP" and trade["gross_paise"] < 0
    # a second bracket, flattened while open
    d2 = s.open(TOKENS[1])
    plan2 = d2["plan_id"]
    e2 = d2["entry"] / 100
    s.tick(e2 + 0.5, token=TOKENS[1])
    s.tick(e2 - 0.5, token=TOKENS[1])
    s.tick(e2 + 0.5, token=TOKENS[1])
    assert s.state(plan2) == "OPEN"
    s.k.set_trading_state("HALTED")
    extend(s.ev, s.k.flatten(s.now))
    for _ in range(10):
        s.tick(e2 + 0.5, dt_s=0.5, token=TOKENS[1])
    assert s.state(plan2) == "CLOSED"
    assert rows(s.ev, "trades")[-1]["exit_reason"] == "FLATTEN"
    assert (s.k.open_brackets, s.k.working_orders) == (0, 0)
    assert s.net() == 0
