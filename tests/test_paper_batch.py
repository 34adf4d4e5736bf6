"""The columnar replay path (`on_ticks`) gives exactly what `on_tick` per row gives."""

from __future__ import annotations

import contextlib
import random
from typing import Any

import numpy as np
import pytest

from aitrapp.brokers.base import BrokerError, OrderType, OrderUpdate, Validity
from aitrapp.brokers.paper import PaperBroker
from aitrapp.ticks import Tick
from test_paper_support import EQ, FUT, MS, OPT, PENNY, SEC, T0, Columns, broker, req

# token -> (start price in rupees, tick in rupees, lot)
MARKETS = {
    EQ: (2500.0, 0.05, 1),
    FUT: (24000.0, 0.10, 65),
    OPT: (120.0, 0.05, 65),
    PENNY: (9.5, 0.01, 1),
}


def random_ticks(rng: random.Random, start_ns: int, n: int, state: dict[int, Any]) -> list[Tick]:
    """``n`` merged ticks: random walks on the tick grid, sometimes one-sided or
    missing depth, sometimes a bad price, volume mostly rising."""
    out = []
    ts = start_ns
    for _ in range(n):
        ts += rng.choice((0, 1 * MS, 7 * MS, 120 * MS, 900 * MS))
        token = rng.choice(list(MARKETS))
        _, tick_size, _ = MARKETS[token]
        px, vol = state[token]
        px = max(tick_size, round(px + rng.randint(-3, 3) * tick_size, 2))
        vol += rng.choice((0, 0, 10, 65, 130, 1000))
        state[token] = (px, vol)
        spread = rng.randint(1, 3) * tick_size
        shape = rng.random()
        if shape < 0.1:
            bid: float | None = None
            ask: float | None = None
        elif shape < 0.15:
            bid, ask = float("nan"), round(px + spread, 2)
        else:
            bid, ask = round(px - spread, 2), round(px + spread, 2)
        last = px if rng.random() > 0.02 else rng.choice((0.0, float("nan")))
        out.append(Tick(token, ts, last, rng.randint(1, 200), vol, bid, ask))
    return out


def random_order(rng: random.Random, state: dict[int, Any], k: int) -> Any:
    token = rng.choice(list(MARKETS))
    _, tick_size, lot = MARKETS[token]
    px, _ = state[token]
    tick_p = round(tick_size * 100)
    ref = round(px * 100) // tick_p * tick_p
    side = rng.choice(("BUY", "SELL"))
    kind = rng.choice((OrderType.MARKET, OrderType.LIMIT, OrderType.SL, OrderType.SLM))
    off = rng.randint(-6, 6) * tick_p
    away = rng.randint(1, 6) * tick_p * (1 if side == "BUY" else -1)
    fields: dict[str, Any] = {
        "token": token,
        "validity": Validity.IOC if rng.random() < 0.15 else Validity.DAY,
        "mp": -1,
    }
    if kind is OrderType.LIMIT:
        fields["price"] = max(tick_p, ref + off)
    if kind in (OrderType.SL, OrderType.SLM):
        fields["trigger"] = max(tick_p, ref + away)
    if kind is OrderType.SL:
        fields["price"] = max(tick_p, fields["trigger"] + (away if rng.random() < 0.8 else -away))
    fields.update(client_order_id=f"{k:024x}:ENTRY", tag=f"t{k}")
    return req(side, lot * rng.randint(1, 3), kind, **fields)


async def play(b: PaperBroker, seed: int, *, columnar: bool) -> list[OrderUpdate]:
    rng = random.Random(seed)
    state = {t: (p, 1000) for t, (p, _, _) in MARKETS.items()}
    ts = T0
    ids: list[str] = []
    out: list[OrderUpdate] = []
    for _ in range(12):
        chunk = random_ticks(rng, ts, rng.randint(0, 250), state)
        if chunk:
            ts = chunk[-1].ts_ns
        if columnar:
            b.on_ticks(Columns.of(chunk))
        else:
            for t in chunk:
                b.on_tick(t)
        for _ in range(rng.randint(0, 4)):
            action = rng.random()
            if action < 0.7 or not ids:
                ids.append(await b.place_order(random_order(rng, state, len(ids))))
            elif action < 0.85:
                with contextlib.suppress(BrokerError):  # e.g. already filled
                    await b.cancel_order(rng.choice(ids))
            else:
                with contextlib.suppress(BrokerError):
                    await b.modify_order(rng.choice(ids), order_type=OrderType.MARKET)
        if rng.random() < 0.2:
            ts += 3 * SEC
            b.advance_time(ts)
        out += b.drain_updates()
    b.feed_ended()
    return out + b.drain_updates()


