"""A whole paper session, persisted and chained in PostgreSQL.

One synthetic day runs through the real runtime on the trading kernel (engine,
brackets and paper venue in one Rust loop, its event batches persisted by the
shell). Every test below then reads what PostgreSQL holds and checks it
against the venue's own order book (as the kernel's event batches report it),
the fills and the runtime's counters.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio

from aitrapp.charges import ChargeSchedule, ExecutedOrder, charge_kind
from aitrapp.db import repo
from aitrapp.db.pool import Pool
from aitrapp.runtime import Runtime

from .helpers import (
    SYMBOLS,
    KernelLog,
    VenueOrder,
    count,
    fresh_database,
    options,
    run_session,
    settings_for,
    updates_taken,
    venue_orders,
)

pytestmark = pytest.mark.integration

IST = ZoneInfo("Asia/Kolkata")
CHILDREN = ("STOP", "TP")


@dataclass
class Recorded:
    rt: Runtime
    paper_orders: list[VenueOrder]

    @property
    def pool(self) -> Pool:
        pool: Pool = self.rt.pool
        return pool

    @property
    def sid(self) -> UUID:
        assert self.rt.session_id is not None
        return self.rt.session_id

    @property
    def counters(self) -> dict[str, Any]:
        """The session's counters as /state reads them."""
        return self.rt.book().counters


@pytest_asyncio.fixture(scope="module")
async def recorded(
    pg_url: str,
    pg_template: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Recorded]:
    async with fresh_database(pg_url, pg_template) as url:
        settings = settings_for(url, tmp_path_factory.mktemp("lifecycle"))
        rt = await run_session(settings, options(), before_feed=KernelLog.attach)
        try:
            assert rt.kernel is not None
            yield Recorded(rt, await venue_orders(rt))
        finally:
            await rt.close()


async def _orders_by_plan(s: Recorded) -> dict[str, dict[str, dict[str, Any]]]:
    rows = await s.pool.fetch("SELECT * FROM orders WHERE session_id = $1", s.sid)
    plans: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for r in rows:
        plans[r["plan_id"]][r["role"]] = dict(r)
    return plans


async def test_session_row_is_completed_with_the_runtime_summary(recorded: Recorded) -> None:
    row = await repo.get_session(recorded.pool, recorded.sid)
    assert row is not None
    assert row.status == "COMPLETED"
    assert row.ended_at is not None
    c = recorded.counters
    assert c["ticks"] > 50_000  # the whole day went through
    assert row.summary["trades"] == c["trades"]
    assert row.summary["decisions"] == c["decisions"]
    assert row.summary["feed"]["synthetic"] is True


async def test_brackets_end_with_one_child_filled_and_its_sibling_cancelled(
    recorded: Recorded,
) -> None:
    plans = await _orders_by_plan(recorded)
    trades = await recorded.pool.fetch(
        "SELECT plan_id, qty, exit_reason FROM trades WHERE session_id = $1", recorded.sid
    )
    assert trades, "the session produced no trade"
    by_reason: dict[str, int] = defaultdict(int)
    for t in trades:
        orders = plans[t["plan_id"]]
        entry = orders["ENTRY"]
        assert entry["status"] == "COMPLETE"
        assert entry["filled_qty"] == t["qty"]
        if t["exit_reason"] in CHILDREN:
            filled = orders[t["exit_reason"]]
            sibling = orders[next(r for r in CHILDREN if r != t["exit_reason"])]
            assert filled["status"] == "COMPLETE", t
            assert filled["filled_qty"] == t["qty"]
            assert sibling["status"] == "CANCELLED", t
            assert sibling["filled_qty"] == 0
            by_reason[t["exit_reason"]] += 1
        # Whatever the exit, the plan sold exactly what it bought and nothing is left working.
        exits = [o for role, o in orders.items() if role != "ENTRY"]
        assert sum(int(o["filled_qty"]) for o in exits) == t["qty"]
        assert all(o["status"] in ("COMPLETE", "CANCELLED") for o in exits)
        assert all(o["side"] != entry["side"] for o in exits)
    # This day (seed 7) has both outcomes: a take-profit and a stop-loss exit.
    assert by_reason["TP"] >= 1
    assert by_reason["STOP"] >= 1


async def test_every_signal_is_recorded_with_its_prices(recorded: Recorded) -> None:
    """Blocked signals too: entry, stop and take-profit as the strategy set them."""
    pool = recorded.pool
    total, bad = await pool.fetchrow(
        "SELECT count(*), count(*) FILTER (WHERE entry <= 0 OR stop <= 0 OR tp <= 0 "
        "OR (side = 'BUY' AND NOT (stop < entry AND entry < tp)) "
        "OR (side = 'SELL' AND NOT (tp < entry AND entry < stop))) "
        "FROM signals WHERE session_id = $1",
        recorded.sid,
    )
    assert total > 0 and bad == 0


