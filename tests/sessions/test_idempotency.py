"""One decision, one order: duplicates, retries, races and restarts never place twice.

The write-ahead journal (unique ``client_order_id``) is given the same input
twice and must act once; the same day run again into the same database places
nothing. The other parts of that promise live where their code lives now (the
trading kernel decides, brackets and fills in one Rust loop):

- a bracket opened twice for one plan (the OCO manager's test) ->
  ``core-rs/aitrapp-core/src/kernel/tests.rs::a_decision_routed_twice_opens_one_bracket``
  and ``test_a_second_bracket_for_a_plan_or_after_square_off_is_refused`` in
  ``tests/kernel/test_oco_promises.py``;
- the same update twice gives one fill and one status change (the order
  watcher's) -> ``tests/kite/test_live_kernel_updates.py`` (duplicates change
  nothing, a repeat after a restart lands once, every report kept as evidence);
- a decision executed twice gives one order (the orchestrator's) -> the same
  Rust test: the repeat places nothing, the open bracket and the engine's heat
  stay, DUPLICATE_PLAN says so.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import pytest_asyncio

from aitrapp import broker_tag, order_client_id
from aitrapp.brokers.base import OrderRequest, OrderType, OrderUpdate
from aitrapp.brokers.journal import ClientIdTakenError, JournaledBroker, PlacementInFlightError
from aitrapp.brokers.paper import PaperBroker
from aitrapp.db import repo
from aitrapp.db.pool import Pool, create_pool
from aitrapp.db.repo import SessionRow
from aitrapp.db.writer import DbWriter
from aitrapp.exceptions import ConfigError
from aitrapp.runtime import start_runtime
from aitrapp.ticks import Tick

from .helpers import (
    LTP,
    SEC,
    T0,
    TEST_DAY,
    count,
    options,
    plan_id,
    reliance,
    run_session,
    settings_for,
    table_counts,
)

pytestmark = pytest.mark.integration


def entry_request(plan: str, qty: int = 10) -> OrderRequest:
    inst = reliance()
    cid = order_client_id("ENTRY", plan)
    return OrderRequest(
        client_order_id=cid,
        tag=broker_tag(cid),
        exchange=inst.exchange,
        tradingsymbol=inst.tradingsymbol,
        instrument_token=inst.instrument_token,
        side="BUY",
        quantity=qty,
        order_type=OrderType.LIMIT,
        price_paise=round(LTP * 100),
    )


class SlowBroker(PaperBroker):
    """The paper broker with a network round trip: placements take a while (like Kite)."""

    delay_s = 0.05

    async def place_order(self, req: OrderRequest) -> str:
        await asyncio.sleep(self.delay_s)
        return self.submit(req)


@dataclass
class Env:
    pool: Pool
    writer: DbWriter
    paper: PaperBroker
    session_id: Any
    now: int = T0

    def journal(
        self, writer: DbWriter | None = None, session_id: UUID | None = None
    ) -> JournaledBroker:
        return JournaledBroker(
            self.paper,
            pool=self.pool,
            writer=writer or self.writer,
            session_id=session_id or self.session_id,
        )

    async def restarted(self) -> JournaledBroker:
        """The journal of a restarted process: a new session, nothing in memory."""
        session = _session_row()
        await repo.create_session(self.pool, session)
        return self.journal(session_id=session.id)

    def tick(self, price: float = LTP, dt_s: float = 1.0) -> None:
        self.now += int(dt_s * SEC)
        self.paper.on_tick(
            Tick(self.paper_token, self.now, price, 100, 0, price - 0.05, price + 0.05)
        )

    @property
    def paper_token(self) -> int:
        return reliance().instrument_token

    async def broker_orders(self, client_order_id: str) -> list[OrderUpdate]:
        return [u for u in await self.paper.orders() if u.client_order_id == client_order_id]


def _session_row() -> SessionRow:
    return SessionRow(
        trading_date=TEST_DAY, mode="PAPER", feed="synthetic", started_at=datetime.now(UTC)
    )


async def _env(pool: Pool, paper: PaperBroker) -> AsyncIterator[Env]:
    session = _session_row()
    await repo.create_session(pool, session)
    writer = DbWriter(pool, probe_interval_s=0.05)
    await writer.start()
    env = Env(pool, writer, paper, session.id)
    env.tick()
    try:
        yield env
    finally:
        await writer.close(grace_s=5)


@pytest_asyncio.fixture
async def env(db_pool: Pool) -> AsyncIterator[Env]:
    async for e in _env(db_pool, PaperBroker([reliance()], wall_clock_ns=lambda: 0)):
        yield e


@pytest_asyncio.fixture(params=["instant", "slow"])
async def racing_env(db_pool: Pool, request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    """The paper broker as is (placement never yields) and with a network round trip."""
    cls = PaperBroker if request.param == "instant" else SlowBroker
    async for e in _env(db_pool, cls([reliance()], wall_clock_ns=lambda: 0)):
        yield e


# ---------------------------------------------------------------- the journal
async def test_same_request_twice_places_one_order(env: Env) -> None:
    journal, req = env.journal(), entry_request(plan_id())
    first = await journal.place_order(req)
    second = await journal.place_order(req)
    assert first == second
    assert len(await env.broker_orders(req.client_order_id)) == 1
    async with asyncio.timeout(10):
        await env.writer.flush()
    row = await repo.get_order(env.pool, req.client_order_id)
    assert row is not None
    assert row.broker_order_id == first
    assert await count(env.pool, "orders") == 1


async def test_concurrent_duplicates_place_one_order(racing_env: Env) -> None:
    e = racing_env
    journal, req = e.journal(), entry_request(plan_id())
    results = await asyncio.gather(
        *(journal.place_order(req) for _ in range(5)), return_exceptions=True
    )
    ids = {r for r in results if isinstance(r, str)}
    assert len(ids) == 1, results
    (order_id,) = ids
    # A racing duplicate either learns the id or is told a placement is in flight.
    assert all(isinstance(r, str | PlacementInFlightError) for r in results), results
    if isinstance(e.paper, SlowBroker):  # the first call was still at the broker
        assert any(isinstance(r, PlacementInFlightError) for r in results), results
    assert [u.order_id for u in await e.broker_orders(req.client_order_id)] == [order_id]
    assert await count(e.pool, "orders") == 1
    assert await journal.place_order(req) == order_id  # settled: a retry gets the same id
    assert len(await e.broker_orders(req.client_order_id)) == 1


async def test_a_restarted_journal_returns_the_acknowledged_order(env: Env) -> None:
    req = entry_request(plan_id())
    order_id = await env.journal().place_order(req)
    async with asyncio.timeout(10):
        await env.writer.flush()  # the broker's id is in the database
    restarted = await env.restarted()
    assert await restarted.place_order(req) == order_id
    assert len(await env.broker_orders(req.client_order_id)) == 1
    assert await count(env.pool, "orders") == 1


async def test_a_restart_after_a_lost_acknowledgement_finds_the_order_by_tag(env: Env) -> None:
    req = entry_request(plan_id())
    unstarted = DbWriter(env.pool)  # the process dies before the ack is written
    order_id = await env.journal(unstarted).place_order(req)
    row = await repo.get_order(env.pool, req.client_order_id)
    assert row is not None
    assert row.broker_order_id is None
    restarted = await env.restarted()
    assert await restarted.place_order(req) == order_id
    assert len(await env.broker_orders(req.client_order_id)) == 1
    assert await count(env.pool, "orders") == 1


async def test_a_journalled_order_the_broker_never_got_is_placed_once(env: Env) -> None:
    req = entry_request(plan_id())
    # Journalled, then the call never reached the broker (the instance was lost).
    assert await repo.insert_order_new(env.pool, env.journal()._row(req))
    assert await env.broker_orders(req.client_order_id) == []
    again = env.journal()  # same session, nothing in memory
    order_id = await again.place_order(req)
    assert await again.place_order(req) == order_id
    assert await env.journal().place_order(req) == order_id  # and once more from scratch
    assert [u.order_id for u in await env.broker_orders(req.client_order_id)] == [order_id]
    assert await count(env.pool, "orders") == 1


async def test_a_later_session_never_places_an_id_journalled_by_an_earlier_one(env: Env) -> None:
    req = entry_request(plan_id())
    assert await repo.insert_order_new(env.pool, env.journal()._row(req))
    restarted = await env.restarted()  # e.g. the same day replayed into the same database
    with pytest.raises(ClientIdTakenError, match=req.client_order_id):
        await restarted.place_order(req)
    assert await env.broker_orders(req.client_order_id) == []
    assert await count(env.pool, "orders") == 1


async def test_distinct_plans_are_distinct_orders(env: Env) -> None:
    journal = env.journal()
    a = await journal.place_order(entry_request(plan_id(0)))
    b = await journal.place_order(entry_request(plan_id(1)))  # a later re-entry
    assert a != b
    assert len(await env.paper.orders()) == 2
    assert await count(env.pool, "orders") == 2


# ---------------------------------------------------------------- the session
async def test_the_same_day_again_into_the_same_database_places_nothing(
    db_url: str, tmp_path: Path
) -> None:
    """Client ids are deterministic: a second run of the day would place the first
    run's ids again (the kernel has no journal to stop it). It is refused at start."""
    first = await run_session(settings_for(db_url, tmp_path / "a"), options())
    try:
        assert first.kernel is not None
        before = await table_counts(first.pool)
        assert before["orders"] > 0
    finally:
        await first.close()
    with pytest.raises(ConfigError, match=r"synthetic day .* already ran as session"):
        await start_runtime(settings_for(db_url, tmp_path / "b"), options())
    pool = await create_pool(db_url, min_size=1, max_size=1)
    try:
        assert await table_counts(pool) == before  # nothing placed, nothing written
        assert await pool.fetchval("SELECT count(*) FROM sessions") == 1
    finally:
        await pool.close()
