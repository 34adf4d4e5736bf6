"""Does protection hold on gappy price paths? A SYNTHETIC data set and the check over it.

``python -m aitrapp.research.protection_check`` replays, on the kernel with
the default configuration (``EngineConfig()`` and the default bracket), a
seeded SYNTHETIC data set, never market data: 20 trading days of 1-minute
candles for 5 made-up symbols (``GAPPY1``..), each candle replayed as 4
ticks (O -> L -> H -> C for a rising bar, O -> H -> L -> C for a falling
one, as ``--feed replay`` does with candles). Prices follow a random walk
with jumps of 1-3 % between bars, a few opening gaps of 1-4 %, and quotes
1-5 ticks wide around the last price.

It prints the exits by reason, loss / planned risk (median, p95, worst),
double exits outside races, the trades that lost more than 3x their planned
risk without the data gapping past the stop, and, for each day with at
least the burn-in's ``min_signals`` signals, whether the burn-in's
``protection`` criterion passes. Exit status 1 when an acceptance rule fails:

- ``UNPROTECTED`` at most ``AITRAPP_BURNIN_MAX_UNPROTECTED_PCT`` (5 %) of trades;
- no double exit outside a recorded race;
- no trade loses more than 3x its planned risk unless the data gapped past
  the stop between two consecutive ticks (see :mod:`aitrapp.report.protection`);
- the protection criterion passes on every day with enough signals.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, time

import numpy as np
import numpy.typing as npt

from aitrapp._core import Instrument
from aitrapp.brokers.paper_config import PaperConfig
from aitrapp.calendar import default_calendar, ist_ns
from aitrapp.config import EngineConfig
from aitrapp.feeds.base import OI_ABSENT, TickBatch
from aitrapp.kernel.events import rows
from aitrapp.kernel.replay import KernelTrade, replay_day
from aitrapp.report.burnin import BurninCriteria, load_criteria
from aitrapp.report.protection import (
    BEYOND,
    Protection,
    TradeFacts,
    facts_of,
    gapped_past_stop,
    problems,
    summarize,
)

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
BARS = 375  # 09:15-15:29 IST
_MINUTE_NS = 60 * 1_000_000_000
_TICK_OFFSETS_NS = np.arange(4, dtype=np.int64) * 15 * 1_000_000_000
_START_PRICES = (148.0, 423.0, 987.0, 1654.0, 2911.0)


@dataclass(frozen=True, slots=True)
class GappyParams:
    """The SYNTHETIC data set's knobs (defaults: the acceptance data set)."""

    days: int = 20
    symbols: int = 5
    seed: int = 13
    first_day: date = date(2026, 1, 5)
    minute_vol: float = 0.0012  # standard deviation of a bar's return
    jump_prob: float = 1 / 60  # chance of a jump between two bars
    jump_pct: tuple[float, float] = (1.0, 3.0)
    opening_gap_prob: float = 0.15  # chance a symbol opens away from yesterday's close
    opening_gap_pct: tuple[float, float] = (1.0, 4.0)
    spread_ticks: tuple[int, int] = (1, 5)
    tick_size: float = 0.05

    def __post_init__(self) -> None:
        if not 1 <= self.symbols <= len(_START_PRICES):
            raise ValueError(f"symbols: 1..{len(_START_PRICES)}, got {self.symbols}")
        if self.days < 1:
            raise ValueError(f"days: at least 1, got {self.days}")


def gappy_instruments(symbols: int) -> list[Instrument]:
    """Made-up NSE equities GAPPY1.. (tokens no real instrument uses)."""
    return [
        Instrument(
            exchange="NSE",
            tradingsymbol=f"GAPPY{n + 1}",
            instrument_token=0x00F40000 | (n + 1) << 8 | 1,
            segment="EQ",
            tick_size="0.05",
            lot_size=1,
            freeze_qty=100_000,
        )
        for n in range(symbols)
    ]


def trading_days(first: date, n: int) -> list[date]:
    cal = default_calendar()
    out: list[date] = []
    d = first
    while len(out) < n:
        if cal.is_trading_day(d):
            out.append(d)
        d = cal.next_trading_day(d)
    return out


