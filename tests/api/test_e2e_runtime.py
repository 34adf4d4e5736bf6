"""The app with the real trading runtime (PAPER, replay feed) on the embedded database.

A replay of 20 instruments makes the engine open one bracket on each (an
EMA cross with far stops and targets, so nothing exits by itself). Then the
kill switch: POST /flatten must leave zero working orders and zero open
positions, and /state must say HALTED.
"""

from __future__ import annotations

import asyncio
import csv
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import uvicorn

from aitrapp.api import create_app
from aitrapp.api.deps import api_state
from aitrapp.cli.serve import ApiServer
from aitrapp.config import EngineConfig
from aitrapp.db import repo
from aitrapp.db.embedded import free_port
from aitrapp.runtime import Runtime, RuntimeOptions, start_runtime
from aitrapp.settings import AppSettings, load_settings
from aitrapp.universe import Universe, load_universe

from .conftest import AUTH, TOKEN

pytestmark = pytest.mark.integration

DAY = date(2026, 1, 5)
IST = ZoneInfo("Asia/Kolkata")
BASE_PAISE = 50_000  # every instrument trades around 500 rupees

# Only the EMA cross, fast enough to fire on a short pattern; stops and targets
# 2000 ticks away so no bracket closes by itself; limits wide enough for 20 at once.
ENGINE = EngineConfig.parse(
    {
        "risk": {
            "per_trade_risk_pct": 2.0,
            "max_portfolio_heat_pct": 50.0,
            "max_open_positions": 25,
            "max_trades_per_day": 50,
            "cooldown_seconds": 0,
        },
        "strategies": {
            "orb": {"enabled": False},
            "trend_pullback": {"enabled": False},
            "vwap_reversion": {"enabled": False},
            "ema_cross": {
                "enabled": True,
                "fast_period": 2,
                "slow_period": 4,
                "stop_ticks": 2000,
                "tp_ticks": 2000,
            },
        },
    }
)


def write_day(path: Path, universe: Universe) -> Path:
    """Per instrument: flat, one dip (sets the EMA sign), a rise (the BUY cross), then flat
    so the entry LIMIT at the ask fills. Instruments are 3 s apart so the order rate
    stays under the broker's 10 orders/s."""
    start = datetime.combine(DAY, datetime.min.time(), tzinfo=IST).replace(hour=10)
    rows = []
    for i, inst in enumerate(universe.instruments):
        tick = inst.tick_paise
        path_ticks = [0] * 8 + [-2] + [4] * 60
        for k, offset in enumerate(path_ticks):
            ts = start + timedelta(seconds=3 * i + k)
            last = BASE_PAISE + offset * tick
            rows.append((ts, inst.tradingsymbol, last, last - tick, last + tick, k + 1))
    rows.sort(key=lambda r: (r[0], r[1]))
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["timestamp", "tradingsymbol", "last_price", "last_qty", "volume", "bid", "ask"])
        for ts, sym, last, bid, ask, n in rows:
            w.writerow(
                [ts.isoformat(), sym, f"{last / 100:.2f}", 1, n * 10, f"{bid / 100:.2f}",
                 f"{ask / 100:.2f}"]
            )  # fmt: skip
    return path


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> AppSettings:
    return load_settings(
        database_url=db_url,
        data_dir=tmp_path / "var",
        logs_dir=tmp_path / "logs",
        api_token=TOKEN,
    )


@pytest.fixture
def options(tmp_path: Path) -> RuntimeOptions:
    universe = load_universe(on=DAY).defaults()
    csv_path = write_day(tmp_path / "day.csv", universe)
    # As `aitrapp serve` runs it: the brackets stay open when the replay ends.
    return RuntimeOptions(
        feed="replay",
        day=DAY,
        replay_paths=(csv_path,),
        engine=ENGINE,
        close_day_at_feed_end=False,
    )


Factory = Callable[[AppSettings], Awaitable[Runtime]]


def factory_for(options: RuntimeOptions) -> Factory:
    async def factory(settings: AppSettings) -> Runtime:
        return await start_runtime(settings, options)

    return factory


@pytest.fixture
async def client(
    settings: AppSettings, options: RuntimeOptions
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, runtime_factory=factory_for(options))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000"
        ) as c,
    ):
        c.app = app  # type: ignore[attr-defined]
        yield c


async def until(fetch: Callable[[], Awaitable[Any]], ok: Callable[[Any], bool], what: str) -> Any:
    """Polls (the replay and the database writer run in the background)."""
    last = None
    for _ in range(600):
        last = await fetch()
        if ok(last):
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"never reached: {what}; last seen: {last!r}")


async def get(client: httpx.AsyncClient, path: str, **params: Any) -> Any:
    r = await client.get(path, params=params)
    assert r.status_code == 200, r.text
    return r.json()


async def twenty_open(client: httpx.AsyncClient) -> dict[str, Any]:
    state: dict[str, Any] = await until(
        lambda: get(client, "/state"),
        lambda s: s["session"]["feed_done"] and len(s["positions"]) == 20,
        "20 open positions after the replay",
    )
    return state


