"""A whole PAPER session on the trading kernel, checked from the database:
the lifecycle promises (orders, fills, positions, trades, chains, counters,
burn-in), plus determinism of the persisted rows across two runs."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import pytest_asyncio

from aitrapp import broker_tag
from aitrapp.db import repo
from aitrapp.report.burnin import evaluate_session
from aitrapp.runtime import Runtime

from .helpers import BUSY_ENGINE, count, fresh_database, options, run_session, settings_for


async def _session(db_url: str, data_dir: Path) -> Runtime:
    return await run_session(settings_for(db_url, data_dir), options(engine=BUSY_ENGINE))


@pytest_asyncio.fixture(scope="module")
async def rt(module_db: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Runtime]:
    runtime = await _session(module_db, tmp_path_factory.mktemp("kernel"))
    try:
        assert runtime.kernel is not None
        yield runtime
    finally:
        await runtime.close()


async def test_counters_match_the_database_exactly(rt: Runtime) -> None:
    pool, sid = rt.pool, rt.session_id
    assert sid is not None
    c = rt.book().counters
    assert c["ticks"] > 50_000
    assert await count(pool, "signals", sid) == c["signals"] > 0
    assert await count(pool, "decisions", sid) == c["decisions"] > 0
    assert await count(pool, "risk_events", sid) == c["risk_blocks"]
    assert await count(pool, "trades", sid) == c["trades"] > 0
    wins = await pool.fetchval("SELECT count(*) FROM trades WHERE session_id=$1 AND net_pnl>0", sid)
    assert wins == c["wins"]
    assert rt.writer.dropped == 0 and rt.writer.queue_depth == 0
    row = await repo.get_session(pool, sid)
    assert row is not None and row.status == "COMPLETED"
    assert row.summary["trades"] == c["trades"]
    assert row.summary["latency_measured"].startswith("kernel time per tick")


async def test_traded_plans_placed_entry_stop_and_target_and_left_nothing_working(
    rt: Runtime,
) -> None:
    rows = await rt.pool.fetch("SELECT * FROM orders WHERE session_id = $1", rt.session_id)
    roles: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        roles[r["plan_id"]].add(r["role"])
        assert r["status"] in repo.TERMINAL_STATUSES, dict(r)
        assert r["tag"] == broker_tag(r["client_order_id"])
    traded = {
        r["plan_id"]
        for r in await rt.pool.fetch(
            "SELECT plan_id FROM trades WHERE session_id=$1", rt.session_id
        )
    }
    assert traded
    for plan in traded:
        assert {"ENTRY", "STOP", "TP"} <= roles[plan] or "EXIT" in roles[plan], roles[plan]


async def test_every_order_ends_at_its_last_event(rt: Runtime) -> None:
    rows = await rt.pool.fetch(
        "SELECT o.client_order_id, o.status, o.filled_qty, "
        "(SELECT e.status FROM order_events e WHERE e.client_order_id = o.client_order_id "
        " ORDER BY e.ts DESC, e.filled_qty DESC LIMIT 1) AS last_status "
        "FROM orders o WHERE o.session_id = $1",
        rt.session_id,
    )
    assert rows
    for r in rows:
        assert r["last_status"] == r["status"], dict(r)


async def test_fills_add_up_to_orders_and_trades_to_their_fills(rt: Runtime) -> None:
    pool, sid = rt.pool, rt.session_id
    bad = await pool.fetch(
        "SELECT o.client_order_id, o.filled_qty, coalesce(sum(f.qty), 0) AS filled "
        "FROM orders o LEFT JOIN fills f ON f.client_order_id = o.client_order_id "
        "WHERE o.session_id = $1 GROUP BY o.client_order_id, o.filled_qty "
        "HAVING o.filled_qty <> coalesce(sum(f.qty), 0)",
        sid,
    )
    assert not bad, [dict(b) for b in bad]
    for t in await pool.fetch("SELECT * FROM trades WHERE session_id = $1", sid):
        fills = await pool.fetch(
            "SELECT o.role, o.side, f.qty, f.price FROM fills f JOIN orders o "
            "ON o.client_order_id = f.client_order_id WHERE o.plan_id = $1",
            t["plan_id"],
        )
        value = sum(
            (f["qty"] * f["price"] * (1 if f["side"] == "SELL" else -1) for f in fills), Decimal(0)
        )
        assert abs(value - t["gross_pnl"]) < Decimal("0.01"), t["plan_id"]
        assert t["net_pnl"] == t["gross_pnl"] - t["charges"]
        assert t["charges"] > 0
    open_positions = await pool.fetchval(
        "SELECT count(*) FROM positions WHERE session_id = $1 AND status = 'OPEN'", sid
    )
    assert open_positions == 0


async def test_trades_chain_to_their_decision_and_signal(rt: Runtime) -> None:
    broken = await rt.pool.fetch(
        "SELECT t.plan_id FROM trades t JOIN decisions d ON d.id = t.decision_id "
        "LEFT JOIN signals s ON s.id = d.signal_id WHERE t.session_id = $1 AND s.id IS NULL",
        rt.session_id,
    )
    assert not broken


async def test_the_burn_in_passes_on_the_kernel_session(rt: Runtime) -> None:
    assert rt.session_id is not None
    async with rt.pool.acquire() as conn:
        verdict = await evaluate_session(conn, rt.session_id, now=datetime.now(UTC))
    failed = [c for c in verdict.criteria if not c.passed and c.name != "flatten"]
    assert not failed, failed


async def test_the_same_day_persists_the_same_rows_twice(
    rt: Runtime, pg_url: str, pg_template: str, tmp_path: Path
) -> None:
    query = (
        "SELECT client_order_id, status, filled_qty, avg_price, broker_order_id FROM orders "
        "WHERE session_id = $1 ORDER BY client_order_id"
    )
    first = [tuple(r) for r in await rt.pool.fetch(query, rt.session_id)]
    trades_q = (
        "SELECT plan_id, qty, entry_price, exit_price, gross_pnl, charges, exit_reason "
        "FROM trades WHERE session_id = $1 ORDER BY plan_id"
    )
    first_trades = [tuple(r) for r in await rt.pool.fetch(trades_q, rt.session_id)]
    async with fresh_database(pg_url, pg_template) as url:
        again = await _session(url, tmp_path)
        try:
            assert [tuple(r) for r in await again.pool.fetch(query, again.session_id)] == first
            assert [tuple(r) for r in await again.pool.fetch(trades_q, again.session_id)] == (
                first_trades
            )
        finally:
            await again.close()