def gappy_days(params: GappyParams | None = None) -> list[tuple[date, TickBatch]]:
    """Each trading day's ticks (SYNTHETIC, labelled so), all symbols merged by time."""
    p = params or GappyParams()
    rng = np.random.default_rng(p.seed)
    instruments = gappy_instruments(p.symbols)
    closes = list(_START_PRICES[: p.symbols])
    out = []
    for day in trading_days(p.first_day, p.days):
        parts = []
        for k, inst in enumerate(instruments):
            o, h, lo, c = _candles(rng, p, closes[k])
            closes[k] = float(c[-1])
            parts.append(_ticks(rng, p, day, inst.instrument_token, o, h, lo, c))
        out.append((day, _merge(parts)))
    return out


def _grid(values: F64, tick: float) -> F64:
    return np.round(np.round(values / tick) * tick, 2)


def _candles(
    rng: np.random.Generator, p: GappyParams, prev_close: float
) -> tuple[F64, F64, F64, F64]:
    """One symbol's 1-minute candles for a day, opening from ``prev_close``."""
    open_ = prev_close
    if rng.random() < p.opening_gap_prob:
        open_ *= 1 + rng.choice([-1.0, 1.0]) * rng.uniform(*p.opening_gap_pct) / 100
    steps = rng.normal(0.0, p.minute_vol, BARS)
    steps[0] = 0.0
    jumps = rng.random(BARS) < p.jump_prob
    jumps[0] = False
    n = int(jumps.sum())
    steps[jumps] = rng.choice([-1.0, 1.0], n) * rng.uniform(*p.jump_pct, n) / 100
    # Each bar opens where the walk (and any jump) left it and closes near there.
    opens = np.asarray(open_ * np.cumprod(1 + steps), dtype=np.float64)
    closes = opens * (1 + rng.normal(0.0, p.minute_vol * 0.8, BARS))
    wick = np.abs(rng.normal(0.0, p.minute_vol * 0.5, (BARS, 2))) * opens[:, None]
    o, c = _grid(opens, p.tick_size), _grid(closes, p.tick_size)
    h = _grid(np.maximum(o, c) + wick[:, 0], p.tick_size)
    lo = _grid(np.minimum(o, c) - wick[:, 1], p.tick_size)
    return o, np.maximum(h, np.maximum(o, c)), np.minimum(lo, np.minimum(o, c)), c


def _ticks(
    rng: np.random.Generator,
    p: GappyParams,
    day: date,
    token: int,
    o: F64,
    h: F64,
    lo: F64,
    c: F64,
) -> TickBatch:
    """Four ticks a bar, 15 s apart, with a quote 1-5 ticks wide around each."""
    rising = c >= o
    prices = np.stack([o, np.where(rising, lo, h), np.where(rising, h, lo), c], axis=1).ravel()
    bar_ns = ist_ns(day, time(9, 15)) + np.arange(BARS, dtype=np.int64) * _MINUTE_NS
    ts = (bar_ns[:, None] + _TICK_OFFSETS_NS[None, :]).ravel()
    n = len(prices)
    width = rng.integers(p.spread_ticks[0], p.spread_ticks[1] + 1, n)
    below = rng.integers(0, width + 1)  # ticks from the bid up to the last price
    bid = _grid(prices - below * p.tick_size, p.tick_size)
    qty = rng.integers(50, 5_000, n).astype(np.int64)
    return TickBatch(
        token=np.full(n, token, dtype=np.uint32),
        ts_ns=ts,
        last_price=prices,
        last_qty=qty,
        volume=np.cumsum(qty),
        bid=bid,
        ask=_grid(bid + width * p.tick_size, p.tick_size),
        oi=np.full(n, OI_ABSENT, dtype=np.int64),
        synthetic=True,
    )


def _merge(parts: Sequence[TickBatch]) -> TickBatch:
    """Feed order: exchange time, then instrument token (each symbol's own order kept)."""
    merged = TickBatch.merge(parts)
    order = np.lexsort((merged.token, merged.ts_ns))
    return merged.take(order)


# ---- the check ----
@dataclass(frozen=True, slots=True)
class DayCheck:
    day: date
    ticks: int
    signals: int
    decisions: int
    trades: tuple[TradeFacts, ...]
    protection: Protection
    criterion_problems: tuple[str, ...]  # the burn-in's protection criterion on this day