@pytest.mark.parametrize("seed", range(30))
async def test_columnar_replay_matches_tick_by_tick(seed: int) -> None:
    cfg: dict[str, Any] = {"max_orders_per_second": None}
    if seed % 3 == 1:
        cfg.update(participation_pct=20.0, fill_latency_ns=30 * MS)
    if seed % 3 == 2:
        cfg.update(ack_latency_ns=0, no_tick_wait_ns=500 * MS)
    a, b = broker(**cfg), broker(**cfg)
    one_by_one = await play(a, seed, columnar=False)
    columnar = await play(b, seed, columnar=True)
    assert one_by_one == columnar
    assert await a.orders() == await b.orders()
    assert await a.positions() == await b.positions()
    assert (a.now_ns, a.bad_ticks) == (b.now_ns, b.bad_ticks)
    assert any(u.filled_quantity for u in one_by_one)  # the scenario exercises fills


async def test_out_of_order_batch_is_taken_row_by_row() -> None:
    a, b = broker(), broker()
    ticks = [
        Tick(EQ, T0 + 2 * SEC, 100.0, 1, 10, 99.95, 100.05),
        Tick(EQ, T0 + 1 * SEC, 90.0, 1, 20, 89.95, 90.05),  # older: dropped
        Tick(FUT, T0 + 1 * SEC, 24000.0, 1, 20, 23999.9, 24000.1),
    ]
    for t in ticks:
        a.on_tick(t)
    b.on_ticks(Columns.of(ticks))
    assert a.bad_ticks == b.bad_ticks == 1
    order = req("BUY", 1, OrderType.MARKET, mp=-1)
    for x in (a, b):
        await x.place_order(order)
        x.feed_ended()
    assert a.drain_updates() == b.drain_updates()
    assert (await b.orders())[0].average_price == 100.1


async def test_folded_rows_keep_the_last_valid_quote() -> None:
    b = broker()
    nan = float("nan")
    cols = Columns(
        token=np.array([EQ, EQ, EQ], np.uint32),
        ts_ns=np.array([T0, T0 + 1, T0 + 2], np.int64),
        last_price=np.array([100.0, 101.0, nan]),
        last_qty=np.zeros(3, np.int64),
        volume=np.zeros(3, np.int64),
        bid=np.array([99.95, 100.95, nan]),
        ask=np.array([100.05, 101.05, nan]),
    )
    b.on_ticks(cols)
    assert b.bad_ticks == 1 and b.now_ns == T0 + 1
    await b.place_order(req("BUY", 1, OrderType.MARKET, mp=-1))
    b.feed_ended()
    assert b.drain_updates()[-1].average_price == 101.1  # 101.05 + 5 bp -> 101.10


async def test_feeds_tick_batch_is_accepted() -> None:
    feeds = pytest.importorskip("aitrapp.feeds.base")
    ticks = [Tick(EQ, T0 + k, 100.0 + k / 20, 1, k, None, None) for k in range(5)]
    b = broker()
    b.on_ticks(feeds.TickBatch.from_ticks(ticks))
    a = broker()
    for t in ticks:
        a.on_tick(t)
    assert a.now_ns == b.now_ns == T0 + 4
    order = req("SELL", 1, OrderType.MARKET, mp=-1)
    for x in (a, b):
        await x.place_order(order)
        x.feed_ended()
    assert a.drain_updates() == b.drain_updates()


def test_columns_of_different_lengths_are_refused() -> None:
    b = broker()
    cols = Columns.of([Tick(EQ, T0, 100.0, 1, 10, 99.95, 100.05)])
    bad = Columns(
        token=cols.token,
        ts_ns=np.array([T0, T0 + 1], np.int64),
        last_price=cols.last_price,
        last_qty=cols.last_qty,
        volume=cols.volume,
        bid=cols.bid,
        ask=cols.ask,
    )
    with pytest.raises(ValueError, match="same length"):
        b.on_ticks(bad)
    assert b.now_ns == 0  # nothing was applied
