"""The SYNTHETIC sample generator: seeded, labelled synthetic, and valid replay data."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np

from aitrapp.backtest.days import split_days
from aitrapp.backtest.sample import tick_columns, write_sample
from aitrapp.feeds.replay import ReplayFeed
from aitrapp.instruments_csv import load_instruments_file

DAYS = (date(2026, 1, 23), date(2026, 1, 26), date(2026, 1, 27))  # Mon 26 Jan: holiday


def test_ticks_are_seeded() -> None:
    a = tick_columns(DAYS, seed=3, start_price=400.0)
    b = tick_columns(DAYS, seed=3, start_price=400.0)
    c = tick_columns(DAYS, seed=4, start_price=400.0)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["last_price"], c["last_price"])


async def test_tick_sample_replays_as_synthetic_ticks(tmp_path: Path) -> None:
    out = write_sample(tmp_path, DAYS[0], DAYS[-1], symbols=2, seed=7, ticks=True)
    feed = ReplayFeed([out / "ticks"], instruments=load_instruments_file(out / "instruments.csv"))
    await feed.start()  # every file checked: tick grid, time order, cumulative volume
    data = feed.data
    assert feed.is_synthetic and "SYNTHETIC" in feed.label
    assert {i.tradingsymbol for i in feed.instruments} == {"SYN01", "SYN02"}
    # About one tick a second of 09:15-15:30 for each instrument and weekday.
    assert 0.95 * 3 * 2 * 22_500 < len(data) <= 3 * 2 * 22_500
    assert np.all(data.bid < data.last_price) and np.all(data.last_price < data.ask)
    split = split_days(data)
    assert [d.day for d in split.days] == [DAYS[0], DAYS[2]]
    assert next(s for s in split.skipped if s.day == DAYS[1]).reason == "holiday: Republic Day"
