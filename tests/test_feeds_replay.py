"""Replay feed: CSV/Parquet ticks and Kite-style candles, with errors naming file, row, column."""

from __future__ import annotations

import csv
from datetime import date, time
from pathlib import Path

import numpy as np
import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]
import pytest

from aitrapp.calendar import format_ist, ist_ns, session_times, to_ist
from aitrapp.exceptions import AitrappError, ReplayError
from aitrapp.feeds import Feed, ReplayFeed, SyntheticParams, TickBatch
from aitrapp.feeds.replay import expand_paths, load_file
from aitrapp.feeds.synthetic import generate_day
from aitrapp.universe import Universe, load_universe

DATA = Path(__file__).parent / "data"
SAMPLE = Path(__file__).parent.parent / "testdata" / "sample_day"
DAY = date(2026, 1, 5)
S = 1_000_000_000


@pytest.fixture(scope="module")
def universe() -> Universe:
    return load_universe(on=DAY)


def _ts(hh: int, mm: int, ss: float = 0.0, day: date = DAY) -> int:
    return ist_ns(day, time(hh, mm)) + round(ss * S)


def test_tick_csv_rows(universe: Universe) -> None:
    b = load_file(DATA / "ticks_small.csv", universe)
    rel, infy = universe.by_symbol("RELIANCE").token, universe.by_symbol("INFY").token
    nifty = universe.by_symbol("NIFTY").token
    assert b.token.tolist() == [rel, infy, rel, nifty, infy, rel]
    assert b.ts_ns.tolist()[:3] == [_ts(9, 15), _ts(9, 15), _ts(9, 15, 0.25)]
    assert b.last_price.tolist() == [1450.05, 1600.0, 1450.1, 26001.1, 1600.05, 1450.0]
    assert b.volume.tolist() == [10, 5, 14, 65, 12, 20]
    assert np.isnan(b.bid[1]) and np.isnan(b.ask[1])  # empty cells
    assert np.isnan(b.bid[4]) and b.ask[4] == 1600.05  # Kite's 0 means no bid
    assert b.oi.tolist() == [-1, -1, -1, 1_300_000, -1, -1]
    assert not b.synthetic


def test_parquet_gives_the_same_rows_as_csv(universe: Universe) -> None:
    a = load_file(DATA / "ticks_small.csv", universe)
    b = load_file(DATA / "ticks_small.parquet", universe)
    for col in ("token", "ts_ns", "last_price", "last_qty", "volume", "oi"):
        assert getattr(a, col).tolist() == getattr(b, col).tolist(), col
    assert np.array_equal(a.bid, b.bid, equal_nan=True)


async def test_feed_merges_files_in_time_order(universe: Universe) -> None:
    feed = ReplayFeed(
        [DATA / "ticks_small.csv", DATA / "candles_multi.csv"], instruments=universe, day=DAY
    )
    assert isinstance(feed, Feed)
    ticks = [t async for t in feed.ticks()]
    ts = [t.ts_ns for t in ticks]
    assert ts == sorted(ts)
    assert {i.tradingsymbol for i in feed.instruments} == {
        "RELIANCE",
        "INFY",
        "NIFTY26JANFUT",
        "SBIN",
        "BANKNIFTY26JANFUT",
    }
    assert feed.kind == "replay" and not feed.is_synthetic
    assert "SYNTHETIC" not in feed.label
    assert feed.progress() == 1.0
    # At 09:15:00 three instruments tick together: token order breaks the tie.
    first = [t.instrument_token for t in ticks if t.ts_ns == _ts(9, 15)]
    assert first == sorted(first)


def test_candles_expand_to_four_ticks_in_bar_direction(universe: Universe) -> None:
    b = load_file(DATA / "candles" / "RELIANCE.csv", universe)
    assert len(b) == 5 * 4
    # Rising bar (close >= open): O, L, H, C; falling bar: O, H, L, C.
    assert b.last_price[:4].tolist() == [1450.0, 1449.0, 1452.0, 1451.0]
    assert b.last_price[4:8].tolist() == [1451.0, 1451.5, 1448.0, 1448.5]
    # Inside the one-minute bar, 15 s apart, the close still inside the bar.
    assert b.ts_ns[:5].tolist() == [_ts(9, 15, k * 15) for k in range(4)] + [_ts(9, 16)]
    assert b.last_qty[:8].tolist() == [250, 250, 250, 250, 250, 250, 250, 253]
    assert b.last_qty.sum() == 1000 + 1003 + 7 + 400 + 400
    assert np.all(np.isnan(b.bid)) and np.all(b.oi == -1)