async def test_flatten_with_20_open_paper_brackets(client: httpx.AsyncClient) -> None:
    state = await twenty_open(client)
    assert state["mode"] == "PAPER" and state["trading_state"] == "ACTIVE"
    assert len(state["working_orders"]) == 40  # a STOP and a TP per bracket
    roles = sorted(o["role"] for o in state["working_orders"])
    assert roles == ["STOP"] * 20 + ["TAKE_PROFIT"] * 20
    assert all(p["unrealized_pnl"] is not None for p in state["positions"])
    await until(
        lambda: get(client, "/positions", status="OPEN", session_id="current"),
        lambda page: len(page["items"]) == 20,
        "20 OPEN position rows in the journal",
    )

    r = await client.post("/flatten", json={"timeout_s": 10}, headers=AUTH)
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["ok"] is True
    assert result["open_positions_after"] == 0 and result["working_orders_after"] == 0
    # Exits first: each stop became its bracket's market exit; then the 20 targets went.
    assert result["exit_orders"] == 20 and result["converted_stops"] == 20
    assert result["cancelled_orders"] == 20
    assert result["flat"] is True and result["clean"] is True
    assert result["flat_after_ms"] <= result["clean_after_ms"] <= result["elapsed_ms"]
    assert result["state"] == "HALTED"
    print(f"\nflatten of 20 paper brackets: {result['elapsed_ms']:.1f} ms")

    state = await get(client, "/state")
    assert state["trading_state"] == "HALTED"
    assert state["positions"] == [] and state["working_orders"] == []
    assert state["flatten"]["ok"] is True

    # The journal agrees once the writer has flushed.
    await until(
        lambda: get(client, "/positions", status="OPEN", session_id="current"),
        lambda page: page["items"] == [],
        "no OPEN position rows",
    )
    await until(
        lambda: get(client, "/orders", status="WORKING", session_id="current", limit=1000),
        lambda page: page["items"] == [],
        "no working order rows",
    )
    trades = await until(
        lambda: get(client, "/trades", session_id="current", date="2026-01-05"),
        lambda page: len(page["items"]) == 20,
        "20 trades",
    )
    assert {t["exit_reason"] for t in trades["items"]} == {"FLATTEN"}
    pool = api_state(client.app).runtime.pool  # type: ignore[attr-defined, union-attr]
    audit = await repo.list_audit(pool, action="flatten")
    assert [(a.actor, a.result["ok"]) for a in audit] == [("api:127.0.0.1+token", True)]

    # HALTED holds: nothing new is opened until an explicit resume.
    assert (await get(client, "/health"))["ok"] is True


async def test_control_and_reads_with_the_real_runtime(client: httpx.AsyncClient) -> None:
    state = await twenty_open(client)
    session_id = state["session"]["id"]

    assert (await client.post("/pause")).status_code == 401  # token configured
    r = await client.post("/pause", headers=AUTH)
    assert r.json() == {"trading_state": "PAUSED"}
    assert (await get(client, "/state"))["trading_state"] == "PAUSED"
    r = await client.post("/resume", headers=AUTH)
    assert r.json() == {"trading_state": "ACTIVE"}

    r = await client.post("/mode", json={"mode": "LIVE"}, headers=AUTH)
    assert r.status_code == 409  # the LIVE gate: no burn-in, no broker session
    assert r.json()["reasons"], r.json()
    assert (await client.post("/mode", json={"mode": "PAPER"}, headers=AUTH)).status_code == 200
    pool = api_state(client.app).runtime.pool  # type: ignore[attr-defined, union-attr]
    audit = {(a.action, a.actor) for a in await repo.list_audit(pool)}
    assert {("pause", "api:127.0.0.1+token"), ("resume", "api:127.0.0.1+token"),
            ("mode", "api:127.0.0.1+token")} <= audit  # fmt: skip

    health = await get(client, "/health")
    assert health["ok"] is True
    assert {"database", "writer", "bus", "feed", "order_watcher", "broker"} <= set(
        health["components"]
    )
    metrics = await until(
        lambda: client.get("/metrics"),
        lambda r: "trader_orders_placed_total 60.0" in r.text,  # 20 entries + 40 children
        "60 orders placed",
    )
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "trader_positions_open 20.0" in metrics.text

    for path in ("/signals", "/decisions", "/orders", "/positions", "/risk-events", "/trades"):
        page = await get(client, path, session_id=session_id, date="2026-01-05", limit=1000)
        assert isinstance(page["items"], list), path
    # The journal is written in the background: poll until the writer caught up.
    decisions = await until(
        lambda: get(client, "/decisions", session_id="current"),
        lambda page: len(page["items"]) == 20,
        "20 decisions in the journal",
    )
    assert {d["strategy"] for d in decisions["items"]} == {"EmaCross"}
    orders = await until(
        lambda: get(client, "/orders", session_id="current", status="WORKING", limit=100),
        lambda page: len(page["items"]) == 40,
        "40 working children in the journal",
    )
    assert {o["role"] for o in orders["items"]} == {"STOP", "TP"}


async def test_events_stream_from_the_real_bus(
    settings: AppSettings, options: RuntimeOptions
) -> None:
    app = create_app(settings, runtime_factory=factory_for(options), sse_heartbeat_s=0.5)
    port = free_port()
    server = ApiServer(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_config=None), app
    )
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), "server did not start"
            await asyncio.sleep(0.02)
        async with (
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c,
            c.stream("GET", "/events", params={"topics": "mode"}) as r,
        ):
            lines = r.aiter_lines()
            assert await anext(lines) == ": subscribed"
            assert (await c.post("/pause", headers=AUTH)).status_code == 200
            async for line in lines:
                if line.startswith("data: "):
                    assert '"action": "pause"' in line or '"action":"pause"' in line, line
                    break
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 60)
