"""Kite pacing against a fake Kite that counts request arrivals in a sliding window.

The fake refuses the 11th order request arriving within any second with HTTP
429 (as Kite does). A client that stamps its requests when it sends them has
no margin once requests arrive late; ``KiteBroker`` counts each request until
it completes, so bursts draw no 429 even with network delay on the way in.
"""

from __future__ import annotations

import asyncio
import random
from bisect import bisect_left

from aitrapp.brokers.base import OrderType
from aitrapp.kite.client import KiteRest
from aitrapp.kite.errors import KiteRateLimitError
from aitrapp.kite.rate_limit import RateLimiter

from .conftest import BrokerFactory, eventually, request
from .fake_kite import FakeKite

T0 = 1_767_240_000_000_000_000  # 2026-01-01 09:30 IST: far from the square-off


def plan(n: int) -> str:
    return f"{n:02x}" * 12  # distinct in the first 16 characters, which the tag keeps


def max_in_window(stamps: list[float], period: float = 1.0) -> int:
    """The most arrivals in any half-open window of ``period`` seconds."""
    stamps = sorted(stamps)
    return max(
        (bisect_left(stamps, t + period) - i for i, t in enumerate(stamps)),
        default=0,
    )


def order_form(n: int) -> dict[str, object]:
    return {
        "variety": "regular",
        "exchange": "NSE",
        "tradingsymbol": "RELIANCE",
        "transaction_type": "BUY",
        "quantity": 1,
        "product": "MIS",
        "order_type": "LIMIT",
        "price": "2400.00",
        "tag": f"burst{n}",
    }


def late_first(n_late: int, delay: float) -> object:
    """The first ``n_late`` order requests take ``delay`` seconds to arrive."""
    seen = [0]

    def ingress(method: str, path: str) -> float:
        if method == "GET":
            return 0.0
        seen[0] += 1
        return delay if seen[0] <= n_late else 0.0

    return ingress


async def test_the_fake_refuses_an_unpaced_burst(fake: FakeKite) -> None:
    rest = KiteRest(fake.api_key, fake.access_token, root=fake.rest_root)
    try:
        results = await asyncio.gather(
            *(rest.place_order(**order_form(i)) for i in range(15)), return_exceptions=True
        )
    finally:
        rest.close()
    refused = [r for r in results if isinstance(r, KiteRateLimitError)]
    assert len(refused) == 5 and len(fake.too_many) == 5
    assert all(a.kind == "order" for a in fake.too_many)
    assert len(fake.orders) == 10


async def test_stamping_requests_when_sent_has_no_margin(fake: FakeKite) -> None:
    """The counter-example: a limiter that counts sends lets the 11th in too early."""
    fake.ingress_delay = late_first(10, 0.3)  # type: ignore[assignment]
    limiter = RateLimiter([(10, 1.0)])
    rest = KiteRest(fake.api_key, fake.access_token, root=fake.rest_root)

    async def send(n: int) -> object:
        await limiter.acquire()  # counted at the send
        try:
            return await rest.place_order(**order_form(n))
        except KiteRateLimitError as exc:
            return exc

    try:
        results = await asyncio.gather(*(send(i) for i in range(12)))
    finally:
        rest.close()
    assert any(isinstance(r, KiteRateLimitError) for r in results)
    assert fake.too_many


async def test_counting_completions_keeps_the_margin(fake: FakeKite) -> None:
    fake.ingress_delay = late_first(10, 0.3)  # type: ignore[assignment]
    limiter = RateLimiter([(10, 1.0)])
    rest = KiteRest(fake.api_key, fake.access_token, root=fake.rest_root)

    async def send(n: int) -> object:
        async with limiter.permit():  # counted until the answer is in
            return await rest.place_order(**order_form(n))

    try:
        await asyncio.gather(*(send(i) for i in range(12)))
    finally:
        rest.close()
    assert fake.too_many == []
    assert len(fake.orders) == 12


async def test_a_burst_of_15_orders_draws_no_429(
    fake: FakeKite, make_broker: BrokerFactory
) -> None:
    jitter = random.Random(14)  # seeded network delay, up to 80 ms on the way in
    fake.ingress_delay = lambda method, path: jitter.uniform(0.0, 0.08)
    broker = await make_broker()
    ids = await asyncio.gather(
        *(broker.place_order(request("ENTRY", plan=plan(i))) for i in range(15))
    )
    assert fake.too_many == [] and broker.stats["rate_limited"] == 0
    assert len(set(ids)) == 15 and not any(i.startswith("REJECTED") for i in ids)
    assert len({form["tag"] for form in fake.placed()}) == 15
    assert max_in_window(fake.order_arrivals()) <= 10
    assert len(fake.placed()) == 15


async def test_a_stop_goes_ahead_of_queued_entries(
    fake: FakeKite, make_broker: BrokerFactory
) -> None:
    broker = await make_broker()
    entries = [
        asyncio.create_task(broker.place_order(request("ENTRY", plan=plan(i)))) for i in range(25)
    ]
    await eventually(lambda: broker._limiter.queued == 15)
    stop = request(
        "STOP", plan=plan(99), side="SELL", order_type=OrderType.SLM, price=None, trigger=248_000
    )
    await broker.place_order(stop)
    await asyncio.gather(*entries)
    tags = [form["tag"] for form in fake.placed()]
    # First in, first out would send it last (index 25). It goes right after the
    # first window's ten entries (under load a window may open on its way in),
    # ahead of at least the ten entries queued last.
    assert 10 <= tags.index(stop.tag) < 15
    assert fake.too_many == []
    assert max_in_window(fake.order_arrivals()) <= 10