async def test_candle_volume_is_cumulative_per_day(universe: Universe) -> None:
    feed = ReplayFeed([DATA / "candles"], instruments=universe)
    await feed.start()
    v, ts = feed.data.volume, feed.data.ts_ns
    day2 = ts >= _ts(0, 0, day=date(2026, 1, 6))
    assert v[~day2][-1] == 1000 + 1003 + 7
    assert v[day2].tolist()[:4] == [100, 200, 300, 400]  # starts again on the next day
    assert v[day2][-1] == 800


def test_candles_with_symbol_column_and_oi(universe: Universe) -> None:
    b = load_file(DATA / "candles_multi.csv", universe)
    bank = b.token == universe.by_symbol("BANKNIFTY").token
    assert b.oi[bank].tolist() == [900_000] * 4 + [900_300] * 4
    sbin = b.token == universe.by_symbol("SBIN").token
    # Five-minute bars: the ticks are 75 s apart.
    assert np.diff(b.ts_ns[sbin][:4]).tolist() == [75 * S] * 3


def test_daily_candles_spread_over_the_session(tmp_path: Path, universe: Universe) -> None:
    path = tmp_path / "INFY.csv"
    path.write_text("date,open,high,low,close,volume\n2026-01-05,1600,1620,1590,1610,4000\n")
    b = load_file(path, universe, candle_interval_s=86_400)
    s = session_times(DAY)
    assert b.ts_ns[0] == s.open_ns and b.ts_ns[-1] < s.close_ns
    assert b.last_price.tolist() == [1600.0, 1590.0, 1620.0, 1610.0]


async def test_day_filter_and_coverage_message(universe: Universe) -> None:
    feed = ReplayFeed([DATA / "candles"], instruments=universe, day=date(2026, 1, 6))
    await feed.start()
    assert len(feed.data) == 8
    missing = ReplayFeed([DATA / "candles"], instruments=universe, day=date(2026, 1, 7))
    with pytest.raises(ReplayError, match=r"no ticks on 2026-01-07.*2026-01-05\.\.2026-01-06"):
        await missing.start()


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