async def test_trade_decision_signal_chain(recorded: Recorded) -> None:
    pool = recorded.pool
    trades = await repo.list_trades(pool, session_id=recorded.sid)
    assert trades
    assert await pool.fetchval(
        "SELECT count(*) FROM trade_chain WHERE session_id = $1", recorded.sid
    ) == len(trades)
    for t in trades:
        chain = await repo.trade_chain(pool, t.id)
        assert chain is not None
        decision = await repo.get_decision(pool, t.plan_id)
        assert decision is not None
        assert chain["decision_id"] == decision.id == t.decision_id
        assert decision.session_id == t.session_id
        assert decision.qty == t.qty
        assert decision.side == t.side
        assert decision.strategy == t.strategy
        signal = await pool.fetchrow("SELECT * FROM signals WHERE id = $1", decision.signal_id)
        assert signal is not None
        assert chain["signal_id"] == signal["id"]
        assert signal["session_id"] == t.session_id
        assert (signal["entry"], signal["stop"], signal["tp"]) == (
            decision.entry,
            decision.stop,
            decision.tp,
        )
        assert signal["strategy"] == t.strategy
        assert signal["tradingsymbol"] == t.tradingsymbol in SYMBOLS
        assert signal["ts"] == decision.ts <= t.opened_at <= t.closed_at
        # Every order of the plan hangs off the chain, the entry at the decided size.
        roles = {o.role: o for o in chain["orders"]}
        assert roles["ENTRY"].qty == decision.qty
        assert {o.plan_id for o in chain["orders"]} == {t.plan_id}


async def test_every_order_has_its_events_and_the_last_one_is_its_status(
    recorded: Recorded,
) -> None:
    pool = recorded.pool
    orders = await pool.fetch("SELECT * FROM orders WHERE session_id = $1", recorded.sid)
    assert orders
    for o in orders:
        events = await repo.list_order_events(pool, o["client_order_id"])
        assert events, f"no order_events for {o['client_order_id']}"
        assert {e.broker_order_id for e in events} == {o["broker_order_id"]}
        final = max(events, key=lambda e: (e.filled_qty, e.status in repo.TERMINAL_STATUSES))
        assert final.status == o["status"]
        assert final.filled_qty == o["filled_qty"]
    # One event row per update the kernel's shell took, duplicates
    # included (history is evidence).
    assert await count(pool, "order_events", recorded.sid) == updates_taken(recorded.rt)


async def test_fills_add_up_to_each_orders_filled_quantity_and_average(
    recorded: Recorded,
) -> None:
    pool = recorded.pool
    orders = await pool.fetch("SELECT * FROM orders WHERE session_id = $1", recorded.sid)
    filled_orders = 0
    for o in orders:
        fills = await repo.list_fills(pool, client_order_id=o["client_order_id"])
        assert sum(f.qty for f in fills) == o["filled_qty"], o["client_order_id"]
        if o["filled_qty"]:
            filled_orders += 1
            avg = sum(f.qty * f.price for f in fills) / o["filled_qty"]
            assert abs(avg - o["avg_price"]) <= Decimal("0.0001"), o["client_order_id"]
            assert all(f.broker_order_id == o["broker_order_id"] for f in fills)
    assert filled_orders >= 2


async def test_trade_money_comes_from_the_recorded_fills(recorded: Recorded) -> None:
    pool = recorded.pool
    plans = await _orders_by_plan(recorded)
    schedule = ChargeSchedule.default()
    trades = await repo.list_trades(pool, session_id=recorded.sid)
    for t in trades:
        fills = await pool.fetch(
            "SELECT o.side, f.qty, f.price FROM fills f JOIN orders o USING (client_order_id) "
            "WHERE o.plan_id = $1",
            t.plan_id,
        )
        bought = sum(f["qty"] * f["price"] for f in fills if f["side"] == "BUY")
        sold = sum(f["qty"] * f["price"] for f in fills if f["side"] == "SELL")
        assert t.gross_pnl == sold - bought, t.plan_id
        assert t.net_pnl == t.gross_pnl - t.charges
        entry = plans[t.plan_id]["ENTRY"]
        assert t.entry_price == entry["avg_price"]
        exits = [o for role, o in plans[t.plan_id].items() if role != "ENTRY" and o["filled_qty"]]
        exit_avg = sum(o["filled_qty"] * o["avg_price"] for o in exits) / t.qty
        assert abs(t.exit_price - exit_avg) <= Decimal("0.0001")
        # Charges: one contract note over the plan's executed orders, as Zerodha bills it.
        executed = [
            ExecutedOrder.at(str(o["side"]), int(o["filled_qty"]), o["avg_price"])
            for o in plans[t.plan_id].values()
            if o["filled_qty"]
        ]
        rates = schedule.rates_for(
            t.exchange, charge_kind("EQ"), t.closed_at.astimezone(IST).date()
        )
        assert t.charges == schedule.contract_note(rates, executed).total > 0
    net = await pool.fetchval("SELECT sum(net_pnl) FROM trades WHERE session_id = $1", recorded.sid)
    assert net == recorded.rt.book().net_pnl_today


