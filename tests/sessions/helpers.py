"""Shared helpers of the session tests: databases, settings, sessions, queries."""

from __future__ import annotations

import asyncio
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg

from aitrapp import Instrument, broker_tag, plan_client_id
from aitrapp.config import EmaCrossConfig, EngineConfig, RiskConfig, StrategiesConfig
from aitrapp.db.pool import Pool
from aitrapp.feeds.base import FeedKind, TickBatch
from aitrapp.feeds.synthetic import SyntheticFeed
from aitrapp.kernel.driver import KernelDriver
from aitrapp.kernel.events import EventBatch, extend, rows
from aitrapp.runtime import Runtime, RuntimeOptions, start_runtime
from aitrapp.settings import AppSettings, load_settings
from aitrapp.ticks import Tick
from aitrapp.universe import Universe, load_universe

# A fixed NSE trading day and a few liquid names: about 67k synthetic ticks, a
# second or two per session, with both take-profit and stop-loss exits (seed 7).
TEST_DAY = date(2026, 3, 4)
SYMBOLS = ("RELIANCE", "SBIN", "INFY")
SEED = 7

# Risk limits loose enough for dozens of brackets a day (the default daily-loss
# stop may halt entries after a handful of trades); 40 keeps a session quick.
# EmaCross (off by default) adds entries all day; 60-tick stops (3.00) clear the
# gate's 20 bps stop floor on these names.
BUSY_ENGINE = EngineConfig(
    risk=RiskConfig(daily_loss_stop_pct=100.0, cooldown_seconds=60, max_trades_per_day=40),
    strategies=StrategiesConfig(
        ema_cross=EmaCrossConfig(enabled=True, stop_ticks=60, tp_ticks=60),
    ),
)

SEC = 1_000_000_000
T0 = 1_772_596_800_000_000_000  # 2026-03-04 09:30 IST (UTC ns)
LTP = 1450.0  # RELIANCE, in the unit tests that build orders by hand


def reliance() -> Instrument:
    return load_universe(on=TEST_DAY).select(["RELIANCE"]).instruments[0]


def plan_id(n: int = 0) -> str:
    """A real plan id (a BUY of RELIANCE); ``n`` makes a distinct re-entry."""
    return plan_client_id("RELIANCE", "BUY", LTP, LTP - 5, LTP + 10, 10, "TEST", "c0", T0 + n)


PLAN_TABLES = (
    "signals",
    "decisions",
    "risk_events",
    "orders",
    "order_events",
    "fills",
    "positions",
    "trades",
    "bracket_transitions",
)


