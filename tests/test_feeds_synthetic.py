"""The synthetic feed: deterministic, labelled SYNTHETIC, and shaped like an NSE day."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from aitrapp.calendar import session_times
from aitrapp.exceptions import CalendarError, ConfigError
from aitrapp.feeds import OI_ABSENT, Feed, SyntheticFeed, SyntheticParams, TickBatch
from aitrapp.feeds.synthetic import generate_day
from aitrapp.universe import Universe, load_universe

DAY = date(2026, 1, 5)
MIN = 60_000_000_000
SYMBOLS = ("RELIANCE", "TATASTEEL", "IDEA", "INFY", "NIFTY", "BANKNIFTY")


@pytest.fixture(scope="module")
def universe() -> Universe:
    return load_universe(on=DAY)


@pytest.fixture(scope="module")
def day(universe: Universe) -> TickBatch:
    return generate_day(universe.select(SYMBOLS), session=session_times(DAY), seed=11)


def _columns(b: TickBatch) -> list[bytes]:
    cols = ("token", "ts_ns", "last_price", "last_qty", "volume", "bid", "ask", "oi")
    return [getattr(b, c).tobytes() for c in cols]


def test_same_seed_gives_byte_identical_ticks(universe: Universe, day: TickBatch) -> None:
    again = generate_day(universe.select(SYMBOLS), session=session_times(DAY), seed=11)
    assert _columns(again) == _columns(day)
    other = generate_day(universe.select(SYMBOLS), session=session_times(DAY), seed=12)
    assert other.last_price.tobytes() != day.last_price.tobytes()
    next_day = generate_day(
        universe.select(SYMBOLS), session=session_times(date(2026, 1, 6)), seed=11
    )
    assert next_day.last_price[:100].tobytes() != day.last_price[:100].tobytes()


def test_an_instrument_does_not_depend_on_the_others(universe: Universe, day: TickBatch) -> None:
    alone = generate_day(universe.select(["INFY"]), session=session_times(DAY), seed=11)
    infy = universe.by_symbol("INFY").token
    m = day.token == infy
    assert alone.last_price.tobytes() == day.last_price[m].tobytes()
    assert alone.ts_ns.tobytes() == day.ts_ns[m].tobytes()


def test_rows_are_merged_in_time_then_token_order(day: TickBatch) -> None:
    ts, tok = day.ts_ns, day.token.astype(np.int64)
    assert np.all((ts[1:] > ts[:-1]) | ((ts[1:] == ts[:-1]) & (tok[1:] >= tok[:-1])))
    s = session_times(DAY)
    assert ts[0] >= s.open_ns and ts[-1] < s.close_ns
    assert np.all(ts % 1_000_000 == 0)  # millisecond exchange stamps


def test_prices_sit_on_each_tick_grid_with_a_real_spread(
    universe: Universe, day: TickBatch
) -> None:
    for sym in SYMBOLS:
        e = universe.by_symbol(sym)
        m = day.token == e.token
        tick = e.instrument.tick_paise
        for col in (day.last_price[m], day.bid[m], day.ask[m]):
            paise = np.rint(col * 100).astype(np.int64)
            assert np.all(np.abs(col * 100 - paise) < 1e-6)
            assert np.all(paise % tick == 0), sym
        bid, ask, last = day.bid[m], day.ask[m], day.last_price[m]
        assert np.all(bid < ask)
        assert np.all((last == bid) | (last == ask))  # trades print at the touch
        spread_ticks = np.rint((ask - bid) * 100 / tick)
        assert 1 <= np.median(spread_ticks) <= 25, sym


def test_volume_is_cumulative_and_in_whole_lots(universe: Universe, day: TickBatch) -> None:
    for sym in SYMBOLS:
        e = universe.by_symbol(sym)
        m = day.token == e.token
        qty, vol = day.last_qty[m], day.volume[m]
        assert np.all(qty > 0) and np.all(qty % e.instrument.lot_size == 0)
        assert np.array_equal(vol, np.cumsum(qty))
        # The day's traded volume is near the typical daily volume (lognormal day factor).
        assert 0.3 < vol[-1] / e.avg_daily_volume < 3.0, sym


def test_open_interest_only_for_futures(universe: Universe, day: TickBatch) -> None:
    for sym in SYMBOLS:
        e = universe.by_symbol(sym)
        oi = day.oi[day.token == e.token]
        if e.instrument.segment == "FUT":
            assert np.all(oi > 0) and np.all(oi % e.instrument.lot_size == 0)
        else:
            assert np.all(oi == OI_ABSENT)


def test_about_one_tick_per_second(universe: Universe, day: TickBatch) -> None:
    seconds = session_times(DAY).duration_ns / 1e9
    for sym in SYMBOLS:
        n = int(np.sum(day.token == universe.by_symbol(sym).token))
        assert 0.9 * seconds < n < 1.1 * seconds, sym
    sparse = generate_day(
        universe.select(["INFY"]),
        session=session_times(DAY),
        seed=11,
        params=SyntheticParams(ticks_per_second=0.2),
    )
    assert 0.18 * seconds < len(sparse) < 0.22 * seconds


def test_intraday_activity_is_u_shaped(universe: Universe) -> None:
    """More ticks, volume and movement in the first and last half hour than at midday."""
    s = session_times(DAY)
    b = generate_day(universe.defaults(), session=s, seed=3)
    minute = (b.ts_ns - s.open_ns) // MIN
    edges = (minute < 30) | (minute >= 345)
    middle = (minute >= 165) & (minute < 225)
    for name, per_tick in (("ticks", np.ones(len(b))), ("volume", b.last_qty.astype(float))):
        rate_edges = per_tick[edges].sum() / 60
        rate_middle = per_tick[middle].sum() / 60
        assert rate_edges > 1.3 * rate_middle, name
    moves = []
    for tok in np.unique(b.token):
        m = b.token == tok
        r = np.abs(np.diff(np.log((b.bid[m] + b.ask[m]) / 2)))
        mm = minute[m][1:]
        e_ = r[(mm < 30) | (mm >= 345)].mean()
        c_ = r[(mm >= 165) & (mm < 225)].mean()
        moves.append(e_ / c_)
    assert np.median(moves) > 1.2


def test_prices_are_realistic_and_days_differ(universe: Universe) -> None:
    """Around the reference price, a plausible intraday range, some trending days."""
    s = session_times(DAY)
    ranges, moves = [], []
    for seed in range(4):
        b = generate_day(universe.defaults(), session=s, seed=seed)
        for e in universe.defaults():
            p = b.last_price[b.token == e.token]
            assert 0.85 * e.ref_price < p.min() and p.max() < 1.15 * e.ref_price
            ranges.append((p.max() - p.min()) / p[0] / e.daily_vol)
            moves.append(abs(np.log(p[-1] / p[0])) / e.daily_vol)
    assert 1.0 < np.median(ranges) < 3.5
    # Trend regimes: some days close well away from the open, others near it.
    assert sum(m > 1.5 for m in moves) >= 5
    assert sum(m < 0.5 for m in moves) >= 5


def test_pre_open_warm_up(universe: Universe) -> None:
    s = session_times(DAY)
    e = universe.by_symbol("RELIANCE")
    b = generate_day([e], session=s, seed=5, params=SyntheticParams(pre_open=True))
    pre = b.ts_ns < s.open_ns
    assert b.ts_ns[0] >= s.pre_open_ns
    assert not np.any((b.ts_ns >= s.pre_open_order_entry_end_ns) & pre)  # quiet 09:08-09:15
    traded = pre & (b.last_qty > 0)
    assert traded.sum() == 1  # the call-auction print, in the last minute of order entry
    auction = int(np.flatnonzero(traded)[0])
    assert s.pre_open_order_entry_end_ns - MIN <= b.ts_ns[auction] < s.pre_open_order_entry_end_ns
    assert np.all(np.isnan(b.bid[pre])) and np.all(b.volume[pre][:-1] == 0)
    assert np.all(np.diff(b.volume) >= 0)
    first_trade = b.last_price[~pre][0]
    assert abs(first_trade / b.last_price[auction] - 1) < 0.01  # the market opens near it


async def test_feed_is_labelled_synthetic_everywhere(universe: Universe) -> None:
    feed = SyntheticFeed(universe.select(["INFY", "SBIN"]), day=DAY, seed=1)
    assert isinstance(feed, Feed)
    assert feed.kind == "synthetic" and feed.is_synthetic
    assert "SYNTHETIC" in feed.label and "SYNTHETIC" in feed.label.upper()
    assert [i.tradingsymbol for i in feed.instruments] == ["INFY", "SBIN"]
    rows = 0
    async for b in feed.batches(max_rows=20_000):
        assert b.synthetic
        rows += len(b)
    assert rows == len(feed.data)
    assert feed.span_ns == (session_times(DAY).open_ns, session_times(DAY).close_ns)
    assert feed.progress() == 1.0


async def test_feed_ticks_equal_its_batches(universe: Universe) -> None:
    params = SyntheticParams(ticks_per_second=0.05)
    a = SyntheticFeed(universe.select(["ITC", "NIFTY"]), day=DAY, seed=9, params=params)
    b = SyntheticFeed(universe.select(["ITC", "NIFTY"]), day=DAY, seed=9, params=params)
    ticks = [(t.instrument_token, t.ts_ns, t.last_price, t.volume, t.oi) async for t in a.ticks()]
    rows: list[tuple[object, ...]] = []
    async for batch in b.batches(max_rows=97):
        rows.extend((r[0], r[1], r[2], r[4], r[7]) for r in batch.rows())
    assert ticks == rows


def test_feed_refuses_closed_days_and_bad_input(universe: Universe) -> None:
    with pytest.raises(CalendarError, match="Republic Day"):
        SyntheticFeed(universe.defaults(), day=date(2026, 1, 26))
    with pytest.raises(ConfigError, match="at least one"):
        SyntheticFeed([], day=DAY)
    rel = universe.by_symbol("RELIANCE")
    with pytest.raises(ConfigError, match="listed twice"):
        SyntheticFeed([rel, rel], day=DAY)
    with pytest.raises(ConfigError, match="seed"):
        SyntheticFeed(universe.defaults(), day=DAY, seed=-1)
    with pytest.raises(ConfigError, match="ticks_per_second"):
        SyntheticParams(ticks_per_second=0)
    with pytest.raises(ConfigError, match="regime_minutes"):
        SyntheticParams(regime_minutes=0)
