"""Random LIVE sessions on the trading kernel against a misbehaving broker:
reports reordered, duplicated (and so stale), delayed in bursts; placements
rejected; calls that fail with an unknown outcome (applied or not); orders
cancelled by the exchange; time jumping minutes at once. Plans are the
kernel's own decisions on a seeded random walk (SYNTHETIC prices) over three
instruments, with a random bracket template. Whatever happens, a kill switch
(HALTED, then flatten) leaves every bracket terminal, the broker flat with no
working order, no client id placed twice, every plan's walk well formed, and
the kernel's booked P&L equal to the broker's for the kernel's own orders.

Mapping (old test -> new test):

test_oco_chaos.py::test_random_session_ends_flat -> test_random_live_session_ends_flat
"""

from __future__ import annotations

import asyncio
import json
import random

import pytest

from aitrapp.kernel.events import rows
from fakes import FakeBroker

from .live_env import MIN, SEC, T0, TOKENS, Clock, Env, make_env

# Orders the shell places itself (squaring an order the kernel was told is absent)
# are numbered EXIT99 downwards; their P&L is not a bracket's.
_SHELL_EXIT = ":EXIT9"


def role_is(code: str) -> object:
    """Matches requests whose broker tag has role code ``code`` (after the plan prefix)."""
    return lambda q: code in q.tag[16:]


def random_template(rng: random.Random) -> str:
    stop_type = rng.choice(["SL-M", "SL"])
    return json.dumps(
        {
            "entry_type": rng.choice(["LIMIT", "LIMIT", "MARKET"]),
            "stop_type": stop_type,
            "stop_limit_buffer_ticks": 2 if stop_type == "SL" else 0,
            "scale_out": rng.random() < 0.4,
            "trail_atr_mult": rng.choice([None, 1.5]),
            "time_stop_s": rng.choice([None, 1200.0]),
            "max_modifications": rng.choice([4, 25]),
        }
    )


async def wind_down(env: Env) -> None:
    """The broker behaves again; the kill switch: HALTED, then every bracket exits."""
    b = env.broker
    b.release()
    b.clear_rules()
    await env.advance(10 * SEC)  # past any exit back-off
    env.kernel.set_trading_state("HALTED")
    env.driver.flatten(env.clock.now)
    for _ in range(200):
        await env.settle()
        if not env.kernel.open_brackets and not b.live_orders():
            return
        await env.advance(SEC)


async def run_session(seed: int) -> None:
    rng = random.Random(seed)
    start = T0 - 30 * MIN + rng.randrange(0, 4 * 3600) * SEC  # 09:30 .. 13:30 IST
    clock = Clock(start)
    broker = FakeBroker(seed=seed, reorder=True, duplicate_rate=0.3, clock=clock)
    env = await make_env(bracket=random_template(rng), broker=broker, start=start)
    env.clock = clock
    price = dict.fromkeys(TOKENS, 144_000)
    for t in TOKENS:
        broker.set_price(t, price[t])
    holding = False
    try:
        await env.open(rng.choice(TOKENS), settle=False)  # one bracket at least
        for _ in range(rng.randint(60, 160)):
            r = rng.random()
            live = broker.live_orders()
            if r < 0.25 and live:
                o = rng.choice(live)
                qty = rng.randint(1, o.remaining)
                px = price[o.req.instrument_token] if o.req.order_type.value == "MARKET" else None
                broker.fill(o.order_id, qty, px)
            elif r < 0.50:
                t = rng.choice(TOKENS)
                price[t] = max(120_000, min(170_000, price[t] + 5 * rng.randint(-60, 60)))
                broker.set_price(t, price[t], match_resting=rng.random() < 0.5)
                env.tick(t, price[t] / 100, dt_s=rng.choice([0.2, 1.0, 15.0]))
            elif r < 0.56:
                broker.hold()
                holding = True
            elif r < 0.64:
                broker.release()
                holding = False
            elif r < 0.67:
                suffix = rng.choice(["SL", "TP", "EX", "EN"])
                broker.reject_when(role_is(suffix), f"no {suffix} today")  # type: ignore[arg-type]
            elif r < 0.72:
                op = rng.choice(["place", "modify", "cancel", "find_by_tag"])
                broker.fail_next(op, applied=rng.random() < 0.5)
            elif r < 0.82:
                clock.now += rng.randint(0, 4 * MIN)
                env.driver.advance_time(clock.now)
            elif r < 0.85 and live:
                broker.cancel_externally(rng.choice(live).order_id)
            await asyncio.sleep(0)
            if rng.random() < 0.3 and not holding:
                await env.settle()
        await wind_down(env)
    finally:
        await env.close()

    assert env.driver.error is None
    decisions = {d["plan_id"] for d in rows(env.events, "decisions")}
    assert decisions, "the session opened no bracket"
    assert (env.kernel.open_brackets, env.kernel.working_orders) == (0, 0)
    assert broker.live_orders() == []
    assert all(broker.net_position(t) == 0 for t in TOKENS)
    placed = {q.client_order_id for q in broker.requests}
    assert all(broker.placements(c) == 1 for c in placed), "a client id was placed twice"
    for plan in decisions:
        walk = env.rows("transitions", plan)
        assert (walk[0]["from"], walk[0]["to"]) == ("NEW", "PENDING")
        assert walk[-1]["to"] in ("CLOSED", "CANCELLED"), walk[-1]
        assert all(o["step"] < len(walk) for o in env.rows("orders", plan))
    # The kernel's booked P&L is the broker's for the kernel's own orders (averages
    # are carried in paise: up to one paisa per unit of rounding).
    absent = set(env.driver.orphans.absent)  # told REJECTED; squared by the shell if they filled
    ours = [
        o
        for o in broker.orders_by_id.values()
        if o.req.client_order_id not in absent and _SHELL_EXIT not in o.req.client_order_id
    ]
    broker_pnl = sum(o.value_paise if o.req.side == "SELL" else -o.value_paise for o in ours)
    booked = sum(t["gross_paise"] for t in env.rows("trades"))
    assert abs(booked - broker_pnl) <= sum(o.filled for o in ours)
    traded = {f["plan_id"] for f in env.rows("fills") if f["role"] == "ENTRY"}
    assert {t["plan_id"] for t in env.rows("trades")} == traded
    errors = [a for a in env.rows("alerts") if a["code"] in ("OCO_ERROR", "KERNEL_LOOP")]
    assert errors == []


@pytest.mark.parametrize("seed", range(60))
async def test_random_live_session_ends_flat(seed: int) -> None:
    await run_session(seed)
