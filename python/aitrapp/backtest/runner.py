"""The backtest runner: every trading day of the data as its own session.

One seam, :func:`run_day`, runs one day and returns its trades:

- with ``db`` (a :class:`DayDatabase`), the day is a full PAPER session of
  the trading runtime on the kernel, on the replayed ticks, stamped with its
  own date, in the backtest's database, tied to the backtest by
  ``sessions.backtest_id``;
- with ``db=None`` (``--no-db`` and every sweep task) it runs on the trading
  kernel alone (``aitrapp.kernel.replay_day``): no database, no runtime.

Both paths get the same paper venue and bracket settings
(:func:`session_settings`: the runtime's defaults, with the stop-fill timeout
of the settings, as the runtime applies it) and the same instruments
(those the day's ticks name), so their trades are the same: plan ids, fills,
times, charges and net P&L (a test compares them to the paisa).

A day is identified by its content (``replay_sha``) and the config: a day
that already completed in this database is not run again (its client order
ids would come back); its stored trades are reused and the day is marked
REUSED. A day that failed before placing an order never blocks a rerun.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID, uuid4

import numpy as np
from pydantic import SecretStr

from aitrapp._core import Instrument
from aitrapp.backtest.days import DaySplit, SkippedDay, split_days
from aitrapp.backtest.hashing import replay_sha
from aitrapp.backtest.records import DayResult, TradeRecord
from aitrapp.brokers.paper_config import PaperConfig
from aitrapp.config import EngineConfig
from aitrapp.db.embedded import EmbeddedPostgres
from aitrapp.db.migrate import migrate
from aitrapp.db.pool import Database, Pool, open_database
from aitrapp.exceptions import ConfigError
from aitrapp.feeds.base import ArrayFeed, TickBatch
from aitrapp.feeds.replay import ReplayFeed
from aitrapp.kernel import KernelTrade, replay_day
from aitrapp.kernel.options import BracketOptions, bracket_template
from aitrapp.runtime import RuntimeOptions, default_paper_config, start_runtime
from aitrapp.settings import AppSettings
from aitrapp.universe import Universe, UniverseEntry

log = logging.getLogger(__name__)

_POLL_S = 0.1


class DayProgress(Protocol):
    """What a runner reports while a day runs (the CLI draws a progress bar)."""

    def day_started(self, day: date, ticks: int) -> None: ...

    def ticks_done(self, day: date, ticks: int) -> None: ...

    def day_finished(self, result: DayResult) -> None: ...


@dataclass(frozen=True, slots=True)
class DayDatabase:
    """The database path of :func:`run_day`: one running server, shared by every day."""

    settings: AppSettings  # database_url points at the backtest's server
    pool: Pool
    backtest_id: UUID
    progress: DayProgress | None = None


# ------------------------------------------------------------------ the seam
def session_settings(settings: AppSettings | None = None) -> tuple[PaperConfig, BracketOptions]:
    """The paper venue and bracket settings of every backtest day, with or without
    the database: what ``aitrapp paper`` trades with, the runtime's defaults with
    ``oco_stop_fill_timeout_s`` of ``settings`` (AITRAPP_OCO_STOP_FILL_TIMEOUT_S)."""
    bracket = BracketOptions()
    if settings is not None:
        bracket = replace(bracket, stop_fill_timeout_s=settings.oco_stop_fill_timeout_s)
    return default_paper_config(), bracket


def day_instruments(ticks: TickBatch, instruments: Sequence[Instrument]) -> list[Instrument]:
    """The instruments the day's ticks name (the session's universe), in given order."""
    used = set(np.unique(ticks.token).tolist())
    return [i for i in instruments if i.instrument_token in used]


async def run_day(
    day: date,
    ticks: TickBatch,
    instruments: Sequence[Instrument],
    config: EngineConfig,
    *,
    db: DayDatabase | None,
    bracket: BracketOptions | None = None,
) -> DayResult:
    """Replays one day's ticks (one IST date, feed order) and returns its trades.

    ``bracket`` defaults to :func:`session_settings` of ``db.settings`` (with the
    database) or of the default settings (without)."""
    if bracket is None:
        bracket = session_settings(db.settings if db is not None else None)[1]
    if db is None:
        return await asyncio.to_thread(
            partial(run_day_on_kernel, day, ticks, instruments, config, bracket=bracket)
        )
    return await _run_day_in_database(day, ticks, instruments, config, db, bracket)


def run_day_on_kernel(
    day: date,
    ticks: TickBatch,
    instruments: Sequence[Instrument],
    config: EngineConfig,
    *,
    sha: str | None = None,
    bracket: BracketOptions | None = None,
) -> DayResult:
    """The day on the trading kernel without a database (``aitrapp.kernel.replay_day``):
    the kernel, settings and charges of a persisted session, so the same trades.
    ``sha`` is the day's :func:`day_sha` when known (a sweep hashes each day once);
    ``bracket`` defaults to :func:`session_settings`'s."""
    t0 = time.perf_counter()
    paper, default_bracket = session_settings()
    bracket = bracket or default_bracket
    present = day_instruments(ticks, instruments)
    kday = replay_day(
        ticks,
        present,
        config,
        venue=json.loads(paper.to_json()),
        bracket=bracket_template(bracket),
    )
    decisions = kday.events.get("decisions", {})
    planned_tp = dict(zip(decisions.get("plan_id", []), decisions.get("tp", []), strict=True))
    segments = {(i.exchange, i.tradingsymbol): i.segment for i in present}
    trades = sorted(
        (_trade_from_kernel(day, t, segments, planned_tp.get(t.plan_id)) for t in kday.trades),
        key=lambda t: (t.closed_at, t.plan_id),  # the database path's order
    )
    c = kday.counters
    return DayResult(
        day=day,
        status="COMPLETED",
        trades=tuple(trades),
        ticks=int(c["ticks"]),
        replay_sha=sha or day_sha(ticks, instruments, bracket),
        # As a kernel session's summary counts them (aitrapp.kernel.book_view).
        signals=int(c["decisions"]) + int(c["blocks"]),
        decisions=int(c["decisions"]),
        risk_blocks=int(c["blocks"]),
        wall_s=time.perf_counter() - t0,
    )


