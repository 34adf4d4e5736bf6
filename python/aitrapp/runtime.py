"""The trading runtime: every component of a session, started in order and stopped in reverse.

Start: database (pool, migrations) -> writer -> bus -> instruments and the
session row -> start-up reconciliation -> the trading kernel -> feed task.
Stop: the reverse, draining the writer last so nothing is lost.

It implements :class:`aitrapp.control.RuntimeHandle`, the only surface the
control API and the CLI use: mode, pause/resume, flatten, state, health.

One loop decides and protects: the Rust trading kernel (engine, OCO brackets
and a venue, event-exact; see docs/kernel.md). PAPER runs the paper venue
inside it; LIVE makes Kite its external venue, every command going through the
write-ahead journal (:mod:`aitrapp.kernel.live`). Python feeds it, persists
and publishes what it reports, and serves the read side.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime
from datetime import time as dt_time
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast
from uuid import UUID

from aitrapp._core import Instrument, Kernel, LiveKernel
from aitrapp.brokers.base import Broker
from aitrapp.brokers.journal import JournaledBroker
from aitrapp.brokers.paper import PaperBroker
from aitrapp.brokers.paper_config import PaperConfig
from aitrapp.bus import EventBus, make_bus
from aitrapp.calendar import (
    IST,
    ist_ns,
)
from aitrapp.charges import ChargeSchedule, charge_kind
from aitrapp.clock import ExchangeClock, ReplayClock, WallClock, clock_for
from aitrapp.config import EngineConfig
from aitrapp.control import (
    ComponentHealth,
    FlattenResult,
    Mode,
    ModeChange,
    ModeRefusedError,
    TradingState,
)
from aitrapp.db import repo
from aitrapp.db.migrate import check as check_migrations
from aitrapp.db.migrate import migrate
from aitrapp.db.pool import Database, open_database
from aitrapp.db.repo import AuditRow, InstrumentRow, SessionEnd, SessionRow
from aitrapp.db.writer import DbWriter
from aitrapp.exceptions import AitrappError, ConfigError
from aitrapp.feeds.base import Feed, FeedKind, TickBatch
from aitrapp.kernel.book_view import BookView
from aitrapp.kernel.driver import KernelDriver
from aitrapp.kernel.live import LiveKernelDriver
from aitrapp.kernel.options import BracketOptions, bracket_template
from aitrapp.kernel.persist import utc
from aitrapp.metrics import Metrics
from aitrapp.notify import Notifications, start_notifications
from aitrapp.recovery.crash_recovery import AbortedSession, abort_dead_sessions, this_host
from aitrapp.recovery.engine_restore import EngineRestore, adopt_open_brackets, restore_engine
from aitrapp.recovery.startup_reconcile import StartupReconcile, reconcile_at_start
from aitrapp.session_day import feed_info, make_feed, pick_day, refuse_rerun
from aitrapp.settings import AppSettings
from aitrapp.universe import Universe, load_universe

if TYPE_CHECKING:  # the Kite client is imported only when a LIVE session needs it
    from aitrapp.brokers.kite import KiteBroker

log = logging.getLogger(__name__)
T = TypeVar("T")

_SECOND_NS = 1_000_000_000
# After a replay's last tick, time runs on to the close (square-off, timeouts).
_SESSION_CLOSE = dt_time(15, 30)
_PRE_OPEN = dt_time(9, 0)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


@dataclass(frozen=True, slots=True)
class RuntimeOptions:
    """What to run: the feed, the day, the universe, the configs."""

    feed: FeedKind = "synthetic"
    # LIVE: the LIVE gate must pass at start (audited); orders then go to Kite.
    mode: Mode = "PAPER"
    day: date | None = None  # default: the latest NSE trading day up to today
    symbols: tuple[str, ...] = ()  # default: the universe's default selection
    seed: int = 7
    speed: str = "max"
    ticks_per_second: float = 1.0
    replay_paths: tuple[Path, ...] = ()
    engine: EngineConfig | None = None
    paper: PaperConfig | None = None
    bracket: BracketOptions = field(default_factory=BracketOptions)
    start_feed: bool = True
    # Start trading even when the broker and the database disagree at start-up
    # (repairs are applied first); otherwise the session starts PAUSED.
    accept_reconcile: bool = False
    # Resume today's open brackets, trade count and PnL in the engine from the
    # database; None = only on the live feed (see Runtime._start).
    restore_day: bool | None = None
    auto_migrate: bool = True
    slo_ms: float = 1.0
    flatten_on_stop: bool = True
    flatten_timeout_s: float = 10.0
    batch_rows: int = 4096
    # Your own instruments (aitrapp.instruments_csv); None: the built-in universe of the day.
    universe: Universe | None = None
    backtest_id: UUID | None = None  # the backtest this session is one day of
    # When a replayed or synthetic feed ends: True runs the day out to the close
    # (timeouts, the 15:20 square-off), as `aitrapp paper` reports a whole day;
    # False holds the session at its last tick, positions open and marked at their
    # last price, until the operator flattens or stops it (a console session).
    close_day_at_feed_end: bool = True
    # LIVE on the kernel: exchange time now (UTC ns), which moves the kernel between
    # ticks (timeouts, square-off). None: the wall clock when the session's day is
    # today (IST); a session of another day (a drill against a fake) has none.
    live_clock: Callable[[], int] | None = None
    # Injected parts (tests, the Kite session): used instead of building them.
    feed_factory: Callable[[Universe, date], Feed] | None = None
    # LIVE only: the broker the kernel's external venue talks to (a fake Kite in
    # drills and tests); PAPER's venue is inside the kernel.
    broker_factory: Callable[[list[Instrument]], Broker] | None = None


def default_paper_config() -> PaperConfig:
    # A kill switch must not wait long on a quiet instrument: fill a market
    # exit against the last quote after 0.5 s of simulated silence.
    return PaperConfig(no_tick_wait_ns=500_000_000)


class Runtime:
    """A running trading session. Build with :func:`start_runtime`."""

    def __init__(self, settings: AppSettings, options: RuntimeOptions) -> None:
        self.settings = settings
        if options.bracket.stop_fill_timeout_s == BracketOptions().stop_fill_timeout_s:
            # AITRAPP_OCO_STOP_FILL_TIMEOUT_S, unless the options chose their own
            bracket = replace(options.bracket, stop_fill_timeout_s=settings.oco_stop_fill_timeout_s)
            options = replace(options, bracket=bracket)
        self.options = options
        self.metrics = Metrics()
        self._mode: Mode = "PAPER"
        self._state: TradingState = "ACTIVE"
        self._db: Database | None = None
        self._live_broker: KiteBroker | None = None  # built, started and stopped here
        self._broker_account: str | None = None  # the Kite user id of a LIVE session
        self._writer: DbWriter | None = None
        self._bus: EventBus | None = None
        self._session_id: UUID | None = None
        self.replay_sha: str | None = None  # content hash of a replay (see refuse_rerun)
        self.day: date = options.day or date.today()
        self.universe: Universe | None = None
        self.instruments: dict[int, Instrument] = {}
        self.broker: Broker | None = None  # LIVE: Kite (or an injected fake)
        self.journal: JournaledBroker | None = None
        self.feed: Feed | None = None
        self.clock: ReplayClock | WallClock | None = None
        self._feed_task: asyncio.Task[None] | None = None
        self._feed_error: BaseException | None = None
        self.feed_done = asyncio.Event()
        self._feed_paused = asyncio.Event()
        self._feed_paused.set()  # set = running
        self.flatten_results: list[dict[str, Any]] = []
        self.reconcile: StartupReconcile | None = None
        # Called by the feed loop between batches (at most one second of session
        # time apart): the session runner's drills run here, in feed order.
        self.after_batch: Callable[[], Awaitable[None]] | None = None
        self.restored: EngineRestore | None = None
        self.kernel: KernelDriver | None = None
        self.live: LiveKernelDriver | None = None  # LIVE on the kernel (self.kernel too)
        self._kernel_clock: asyncio.Task[None] | None = None  # paper on the live feed
        self.notify = Notifications.disabled()  # AITRAPP_NOTIFY_URLS: started with the bus
        self.started_at = datetime.now(UTC)
        self._background: set[asyncio.Task[None]] = set()
        self.aborted_sessions: list[AbortedSession] = []  # of dead processes, at this start
        # PAUSED at start because broker and database disagreed, and not resumed since.
        self.paused_by_reconcile = False
        self._stopped = False
        self._closed = False

    # ------------------------------------------------------------------ handle surface
    @property
    def pool(self) -> Any:
        return self._require(self._db).pool

    @property
    def bus(self) -> EventBus:
        return self._require(self._bus)

    @property
    def writer(self) -> DbWriter:
        return self._require(self._writer)

    @property
    def session_id(self) -> UUID | None:
        return self._session_id

    @property
    def mode(self) -> Mode:
        return self._mode

    @property
    def trading_state(self) -> TradingState:
        return self._state

    @staticmethod
    def _require(value: T | None) -> T:
        if value is None:
            raise AitrappError("runtime is not started")
        return value

    # ------------------------------------------------------------------ start
    async def _start(self) -> None:
        s, o = self.settings, self.options
        self._db = await open_database(s)
        async with self._db.pool.acquire() as conn:
            status = await check_migrations(conn, s.migrations_dir)
            if status.pending:
                if not o.auto_migrate:
                    names = ", ".join(m.filename for m in status.pending)
                    raise ConfigError(
                        f"database has pending migrations ({names}): run aitrapp migrate"
                    )
                await migrate(conn, s.migrations_dir)
        self._writer = DbWriter(
            self._db.pool,
            queue_max=s.writer_queue_max,
            batch_max=s.writer_batch_max,
            retry_max_s=s.writer_retry_max_s,
            probe_interval_s=s.writer_probe_interval_s,
            command_timeout_s=s.writer_command_timeout_s,
            heartbeat_timeout_s=s.db_heartbeat_timeout_s,
            heartbeat_connect=self._db.connect,
            metrics=self.metrics,
            spill_dir=s.data_dir,
        )
        self.metrics.bind_writer_depth(lambda: float(self.writer.queue_depth))
        await self._writer.start()
        self._bus = make_bus(s, self.metrics)
        await self._bus.start()
        self.notify = await start_notifications(s, self._bus, self.metrics)
        if o.mode == "LIVE":
            await self._pass_live_gate()

        engine_cfg = o.engine or EngineConfig()
        self.day = await pick_day(self._db.pool, o, engine_cfg.config_sha)
        universe = o.universe if o.universe is not None else load_universe(on=self.day)
        if o.feed == "kite":  # only rows with Kite's own tokens can be streamed
            from aitrapp.kite.session import kite_universe

            self.universe = kite_universe(universe, o.symbols)
        else:
            self.universe = universe.select(o.symbols) if o.symbols else universe.defaults()
        self.instruments = {i.instrument_token: i for i in self.universe.instruments}
        await self._record_instruments()
        self.feed = make_feed(o, self.universe, self.day)
        replay = await refuse_rerun(
            self._db.pool,
            self.feed,
            o,
            self.day,
            engine_cfg.config_sha,
            o.paper or default_paper_config(),
        )
        self.day, self.replay_sha = replay.day, replay.sha
        # Sessions of killed processes would stay RUNNING for ever: ABORTED, at their last event.
        self.aborted_sessions = await abort_dead_sessions(self._db.pool)
        session = SessionRow(
            trading_date=self.day,
            mode=self._mode,
            feed=self.feed.kind,
            started_at=self.started_at,
            config_sha=engine_cfg.config_sha,
            summary={"feed": self._feed_info()},
            backtest_id=o.backtest_id,
            replay_sha=self.replay_sha,
            pid=os.getpid(),
            host=this_host(),
        )
        await repo.create_session(self._db.pool, session)
        self._session_id = session.id

        self.metrics.set_daily_loss_stop(
            engine_cfg.risk.capital_rupees, engine_cfg.risk.daily_loss_stop_pct
        )
        if self._mode == "LIVE":
            await self._start_live_kernel(engine_cfg)
            return
        if o.broker_factory is not None:
            raise ConfigError(
                "broker_factory: PAPER runs the paper venue inside the kernel; "
                "an injected broker is for LIVE"
            )
        self._start_kernel(engine_cfg)
        self._writer.add_health_listener(self._on_db_health)
        await self._reconcile_fresh_venue()
        # A real day (the live feed) resumes its figures and book; a replayed or
        # synthetic one is its own simulated account.
        if o.restore_day if o.restore_day is not None else self.feed.kind == "kite":
            self.restored = await restore_engine(
                self._require(self.kernel).kernel, self._db.pool, self.day, mode=self._mode
            )
        clock = self._live_clock() if self.feed.kind == "kite" else None
        if clock is not None:  # timers between the live feed's ticks fire at their time
            self._kernel_clock = asyncio.create_task(
                self._require(self.kernel).run_clock(clock), name="kernel-clock"
            )
        self.clock = clock_for(self.feed.kind, o.speed)
        self._audit_nowait("session_start", {"feed": self._feed_info()}, {"ok": True})
        if o.start_feed:
            self.start_feed()

    async def _reconcile_fresh_venue(self) -> None:
        """The kernel's paper venue is a fresh account, as a restarted paper broker is:
        what earlier sessions left open (a killed process's orders and positions) is
        reconciled against an empty paper broker. A mismatch starts the session PAUSED
        unless accepted; accepted, their rows are cancelled and closed (as trades)."""
        o = self.options
        empty = PaperBroker(list(self.instruments.values()), default_paper_config())
        self.reconcile = await reconcile_at_start(
            pool=self.pool,
            broker=empty,
            session_id=self._require(self._session_id),
            accept=o.accept_reconcile,
            writer=self._writer,
        )
        if not self.reconcile.may_trade(o.accept_reconcile):
            self._set_state("PAUSED")
            self.paused_by_reconcile = True
            for line in self.reconcile.lines():
                log.warning("reconcile: %s", line)
            log.warning("database holds what a fresh account does not: trading starts PAUSED")
        self.notify.reconcile(self.reconcile, paused=self._state == "PAUSED")

    async def _start_live_kernel(self, engine_cfg: EngineConfig) -> None:
        """LIVE on the kernel: Kite is its external venue. Broker and database are
        reconciled at start; the day and the open brackets are restored into the
        kernel, whose machines keep them protected."""
        o, pool = self.options, self.pool
        self._build_broker()
        if self._live_broker is not None:
            await self._live_broker.start()  # recovers the day's orders before reconcile
        session_id = self._require(self._session_id)
        self.reconcile = await reconcile_at_start(
            pool=pool,
            broker=self._require(self.journal),
            session_id=session_id,
            accept=o.accept_reconcile,
            writer=self._writer,
        )
        charges = ChargeSchedule.default()
        for i in self.instruments.values():  # refuse now, not at the first trade
            charges.rates_for(i.exchange, charge_kind(i.segment), self.day)
        kernel = LiveKernel(
            engine_cfg.to_core_json(),
            list(self.instruments.values()),
            json.dumps({"command_latency_ns": 50_000_000}),
            json.dumps(bracket_template(o.bracket)),
        )
        # The day starts at the pre-open: one bad first tick cannot pick the day.
        kernel.advance_time(ist_ns(self.day, _PRE_OPEN))
        fill_scope = self.fill_scope()  # the broker account (before self.kernel is set)
        live = LiveKernelDriver(
            kernel,
            journal=self._require(self.journal),
            start_ns=ist_ns(self.day, _PRE_OPEN),
            clock=self._live_clock(),
            writer=self.writer,
            bus=self.bus,
            metrics=self.metrics,
            session_id=session_id,
            instruments=self.instruments,
            fill_scope=fill_scope,
            charges=charges,
            slo_ms=o.slo_ms,
        )
        self.kernel = self.live = live
        if not self.reconcile.may_trade(o.accept_reconcile):
            self._set_state("PAUSED")
            self.paused_by_reconcile = True
            for line in self.reconcile.lines():
                log.warning("reconcile: %s", line)
            log.warning("broker and database disagree: trading starts PAUSED (no entries)")
        else:
            self._set_state(self._state)
        self.notify.reconcile(self.reconcile, paused=self._state == "PAUSED")
        feed_kind = self._require(self.feed).kind
        restore = o.restore_day if o.restore_day is not None else feed_kind == "kite"
        if restore:
            self.restored = await restore_engine(kernel, pool, self.day, mode=self._mode)
            await live.load_earlier_orders(pool, self.day)
            if self.reconcile.may_trade(o.accept_reconcile):
                await live.load_transitions(pool)
                await adopt_open_brackets(
                    live, pool, self.instruments, asdict(o.bracket), book=live.book_adopted
                )
        self.writer.add_health_listener(self._on_db_health)
        live.start()
        self.clock = clock_for(feed_kind, o.speed)
        self._audit_nowait("session_start", {"feed": self._feed_info()}, {"ok": True})
        if o.start_feed:
            self.start_feed()

    def _live_clock(self) -> Callable[[], int] | None:
        """What moves the live kernel's time between ticks (see RuntimeOptions)."""
        if self.options.live_clock is not None:
            return self.options.live_clock
        return ExchangeClock() if self.day == datetime.now(IST).date() else None

    def _start_kernel(self, engine_cfg: EngineConfig) -> None:
        """PAPER on the kernel: one Rust loop owns the engine, the brackets and the
        paper venue; Python persists, publishes and serves what it reports."""
        o = self.options
        paper = o.paper or default_paper_config()
        charges = ChargeSchedule.default()
        for i in self.instruments.values():  # refuse now, not at the first trade
            charges.rates_for(i.exchange, charge_kind(i.segment), self.day)
        kernel = Kernel(
            engine_cfg.to_core_json(),
            list(self.instruments.values()),
            paper.to_json(),
            json.dumps(bracket_template(o.bracket)),
        )
        # The day starts at the pre-open: one bad first tick cannot pick the day.
        kernel.advance_time(ist_ns(self.day, _PRE_OPEN))
        self.kernel = KernelDriver(
            kernel,
            writer=self.writer,
            bus=self.bus,
            metrics=self.metrics,
            session_id=self._require(self._session_id),
            instruments=self.instruments,
            fill_scope=f"paper:{self._require(self._session_id)}",
            charges=charges,
            slo_ms=o.slo_ms,
        )

    def _build_broker(self) -> None:
        """LIVE: Kite (or the injected broker) behind the write-ahead journal.
        KiteBroker keeps to Kite's order-rate limits itself (protective orders first)."""
        o = self.options
        instruments = list(self.instruments.values())
        if o.broker_factory is not None:
            broker = o.broker_factory(instruments)
        else:
            from aitrapp.kite.session import kite_access_from_env, kite_broker

            access = kite_access_from_env(now=datetime.now(UTC))
            self._broker_account = access.user_id
            broker = self._live_broker = kite_broker(access, instruments)
        if isinstance(broker, PaperBroker):
            raise ConfigError("mode LIVE: the broker is the paper broker")
        self.broker = broker
        # The kernel's event batches count and publish its orders.
        self.journal = JournaledBroker(
            broker,
            pool=self.pool,
            writer=self.writer,
            session_id=self._require(self._session_id),
            now=lambda: utc(self.now_ns()),
        )

    async def _record_instruments(self) -> None:
        now = datetime.now(UTC)
        rows = [
            InstrumentRow(
                instrument_token=i.instrument_token,
                exchange=i.exchange,
                tradingsymbol=i.tradingsymbol,
                segment=i.segment,
                tick_size=Decimal(i.tick_paise) / 100,
                lot_size=i.lot_size,
                freeze_qty=i.freeze_qty,
                updated_at=now,
            )
            for i in self.instruments.values()
        ]
        await repo.upsert_instruments(self.pool, rows)

    def _feed_info(self) -> dict[str, Any]:
        return feed_info(self.feed, self.options.seed)

    # ------------------------------------------------------------------ time
    def now_ns(self) -> int:
        """Session time: the kernel's (its last tick), else wall time (UTC ns)."""
        if self.live is not None:  # the live kernel's clock (or its last tick)
            return self.live.now_ns()
        if self.kernel is not None:
            last = self.kernel.kernel.counters()["last_tick_ns"]
            if last:
                return int(last)
        if isinstance(self.clock, ReplayClock):
            return self.clock.now_ns()
        return time.time_ns()

    # ------------------------------------------------------------------ the feed loop
    def start_feed(self) -> None:
        if self._feed_task is None:
            self._feed_task = asyncio.create_task(self._run_feed(), name="feed")

    async def _run_feed(self) -> None:
        feed = self._require(self.feed)
        try:
            await feed.start()
            if feed.kind == "kite":
                async for tick in feed.ticks():
                    await self._feed_paused.wait()
                    recv = tick.recv_ns or time.perf_counter_ns()
                    await self._process(
                        tick.instrument_token, tick.ts_ns, tick.last_price, tick.last_qty,
                        tick.volume, tick.bid, tick.ask, tick.oi, recv,
                    )  # fmt: skip
                    self.metrics.ticks.inc()
            else:
                clock = self.clock
                assert clock is not None
                rows, span = self.options.batch_rows, _SECOND_NS
                unpaced_kernel = self.options.speed == "max"
                if unpaced_kernel:
                    # The kernel is event-exact whatever the batch: a minute of session
                    # time per call (drills and the API see the replay minute by minute).
                    rows, span = max(rows, 65_536), 60 * _SECOND_NS
                async for batch in feed.batches(rows, max_span_ns=span):
                    await self._feed_paused.wait()
                    await clock.pace(int(batch.ts_ns[-1]))
                    await self._process_batch(batch)
                    self.metrics.ticks.inc(len(batch))
                    if unpaced_kernel:
                        # Faster than the database can take its rows: wait, never drop.
                        await self.writer.wait_for_room()
                    if self.after_batch is not None:
                        await self.after_batch()
            await self._feed_ended()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._feed_error = exc
            log.exception("feed stopped with an error")
        finally:
            self.feed_done.set()
            with contextlib.suppress(Exception):
                await feed.stop()

    async def _process_batch(self, batch: TickBatch) -> None:
        self._require(self.kernel).run_batch(batch)  # columns in, one call
        await asyncio.sleep(0)  # let the API and other tasks in between batches

    async def _process(
        self,
        token: int,
        ts: int,
        last_price: float,
        last_qty: int,
        volume: int,
        bid: float | None,
        ask: float | None,
        oi: int | None,
        recv_ns: int,
    ) -> None:
        kernel = self._require(self.kernel)
        kernel.on_tick(token, ts, last_price, last_qty, volume, bid, ask, oi, recv_ns)

    async def _feed_ended(self) -> None:
        """No more ticks: pending paper orders settle against the last quotes; the day
        then runs out to the close, or holds at the last tick (see RuntimeOptions)."""
        k = self._require(self.kernel)
        last = self.now_ns()
        # A real-time session's time is its clock's: a feed that stops must not
        # jump it to the close (that would square everything off now).
        by_clock = self._kernel_clock is not None or (
            self.live is not None and self.live.clock is not None
        )
        run_out = self.options.close_day_at_feed_end and not by_clock
        k.finish(last, max(last, ist_ns(self.day, _SESSION_CLOSE) if run_out else last))
        k.sync_tick_rejections()
        log.info("feed ended after %s ticks", k.kernel.counters()["ticks"])

    def _feed_is_driving(self) -> bool:
        return (
            self._feed_task is not None
            and not self._feed_task.done()
            and self._feed_paused.is_set()
        )

    async def pause_feed(self) -> None:
        """Holds the feed loop (between batches); used by the session runner's drills."""
        self._feed_paused.clear()

    def resume_feed(self) -> None:
        self._feed_paused.set()

    async def wait_feed(self) -> None:
        await self.feed_done.wait()
        if self._feed_error is not None:
            raise AitrappError(f"feed failed: {self._feed_error}") from self._feed_error

    # ------------------------------------------------------------------ accounts
    def fill_scope(self) -> str:
        """The account a fill's key is unique in: a paper session is its own account
        (paper order ids restart with the process); a broker's account otherwise."""
        if self._mode == "PAPER":
            return f"paper:{self._require(self._session_id)}"
        broker = self._require(self.broker)
        account = getattr(broker, "account_id", None) or self._broker_account
        if account is None:  # an injected test broker: its ids may restart like paper's
            return f"{broker.name}:{self._require(self._session_id)}"
        return f"{broker.name}:{account}"

    def _on_db_health(self, ok: bool, reason: str | None) -> None:
        """The database stopped (or resumed) answering: an alert either way. While it
        is down the kernel opens no entry (DB_UNAVAILABLE); exits go on."""
        self._kernel_apply_state()
        k = self._require(self.kernel)
        if ok:
            k.alert(self.now_ns(), "INFO", "DB_RECOVERED", "database answers again")
        else:
            message = f"database unavailable ({reason}): no new entries until it answers"
            k.alert(self.now_ns(), "CRITICAL", "DB_UNAVAILABLE", message)

    # ------------------------------------------------------------------ control
    def _set_state(self, state: TradingState) -> None:
        self._state = state
        if self.kernel is not None:  # None before the kernel is built (LIVE start)
            self._kernel_apply_state()

    def _kernel_apply_state(self) -> None:
        """The kernel opens entries only when ACTIVE and the database answers
        (DB_UNAVAILABLE: exits go on, nothing new opens)."""
        k = self._require(self.kernel)
        db_ok = self._writer is None or self._writer.healthy
        state = self._state if db_ok or self._state != "ACTIVE" else "PAUSED"
        k.kernel.set_trading_state(state)
        # Entries refused meanwhile say the database is why (DB_UNAVAILABLE).
        k.entry_refusal = None if state == self._state else "DB_UNAVAILABLE"

    async def _kernel_flatten(self, *, actor: str, timeout_s: float) -> FlattenResult:
        """The kill switch on the kernel: every bracket exits at market at once.
        Session time then runs on (acknowledgements, no-tick fills) unless the
        feed is moving it, until flat and clean or the timeout."""
        k = self._require(self.kernel)
        t0 = time.perf_counter()
        self._set_state("HALTED")
        start = self.now_ns()
        before = replace(k.commands)
        k.flatten(start)
        sim, flat_ms, clean_ms = start, None, None
        while True:
            elapsed = time.perf_counter() - t0
            open_now, working_now = k.open_positions(), k.working_orders()
            if not open_now and flat_ms is None:
                flat_ms = round(elapsed * 1000, 3)
            if not working_now and clean_ms is None:
                clean_ms = round(elapsed * 1000, 3)
            if (flat_ms is not None and clean_ms is not None) or elapsed > timeout_s:
                break
            if self._feed_is_driving() or self.live is not None:
                await asyncio.sleep(0.005)  # LIVE: Kite's reports move it on
            elif sim - start > timeout_s * 1e9:
                break
            else:
                sim += 50_000_000
                k.advance_time(sim)
        sent = k.commands
        result = FlattenResult(
            elapsed_ms=round((time.perf_counter() - t0) * 1000, 3),
            cancelled_orders=sent.cancels - before.cancels,
            # A stop modified into the market exit is an exit too (one request).
            exit_orders=sent.market_exits
            - before.market_exits
            + sent.converted_stops
            - before.converted_stops,
            converted_stops=sent.converted_stops - before.converted_stops,
            open_positions_after=len(k.open_positions()),
            working_orders_after=len(k.working_orders()),
            state=self._state,
            flat_after_ms=flat_ms,
            clean_after_ms=clean_ms,
        )
        error = None
        if not result.ok:
            error = (
                f"flatten not done after {timeout_s:g}s: {result.open_positions_after} "
                f"open positions, {result.working_orders_after} working orders"
            )
        return await self._flatten_done(actor, timeout_s, result, error)

    async def _audit(
        self, action: str, actor: str, params: dict[str, Any], result: dict[str, Any]
    ) -> None:
        row = AuditRow(
            ts=datetime.now(UTC),
            actor=actor,
            action=action,
            session_id=self._session_id,
            params=params,
            result=result,
        )
        try:
            await asyncio.wait_for(repo.execute(self.pool, row), timeout=2.0)
        except Exception:  # the audit must not be lost: keep it in the writer's queue
            self.writer.submit(row)
        self.bus.publish("mode", {"action": action, "actor": actor, "params": params, **result})

    def _audit_nowait(self, action: str, params: dict[str, Any], result: dict[str, Any]) -> None:
        self.writer.submit(
            AuditRow(
                ts=datetime.now(UTC),
                actor="system",
                action=action,
                session_id=self._session_id,
                params=params,
                result=result,
            )
        )

    async def pause(self, *, actor: str) -> TradingState:
        before = self._state
        if self._state == "ACTIVE":
            self._set_state("PAUSED")
        await self._audit("pause", actor, {"from": before}, {"state": self._state})
        return self._state

    async def resume(self, *, actor: str) -> TradingState:
        before = self._state
        if actor != "drill":  # the flatten drill restores the state it found
            self.paused_by_reconcile = False
        self._set_state("ACTIVE")
        await self._audit("resume", actor, {"from": before}, {"state": self._state})
        return self._state

    async def set_mode(self, mode: Mode, *, actor: str) -> ModeChange:
        previous = self._mode
        if mode == previous:
            await self._audit("mode", actor, {"mode": mode}, {"ok": True, "unchanged": True})
            return ModeChange(previous, mode)
        if mode == "PAPER":
            reasons = ["switching LIVE -> PAPER needs a restart in PAPER mode (flatten first)"]
        else:
            reasons = await self._live_gate(actor)
            if not reasons and self._mode == "PAPER":
                reasons = [
                    "LIVE gate passed, but this process runs the paper broker: restart with "
                    "the Kite broker (aitrapp kite login, then the live session)"
                ]
        await self._audit("mode", actor, {"mode": mode}, {"ok": not reasons, "reasons": reasons})
        if reasons:
            raise ModeRefusedError(reasons)
        self._mode = mode
        return ModeChange(previous, mode)

    async def _pass_live_gate(self) -> None:
        """A LIVE start: the gate decides (and audits) before any session or order."""
        if self.options.feed != "kite":
            raise ConfigError(f"mode LIVE needs the live feed 'kite', not {self.options.feed!r}")
        from aitrapp.report.credentials import kite_verifier
        from aitrapp.report.live_gate import enforce_live_gate

        gate = {"action": "live_gate", "actor": "runtime:start"}
        try:
            async with self.pool.acquire() as conn:
                await enforce_live_gate(
                    conn,
                    self.settings,
                    actor="runtime:start",
                    verify_credentials=kite_verifier(),
                    params={"at": "session start"},
                )  # raises ModeRefusedError with the gate's reasons
        except ModeRefusedError as exc:
            self.bus.publish("mode", {**gate, "ok": False, "reasons": exc.reasons})
            raise
        self.bus.publish("mode", {**gate, "ok": True})
        self._mode = "LIVE"

    async def _live_gate(self, actor: str) -> list[str]:
        try:
            from aitrapp.report import live_gate
        except ImportError:  # pragma: no cover - the gate ships with the package
            return ["the LIVE gate is not available"]
        decision = await live_gate.evaluate_live_gate(
            self.pool,
            settings=self.settings,
            verify_credentials=self._verify_credentials,
            actor=actor,
            session_id=self._session_id,
        )
        return list(decision.reasons) if not decision.allowed else []

    async def _verify_credentials(self) -> bool | str:
        verify = getattr(self.broker, "verify_credentials", None)
        if verify is None:
            return (
                "no live broker session in this process: run `aitrapp kite login` and "
                "start the session with the Kite broker"
            )
        return cast(bool | str, await verify())

    async def flatten(self, *, actor: str, timeout_s: float = 10.0) -> FlattenResult:
        """HALTED first, so no new entry can race the kill switch; then exits first
        (flat), then clean-up (nothing working): each reported with its time."""
        return await self._kernel_flatten(actor=actor, timeout_s=timeout_s)

    async def _flatten_done(
        self, actor: str, timeout_s: float, result: FlattenResult, error: str | None
    ) -> FlattenResult:
        """Audits a flatten and reports it (raises when it timed out)."""
        outcome = {
            "elapsed_ms": result.elapsed_ms,
            "ok": result.ok and error is None,
            "flat": result.flat,
            "clean": result.clean,
            "flat_after_ms": result.flat_after_ms,
            "clean_after_ms": result.clean_after_ms,
            "open_positions_after": result.open_positions_after,
            "working_orders_after": result.working_orders_after,
            "cancelled_orders": result.cancelled_orders,
            "converted_stops": result.converted_stops,
            "exit_orders": result.exit_orders,
            "error": error,
            "session_time": utc(self.now_ns()).isoformat(),
        }
        self.flatten_results.append({"actor": actor, **outcome})
        await self._audit("flatten", actor, {"timeout_s": timeout_s}, outcome)
        if error is not None:
            from aitrapp.control import FlattenTimeoutError as ControlTimeout

            raise ControlTimeout(error)
        return result

    # ------------------------------------------------------------------ read side
    def book(self) -> BookView:
        """The book as the read side sees it: O(open), from the kernel's counters."""
        return BookView.of_kernel(self._require(self.kernel))

    def state(self) -> dict[str, Any]:
        bv = self.book()
        p = bv.portfolio
        feed = self.feed
        return {
            "mode": self._mode,
            "trading_state": self._state,
            "session": {
                "id": str(self._session_id) if self._session_id else None,
                "trading_date": self.day.isoformat(),
                "feed": self._feed_info(),
                "progress": round(feed.progress(), 4) if feed is not None else None,
                "feed_done": self.feed_done.is_set(),
            },
            "positions": bv.positions,
            "working_orders": bv.working_orders,
            "daily_pnl": {
                "realized_gross": round(p.daily_realized_pnl, 2),
                "unrealized": round(p.daily_unrealized_pnl, 2),
                "total_gross": round(p.daily_pnl, 2),
                "net_after_charges": str(bv.net_pnl_today),
                "daily_loss_halted": p.daily_loss_halted,
            },
            "portfolio_heat_pct": round(p.heat_pct, 4),
            "counters": {
                **bv.counters,
                "ticks_rejected": sum(bv.tick_rejections.values()),
                "trades_today": p.trades_today,
            },
            "last_tick_at": utc(bv.last_tick_ns).isoformat() if bv.last_tick_ns else None,
            "tick_to_decision": bv.latency.summary().as_dict(),
            "latency_measured": bv.latency_measured,
            "order_latency": bv.order_latency.summary().as_dict(),
            "alerts": bv.alerts[-10:],
            "protection": bv.protection,
            "flatten": self.flatten_results[-1] if self.flatten_results else None,
            "reconcile": self.reconcile.summary() if self.reconcile is not None else None,
            "restored": self.restored.summary() if self.restored is not None else None,
        }

    def health(self) -> dict[str, ComponentHealth]:
        out: dict[str, ComponentHealth] = {}
        w = self._writer
        out["database"] = ComponentHealth(
            w is not None and w.healthy,
            "" if w is None or w.healthy else (w.last_error or "unreachable"),
        )
        out["writer"] = ComponentHealth(
            w is not None and w.healthy,
            f"queue_depth={w.queue_depth}" if w is not None else "not started",
        )
        bus = self._bus
        # Degraded (Redis down) is not fatal: events are dropped and counted, trading goes on.
        out["bus"] = ComponentHealth(
            bus is not None and bus.healthy, bus.status if bus is not None else "not started"
        )
        task = self._feed_task
        if task is None:
            out["feed"] = ComponentHealth(True, "not started")
        elif self._feed_error is not None:
            out["feed"] = ComponentHealth(False, f"failed: {self._feed_error!r}")
        else:
            out["feed"] = ComponentHealth(True, "finished" if task.done() else "running")
        if self.live is not None:  # Kite is the kernel's external venue
            err, lost = self.live.error, self.live.absorb_failures
            ok = err is None and self.live.running and not lost
            detail = "kernel" if ok else f"failed: {err!r}" if err else "stopped"
            if lost:
                detail = f"{lost} kernel event batches or reports not handled (see the log)"
            out["order_watcher"] = ComponentHealth(ok, detail)
            out["broker"] = ComponentHealth(self.broker is not None, "kite (kernel)")
        else:  # the paper venue runs inside the kernel
            started = self.kernel is not None
            out["order_watcher"] = ComponentHealth(started, "kernel" if started else "not started")
            out["broker"] = ComponentHealth(started, "paper venue (kernel)")
        rec = self.reconcile
        if rec is not None:
            out["reconcile"] = ComponentHealth(
                rec.in_agreement or rec.agrees_now,
                "in agreement" if rec.in_agreement else "; ".join(rec.lines()[:3]),
            )
        return out

    def summary(self) -> dict[str, Any]:
        """What is stored with the session and read by the report and the burn-in check."""
        bv = self.book()
        c = bv.counters
        # The slowest drill is the one that matters (the burn-in judges them all).
        drills = [f for f in self.flatten_results if f["actor"] == "drill"]
        drill = max(drills, key=lambda f: float(f["elapsed_ms"]), default=None)
        if drill is None and self.flatten_results:
            drill = self.flatten_results[-1]
        return {
            "feed": self._feed_info(),
            "ticks": c["ticks"],
            "ticks_rejected": bv.tick_rejections,
            "signals": c["signals"],
            "decisions": c["decisions"],
            "risk_blocks": c["risk_blocks"],
            "trades": c["trades"],
            "net_pnl": str(bv.net_pnl_today),
            "alerts": c["alerts"],
            "critical_alerts": c["critical_alerts"],
            "double_exits": c.get("double_exits", 0),
            "races": c.get("races", 0),
            "protection": bv.protection,
            "tick_to_decision": bv.latency.summary().as_dict(),
            "latency_measured": bv.latency_measured,
            "order_latency": bv.order_latency.summary().as_dict(),
            "flatten_drill": drill,
            "flatten_drills": drills,
        }

    # ------------------------------------------------------------------ stop
    async def stop(self) -> None:
        """Stops trading (feed, flatten if configured, writer drained) and closes everything."""
        await self.stop_trading()
        await self.close()

    async def stop_trading(self) -> None:
        """Stops the feed, flattens (if configured), ends the session row and drains the
        writer; the database stays open for the report and the burn-in check."""
        if self._stopped:
            return
        self._stopped = True
        status = "COMPLETED"
        if self._feed_task is not None and not self._feed_task.done():
            self._feed_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._feed_task
            status = "ABORTED"
        if self._feed_error is not None:
            status = "FAILED"
        open_brackets = self.kernel is not None and self.kernel.kernel.open_brackets > 0
        if open_brackets and self.options.flatten_on_stop:
            with contextlib.suppress(AitrappError):
                await self.flatten(actor="shutdown", timeout_s=self.options.flatten_timeout_s)
        if self.live is not None:
            with contextlib.suppress(TimeoutError):
                await self.live.drain(timeout_s=self.options.flatten_timeout_s)
            await self.live.stop()
        if self._kernel_clock is not None:
            self._kernel_clock.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._kernel_clock
        if self._live_broker is not None:
            await self._live_broker.stop()
        booked = self.kernel is not None
        if self._session_id is not None and self._writer is not None and booked:
            self._writer.submit(
                SessionEnd(
                    session_id=self._session_id,
                    ended_at=max(datetime.now(UTC), self.started_at),
                    status=status,  # type: ignore[arg-type]
                    summary=self.summary(),
                )
            )
        if self._writer is not None:
            await self._writer.close()
        if booked:  # the closing summary, from the drained journal
            await self.notify.session_closed(self.pool, self._session_id, self.summary())

    async def close(self) -> None:
        """Closes the bus and the database (after stop_trading)."""
        if self._closed:
            return
        self._closed = True
        await self.notify.close()  # sends what waits, before the bus goes
        if self._bus is not None:
            await self._bus.close()
        if self._db is not None:
            await self._db.close()


async def start_runtime(settings: AppSettings, options: RuntimeOptions | None = None) -> Runtime:
    """Builds and starts every component; on failure, stops what was started."""
    rt = Runtime(settings, options or RuntimeOptions())
    try:
        await rt._start()
    except BaseException:
        with contextlib.suppress(Exception):
            await rt.stop()
        raise
    return rt


__all__ = [
    "Runtime",
    "RuntimeOptions",
    "default_paper_config",
    "start_runtime",
]