TICK_HEAD = "timestamp,tradingsymbol,last_price,last_qty,volume,bid,ask\n"
GOOD = "2026-01-05T09:15:00+05:30,RELIANCE,1450.05,1,1,1450.00,1450.05\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            TICK_HEAD + GOOD + GOOD.replace("1450.05,1,1", "abc,1,2"),
            "ticks.csv row 3, column last_price: 'abc' is not a number",
        ),
        (
            TICK_HEAD + GOOD.replace("RELIANCE", "RELIANCEX"),
            "ticks.csv row 2, column tradingsymbol: unknown symbol 'RELIANCEX'",
        ),
        (
            TICK_HEAD + GOOD.replace("09:15:00", "09:15:05") + GOOD.replace(",1,1,", ",1,2,"),
            "ticks.csv row 3, column timestamp: 2026-01-05 09:15:00.000 IST is earlier than "
            "the previous RELIANCE row (row 2, 2026-01-05 09:15:05.000 IST)",
        ),
        (
            TICK_HEAD + GOOD.replace("+05:30", ""),
            "ticks.csv row 2, column timestamp: timestamps have no timezone",
        ),
        (
            TICK_HEAD + GOOD.replace("2026-01-05T09:15:00+05:30", "1767584700"),
            "ticks.csv row 2, column timestamp: 1767584700 is not an epoch-nanosecond time "
            "between 1990 and 2100 (it looks like epoch seconds)",
        ),
        (
            TICK_HEAD + GOOD + GOOD.replace("2026-01-05T09:15:00+05:30", "soon"),
            "ticks.csv row 3, column timestamp: 'soon' is not an ISO 8601 timestamp",
        ),
        (
            TICK_HEAD + GOOD.replace("1450.05,1,1", "1450.03,1,1"),
            "ticks.csv row 2, column last_price: 1450.03 is not on the tick grid of 0.05",
        ),
        (
            TICK_HEAD + GOOD.replace("1450.05,1,1", "1450.055,1,1"),
            "ticks.csv row 2, column last_price: 1450.055 has more than two decimals",
        ),
        (
            TICK_HEAD + GOOD.replace("1450.05,1,1", "-5,1,1"),
            "ticks.csv row 2, column last_price: -5.0 is not a positive price",
        ),
        (
            TICK_HEAD + GOOD + GOOD.replace("1450.05,1,1", ",1,2"),
            "ticks.csv row 3, column last_price: missing value",
        ),
        (
            TICK_HEAD + GOOD.replace(",1,1,", ",1.5,1,"),
            "ticks.csv row 2, column last_qty: 1.5 is not a whole number >= 0",
        ),
        (
            TICK_HEAD + GOOD + GOOD.replace(",1,1,", ",1,0,"),
            "ticks.csv row 3, column volume: cumulative volume of RELIANCE fell from 1 "
            "(row 2) to 0",
        ),
        (
            TICK_HEAD + GOOD.replace("1450.00,1450.05", "1450.10,1450.05"),
            "ticks.csv row 2, column bid: bid 1450.10 is above ask 1450.05",
        ),
        (
            TICK_HEAD + GOOD + "2026-01-05T09:15:01+05:30,RELIANCE,1450.05\n",
            "ticks.csv row 3: 3 fields, the header has 7",
        ),
        (
            TICK_HEAD + "\n" + GOOD + "\n" + GOOD.replace("1450.05,1,1", "x,1,1"),
            "ticks.csv row 5, column last_price: 'x' is not a number",  # blank lines count
        ),
        (
            TICK_HEAD + GOOD.replace("+05:30", "-05:00"),
            "ticks.csv: no row falls inside NSE hours (09:00-16:00 IST); the first is at "
            "2026-01-05 19:45:00.000 IST",
        ),
        ("when,tradingsymbol,last_price\n", "ticks.csv: no time column"),
        (
            "timestamp,tradingsymbol,price\n2026-01-05T09:15:00+05:30,RELIANCE,1\n",
            "neither ticks (a last_price column)",
        ),
        (TICK_HEAD, "ticks.csv: no data rows"),
    ],
)
def test_tick_errors_name_file_row_and_column(
    tmp_path: Path, universe: Universe, text: str, message: str
) -> None:
    with pytest.raises(ReplayError) as info:
        load_file(_write(tmp_path, "ticks.csv", text), universe)
    assert message in str(info.value)
    assert isinstance(info.value, AitrappError)


def test_bad_value_deep_in_a_large_file_is_found(tmp_path: Path, universe: Universe) -> None:
    """pyarrow infers types from the first block; a late bad value still names its row."""
    start = _ts(9, 15)
    lines = [f"{start + i * 1_000_000},RELIANCE,1450.05" for i in range(150_000)]
    lines.append(f"{start + 150_000 * 1_000_000},RELIANCE,oops")
    path = _write(tmp_path, "big.csv", "timestamp,tradingsymbol,last_price\n" + "\n".join(lines))
    with pytest.raises(ReplayError, match=r"big\.csv row 150002, column last_price: 'oops'"):
        load_file(path, universe)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "RELIANCE.csv",
            "date,open,high,low,close\n2026-01-05T09:15:00+05:30,10,9,8,9.5\n"
            "2026-01-05T09:16:00+05:30,10,11,8,9.5\n",
            "RELIANCE.csv row 2, column high: high 9.00 is below open/low/close",
        ),
        (
            "RELIANCE.csv",
            "date,open,high,low,close\n2026-01-05T09:15:00+05:30,10,11,10.5,10.2\n",
            "RELIANCE.csv row 2, column low: low 10.50 is above open/close",
        ),
        (
            "RELIANCE.csv",
            "date,open,high,low,close\n2026-01-05T09:15:00+05:30,10,11,9,10\n"
            "2026-01-05T09:15:00+05:30,10,11,9,10\n",
            "RELIANCE.csv row 3, column date: 2026-01-05 09:15:00.000 IST is not after",
        ),
        (
            "RELIANCE.csv",
            "date,open,high,low,close\n2026-01-05T09:15:00+05:30,10,11,9,10\n",
            "one candle per instrument, so the interval is unknown",
        ),
        (
            "candles.csv",
            "date,open,high,low,close\n2026-01-05T09:15:00+05:30,10,11,9,10\n",
            "the file name 'candles' is not a known symbol",
        ),
        (
            "RELIANCE.csv",
            "date,open,high,low\n2026-01-05T09:15:00+05:30,10,11,9\n",
            "neither ticks (a last_price column) nor candles",
        ),
    ],
)
def test_candle_errors(
    tmp_path: Path, universe: Universe, name: str, text: str, message: str
) -> None:
    with pytest.raises(ReplayError) as info:
        load_file(_write(tmp_path, name, text), universe)
    assert message in str(info.value)