_Q4 = Decimal("0.0001")  # money and prices as the database stores them (numeric(18, 4))


def _q4(value: Decimal) -> Decimal:
    return value.quantize(_Q4)


def _trade_from_kernel(
    day: date,
    t: KernelTrade,
    segments: Mapping[tuple[str, str], str],
    planned_tp_paise: float | None,
) -> TradeRecord:
    """A kernel trade as a report trade, valued as the database path stores it."""
    tp = None if planned_tp_paise is None else _q4(Decimal(str(planned_tp_paise)) / 100)
    return TradeRecord(
        day=day,
        plan_id=t.plan_id,
        strategy=t.strategy,
        symbol=t.tradingsymbol,
        exchange=t.exchange,
        segment=segments.get((t.exchange, t.tradingsymbol), "EQ"),
        side="BUY" if t.side == "BUY" else "SELL",
        qty=int(t.qty),
        entry_price=_q4(t.entry_price),
        exit_price=_q4(t.exit_price),
        opened_at=datetime.fromtimestamp(t.opened_ns / 1e9, UTC),
        closed_at=datetime.fromtimestamp(t.closed_ns / 1e9, UTC),
        exit_reason=t.exit_reason,
        planned_risk=_q4(t.planned_risk),
        gross=_q4(t.gross),
        charges=_q4(t.charges),
        net=_q4(t.gross) - _q4(t.charges),
        planned_entry=_q4(t.planned_entry),
        planned_stop=_q4(t.planned_stop),
        planned_tp=tp,
    )


