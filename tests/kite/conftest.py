"""Fixtures: a fake Kite per test, core instruments for it, broker factories, helpers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from aitrapp import Instrument, broker_tag, order_client_id
from aitrapp.brokers.base import OrderRequest, OrderStatus, OrderType, OrderUpdate
from aitrapp.brokers.kite import KiteBroker

from .fake_kite import FakeKite

PLAN = "0123456789abcdef01234567"
RELIANCE = 738561
NIFTY_FUT = 13_238_786


@pytest.fixture
async def fake() -> AsyncIterator[FakeKite]:
    async with FakeKite() as f:
        yield f


@pytest.fixture
def instruments(fake: FakeKite) -> dict[int, Instrument]:
    out = {}
    for i in fake.instruments.values():
        if i.segment == "INDICES":
            continue
        out[i.instrument_token] = Instrument(
            exchange=i.exchange,
            tradingsymbol=i.tradingsymbol,
            instrument_token=i.instrument_token,
            segment="FUT" if i.instrument_type == "FUT" else "EQ",
            tick_size=i.tick_paise / 100,
            lot_size=i.lot_size,
            freeze_qty=i.freeze_qty,
        )
    return out


BrokerFactory = Callable[..., Awaitable[KiteBroker]]


@pytest.fixture
async def make_broker(
    fake: FakeKite, instruments: dict[int, Instrument]
) -> AsyncIterator[BrokerFactory]:
    brokers: list[KiteBroker] = []

    async def factory(**kw: Any) -> KiteBroker:
        settings: dict[str, Any] = {
            "api_key": fake.api_key,
            "access_token": fake.access_token,
            "instruments": instruments,
            "api_root": fake.rest_root,
            "ws_root": fake.ws_root,
            "poll_interval": 0.2,
            "retry_backoff": 0.01,
            "confirm_delay": 0.05,
            "ws_backoff_initial": 0.02,
            "ws_stale_after": 5.0,
        }
        settings.update(kw)
        broker = KiteBroker(**settings)
        await broker.start()
        brokers.append(broker)
        return broker

    yield factory
    for b in brokers:
        await b.stop()


def request(
    role: str = "ENTRY",
    *,
    plan: str = PLAN,
    side: str = "BUY",
    qty: int = 10,
    order_type: OrderType = OrderType.LIMIT,
    price: int | None = 250_000,
    trigger: int | None = None,
    token: int = RELIANCE,
    market_protection: float | None = None,
    tag: str | None = None,
) -> OrderRequest:
    cid = order_client_id(role, plan)
    symbol, exchange = {RELIANCE: ("RELIANCE", "NSE"), NIFTY_FUT: ("NIFTY26JANFUT", "NFO")}[token]
    return OrderRequest(
        client_order_id=cid,
        tag=tag if tag is not None else broker_tag(cid),
        exchange=exchange,
        tradingsymbol=symbol,
        instrument_token=token,
        side=side,  # type: ignore[arg-type]
        quantity=qty,
        order_type=order_type,
        price_paise=price,
        trigger_paise=trigger,
        market_protection=market_protection,
    )


async def wait_update(
    broker: KiteBroker,
    pred: Callable[[OrderUpdate], bool],
    *,
    within: float = 5.0,
    seen: list[OrderUpdate] | None = None,
) -> OrderUpdate:
    """The first update matching ``pred`` (others are appended to ``seen``)."""
    async with asyncio.timeout(within):
        async for u in broker.updates():
            if seen is not None:
                seen.append(u)
            if pred(u):
                return u
    raise AssertionError("updates() ended")


def is_(order_id: str, status: OrderStatus) -> Callable[[OrderUpdate], bool]:
    return lambda u: u.order_id == order_id and u.status is status


async def eventually(cond: Callable[[], bool], *, within: float = 5.0) -> None:
    """Polls ``cond`` every 10 ms; fails after ``within`` seconds."""
    for _ in range(int(within / 0.01)):
        if cond():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"condition still false after {within}s")