def _gap_flags(
    ticks: TickBatch,
    instruments: Sequence[Instrument],
    trades: Sequence[KernelTrade],
    slippage_bps: float,
) -> dict[str, bool]:
    """Per trade: did the data gap past its stop beyond 3x its planned risk?"""
    token_of = {i.tradingsymbol: i.instrument_token for i in instruments}
    tick_of = {i.tradingsymbol: i.tick_size for i in instruments}
    series: dict[int, tuple[I64, F64, F64, F64]] = {}
    out = {}
    for t in trades:
        tok = token_of[t.tradingsymbol]
        if tok not in series:
            m = ticks.token == tok
            series[tok] = (ticks.ts_ns[m], ticks.last_price[m], ticks.bid[m], ticks.ask[m])
        ts, px, bid, ask = series[tok]
        # From the tick the entry filled on (the last at or before the fill) to the exit.
        lo = max(int(np.searchsorted(ts, t.opened_ns, side="right")) - 1, 0)
        hi = int(np.searchsorted(ts, t.closed_ns, side="right"))
        distance = float(t.planned_risk) / t.qty
        out[t.plan_id] = gapped_past_stop(
            px[lo:hi],
            side=t.side,
            entry_price=float(t.entry_price),
            stop=float(t.planned_stop),
            bound_per_unit=BEYOND * distance,
            exit_quotes=(bid if t.side == "BUY" else ask)[lo:hi],
            slippage_bps=slippage_bps,
            tick=tick_of[t.tradingsymbol],
            # The gate keeps a stop two legs of modelled slippage away: one leg's
            # slippage is at most half the stop distance, however tight the stop.
            max_cost_per_unit=distance / 2,
        )
    return out


def check_day(
    day: date,
    ticks: TickBatch,
    instruments: Sequence[Instrument],
    config: EngineConfig,
    criteria: BurninCriteria,
) -> DayCheck:
    kday = replay_day(ticks, list(instruments), config)
    targets = {d["plan_id"]: d["tp"] / 100 for d in rows(kday.events, "decisions")}
    gaps = _gap_flags(ticks, instruments, kday.trades, PaperConfig().slippage_bps)
    facts = tuple(
        facts_of(t, planned_tp=targets.get(t.plan_id), gapped=gaps[t.plan_id]) for t in kday.trades
    )
    watchdog = Counter(a["code"] for a in rows(kday.events, "alerts"))
    prot = summarize(facts, watchdog=watchdog)
    c = kday.counters
    return DayCheck(
        day=day,
        ticks=len(ticks),
        signals=int(c["decisions"]) + int(c["blocks"]),
        decisions=int(c["decisions"]),
        trades=facts,
        protection=prot,
        criterion_problems=tuple(
            problems(
                prot,
                max_unprotected_pct=criteria.max_unprotected_pct,
                max_unraced_double_exits=criteria.max_unraced_double_exits,
            )
        ),
    )


def run(
    params: GappyParams | None = None,
    config: EngineConfig | None = None,
    criteria: BurninCriteria | None = None,
) -> list[DayCheck]:
    p = params or GappyParams()
    cfg = config or EngineConfig()
    crit = criteria or load_criteria()
    instruments = gappy_instruments(p.symbols)
    return [check_day(d, t, instruments, cfg, crit) for d, t in gappy_days(p)]


def acceptance(checks: Sequence[DayCheck], criteria: BurninCriteria) -> list[str]:
    """The acceptance rules over every day (empty: all hold)."""
    total = summarize(t for c in checks for t in c.trades)
    out = []
    share = total.unprotected_share or 0.0
    if share * 100 > criteria.max_unprotected_pct:
        out.append(
            f"UNPROTECTED {total.unprotected} of {total.trades} trades = {share * 100:.1f} % "
            f"(> {criteria.max_unprotected_pct:g} %)"
        )
    if total.unraced_double_exits:
        out.append(f"{total.unraced_double_exits} double exits outside recorded races")
    for c in checks:
        for t in c.trades:
            r = t.loss_over_risk
            if r is not None and r > BEYOND and not t.gapped_past_stop:
                out.append(
                    f"{c.day} plan {t.plan_id} ({t.exit_reason}) lost {r:.2f}x its planned "
                    "risk and the data did not gap past its stop"
                )
        if c.signals >= criteria.min_signals and c.criterion_problems:
            out.append(f"{c.day}: protection criterion fails: {'; '.join(c.criterion_problems)}")
    return out