# ------------------------------------------------------------------ the database path
# A backtest day goes to the kernel in batches of up to a minute of session time
# (and DAY_BATCH_ROWS rows), not the runtime's one second: the kernel is
# event-exact, so batch bounds change no trade (the --no-db path, in 65,536-row
# chunks, gives the same ones), while a call per second of 20 instruments is
# ~20 ticks and its fixed cost dominated the day. A minute still bounds how
# much session time passes before a pause or a database outage takes effect.
DAY_BATCH_SPAN_NS = 60 * 1_000_000_000
DAY_BATCH_ROWS = 65_536


class DayFeed(ArrayFeed):
    """One backtest day's ticks (already loaded and validated) as a replay feed."""

    def __init__(
        self, day: date, ticks: TickBatch, instruments: Sequence[Instrument], name: str
    ) -> None:
        super().__init__(
            name=f"{name} {day}", kind="replay", instruments=instruments, synthetic=ticks.synthetic
        )
        self._ticks = ticks

    def _load(self) -> tuple[TickBatch, tuple[int, int]]:
        return self._ticks, (self._ticks.first_ts_ns, self._ticks.last_ts_ns)

    def batches(
        self, max_rows: int = DAY_BATCH_ROWS, *, max_span_ns: int | None = None
    ) -> AsyncGenerator[TickBatch, None]:
        span = None if max_span_ns is None else max(max_span_ns, DAY_BATCH_SPAN_NS)
        return super().batches(max_rows, max_span_ns=span)


def day_sha(
    ticks: TickBatch, instruments: Sequence[Instrument], bracket: BracketOptions | None = None
) -> str:
    """The content hash the runtime stamps on the day's session (same settings)."""
    paper, default_bracket = session_settings()
    return replay_sha(ticks, instruments, paper, bracket or default_bracket)


def _universe_of(instruments: Sequence[Instrument]) -> Universe:
    return Universe(
        UniverseEntry(
            instrument=i,
            token_source="kite",
            ref_price=0.0,
            daily_vol=0.0,
            avg_daily_volume=0,
            default=True,
            name=i.tradingsymbol,
            root=i.tradingsymbol,
        )
        for i in instruments
    )


async def _run_day_in_database(
    day: date,
    ticks: TickBatch,
    instruments: Sequence[Instrument],
    config: EngineConfig,
    db: DayDatabase,
    bracket: BracketOptions,
) -> DayResult:
    t0 = time.perf_counter()
    sha = day_sha(ticks, instruments, bracket)
    reused = await _reuse(db.pool, day, sha, config.config_sha, instruments)
    if reused is not None:
        return replace(reused, wall_s=time.perf_counter() - t0)
    present = day_instruments(ticks, instruments)
    paper = session_settings()[0]
    name = "SYNTHETIC backtest" if ticks.synthetic else "backtest"
    options = RuntimeOptions(
        feed="replay",
        day=day,
        symbols=tuple(i.tradingsymbol for i in present),
        engine=config,
        universe=_universe_of(present),
        backtest_id=db.backtest_id,
        paper=paper,
        bracket=bracket,
        feed_factory=lambda _u, d: DayFeed(d, ticks, present, name),
        auto_migrate=False,
        flatten_timeout_s=30.0,
        batch_rows=DAY_BATCH_ROWS,
        start_feed=False,  # not before the start-up reconcile is known to allow trading
    )
    progress = db.progress
    rt = await start_runtime(db.settings, options)
    session_id = rt.session_id
    assert session_id is not None
    if rt.paused_by_reconcile:
        # Stopped before a tick: it ends COMPLETED with nothing done, so it is marked
        # FAILED (never reused; without orders it blocks no rerun).
        refused = _paused_at_start(day, rt.reconcile.lines() if rt.reconcile else [])
        await rt.stop()
        await db.pool.execute("UPDATE sessions SET status = 'FAILED' WHERE id = $1", session_id)
        raise ConfigError(refused)
    try:
        rt.start_feed()
        while not rt.feed_done.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(rt.feed_done.wait(), _POLL_S)
            if progress is not None:
                progress.ticks_done(day, int(rt.book().counters["ticks"]))
        await rt.wait_feed()
        await rt.stop_trading()
        summary = rt.summary()
        trades = await load_trades(rt.pool, session_id, day, instruments)
    finally:
        await rt.stop()
    return DayResult(
        day=day,
        status="COMPLETED",
        trades=trades,
        ticks=int(summary["ticks"]),
        session_id=session_id,
        replay_sha=sha,
        signals=int(summary["signals"]),
        decisions=int(summary["decisions"]),
        risk_blocks=int(summary["risk_blocks"]),
        wall_s=time.perf_counter() - t0,
    )


