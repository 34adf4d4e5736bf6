"""The same ticks replayed twice into fresh databases give the same ids and the same trades.

Client ids hash the plan (symbol, side, prices, qty, strategy, config, signal
time), the paper broker runs on the feed's clock and numbers its orders from
a fixed start, and every timestamp written comes from session time: so two
replays of one day must agree on every order, fill, transition and trade,
whatever the wall clock did meanwhile (on the trading kernel).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from aitrapp.db.pool import Pool

from .helpers import (
    BUSY_ENGINE,
    SEED,
    fresh_database,
    options,
    run_session,
    settings_for,
)

pytestmark = pytest.mark.integration

# What must be identical, per table: no generated uuids, no wall-clock columns.
QUERIES = {
    "orders": (
        "SELECT client_order_id, broker_order_id, plan_id, tag, role, side, order_type, qty, "
        "price, trigger_price, status, filled_qty, avg_price, created_at FROM orders"
    ),
    "fills": "SELECT broker_fill_key, client_order_id, qty, price, ts FROM fills",
    "decisions": (
        "SELECT plan_id, ts, tradingsymbol, strategy, side, qty, entry, stop, tp, risk_rupees, "
        "heat_after_pct, config_sha FROM decisions"
    ),
    "trades": (
        "SELECT plan_id, strategy, tradingsymbol, side, qty, entry_price, exit_price, gross_pnl, "
        "charges, net_pnl, exit_reason, opened_at, closed_at FROM trades"
    ),
    "bracket_transitions": (
        "SELECT plan_id, seq, ts, from_state, to_state, event, detail, commands "
        "FROM bracket_transitions"
    ),
    "risk_events": "SELECT ts, reason FROM risk_events",
    "positions": (
        "SELECT plan_id, side, qty, avg_entry, opened_at, closed_at, exit_price, status "
        "FROM positions"
    ),
}


async def _record(pool: Pool) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    for table, sql in QUERIES.items():
        rows = [tuple(r) for r in await pool.fetch(sql)]
        out[table] = sorted(rows, key=repr)
    return out


Recording = dict[str, list[tuple[Any, ...]]]


async def _replay(url: str, data_dir: Path, seed: int) -> Recording:
    rt = await run_session(settings_for(url, data_dir), options(seed=seed, engine=BUSY_ENGINE))
    try:
        recorded = await _record(rt.pool)
        summary = rt.summary()
        recorded["summary"] = [
            (k, str(summary[k]))
            for k in ("ticks", "signals", "decisions", "risk_blocks", "trades", "net_pnl")
        ]
        return recorded
    finally:
        await rt.close()


@pytest_asyncio.fixture(scope="module")
async def replays(
    pg_url: str,
    pg_template: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Recording]:
    """The same day twice (seed 7) and another day (seed 8), each into a fresh database."""
    out = {}
    for name, seed in (("first", SEED), ("second", SEED), ("other", SEED + 1)):
        async with fresh_database(pg_url, pg_template) as url:
            out[name] = await _replay(url, tmp_path_factory.mktemp(name), seed)
    return out


async def test_same_ticks_twice_give_identical_ids_and_trades(
    replays: dict[str, Recording],
) -> None:
    first, second = replays["first"], replays["second"]
    assert len(first["trades"]) >= 20  # a busy day, or the comparison proves little
    assert {r[4] for r in first["orders"]} >= {"ENTRY", "STOP", "TP"}
    for table in first:
        assert first[table] == second[table], f"{table} differs between two replays"


async def test_other_ticks_give_other_ids_and_trades(replays: dict[str, Recording]) -> None:
    """The comparison above can fail: another day of ticks shares no plan with it."""
    first, other = replays["first"], replays["other"]
    plans = {r[0] for r in first["decisions"]}
    assert plans
    assert plans.isdisjoint(r[0] for r in other["decisions"])
    assert {r[0] for r in first["orders"]}.isdisjoint(r[0] for r in other["orders"])
    assert first["trades"] != other["trades"]
