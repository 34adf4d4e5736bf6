"""Repeated, reordered and partial broker reports into the LIVE kernel, against a
real database.

The shell is the production one (``LiveKernelDriver``: reports go into the
kernel, which drops repeats and stale reorders; its event batches become the
``order_events``, ``orders`` and ``fills`` rows). The orders are the fake
Kite's (its ids are Kite's numeric ones, which key the fills); the test hands
the driver Kite-shaped reports itself, in the order it wants, for the
adopted bracket's target (10 to sell at 2540.00). Kite's reports carry the
cumulative fill and average only; a fill's own price is derived from the
change of the cumulative average, on the paisa (every exchange price is).

Promises of the order watcher's tests, checked on the kernel
(``old_file::old_test -> new test``):

- tests/sessions/test_watcher.py::test_a_partial_then_complete_fill_is_recorded_step_by_step
  -> test_a_partial_then_complete_fill_is_recorded_step_by_step
- tests/sessions/test_watcher.py::test_stale_and_reordered_updates_are_kept_but_not_dispatched
  -> test_stale_and_reordered_reports_change_nothing (not acted on) and
  test_stale_and_reordered_reports_are_kept_as_evidence (every report an
  order_events row, in exchange time)
- tests/sessions/test_watcher.py::test_fill_price_is_derived_from_the_cumulative_average
  -> test_fill_price_is_derived_from_the_cumulative_average
- tests/sessions/test_watcher.py::test_a_missed_update_is_not_priced_at_the_last_partial_fill
  -> test_a_missed_report_is_not_priced_at_the_last_partial_fill
- tests/sessions/test_watcher.py::test_a_repeat_after_a_restart_lands_once
  -> test_a_repeat_after_a_restart_lands_once
- tests/sessions/test_watcher.py::test_a_rejection_is_dispatched_without_a_fill
  -> test_a_rejection_reaches_the_kernel_without_a_fill
- tests/sessions/test_watcher.py::test_an_order_we_did_not_place_is_recorded_by_broker_id
  -> test_an_order_we_did_not_place_changes_nothing (ignored, ours untouched)
  and test_an_order_we_did_not_place_is_recorded_by_broker_id (its fill by
  the broker's id)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest

from aitrapp import Instrument, broker_tag
from aitrapp.brokers.base import OrderStatus, OrderType, OrderUpdate
from aitrapp.brokers.kite import KiteBroker
from aitrapp.db import repo
from aitrapp.db.pool import Pool
from aitrapp.db.repo import OrderRow

from .conftest import RELIANCE
from .fake_kite import FakeKite
from .live_rig import SEC, T0, LiveRig, adopt, cid, earlier_process, live_rig

pytestmark = pytest.mark.integration

TP = cid(1, "TP")
# Exchange times a minute before the kernel's clock (reports are applied at them).
TS0 = datetime.fromtimestamp((T0 - 60 * SEC) / 1e9, UTC)


@dataclass
class Env:
    fake: FakeKite
    rig: LiveRig
    ids: dict[str, str]
    instruments: dict[int, Instrument]
    make_broker: Callable[..., Awaitable[KiteBroker]]

    def update(
        self,
        status: str,
        filled: int,
        avg: float = 0.0,
        *,
        qty: int = 10,
        last_fill_qty: int = 0,
        last_fill_price: float | None = None,
        client_order_id: str | None = TP,
        order_id: str | None = None,
        seconds: int = 0,
    ) -> OrderUpdate:
        """A Kite-shaped report: cumulative ``filled`` and ``avg`` over all fills so far."""
        st = OrderStatus(status)
        return OrderUpdate(
            order_id=order_id or self.ids["TP"],
            client_order_id=client_order_id,
            tag=broker_tag(client_order_id) if client_order_id else None,
            status=st,
            exchange="NSE",
            tradingsymbol="RELIANCE",
            instrument_token=RELIANCE,
            side="SELL",
            order_type=OrderType.LIMIT,
            quantity=qty,
            filled_quantity=filled,
            pending_quantity=0 if st.is_terminal else qty - filled,
            cancelled_quantity=qty - filled if st is OrderStatus.CANCELLED else 0,
            average_price=avg,
            price=2540.0,
            status_message="rejected: margin" if st is OrderStatus.REJECTED else None,
            exchange_timestamp=TS0 + timedelta(seconds=seconds),
            last_fill_qty=last_fill_qty,
            last_fill_price=last_fill_price,
        )

    async def feed(self, *updates: OrderUpdate, rig: LiveRig | None = None) -> None:
        r = rig or self.rig
        for u in updates:
            r.live.on_update(u)
        await r.live.drain()
        async with asyncio.timeout(10):
            await r.writer.flush()

    async def fills(self, c: str = TP) -> list[tuple[int, Decimal]]:
        return [(f.qty, f.price) for f in await repo.list_fills(self.rig.pool, client_order_id=c)]

    async def order(self, c: str = TP) -> OrderRow:
        row = await repo.get_order(self.rig.pool, c)
        assert row is not None
        return row

    async def restarted(self) -> LiveRig:
        """Another process over the same database and account, adopting the bracket."""
        rig = await live_rig(
            await self.make_broker(), self.rig.pool, self.instruments, consume=False
        )
        await adopt(rig, self.instruments[RELIANCE], 1, self.ids)
        await rig.live.drain()
        return rig


@pytest.fixture
async def env(
    fake: FakeKite,
    make_broker: Callable[..., Awaitable[KiteBroker]],
    instruments: dict[int, Instrument],
    db_pool: Pool,
) -> AsyncIterator[Env]:
    fake.set_ltp(RELIANCE, "2500.00")
    rig = await live_rig(await make_broker(), db_pool, instruments, consume=False)
    ids = await earlier_process(rig.earlier, instruments[RELIANCE], 1)
    await adopt(rig, instruments[RELIANCE], 1, ids)
    await rig.live.drain()
    e = Env(fake, rig, ids, instruments, make_broker)
    try:
        yield e
    finally:
        await rig.close()


def _taken(e: Env) -> list[tuple[str, int]]:
    """The reports the kernel took for the target (its order events), in order."""
    return [
        (u["status"], u["filled_qty"])
        for u in e.rig.live.rows("updates")
        if u["client_order_id"] == TP
    ]


async def test_a_partial_then_complete_fill_is_recorded_step_by_step(env: Env) -> None:
    await env.feed(
        env.update("OPEN", 0),  # what the adoption already knew: a repeat
        env.update("OPEN", 4, 2540.0, last_fill_qty=4, last_fill_price=2540.0, seconds=1),
        env.update("COMPLETE", 10, 2540.03, last_fill_qty=6, last_fill_price=2540.05, seconds=2),
    )
    assert _taken(env) == [("OPEN", 4), ("COMPLETE", 10)]
    assert await env.fills() == [(4, Decimal("2540.0000")), (6, Decimal("2540.0500"))]
    row = await env.order()
    assert (row.status, row.filled_qty, row.avg_price) == ("COMPLETE", 10, Decimal("2540.0300"))
    assert row.broker_order_id == env.ids["TP"]
    # The kernel acted on each: the stop shrank to 6, then went with the bracket.
    stop = env.fake.order(env.ids["STOP"])
    assert (stop["quantity"], stop["status"]) == (6, "CANCELLED")


async def test_stale_and_reordered_reports_change_nothing(env: Env) -> None:
    live = env.rig.live
    await env.feed(
        env.update("OPEN", 7, 2540.0, seconds=20),
        env.update("OPEN", 4, 2540.0, seconds=10),  # late
    )
    assert _taken(env) == [("OPEN", 7)]
    assert (await env.order()).filled_qty == 7  # the stale report changed nothing
    assert env.fake.order(env.ids["STOP"])["quantity"] == 3
    await env.feed(
        env.update("COMPLETE", 10, 2540.0, seconds=30),
        env.update("OPEN", 9, 2540.0, seconds=25),  # news from before the end, after it
        env.update("CANCELLED", 10, 2540.0, seconds=40),  # nothing follows a terminal status
    )
    assert _taken(env) == [("OPEN", 7), ("COMPLETE", 10)]
    assert live.reports_ignored == 3
    row = await env.order()
    assert (row.status, row.filled_qty) == ("COMPLETE", 10)
    assert await env.fills() == [(7, Decimal("2540.0000")), (3, Decimal("2540.0000"))]


async def test_stale_and_reordered_reports_are_kept_as_evidence(env: Env) -> None:
    await env.feed(
        env.update("OPEN", 7, 2540.0, seconds=20),
        env.update("OPEN", 4, 2540.0, seconds=10),
        env.update("COMPLETE", 10, 2540.0, seconds=30),
        env.update("OPEN", 9, 2540.0, seconds=25),
        env.update("CANCELLED", 10, 2540.0, seconds=40),
    )
    # History is evidence: every message is in order_events, stale ones included.
    events = [e for e in await repo.list_order_events(env.rig.pool, TP) if e.ts >= TS0]
    assert [e.filled_qty for e in events] == [4, 7, 9, 10, 10]  # in exchange time


async def test_fill_price_is_derived_from_the_cumulative_average(env: Env) -> None:
    # Kite postbacks carry no per-fill price: only the cumulative average.
    await env.feed(env.update("OPEN", 3, 2540.05), env.update("COMPLETE", 10, 2540.10, seconds=1))
    # (2540.10 * 10 - 2540.05 * 3) / 7 = 17780.85 / 7, on the paisa (half up)
    exact = Decimal("17780.85") / 7
    derived = exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert derived == Decimal("2540.12")
    assert await env.fills() == [(3, Decimal("2540.0500")), (7, derived)]
    fills = await repo.list_fills(env.rig.pool, client_order_id=TP)
    total = sum(f.qty * f.price for f in fills)
    # The average holds to the paisa of each fill's price.
    assert abs(total - Decimal("2540.10") * 10) <= Decimal("0.005") * 7


async def test_a_missed_report_is_not_priced_at_the_last_partial_fill(env: Env) -> None:
    # The 4-share report was lost; the next says 10 filled, the last 6 of them at 2541.
    await env.feed(env.update("COMPLETE", 10, 2540.40, last_fill_qty=6, last_fill_price=2541.0))
    assert await env.fills() == [(10, Decimal("2540.4000"))]


async def test_a_repeat_after_a_restart_lands_once(env: Env) -> None:
    full = env.update("COMPLETE", 10, 2540.0, last_fill_qty=10, last_fill_price=2540.0)
    await env.feed(env.update("OPEN", 0), full)
    again = await env.restarted()  # the process restarts; the broker replays the day
    try:
        await env.feed(env.update("OPEN", 0), full, rig=again)
        assert again.live.reports == 1  # the new kernel took the fill...
    finally:
        await again.close()
    assert await env.fills() == [(10, Decimal("2540.0000"))]  # ...and it landed once
    row = await env.order()
    assert (row.status, row.filled_qty) == ("COMPLETE", 10)


async def test_a_rejection_reaches_the_kernel_without_a_fill(env: Env) -> None:
    await env.feed(env.update("REJECTED", 0))
    assert _taken(env) == [("REJECTED", 0)]
    assert "TAKE_PROFIT_LOST" in env.rig.codes()  # the stop still protects
    assert await env.fills() == []
    row = await env.order()
    assert (row.status, row.status_message) == ("REJECTED", "rejected: margin")


async def test_an_order_we_did_not_place_changes_nothing(env: Env) -> None:
    live = env.rig.live
    before = (live.reports, len(live.events))
    await env.feed()  # the acknowledgements written first
    ours = await env.order()
    other = env.update("COMPLETE", 5, 99.5, qty=5, client_order_id=None, order_id="manual-1")
    await env.feed(other)
    assert (live.reports, len(live.events)) == before  # not a bracket order
    assert live.reports_ignored == 1
    row = await env.order()  # our own order is untouched
    assert (row.status, row.filled_qty, row.updated_at) == (
        ours.status,
        ours.filled_qty,
        ours.updated_at,
    )


async def test_an_order_we_did_not_place_is_recorded_by_broker_id(env: Env) -> None:
    other = env.update("COMPLETE", 5, 99.5, qty=5, client_order_id=None, order_id="manual-1")
    await env.feed(other)
    fills = await env.rig.pool.fetch("SELECT * FROM fills WHERE broker_order_id = 'manual-1'")
    assert [(f["qty"], f["price"], f["client_order_id"]) for f in fills] == [
        (5, Decimal("99.5000"), None)
    ]