def _paused_at_start(day: date, lines: Sequence[str]) -> str:
    """Why a day cannot run in this database: its session would start PAUSED."""
    shown = "; ".join(line for line in lines if not line.startswith("verdict"))[:600]
    return (
        f"{day}: the database holds orders or positions that earlier sessions left open "
        f"({shown or 'see the log'}), so the day's session would start PAUSED and trade "
        "nothing. Run the backtest in a database of its own (another AITRAPP_DATA_DIR or "
        "DATABASE_URL), or with --no-db; or settle them first (aitrapp paper "
        "--accept-reconcile)."
    )


async def _reuse(
    pool: Pool, day: date, sha: str, config_sha: str, instruments: Sequence[Instrument]
) -> DayResult | None:
    """The stored result of the same day, data and config; None when it must run.

    A run that ended otherwise after placing orders cannot be repeated in this
    database (deterministic client ids): that is an error saying what to do."""
    row = await pool.fetchrow(
        "SELECT s.id, s.status, s.summary, "
        "EXISTS (SELECT 1 FROM orders o WHERE o.session_id = s.id) AS ordered "
        "FROM sessions s WHERE s.feed = 'replay' AND s.replay_sha = $1 AND s.config_sha = $2 "
        "ORDER BY (s.status = 'COMPLETED') DESC, s.started_at DESC LIMIT 1",
        sha,
        config_sha,
    )
    if row is None:
        return None
    if row["status"] == "COMPLETED":
        summary = row["summary"] or {}
        trades = await load_trades(pool, row["id"], day, instruments)
        return DayResult(
            day=day,
            status="REUSED",
            trades=trades,
            ticks=int(summary.get("ticks", 0)),
            session_id=row["id"],
            replay_sha=sha,
            signals=int(summary.get("signals", 0)),
            decisions=int(summary.get("decisions", 0)),
            risk_blocks=int(summary.get("risk_blocks", 0)),
            notes=(f"same data and config completed as session {row['id']}: reused",),
        )
    if row["ordered"]:
        raise ConfigError(
            f"{day}: the same data and config ran as session {row['id']}, which ended "
            f"{row['status']} after placing orders; its client order ids would come back. "
            "Use a fresh data dir (AITRAPP_DATA_DIR) or another DATABASE_URL."
        )
    return None  # failed before any order: nothing to collide with


