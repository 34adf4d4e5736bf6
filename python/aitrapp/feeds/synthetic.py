"""A seeded, realistic intraday tick generator for NSE names. SYNTHETIC DATA.

Everything it produces is labelled synthetic (``kind == "synthetic"``, a
``label`` containing ``SYNTHETIC``, ``TickBatch.synthetic``). The same seed,
date and instruments give byte-identical ticks; each instrument draws from
its own stream (seeded by seed, date and token), so adding an instrument
does not change the others.

The model, per instrument, in two scales (all vectorised with numpy):

- minutes (375 of them): a log "fair value" walk with a U-shaped volatility
  profile (busy open and close), a shared market factor, regimes that switch
  every ~40 minutes (trend up, trend down, mean reversion toward a running
  anchor, quiet chop) so trend, breakout and reversion strategies all find
  something, occasional jumps, and an opening gap from the reference price;
- ticks (about `ticks_per_second` per second, more near the open and close):
  a Brownian bridge between the minute points, a bid/ask spread of a few
  ticks (wider at the open), trades at the bid or the ask, prices snapped to
  the tick grid in integer paise, U-shaped traded volume with a cumulative
  volume that never decreases, open interest for futures.

With ``pre_open=True`` the day starts at 09:00 with indicative pre-open
prices (no trades) and the call-auction print just before 09:08.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date

import numpy as np
import numpy.typing as npt

from aitrapp.calendar import NseCalendar, SessionTimes, default_calendar
from aitrapp.exceptions import ConfigError
from aitrapp.feeds.base import OI_ABSENT, ArrayFeed, TickBatch
from aitrapp.universe import Universe, UniverseEntry

NS_PER_MS = 1_000_000
MINUTE_NS = 60_000_000_000
_STREAM_MARKET = 0  # spawn-key slot for the shared market factor

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class SyntheticParams:
    """Knobs of the generator; the defaults give plausible NSE large-cap days."""

    ticks_per_second: float = 1.0
    pre_open: bool = False
    regime_minutes: float = 40.0  # mean regime length
    trend_drift: float = 0.2  # trend drift per minute, in minute-sigmas
    reversion: float = 0.08  # pull toward the anchor per minute in a reversion regime
    jumps_per_day: float = 1.5
    jump_size: tuple[float, float] = (0.25, 0.6)  # |jump| as a fraction of daily vol
    gap_sigma: float = 0.5  # opening gap in daily vols
    market_corr_eq: float = 0.5  # correlation of a stock with the market factor
    market_corr_fut: float = 0.95  # index futures follow the market factor closely
    # Typical mid-day spread in basis points (at least one tick): index futures
    # are far more liquid per rupee than single stocks.
    spread_bp_eq: float = 0.6
    spread_bp_fut: float = 0.15

    def __post_init__(self) -> None:
        if not 0.01 <= self.ticks_per_second <= 50:
            raise ConfigError(
                f"ticks_per_second must be within 0.01..50, got {self.ticks_per_second}"
            )
        if self.regime_minutes < 1:
            raise ConfigError(f"regime_minutes must be at least 1, got {self.regime_minutes}")


class SyntheticFeed(ArrayFeed):
    """One synthetic trading day for a set of universe entries (SYNTHETIC DATA)."""

    def __init__(
        self,
        entries: Universe | Iterable[UniverseEntry],
        *,
        day: date,
        seed: int = 0,
        params: SyntheticParams | None = None,
        calendar: NseCalendar | None = None,
    ) -> None:
        chosen = list(entries)
        if not chosen:
            raise ConfigError("instruments: the synthetic feed needs at least one")
        tokens = [e.token for e in chosen]
        if len(set(tokens)) != len(tokens):
            raise ConfigError("instruments: an instrument is listed twice")
        if seed < 0:
            raise ConfigError(f"seed must be non-negative, got {seed}")
        self.day = day
        self.seed = seed
        self.params = params or SyntheticParams()
        self.session: SessionTimes = (calendar or default_calendar()).session(day)
        self._entries = chosen
        super().__init__(
            name=f"synthetic {day.isoformat()} seed={seed}",
            kind="synthetic",
            instruments=[e.instrument for e in chosen],
            synthetic=True,
        )

    @property
    def label(self) -> str:
        return f"SYNTHETIC DATA (generated; seed {self.seed}, {self.day.isoformat()})"

    def _load(self) -> tuple[TickBatch, tuple[int, int]]:
        batch = generate_day(
            self._entries, session=self.session, seed=self.seed, params=self.params
        )
        start = self.session.pre_open_ns if self.params.pre_open else self.session.open_ns
        return batch, (start, self.session.close_ns)


def generate_day(
    entries: Iterable[UniverseEntry],
    *,
    session: SessionTimes,
    seed: int,
    params: SyntheticParams | None = None,
) -> TickBatch:
    """Every instrument's ticks for the session, merged in feed order."""
    p = params or SyntheticParams()
    minutes = int((session.close_ns - session.open_ns) // MINUTE_NS)
    market = _market_factor(seed, session.day, minutes)
    parts = [_instrument_day(e, session, seed, p, market) for e in entries]
    merged = TickBatch.merge(parts)
    return merged


# -- the model ---------------------------------------------------------------------------
def _rng(seed: int, day: date, stream: int) -> np.random.Generator:
    ss = np.random.SeedSequence(entropy=seed, spawn_key=(day.toordinal(), stream))
    return np.random.Generator(np.random.PCG64(ss))


def _market_factor(seed: int, day: date, minutes: int) -> F64:
    """Shared standard-normal minute shocks: stocks co-move with the index."""
    return _rng(seed, day, _STREAM_MARKET).standard_normal(minutes)


def _u_shape(
    minutes: int, open_amp: float, open_tau: float, close_amp: float, close_tau: float
) -> F64:
    m = np.arange(minutes, dtype=np.float64)
    return (
        1.0 + open_amp * np.exp(-m / open_tau) + close_amp * np.exp(-(minutes - 1 - m) / close_tau)
    )


def _regimes(rng: np.random.Generator, minutes: int, mean_len: float) -> npt.NDArray[np.int8]:
    """0 chop, 1 trend up, 2 trend down, 3 mean reversion; a Markov chain per minute."""
    switch = rng.random(minutes) < 1.0 / mean_len
    choice = rng.choice(4, size=minutes, p=[0.25, 0.25, 0.25, 0.25]).astype(np.int8)
    switch[0] = True
    # Each minute keeps the regime chosen at the latest switch point.
    last_switch = np.maximum.accumulate(np.where(switch, np.arange(minutes), 0))
    out: npt.NDArray[np.int8] = choice[last_switch]
    return out


def _fair_value_path(
    rng: np.random.Generator,
    entry: UniverseEntry,
    p: SyntheticParams,
    market: F64,
    sigma_m: F64,
) -> tuple[F64, npt.NDArray[np.bool_]]:
    """Log fair value at the M+1 minute boundaries, and which minutes had a jump."""
    minutes = len(sigma_m)
    is_fut = entry.instrument.segment == "FUT"
    rho = p.market_corr_fut if is_fut else p.market_corr_eq
    z = rho * market + np.sqrt(1.0 - rho * rho) * rng.standard_normal(minutes)
    regime = _regimes(rng, minutes, p.regime_minutes)
    drift = np.select(
        [regime == 1, regime == 2], [p.trend_drift * sigma_m, -p.trend_drift * sigma_m], 0.0
    )
    noise = np.where(regime == 0, 0.7, 1.0) * sigma_m * z
    jump_at = rng.random(minutes) < p.jumps_per_day / minutes
    lo, hi = p.jump_size
    jump = np.where(
        jump_at,
        rng.choice([-1.0, 1.0], size=minutes) * rng.uniform(lo, hi, minutes) * entry.daily_vol,
        0.0,
    )
    step = drift + noise + jump
    f = np.empty(minutes + 1)
    f[0] = np.log(entry.ref_price) + p.gap_sigma * entry.daily_vol * rng.standard_normal()
    # Mean reversion needs the running level: a short scalar loop (375 steps) is
    # cheaper and clearer than a vectorised linear filter.
    revert = (regime == 3).tolist()
    steps = step.tolist()
    k = p.reversion
    alpha = 1.0 - np.exp(-1.0 / 30.0)  # the anchor: an EWMA with a 30-minute scale
    level = anchor = float(f[0])
    out = [level]
    for i in range(minutes):
        pull = -k * (level - anchor) if revert[i] else 0.0
        level += steps[i] + pull
        anchor += alpha * (level - anchor)
        out.append(level)
    f[:] = out
    return f, jump_at


def _instrument_day(
    entry: UniverseEntry,
    session: SessionTimes,
    seed: int,
    p: SyntheticParams,
    market: F64,
) -> TickBatch:
    inst = entry.instrument
    rng = _rng(seed, session.day, inst.instrument_token + 1)  # +1 keeps clear of the market slot
    minutes = len(market)
    tick_p = inst.tick_paise
    lot = inst.lot_size

    vol_u = _u_shape(minutes, 1.6, 25.0, 0.9, 20.0)
    vol_u /= np.sqrt(np.mean(vol_u**2))  # keeps the day's total variance at daily_vol^2
    sigma_m = entry.daily_vol * vol_u / np.sqrt(minutes)
    f, jump_at = _fair_value_path(rng, entry, p, market, sigma_m)

    # Tick times: Poisson counts per minute with a U-shaped rate, uniform inside.
    rate_u = _u_shape(minutes, 0.8, 30.0, 0.5, 25.0)
    rate_u /= rate_u.mean()
    counts = rng.poisson(p.ticks_per_second * 60.0 * rate_u)
    minute_of = np.repeat(np.arange(minutes), counts)
    n = len(minute_of)
    if n == 0:  # only possible at absurdly low tick rates
        return TickBatch.empty(synthetic=True)
    x = np.sort(minute_of + rng.random(n))
    minute_of = x.astype(np.int64)  # sorting kept every tick inside its minute
    frac = x - minute_of
    ts = session.open_ns + minute_of * MINUTE_NS + (frac * 60_000).astype(np.int64) * NS_PER_MS

    # Brownian bridge between the minute points.
    first = np.searchsorted(minute_of, np.arange(minutes), side="left")
    last = np.searchsorted(minute_of, np.arange(minutes), side="right") - 1
    prev_frac = np.concatenate(([0.0], frac[:-1]))
    new_minute = np.ones(n, dtype=bool)
    new_minute[1:] = minute_of[1:] != minute_of[:-1]
    dt = np.where(new_minute, frac, frac - prev_frac)
    w = np.cumsum(rng.standard_normal(n) * np.sqrt(np.maximum(dt, 0.0)))
    base = np.where(first > 0, w[np.maximum(first - 1, 0)], 0.0)
    w -= base[minute_of]
    has = counts > 0
    end = np.zeros(minutes)
    tail = np.sqrt(np.maximum(1.0 - frac[last[has]], 0.0))
    end[has] = w[last[has]] + rng.standard_normal(int(has.sum())) * tail
    bridge = sigma_m[minute_of] * (w - frac * end[minute_of])
    log_mid = f[minute_of] + frac * (f[minute_of + 1] - f[minute_of]) + bridge
    mid_p = np.exp(log_mid) * 100.0

    # Spread: a few basis points, at least one tick, wider at the open.
    spread_u = _u_shape(minutes, 1.5, 15.0, 0.3, 15.0)[minute_of]
    base_bp = p.spread_bp_fut if inst.segment == "FUT" else p.spread_bp_eq
    spread_bp = base_bp * spread_u * (1.0 + rng.exponential(0.5, n))
    spread_ticks = np.maximum(1, np.ceil(mid_p * spread_bp * 1e-4 / tick_p)).astype(np.int64)
    bid_p = np.floor((mid_p - spread_ticks * tick_p / 2.0) / tick_p).astype(np.int64) * tick_p
    bid_p = np.maximum(bid_p, tick_p)
    ask_p = bid_p + spread_ticks * tick_p

    # Trades lift the ask when the mid rose, hit the bid when it fell (mostly).
    rising = np.diff(mid_p, prepend=mid_p[0]) >= 0
    buy = rng.random(n) < np.where(rising, 0.75, 0.25)
    last_p = np.where(buy, ask_p, bid_p)

    # Volume: U-shaped, lognormal per trade, busier in a jump minute.
    vol_w = _u_shape(minutes, 2.0, 20.0, 1.4, 20.0)
    vol_w /= vol_w.sum()
    day_volume = entry.avg_daily_volume * rng.lognormal(0.0, 0.25)
    per_tick = day_volume * vol_w / np.maximum(counts, 1)
    per_tick = np.where(jump_at, per_tick * 3.0, per_tick)
    raw_qty = per_tick[minute_of] * rng.lognormal(-0.5, 1.0, n)
    qty = np.maximum(1, np.rint(raw_qty / lot)).astype(np.int64) * lot

    pre = _pre_open(rng, entry, session, float(f[0]), day_volume) if p.pre_open else None
    start_volume = int(pre.volume[-1]) if pre is not None and len(pre) else 0
    volume = start_volume + np.cumsum(qty)

    oi: I64
    if inst.segment in ("FUT", "OPT"):
        oi_lots0 = max(1, round(entry.avg_daily_volume * rng.uniform(1.5, 3.0) / lot))
        steps = rng.choice([-1, 0, 0, 0, 1], size=n) * rng.integers(1, 20, n)
        oi = np.maximum(1, oi_lots0 + np.cumsum(steps)).astype(np.int64) * lot
    else:
        oi = np.full(n, OI_ABSENT, np.int64)

    day = TickBatch(
        token=np.full(n, inst.instrument_token, np.uint32),
        ts_ns=ts.astype(np.int64),
        last_price=last_p / 100.0,
        last_qty=qty,
        volume=volume.astype(np.int64),
        bid=bid_p / 100.0,
        ask=ask_p / 100.0,
        oi=oi,
        synthetic=True,
    )
    if pre is None:
        return day
    if inst.segment in ("FUT", "OPT") and len(pre):
        pre_oi = np.full(len(pre), int(oi[0]) if n else lot, np.int64)
        pre = replace(pre, oi=pre_oi)
    return TickBatch.merge([pre, day])


def _pre_open(
    rng: np.random.Generator,
    entry: UniverseEntry,
    session: SessionTimes,
    open_log: float,
    day_volume: float,
) -> TickBatch:
    """09:00-09:08 indicative prices drifting to the open, then the auction print."""
    inst = entry.instrument
    tick_p = inst.tick_paise
    span = session.pre_open_order_entry_end_ns - session.pre_open_ns - MINUTE_NS
    n = max(2, int(span / 1e9 / 4.0))  # an indicative update every ~4 seconds
    ts = session.pre_open_ns + np.sort(rng.integers(0, span // NS_PER_MS, n)) * NS_PER_MS
    w = np.linspace(0.0, 1.0, n)
    start_log = np.log(entry.ref_price)
    noise = rng.standard_normal(n) * entry.daily_vol * 0.1 * (1.0 - w)
    ind_p = np.rint(np.exp(start_log + w * (open_log - start_log) + noise) * 100.0 / tick_p)
    ind = np.maximum(ind_p.astype(np.int64), 1) * tick_p
    # The random close: the auction matches in the last minute of order entry.
    match_ns = session.pre_open_order_entry_end_ns - MINUTE_NS
    match_ns += int(rng.integers(0, MINUTE_NS // NS_PER_MS)) * NS_PER_MS
    open_p = max(1, round(np.exp(open_log) * 100.0 / tick_p)) * tick_p
    lot = inst.lot_size
    auction_qty = max(1, round(day_volume * 0.005 / lot)) * lot
    nan = np.full(n + 1, np.nan)
    return TickBatch(
        token=np.full(n + 1, inst.instrument_token, np.uint32),
        ts_ns=np.append(ts, match_ns).astype(np.int64),
        last_price=np.append(ind, open_p) / 100.0,
        last_qty=np.append(np.zeros(n, np.int64), auction_qty).astype(np.int64),
        volume=np.append(np.zeros(n, np.int64), auction_qty).astype(np.int64),
        bid=nan,
        ask=nan.copy(),
        oi=np.full(n + 1, OI_ABSENT, np.int64),
        synthetic=True,
    )
