"""Reruns by content: a replay is its data and config, not its file name."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from aitrapp.backtest.runner import day_sha
from aitrapp.db import repo
from aitrapp.exceptions import AitrappError, ConfigError
from aitrapp.feeds.replay import ReplayFeed
from aitrapp.instruments_csv import load_instruments_file
from aitrapp.runtime import RuntimeOptions, start_runtime
from aitrapp.settings import AppSettings

from .candles import synthetic_candles
from .conftest import BUSY

pytestmark = pytest.mark.integration

DAY = date(2026, 1, 22)


def _options(path: Path, instruments: Path, day: date | None = DAY) -> RuntimeOptions:
    return RuntimeOptions(
        feed="replay",
        day=day,
        replay_paths=(path,),
        engine=BUSY,
        universe=load_instruments_file(instruments),
    )


async def _session(settings: AppSettings, options: RuntimeOptions) -> tuple[str, int, date]:
    """Runs one replay session; returns its replay_sha, its order count and its date."""
    rt = await start_runtime(settings, options)
    try:
        await rt.wait_feed()
        await rt.stop_trading()
        sid = rt.session_id
        row = await rt.pool.fetchrow(
            "SELECT replay_sha, trading_date, (SELECT count(*) FROM orders WHERE session_id = $1) "
            "AS n FROM sessions WHERE id = $1",
            sid,
        )
    finally:
        await rt.stop()
    assert row is not None
    return row["replay_sha"], row["n"], row["trading_date"]


async def test_same_data_under_another_name_is_the_same_run(
    settings: AppSettings, own_instruments: Path, tmp_path: Path
) -> None:
    first = synthetic_candles(tmp_path / "RELX.csv", [DAY], seed=3)
    sha, orders, _ = await _session(settings, _options(first, own_instruments))
    assert orders > 0 and len(sha) == 64
    renamed = tmp_path / "copy"
    renamed.mkdir()
    shutil.copy(first, renamed / "RELX.csv")
    with pytest.raises(ConfigError, match=rf"content {sha[:12]}.*already ran as session"):
        await start_runtime(settings, _options(renamed / "RELX.csv", own_instruments))
    # A corrected file under the first name is another run.
    synthetic_candles(first, [DAY], seed=4)
    sha2, orders2, _ = await _session(settings, _options(first, own_instruments))
    assert sha2 != sha and orders2 > 0


async def test_a_run_that_failed_before_any_order_never_blocks(
    settings: AppSettings, own_instruments: Path, tmp_path: Path
) -> None:
    path = synthetic_candles(tmp_path / "RELX.csv", [DAY], seed=3)
    good = path.read_text()
    lines = good.splitlines()
    bad = lines[5].split(",")
    bad[2] = "1.00"  # high below open/close
    path.write_text("\n".join([*lines[:5], ",".join(bad), *lines[6:]]) + "\n")
    with pytest.raises(AitrappError, match=r"RELX\.csv row 6, column high"):
        await start_runtime(settings, _options(path, own_instruments))
    # A session of the same content that stopped before ordering (e.g. killed at start).
    path.write_text(good)
    feed = ReplayFeed([path], instruments=load_instruments_file(own_instruments), day=DAY)
    await feed.start()
    sha = day_sha(feed.data, feed.instruments)
    async with await _pool(settings) as pool:
        await repo.create_session(
            pool,
            repo.SessionRow(
                trading_date=DAY,
                mode="PAPER",
                feed="replay",
                started_at=datetime.now(UTC),
                ended_at=datetime.now(UTC),
                status="FAILED",
                config_sha=BUSY.config_sha,
                replay_sha=sha,
            ),
        )
        _, orders, _ = await _session(settings, _options(path, own_instruments))
        assert orders > 0
        failed = await pool.fetchval("SELECT count(*) FROM sessions WHERE replay_sha = $1", sha)
        assert failed == 2


async def test_without_date_a_replay_takes_the_day_of_its_data(
    settings: AppSettings, own_instruments: Path, tmp_path: Path
) -> None:
    one = synthetic_candles(tmp_path / "RELX.csv", [date(2026, 1, 23)], seed=5)
    _, _, day = await _session(settings, _options(one, own_instruments, day=None))
    assert day == date(2026, 1, 23)
    many = synthetic_candles(tmp_path / "ACME.csv", [DAY, date(2026, 1, 23)], seed=6)
    with pytest.raises(ConfigError, match=r"covers 2 days .*aitrapp backtest"):
        await start_runtime(settings, _options(many, own_instruments, day=None))


async def _pool(settings: AppSettings):  # type: ignore[no-untyped-def]
    from aitrapp.db.pool import create_pool

    dsn = settings.database_dsn()
    assert dsn is not None
    return await create_pool(dsn, min_size=1, max_size=2)