async def load_trades(
    pool: Pool, session_id: UUID, day: date, instruments: Sequence[Instrument]
) -> tuple[TradeRecord, ...]:
    """A session's closed trades with the plan behind each (risk, entry, stop, target)."""
    segment = {(i.exchange, i.tradingsymbol): i.segment for i in instruments}
    rows = await pool.fetch(
        "SELECT t.plan_id, t.strategy, t.exchange, t.tradingsymbol, t.side, t.qty, "
        "t.entry_price, t.exit_price, t.gross_pnl, t.charges, t.net_pnl, t.exit_reason, "
        "t.opened_at, t.closed_at, d.risk_rupees, d.entry, d.stop, d.tp "
        "FROM trades t JOIN decisions d ON d.id = t.decision_id "
        "WHERE t.session_id = $1 ORDER BY t.closed_at, t.plan_id",
        session_id,
    )
    return tuple(
        TradeRecord(
            day=day,
            plan_id=r["plan_id"],
            strategy=r["strategy"],
            symbol=r["tradingsymbol"],
            exchange=r["exchange"],
            segment=segment.get((r["exchange"], r["tradingsymbol"]), "EQ"),
            side=r["side"],
            qty=r["qty"],
            entry_price=r["entry_price"],
            exit_price=r["exit_price"],
            opened_at=r["opened_at"],
            closed_at=r["closed_at"],
            exit_reason=r["exit_reason"],
            planned_risk=r["risk_rupees"],
            gross=r["gross_pnl"],
            charges=r["charges"],
            net=r["net_pnl"],
            planned_entry=r["entry"],
            planned_stop=r["stop"],
            planned_tp=r["tp"],
        )
        for r in rows
    )


@asynccontextmanager
async def backtest_database(settings: AppSettings) -> AsyncIterator[tuple[AppSettings, Database]]:
    """One server for the whole backtest: ``DATABASE_URL``, else the embedded server,
    started once and held (the day sessions connect to it by URL), migrated."""
    embedded: EmbeddedPostgres | None = None
    if settings.database_dsn() is None:
        embedded = EmbeddedPostgres(settings.pgdata, port=settings.pg_port)
        await embedded.acquire()
        settings = settings.model_copy(update={"database_url": SecretStr(embedded.url())})
    try:
        db = await open_database(settings)
        try:
            async with db.pool.acquire() as conn:
                await migrate(conn, settings.migrations_dir)
            yield settings, db
        finally:
            await db.close()
    finally:
        if embedded is not None:
            await embedded.release()


# ------------------------------------------------------------------ many days
@dataclass(frozen=True, slots=True)
class BacktestRequest:
    replay: tuple[Path, ...]
    universe: Universe
    config: EngineConfig
    start: date | None = None
    end: date | None = None
    symbols: tuple[str, ...] = ()
    no_db: bool = False


@dataclass(frozen=True, slots=True)
class BacktestData:
    split: DaySplit
    instruments: tuple[Instrument, ...]
    label: str
    synthetic: bool


@dataclass(frozen=True, slots=True)
class BacktestResult:
    backtest_id: UUID
    data: BacktestData
    days: tuple[DayResult, ...]
    config: EngineConfig
    started_at: datetime
    finished_at: datetime

    @property
    def skipped(self) -> tuple[SkippedDay, ...]:
        return self.data.split.skipped


async def load_backtest_data(request: BacktestRequest) -> BacktestData:
    """Reads every replay file once (validated: errors name file, row and column),
    keeps the chosen symbols and splits the ticks by trading day."""
    feed = ReplayFeed(list(request.replay), instruments=request.universe)
    await feed.start()
    data = feed.data
    instruments = tuple(feed.instruments)
    if request.symbols:
        chosen = request.universe.select(request.symbols)
        tokens = {i.instrument_token for i in chosen.instruments}
        absent = [i.tradingsymbol for i in chosen.instruments if i not in instruments]
        present = [i for i in instruments if i.instrument_token in tokens]
        if not present:
            raise ConfigError(f"--symbols: no data for {', '.join(absent)} in the replay files")
        keep = np.flatnonzero(np.isin(data.token, np.asarray(sorted(tokens), dtype=np.uint32)))
        data = data.take(keep)
        instruments = tuple(present)
    split = split_days(data, start=request.start, end=request.end)
    return BacktestData(split, instruments, feed.label, data.synthetic)