def _replace_db(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


@asynccontextmanager
async def fresh_database(pg_url: str, template: str) -> AsyncIterator[str]:
    """A new database cloned from the migrated template; dropped on exit."""
    name = f"p_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
    finally:
        await conn.close()
    try:
        yield _replace_db(pg_url, name)
    finally:
        conn = await asyncpg.connect(pg_url)
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            await conn.close()


def settings_for(database_url: str, data_dir: Path, **overrides: Any) -> AppSettings:
    """Settings of one test session: its own database and data folder, in-process bus,
    and a writer that notices an outage (and the recovery) within tens of milliseconds."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "redis_url": None,
        "data_dir": data_dir,
        "logs_dir": data_dir / "logs",
        "writer_probe_interval_s": 0.05,
        "writer_retry_max_s": 0.2,
        "db_connect_timeout_s": 2.0,
        **overrides,
    }
    return load_settings(**values)


def options(**overrides: Any) -> RuntimeOptions:
    values: dict[str, Any] = {"day": TEST_DAY, "symbols": SYMBOLS, "seed": SEED, **overrides}
    return RuntimeOptions(**values)


async def run_session(
    settings: AppSettings,
    opts: RuntimeOptions,
    before_feed: Callable[[Runtime], object] | None = None,
) -> Runtime:
    """A whole session: start, replay the day at max speed, stop trading.

    ``before_feed(rt)`` runs once the session is built and before its first tick
    (to attach a :class:`KernelLog`, say). The database stays open (``rt.pool``)
    for the checks; the caller closes it.
    """
    if before_feed is not None:
        opts = replace(opts, start_feed=False)
    rt = await start_runtime(settings, opts)
    try:
        if before_feed is not None:
            before_feed(rt)
            rt.start_feed()
        async with asyncio.timeout(120):
            await rt.wait_feed()
        await rt.stop_trading()
    except BaseException:
        await rt.stop()
        raise
    return rt


async def wait_until(cond: Callable[[], bool], what: str, limit_s: float = 30.0) -> None:
    """Polls ``cond`` (a bound on a wait, never an assertion on speed)."""
    deadline = time.monotonic() + limit_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit_s}s waiting for {what}")
        await asyncio.sleep(0.01)


async def count(pool: Pool, table: str, session_id: UUID | None = None) -> int:
    """Rows of ``table`` (of one session when given; order children via their order)."""
    if session_id is None:
        n = await pool.fetchval(f"SELECT count(*) FROM {table}")
    elif table in ("order_events", "fills"):
        n = await pool.fetchval(
            f"SELECT count(*) FROM {table} t JOIN orders o USING (client_order_id) "
            "WHERE o.session_id = $1",
            session_id,
        )
    else:
        n = await pool.fetchval(f"SELECT count(*) FROM {table} WHERE session_id = $1", session_id)
    return int(n)


async def table_counts(pool: Pool, session_id: UUID | None = None) -> dict[str, int]:
    return {t: await count(pool, t, session_id) for t in PLAN_TABLES}


def metric(rt: Runtime, name: str, **labels: str) -> float:
    """A sample of the runtime's Prometheus registry (0 when never incremented)."""
    value = rt.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


@dataclass(frozen=True, slots=True)
class VenueOrder:
    """One order as the kernel's paper venue holds it (as its order commands and
    updates report it)."""

    client_order_id: str
    order_id: str
    qty: int
    status: str
    filled_qty: int
    tag: str | None


class KernelLog:
    """Every event batch a session's kernel reported, in order: a spy on its driver,
    attached before the first tick (``run_session(..., before_feed=KernelLog.attach)``).

    The venue's order book and the updates taken are read here from the kernel's
    own output, independently of the rows it became."""

    def __init__(self, driver: KernelDriver) -> None:
        self.events: EventBatch = {}
        absorb = driver.absorb

        def spy(ev: EventBatch | None) -> None:
            extend(self.events, ev)
            absorb(ev)

        driver.absorb = spy  # type: ignore[method-assign]

    @staticmethod
    def attach(rt: Runtime) -> KernelLog:
        assert rt.kernel is not None, "the session does not run on the kernel"
        log = _KERNEL_LOGS[rt] = KernelLog(rt.kernel)
        return log

    @staticmethod
    def of(rt: Runtime) -> KernelLog:
        log = _KERNEL_LOGS.get(rt)
        assert log is not None, "attach a KernelLog before the feed starts"
        return log

    def rows(self, table: str) -> list[dict[str, Any]]:
        return rows(self.events, table)

    def venue_orders(self) -> list[VenueOrder]:
        """Each order placed, at the last update the venue reported for it."""
        placed = {o["client_order_id"]: o for o in self.rows("orders") if o["action"] == "PLACE"}
        last: dict[str, dict[str, Any]] = {}
        for u in self.rows("updates"):
            last[u["client_order_id"]] = u
        out = []
        for cid, o in placed.items():
            u = last.get(cid) or {"status": "PLACED", "filled_qty": 0}
            order = VenueOrder(
                cid, str(o["order_id"]), o["qty"], u["status"], u["filled_qty"], broker_tag(cid)
            )
            out.append(order)
        return out

    def walks(self) -> dict[str, list[tuple[str, str, str]]]:
        """Each bracket's steps (from, event, to), in the order the kernel took them."""
        out: dict[str, list[tuple[str, str, str]]] = {}
        for t in self.rows("transitions"):
            out.setdefault(t["plan_id"], []).append((t["from"], t["event"], t["to"]))
        return out

    def states(self) -> dict[str, str]:
        """Each bracket's state after its last step so far."""
        return {plan: walk[-1][2] for plan, walk in self.walks().items()}


_KERNEL_LOGS: weakref.WeakKeyDictionary[Runtime, KernelLog] = weakref.WeakKeyDictionary()


async def venue_orders(rt: Runtime) -> list[VenueOrder]:
    """The paper venue's order book of a session."""
    return KernelLog.of(rt).venue_orders()


def updates_taken(rt: Runtime) -> int:
    """Order updates the session took from its venue (repeats included)."""
    return len(KernelLog.of(rt).rows("updates"))


BatchHook = Callable[[TickBatch], Awaitable[None]]


class SteppedFeed:
    """The synthetic feed with a hook after every batch, driven by the runtime's own loop.

    ``between(batch)`` runs once the runtime has fully processed ``batch`` (engine,
    orders, paper fills, updates) and before the next one is read: a test can
    look at the session there, stop the database, wait, or inject an input.
    """

    def __init__(self, universe: Universe, day: date, seed: int = SEED) -> None:
        self.inner = SyntheticFeed(universe, day=day, seed=seed)
        self.name = self.inner.name
        self.kind: FeedKind = self.inner.kind
        self.between: BatchHook | None = None
        self.batches_done = 0

    @classmethod
    def factory(cls, seed: int = SEED) -> Callable[[Universe, date], SteppedFeed]:
        return lambda universe, day: cls(universe, day, seed)

    @property
    def is_synthetic(self) -> bool:
        return self.inner.is_synthetic

    @property
    def label(self) -> str:
        return self.inner.label

    @property
    def instruments(self) -> Sequence[Instrument]:
        return self.inner.instruments

    async def start(self) -> None:
        await self.inner.start()

    async def stop(self) -> None:
        await self.inner.stop()

    def ticks(self) -> AsyncIterator[Tick]:
        return self.inner.ticks()

    def progress(self) -> float:
        return self.inner.progress()

    async def batches(
        self, max_rows: int = 65536, *, max_span_ns: int | None = None
    ) -> AsyncIterator[TickBatch]:
        async for batch in self.inner.batches(max_rows, max_span_ns=max_span_ns):
            yield batch
            self.batches_done += 1
            if self.between is not None:
                await self.between(batch)


def stepped(rt: Runtime) -> SteppedFeed:
    feed = rt.feed
    assert isinstance(feed, SteppedFeed), "run the runtime with feed_factory=SteppedFeed.factory()"
    return feed
