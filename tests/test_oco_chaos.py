"""Random sessions against a misbehaving broker: updates reordered, duplicated
(and so stale), delayed in bursts; placements rejected; calls that fail with
an unknown outcome; orders cancelled by the exchange. Whatever happens, a
flatten leaves every bracket terminal, the broker flat with no working order,
no client id placed twice, and the reported PnL equal to the broker's."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import Callable

import pytest

from aitrapp import Instrument
from aitrapp.brokers.base import OrderRequest
from aitrapp.oco import BracketResult, BracketSpec, OcoAlert, OCOManager, TransitionRecord
from fakes import FakeBroker

IST_0930 = 1_767_240_000_000_000_000
SEC = 1_000_000_000
MIN = 60 * SEC
TOKEN = 13_238_786
LOT = 25


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def instrument() -> Instrument:
    return Instrument(
        exchange="NFO",
        tradingsymbol="TESTFUT",
        instrument_token=TOKEN,
        segment="FUT",
        tick_size="0.05",
        lot_size=LOT,
        freeze_qty=1_800,
    )


def role_is(code: str) -> Callable[[OrderRequest], bool]:
    """Matches requests whose broker tag has role code `code` (after the plan prefix)."""
    return lambda q: code in q.tag[16:]


def random_spec(rng: random.Random, n: int) -> BracketSpec:
    side = rng.choice(["BUY", "SELL"])
    s = 1 if side == "BUY" else -1
    entry = 250_000 + s * rng.choice([-100, 0, 100])
    return BracketSpec(
        plan_id=f"{rng.getrandbits(96):024x}",
        instrument=instrument(),
        side=side,
        qty=LOT * rng.randint(1, 4),
        entry_price=f"{entry / 100:.2f}",
        stop=f"{(entry - s * 1_000) / 100:.2f}",
        take_profit=f"{(entry + s * 2_000) / 100:.2f}",
        entry_type=rng.choice(["LIMIT", "LIMIT", "MARKET"]),
        stop_type=(stop_type := rng.choice(["SL-M", "SL"])),
        stop_limit_buffer_ticks=2 if stop_type == "SL" else 0,
        scale_out=rng.random() < 0.4,
        trail_atr_mult=rng.choice([None, 1.5]),
        time_stop_minutes=rng.choice([None, 20.0]),
        max_modifications=rng.choice([4, 25]),
    )


async def run_session(seed: int) -> None:
    rng = random.Random(seed)
    clock = Clock(IST_0930 + rng.randrange(0, 5 * 3600) * SEC)
    broker = FakeBroker(seed=seed, reorder=True, duplicate_rate=0.3, clock=clock)
    broker.set_price(TOKEN, 250_000)
    transitions: dict[str, list[int]] = defaultdict(list)
    results: dict[str, BracketResult] = {}
    alerts: list[OcoAlert] = []

    async def on_transition(r: TransitionRecord) -> None:
        transitions[r.bracket_id].append(r.seq)

    async def on_terminal(r: BracketResult) -> None:
        results[r.bracket_id] = r

    async def on_alert(a: OcoAlert) -> None:
        alerts.append(a)

    mgr = OCOManager(
        broker,
        clock=clock,
        on_transition=on_transition,
        on_terminal=on_terminal,
        on_alert=on_alert,
        retry_delay_s=0.0,
    )
    pump = asyncio.get_running_loop().create_task(mgr.pump(broker.updates()))
    try:
        for n in range(rng.randint(1, 3)):
            await mgr.open_bracket(random_spec(rng, n))
        price = 250_000
        for _ in range(rng.randint(10, 60)):
            r = rng.random()
            live = broker.live_orders()
            if r < 0.30 and live:
                o = rng.choice(live)
                lots = o.remaining // LOT
                qty = LOT * rng.randint(1, lots) if lots else o.remaining
                broker.fill(o.order_id, qty, price if o.req.order_type.value == "MARKET" else None)
            elif r < 0.42:
                price = max(240_000, min(260_000, price + 5 * rng.randint(-200, 200)))
                broker.set_price(TOKEN, price, match_resting=rng.random() < 0.5)
                await mgr.on_price(TOKEN, price / 100, atr=rng.choice([None, 5.0, 10.0]))
            elif r < 0.50:
                broker.hold()
            elif r < 0.60:
                broker.release()
            elif r < 0.64:
                suffix = rng.choice(["SL", "TP", "EX", "EN"])
                broker.reject_when(role_is(suffix), f"no {suffix} today")
            elif r < 0.70:
                op = rng.choice(["place", "modify", "cancel", "find_by_tag"])
                broker.fail_next(op, applied=rng.random() < 0.5)
            elif r < 0.82:
                clock.now += rng.randint(0, 4 * MIN)
                await mgr.advance_time()
            elif r < 0.86 and live:
                broker.cancel_externally(rng.choice(live).order_id)
            else:
                await asyncio.sleep(0)
            if rng.random() < 0.3:
                await broker.settled() if broker.undelivered() == 0 else await asyncio.sleep(0)
        # Wind everything down on a broker that behaves again.
        broker.release()
        broker.clear_rules()
        clock.now += 10 * SEC  # past any exit back-off
        await mgr.flatten(timeout_s=20, tick_s=0.01)
        await broker.settled()
    finally:
        pump.cancel()

    snaps = mgr.brackets()
    assert all(s.is_terminal for s in snaps), snaps
    assert broker.live_orders() == []
    assert broker.net_position(TOKEN) == 0
    placed = {q.client_order_id for q in broker.requests}
    assert all(broker.placements(c) == 1 for c in placed), "a client id was placed twice"
    for s in snaps:
        assert transitions[s.bracket_id] == list(range(len(transitions[s.bracket_id])))
        assert s.net_qty == 0
    # PnL from the machine's fills agrees with the broker's own (averages are
    # carried in paise: up to half a paisa per unit and order of rounding).
    reported = sum(r.realized_pnl_paise or 0 for r in results.values())
    tolerance = sum(o.filled for o in broker.orders_by_id.values())
    assert abs(reported - broker.gross_pnl_paise(TOKEN)) <= tolerance
    assert set(results) == {s.bracket_id for s in snaps}
    machine_errors = [a for a in alerts if a.code in ("MACHINE_ERROR", "EXECUTION_ERROR")]
    assert machine_errors == []


@pytest.mark.parametrize("seed", range(60))
async def test_random_session_ends_flat(seed: int) -> None:
    await run_session(seed)