async def run_backtest(
    settings: AppSettings,
    request: BacktestRequest,
    *,
    data: BacktestData | None = None,
    progress: DayProgress | None = None,
) -> BacktestResult:
    """Runs every trading day in order; in the database unless ``request.no_db``."""
    data = data or await load_backtest_data(request)
    started = datetime.now(UTC)
    backtest_id = uuid4()
    if request.no_db:
        bracket = session_settings(settings)[1]  # as the database path's runtime has it
        days = []
        for td in data.split.days:
            if progress is not None:
                progress.day_started(td.day, len(td.ticks))
            result = await run_day(
                td.day, td.ticks, data.instruments, request.config, db=None, bracket=bracket
            )
            days.append(result)
            if progress is not None:
                progress.day_finished(result)
        return BacktestResult(
            backtest_id, data, tuple(days), request.config, started, datetime.now(UTC)
        )
    async with backtest_database(settings) as (day_settings, database):
        pool = database.pool
        await _create_backtest(pool, backtest_id, started, request, data)
        days = []
        status = "FAILED"
        try:
            day_db = DayDatabase(day_settings, pool, backtest_id, progress)
            for td in data.split.days:
                if progress is not None:
                    progress.day_started(td.day, len(td.ticks))
                result = await run_day(
                    td.day, td.ticks, data.instruments, request.config, db=day_db
                )
                days.append(result)
                if progress is not None:
                    progress.day_finished(result)
            status = "COMPLETED"
        except asyncio.CancelledError:
            status = "ABORTED"
            raise
        finally:
            await finish_backtest(pool, backtest_id, status, days)
    return BacktestResult(
        backtest_id, data, tuple(days), request.config, started, datetime.now(UTC)
    )


async def _create_backtest(
    pool: Pool, backtest_id: UUID, started: datetime, req: BacktestRequest, data: BacktestData
) -> None:
    params = {
        "replay": [str(p) for p in req.replay],
        "label": data.label,
        "synthetic": data.synthetic,
        "from": data.split.first.isoformat(),
        "to": data.split.last.isoformat(),
        "symbols": [i.tradingsymbol for i in data.instruments],
        "ticks": data.split.total_ticks,
    }
    await record_backtest(
        pool, backtest_id, started, req.config.config_sha, params, data.split.skipped
    )


async def record_backtest(
    pool: Pool,
    backtest_id: UUID,
    started: datetime,
    config_sha: str,
    params: Mapping[str, Any],
    skipped: Sequence[SkippedDay] = (),
) -> None:
    """The backtests row its day sessions point at (status RUNNING until finished)."""
    rows = [{"day": s.day.isoformat(), "reason": s.reason, "ticks": s.ticks} for s in skipped]
    await pool.execute(
        "INSERT INTO backtests (id, created_at, config_sha, params, skipped) "
        "VALUES ($1, $2, $3, $4, $5)",
        backtest_id,
        started,
        config_sha,
        dict(params),
        rows,
    )


async def finish_backtest(
    pool: Pool, backtest_id: UUID, status: str, days: Sequence[DayResult]
) -> None:
    rows = [
        {
            "day": d.day.isoformat(),
            "session_id": str(d.session_id) if d.session_id else None,
            "status": d.status,
            "trades": len(d.trades),
            "net": str(d.net),
        }
        for d in days
    ]
    total = sum((d.net for d in days), Decimal(0))
    with contextlib.suppress(Exception):  # the days are stored; a lost summary is not fatal
        await pool.execute(
            "UPDATE backtests SET finished_at = $2, status = $3, days = $4, summary = $5 "
            "WHERE id = $1",
            backtest_id,
            datetime.now(UTC),
            status,
            rows,
            {"days": len(days), "trades": sum(len(d.trades) for d in days), "net": str(total)},
        )


__all__ = [
    "BacktestData",
    "BacktestRequest",
    "BacktestResult",
    "DayDatabase",
    "DayFeed",
    "DayProgress",
    "backtest_database",
    "day_instruments",
    "day_sha",
    "finish_backtest",
    "load_backtest_data",
    "load_trades",
    "record_backtest",
    "run_backtest",
    "run_day",
    "run_day_on_kernel",
    "session_settings",
]