def _fmt(v: float | None, unit: str = "x") -> str:
    return "-" if v is None else f"{v + 0.0:.2f}{unit}"


def render(checks: Sequence[DayCheck], criteria: BurninCriteria, params: GappyParams) -> str:
    total = summarize(
        (t for c in checks for t in c.trades),
        watchdog=sum((Counter(c.protection.watchdog or {}) for c in checks), Counter()),
    )
    lines = [
        f"SYNTHETIC data (generated, seed {params.seed}): {len(checks)} days x "
        f"{params.symbols} symbols, 1-minute candles as 4 ticks a bar; default configuration",
        "",
        f"{'day':<10} {'signals':>7} {'trades':>6} {'STOP':>4} {'GAP':>3} {'TP':>3} {'UNPR':>4} "
        f"{'other':>5} {'worst':>7} {'>3x':>3} {'dbl':>3}  protection",
    ]
    for c in checks:
        p, x = c.protection, c.protection.exits
        other = p.trades - sum(x[k] for k in ("STOP", "STOP_GAPPED", "TP", "UNPROTECTED"))
        judged = c.signals >= criteria.min_signals
        verdict = ("FAIL: " + "; ".join(c.criterion_problems)) if c.criterion_problems else "pass"
        lines.append(
            f"{c.day.isoformat():<10} {c.signals:>7} {p.trades:>6} {x['STOP']:>4} "
            f"{x['STOP_GAPPED']:>3} {x['TP']:>3} {x['UNPROTECTED']:>4} {other:>5} "
            f"{_fmt(p.loss_risk_worst):>7} {p.beyond:>3} {p.unraced_double_exits:>3}  "
            f"{verdict if judged else f'({verdict}; < {criteria.min_signals} signals)'}"
        )
    n = total.trades
    lines += ["", f"exits by reason ({n} trades):"]
    for reason, share in total.exit_shares().items():
        lines.append(f"  {reason:<12} {total.exits[reason]:>5}  {share * 100:5.1f} %")
    es, xs = total.entry_slippage, total.exit_slippage
    judged_days = [c for c in checks if c.signals >= criteria.min_signals]
    passing = sum(not c.criterion_problems for c in judged_days)
    lines += [
        f"loss / planned risk ({total.losses} losing trades): median "
        f"{_fmt(total.loss_risk_median)}, p95 {_fmt(total.loss_risk_p95)}, worst "
        f"{_fmt(total.loss_risk_worst)}",
        f"beyond {BEYOND:g}x: {total.beyond} ({total.beyond_gapped} gapped past the stop "
        f"between two ticks, {total.beyond_not_gapped} did not)",
        f"slippage vs plan: entry median {_fmt(es.median_bps, ' bps')}, p95 "
        f"{_fmt(es.p95_bps, ' bps')}; exit median {_fmt(xs.median_bps, ' bps')}, p95 "
        f"{_fmt(xs.p95_bps, ' bps')}",
        f"double exits: {total.double_exits} ({total.races} races, "
        f"{total.unraced_double_exits} outside races); watchdog escalations: "
        f"{total.watchdog_escalations}",
        f"days with >= {criteria.min_signals} signals: {len(judged_days)}; protection "
        f"criterion passes on {passing} of them",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    d = GappyParams()
    ap.add_argument("--days", type=int, default=d.days)
    ap.add_argument("--symbols", type=int, default=d.symbols)
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--json", action="store_true", help="the totals as JSON instead of text")
    a = ap.parse_args(argv)
    params = GappyParams(days=a.days, symbols=a.symbols, seed=a.seed)
    criteria = load_criteria()
    checks = run(params, criteria=criteria)
    failures = acceptance(checks, criteria)
    if a.json:
        total = summarize(t for c in checks for t in c.trades)
        doc = {"synthetic": True, "params": {"days": a.days, "symbols": a.symbols,
               "seed": a.seed}, "protection": total.to_json(), "acceptance": failures}  # fmt: skip
        print(json.dumps(doc, indent=2))
    else:
        print(render(checks, criteria, params))
        print("acceptance: " + ("PASS" if not failures else "FAIL"))
        for f in failures:
            print(f"  - {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