def test_instrument_tokens_symbols_and_kite_prefixes(tmp_path: Path, universe: Universe) -> None:
    text = (
        "timestamp,instrument_token,tradingsymbol,last_price\n"
        f"{_ts(9, 15)},738561,NSE:RELIANCE,1450.05\n"
        f"{_ts(9, 16)},408065,infy,1600.00\n"
    )
    b = load_file(_write(tmp_path, "t.csv", text), universe)
    assert b.token.tolist() == [738561, 408065]
    assert b.ts_ns.tolist() == [_ts(9, 15), _ts(9, 16)]
    assert b.volume.tolist() == [-1, -1]  # filled from last_qty by the feed
    bad = text.replace("408065,infy", "408065,SBIN")
    with pytest.raises(ReplayError, match="row 3, column tradingsymbol: symbol 'SBIN' does not"):
        load_file(_write(tmp_path, "t.csv", bad), universe)
    with pytest.raises(ReplayError, match="row 2, column instrument_token: unknown"):
        load_file(_write(tmp_path, "t.csv", text.replace("738561", "1")), universe)
    with pytest.raises(ReplayError, match="unknown symbol 'BSE:RELIANCE'"):
        load_file(_write(tmp_path, "t.csv", text.replace("NSE:", "BSE:")), universe)


def test_assume_tz_reads_naive_times_as_ist(tmp_path: Path, universe: Universe) -> None:
    path = _write(tmp_path, "t.csv", TICK_HEAD + GOOD.replace("+05:30", ""))
    assert load_file(path, universe, assume_tz="IST").ts_ns.tolist() == [_ts(9, 15)]
    assert load_file(path, universe, assume_tz="+05:30").ts_ns.tolist() == [_ts(9, 15)]


def test_timestamp_forms_pyarrow_cannot_read(tmp_path: Path, universe: Universe) -> None:
    basic = TICK_HEAD + GOOD.replace("2026-01-05T09:15:00+05:30", "20260105T091500+0530")
    b = load_file(_write(tmp_path, "t.csv", basic), universe)
    assert b.ts_ns.tolist() == [_ts(9, 15)]
    mixed = TICK_HEAD + GOOD + GOOD.replace("09:15:00+05:30", "09:15:01")
    with pytest.raises(ReplayError, match=r"row 3, column timestamp: .* mixes timestamps with"):
        load_file(_write(tmp_path, "t.csv", mixed), universe, assume_tz="IST")
    with pytest.raises(ReplayError, match="assume_tz: 'Mars/Olympus' is not a time zone"):
        load_file(_write(tmp_path, "t.csv", basic), universe, assume_tz="Mars/Olympus")


def test_tick_grid_check_can_be_turned_off(tmp_path: Path, universe: Universe) -> None:
    path = _write(tmp_path, "t.csv", TICK_HEAD + GOOD.replace("1450.05,1,1", "1450.03,1,1"))
    assert load_file(path, universe, check_tick_grid=False).last_price.tolist() == [1450.03]


async def test_volume_from_last_qty_when_absent(tmp_path: Path, universe: Universe) -> None:
    text = (
        "timestamp,tradingsymbol,last_price,last_qty\n"
        f"{_ts(9, 15)},RELIANCE,1450.05,3\n"
        f"{_ts(9, 15)},INFY,1600.00,4\n"
        f"{_ts(9, 16)},RELIANCE,1450.05,5\n"
        f"{_ts(9, 15, day=date(2026, 1, 6))},RELIANCE,1450.05,7\n"
    )
    feed = ReplayFeed([_write(tmp_path, "t.csv", text)], instruments=universe)
    await feed.start()
    assert feed.data.volume.tolist() == [4, 3, 8, 7]  # INFY sorts first at 09:15


async def test_overlapping_files_for_one_instrument_are_refused(
    tmp_path: Path, universe: Universe
) -> None:
    a = _write(tmp_path, "a.csv", TICK_HEAD + GOOD + GOOD.replace("09:15:00", "09:20:00"))
    b = _write(tmp_path, "b.csv", TICK_HEAD + GOOD.replace("09:15:00", "09:17:00"))
    feed = ReplayFeed([a, b], instruments=universe)
    with pytest.raises(ReplayError, match=r"RELIANCE appears in a\.csv and b\.csv"):
        await feed.start()