async def test_positions_are_opened_and_closed_with_their_trades(recorded: Recorded) -> None:
    pool = recorded.pool
    positions = {p.plan_id: p for p in await repo.list_positions(pool, session_id=recorded.sid)}
    trades = await repo.list_trades(pool, session_id=recorded.sid)
    assert set(positions) == {t.plan_id for t in trades}
    for t in trades:
        p = positions[t.plan_id]
        assert p.status == "CLOSED"
        assert p.closed_at == t.closed_at
        assert p.opened_at == t.opened_at
        assert p.avg_entry == t.entry_price
        assert p.exit_price == t.exit_price
        assert p.side == t.side
    assert await repo.list_positions(pool, session_id=recorded.sid, status="OPEN") == []


async def _walks(recorded: Recorded) -> dict[str, list[dict[str, Any]]]:
    rows = await recorded.pool.fetch(
        "SELECT * FROM bracket_transitions WHERE session_id = $1 ORDER BY plan_id, seq",
        recorded.sid,
    )
    steps: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        steps[r["plan_id"]].append(dict(r))
    return steps


async def _traded(recorded: Recorded) -> set[str]:
    rows = await recorded.pool.fetch(
        "SELECT plan_id FROM trades WHERE session_id = $1", recorded.sid
    )
    return {r["plan_id"] for r in rows}


async def test_bracket_transitions_walk_every_plan_to_a_terminal_state(
    recorded: Recorded,
) -> None:
    pool = recorded.pool
    steps = await _walks(recorded)
    decisions = {
        r["plan_id"]
        for r in await pool.fetch(
            "SELECT plan_id FROM decisions WHERE session_id = $1", recorded.sid
        )
    }
    assert set(steps) == decisions
    traded = await _traded(recorded)
    assert traded
    for plan_id, walk in steps.items():
        first = walk[0]["seq"]  # where it starts: the numbering test below
        assert [s["seq"] for s in walk] == list(range(first, first + len(walk))), plan_id
        assert (walk[0]["from_state"], walk[0]["event"]) == ("NEW", "OPEN")
        for before, after in itertools.pairwise(walk):
            assert after["from_state"] == before["to_state"], plan_id
        end = walk[-1]["to_state"]
        assert end == ("CLOSED" if plan_id in traded else "CANCELLED"), plan_id


async def test_bracket_walks_are_numbered_from_zero(
    recorded: Recorded, request: pytest.FixtureRequest
) -> None:
    steps = await _walks(recorded)
    assert steps
    for plan_id, walk in steps.items():
        assert [s["seq"] for s in walk] == list(range(len(walk))), plan_id


async def test_bracket_walks_record_the_orders_they_placed(
    recorded: Recorded, request: pytest.FixtureRequest
) -> None:
    """The commands of each step are stored with it (the start-up reconciliation
    places a killed process's missing children from them)."""
    steps = await _walks(recorded)
    traded = await _traded(recorded)
    assert traded
    for plan_id in traded:
        walk = steps[plan_id]
        placed = {c["role"] for s in walk for c in s["commands"] if c["kind"] == "PLACE_ORDER"}
        assert {"ENTRY", "STOP", "TAKE_PROFIT"} <= placed, plan_id


async def test_database_agrees_with_the_paper_brokers_order_book(recorded: Recorded) -> None:
    pool = recorded.pool
    rows = {
        r["client_order_id"]: r
        for r in await pool.fetch("SELECT * FROM orders WHERE session_id = $1", recorded.sid)
    }
    assert recorded.paper_orders
    assert {u.client_order_id for u in recorded.paper_orders} == set(rows)
    for u in recorded.paper_orders:
        r = rows[u.client_order_id]
        assert r["broker_order_id"] == u.order_id
        assert r["status"] == u.status
        assert r["filled_qty"] == u.filled_qty
        assert r["qty"] == u.qty
        assert r["tag"] == u.tag
    assert not [r for r in rows.values() if r["status"] not in repo.TERMINAL_STATUSES]


async def test_runtime_counters_match_the_database_exactly(recorded: Recorded) -> None:
    rt, pool, sid = recorded.rt, recorded.pool, recorded.sid
    c = recorded.counters
    assert await count(pool, "signals", sid) == c["signals"] > 0
    assert await count(pool, "decisions", sid) == c["decisions"] > 0
    assert await count(pool, "risk_events", sid) == c["risk_blocks"]
    assert await count(pool, "trades", sid) == c["trades"] > 0
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM trades WHERE session_id = $1 AND net_pnl > 0", sid
        )
        == c["wins"]
    )
    assert c["critical_alerts"] == 0
    assert rt.summary()["tick_to_decision"]["count"] == c["ticks"]  # every tick was timed
    assert rt.writer.dropped == 0
    assert rt.writer.queue_depth == 0