def test_paths_and_files(tmp_path: Path, universe: Universe) -> None:
    assert [p.name for p in expand_paths([DATA / "candles"])] == ["RELIANCE.csv"]
    with pytest.raises(ReplayError, match=r"no \.csv"):
        expand_paths([tmp_path])
    with pytest.raises(ReplayError, match="no such file"):
        load_file(tmp_path / "nope.csv", universe)
    with pytest.raises(ReplayError, match="unsupported file type"):
        load_file(_write(tmp_path, "t.json", "{}"), universe)
    with pytest.raises(ReplayError, match="instruments"):
        ReplayFeed([DATA / "candles"], instruments=[])


async def test_source_column_marks_synthetic_data(tmp_path: Path, universe: Universe) -> None:
    text = TICK_HEAD.replace("\n", ",source\n") + GOOD.replace("\n", ",SYNTHETIC\n")
    feed = ReplayFeed([_write(tmp_path, "t.csv", text)], instruments=universe)
    await feed.start()
    assert feed.is_synthetic and feed.kind == "replay"
    assert "SYNTHETIC" in feed.label
    assert feed.data.synthetic


async def test_sample_day_replays_and_is_labelled_synthetic(universe: Universe) -> None:
    feed = ReplayFeed([SAMPLE / "candles", SAMPLE / "ticks.csv"], instruments=universe, day=DAY)
    n = 0
    async for b in feed.batches(max_rows=4096):
        assert b.synthetic
        n += len(b)
    assert feed.is_synthetic and "SYNTHETIC" in feed.label
    assert n == len(feed.data) > 5 * 375 * 4
    s = session_times(DAY)
    assert s.open_ns <= feed.data.first_ts_ns and feed.data.last_ts_ns < s.close_ns
    assert len(feed.instruments) == 7


def _export(batch: TickBatch, universe: Universe, path: Path, *, iso: bool) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["timestamp", "tradingsymbol", "last_price", "last_qty", "volume", "bid", "ask"])
        for tok, ts, last, qty, vol, bid, ask, _ in batch.rows():
            stamp = to_ist(ts).isoformat() if iso else str(ts)
            w.writerow(
                [
                    stamp,
                    universe.by_token(tok).symbol,
                    f"{last:.2f}",
                    qty,
                    vol,
                    "" if bid is None else f"{bid:.2f}",
                    "" if ask is None else f"{ask:.2f}",
                ]
            )


@pytest.mark.parametrize("iso", [True, False])
async def test_replaying_an_exported_synthetic_day_reproduces_it(
    tmp_path: Path, universe: Universe, iso: bool
) -> None:
    chosen = universe.select(["RELIANCE", "TATASTEEL", "NIFTY"])
    day = generate_day(
        chosen,
        session=session_times(DAY),
        seed=4,
        params=SyntheticParams(ticks_per_second=0.05),
    )
    path = tmp_path / "day.csv"
    _export(day, universe, path, iso=iso)
    feed = ReplayFeed([path], instruments=chosen, day=DAY)
    await feed.start()
    for col in ("token", "ts_ns", "last_price", "last_qty", "volume", "bid", "ask"):
        assert getattr(feed.data, col).tolist() == getattr(day, col).tolist(), col


def test_parquet_epoch_and_bad_types(tmp_path: Path, universe: Universe) -> None:
    path = tmp_path / "t.parquet"
    table = pa.table(
        {
            "timestamp": pa.array([_ts(9, 15), _ts(9, 16)], pa.int64()),
            "tradingsymbol": ["RELIANCE", "RELIANCE"],
            "last_price": ["1450.05", "bad"],
        }
    )
    pq.write_table(table, path)
    with pytest.raises(ReplayError, match=r"t\.parquet row 2, column last_price: 'bad'"):
        load_file(path, universe)
    naive = pa.table(
        {
            "timestamp": pa.array([_ts(9, 15) + 19_800 * S], pa.timestamp("ns")),
            "tradingsymbol": ["RELIANCE"],
            "last_price": [1450.05],
        }
    )
    pq.write_table(naive, path)
    with pytest.raises(ReplayError, match="row 1, column timestamp: timestamps have no timezone"):
        load_file(path, universe)
    assert load_file(path, universe, assume_tz="IST").ts_ns.tolist() == [_ts(9, 15)]
    assert format_ist(_ts(9, 15)) == "2026-01-05 09:15:00.000 IST"
