"""The multi-day backtest report: figures per day, per strategy, per symbol and in total.

Pure functions of the days' trades (no database, no clock), so every number
can be checked by hand. Money stays ``Decimal`` rupees (sums are exact);
ratios are floats computed with numpy.

Formulas (also in docs/backtest.md):

- daily return ``r_d = net_d / capital`` for every day run (a day without
  trades returns 0); capital is ``risk.capital_rupees`` of the config and is
  not compounded;
- Sharpe ``= sqrt(252) * mean(r - rf/252) / std(r - rf/252, ddof=1)``;
- Sortino ``= sqrt(252) * mean(r - rf/252) / sqrt(mean(min(0, r - rf/252)^2))``
  (downside deviation over all days, target rf/252); ``rf`` is the annual
  risk-free rate setting; both are None with fewer than two days or a zero
  denominator;
- max drawdown: the largest fall of cumulative net P&L (at each trade's
  close, from 0 at the first day's open) below its running peak; its
  duration is the market time (09:15-15:30 IST of the days run) from the
  peak to the recovery of that peak, or to the last close when it has not
  recovered;
- exposure: market time with at least one position open (union of the
  trades' open intervals) over the market time of the days run;
- loss / planned risk: ``-gross / planned_risk`` over trades with a gross
  loss (1.0 = stopped exactly at the planned stop);
- charges share of gross: ``charges / gross`` when gross > 0, else None;
- expectancy: net P&L per trade; win rate: trades with net > 0 over trades;
- slippage: per trade, the entry fill against the planned entry plus a STOP
  or TP exit against its planned level, in rupees (positive = worse).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from uuid import UUID

import numpy as np

from aitrapp.backtest.days import SkippedDay
from aitrapp.backtest.records import DayResult, TradeRecord
from aitrapp.calendar import IST, MARKET_CLOSE, MARKET_OPEN

TRADING_DAYS_PER_YEAR = 252
_PAISA = Decimal("0.01")
_MARKET_MINUTES = (MARKET_CLOSE.hour * 60 + MARKET_CLOSE.minute) - (
    MARKET_OPEN.hour * 60 + MARKET_OPEN.minute
)


def paise(value: Decimal) -> Decimal:
    """Rupees rounded to the paisa (ROUND_HALF_UP), for display and comparison."""
    return value.quantize(_PAISA, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class ReportSettings:
    capital: Decimal  # rupees: the base of daily returns
    risk_free_rate_pct: float = 0.0  # annual, percent (6.5 = 6.5 %)
    periods_per_year: int = TRADING_DAYS_PER_YEAR


@dataclass(frozen=True, slots=True)
class GroupStats:
    """The figures of one group of trades (a day, a strategy, a symbol, or all)."""

    key: str
    trades: int
    wins: int
    win_rate: float | None
    expectancy: Decimal | None
    gross: Decimal
    charges: Decimal
    net: Decimal
    charges_share: float | None
    max_drawdown: Decimal
    max_drawdown_pct: float  # of capital
    max_drawdown_minutes: float  # market time, peak to recovery (or to the end)
    drawdown_recovered: bool
    sharpe: float | None
    sortino: float | None
    exposure_share: float
    exposure_minutes: float
    avg_loss_r: float | None
    worst_loss_r: float | None
    avg_slippage: Decimal | None
    exits: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, Decimal):
                value = str(paise(value))
            elif isinstance(value, float):
                value = round(value, 6)
            out[name] = value
        return out


@dataclass(frozen=True, slots=True)
class DailyPoint:
    day: date
    trades: int
    net: Decimal
    equity: Decimal  # cumulative net at the day's end
    drawdown: Decimal  # equity below its running peak (>= 0)


@dataclass(frozen=True, slots=True)
class MonthRow:
    year: int
    month: int
    days: int
    trades: int
    net: Decimal
    return_pct: float  # of capital


@dataclass(frozen=True, slots=True)
class BacktestReport:
    backtest_id: UUID | None
    label: str
    synthetic: bool
    first: date
    last: date
    settings: ReportSettings
    days: tuple[DayResult, ...]
    skipped: tuple[SkippedDay, ...]
    total: GroupStats
    by_day: tuple[GroupStats, ...]
    by_strategy: tuple[GroupStats, ...]
    by_symbol: tuple[GroupStats, ...]
    daily: tuple[DailyPoint, ...]
    monthly: tuple[MonthRow, ...]
    config_sha: str = ""

    @property
    def trades(self) -> list[TradeRecord]:
        return [t for d in self.days for t in d.trades]


# ------------------------------------------------------------------ building
def build_report(
    days: Sequence[DayResult],
    settings: ReportSettings,
    *,
    skipped: Sequence[SkippedDay] = (),
    backtest_id: UUID | None = None,
    label: str = "",
    synthetic: bool = False,
    first: date | None = None,
    last: date | None = None,
    config_sha: str = "",
) -> BacktestReport:
    if not days:
        raise ValueError("a report needs at least one day")
    if settings.capital <= 0:
        raise ValueError(f"capital must be positive, got {settings.capital}")
    ordered = tuple(sorted(days, key=lambda d: d.day))
    run_days = [d.day for d in ordered]
    trades = [t for d in ordered for t in d.trades]

    def group(key: str, of: Callable[[TradeRecord], object], on: Sequence[date]) -> GroupStats:
        return group_stats(key, [t for t in trades if of(t) == key], on, settings)

    by_day = tuple(
        group_stats(d.isoformat(), [t for t in trades if t.day == d], [d], settings)
        for d in run_days
    )
    strategies = sorted({t.strategy for t in trades})
    symbols = sorted({t.symbol for t in trades})
    return BacktestReport(
        backtest_id=backtest_id,
        label=label,
        synthetic=synthetic,
        first=first or run_days[0],
        last=last or run_days[-1],
        settings=settings,
        days=ordered,
        skipped=tuple(skipped),
        total=group_stats("total", trades, run_days, settings),
        by_day=by_day,
        by_strategy=tuple(group(s, lambda t: t.strategy, run_days) for s in strategies),
        by_symbol=tuple(group(s, lambda t: t.symbol, run_days) for s in symbols),
        daily=tuple(_daily(ordered)),
        monthly=tuple(_monthly(ordered, settings.capital)),
        config_sha=config_sha,
    )


def group_stats(
    key: str, trades: Sequence[TradeRecord], run_days: Sequence[date], settings: ReportSettings
) -> GroupStats:
    """Every figure of one group; ``run_days`` are the days its returns are taken over."""
    n = len(trades)
    gross = sum((t.gross for t in trades), Decimal(0))
    charges = sum((t.charges for t in trades), Decimal(0))
    net = sum((t.net for t in trades), Decimal(0))
    wins = sum(1 for t in trades if t.net > 0)
    dd, dd_minutes, recovered = max_drawdown(trades, run_days)
    daily = [sum((t.net for t in trades if t.day == d), Decimal(0)) for d in run_days]
    returns = np.array([float(v / settings.capital) for v in daily], dtype=np.float64)
    sharpe, sortino = sharpe_sortino(returns, settings)
    exposure = exposure_minutes(trades, run_days)
    losses = np.array(
        [float(-t.gross / t.planned_risk) for t in trades if t.gross < 0 and t.planned_risk > 0],
        dtype=np.float64,
    )
    slips = [s for s in (t.slippage for t in trades) if s is not None]
    return GroupStats(
        key=key,
        trades=n,
        wins=wins,
        win_rate=wins / n if n else None,
        expectancy=net / n if n else None,
        gross=gross,
        charges=charges,
        net=net,
        charges_share=float(charges / gross) if gross > 0 else None,
        max_drawdown=dd,
        max_drawdown_pct=float(dd / settings.capital * 100),
        max_drawdown_minutes=dd_minutes,
        drawdown_recovered=recovered,
        sharpe=sharpe,
        sortino=sortino,
        exposure_share=exposure / (_MARKET_MINUTES * len(run_days)) if run_days else 0.0,
        exposure_minutes=exposure,
        avg_loss_r=float(losses.mean()) if len(losses) else None,
        worst_loss_r=float(losses.max()) if len(losses) else None,
        avg_slippage=sum(slips, Decimal(0)) / len(slips) if slips else None,
        exits=dict(sorted(Counter(t.exit_reason for t in trades).items())),
    )


def sharpe_sortino(
    returns: np.ndarray[Any, np.dtype[np.float64]], settings: ReportSettings
) -> tuple[float | None, float | None]:
    """Annualised Sharpe and Sortino of daily returns (formulas in the module doc)."""
    if len(returns) < 2:
        return None, None
    excess = returns - settings.risk_free_rate_pct / 100 / settings.periods_per_year
    scale = math.sqrt(settings.periods_per_year)
    mean = float(excess.mean())
    std = float(excess.std(ddof=1))
    downside = float(np.sqrt(np.mean(np.minimum(excess, 0.0) ** 2)))
    sharpe = scale * mean / std if std > 0 else None
    sortino = scale * mean / downside if downside > 0 else None
    return sharpe, sortino


# ------------------------------------------------------------------ market time
def _open(day: date) -> datetime:
    return datetime.combine(day, MARKET_OPEN, tzinfo=IST)


def _close(day: date) -> datetime:
    return datetime.combine(day, MARKET_CLOSE, tzinfo=IST)


def market_minutes(start: datetime, end: datetime, run_days: Sequence[date]) -> float:
    """Minutes of market time (09:15-15:30 IST of the days run) between two instants."""
    total = 0.0
    for d in run_days:
        a, b = max(start, _open(d)), min(end, _close(d))
        if b > a:
            total += (b - a).total_seconds() / 60
    return total


def exposure_minutes(trades: Sequence[TradeRecord], run_days: Sequence[date]) -> float:
    """Market minutes with at least one of ``trades`` open (overlaps counted once)."""
    spans = sorted((t.opened_at, t.closed_at) for t in trades)
    merged: list[tuple[datetime, datetime]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return sum(market_minutes(a, b, run_days) for a, b in merged)


def max_drawdown(
    trades: Sequence[TradeRecord], run_days: Sequence[date]
) -> tuple[Decimal, float, bool]:
    """(amount, duration in market minutes, recovered?) of the deepest drawdown."""
    if not run_days:
        return Decimal(0), 0.0, True
    points = sorted(((t.closed_at, t.net) for t in trades), key=lambda p: p[0])
    peak, peak_at = Decimal(0), _open(run_days[0])
    equity = Decimal(0)
    worst = Decimal(0)
    worst_peak_at: datetime | None = None
    worst_peak = Decimal(0)
    for at, net in points:
        equity += net
        if equity > peak:
            peak, peak_at = equity, at
        elif peak - equity > worst:
            worst, worst_peak_at, worst_peak = peak - equity, peak_at, peak
    if worst_peak_at is None:
        return Decimal(0), 0.0, True
    # Recovery: the first close after the trough's peak at or above that peak.
    equity = Decimal(0)
    recovered_at: datetime | None = None
    for at, net in points:
        equity += net
        if at > worst_peak_at and equity >= worst_peak:
            recovered_at = at
            break
    end = recovered_at or _close(run_days[-1])
    return worst, market_minutes(worst_peak_at, end, run_days), recovered_at is not None


# ------------------------------------------------------------------ series
def _daily(days: Sequence[DayResult]) -> list[DailyPoint]:
    out = []
    equity = peak = Decimal(0)
    for d in days:
        equity += d.net
        peak = max(peak, equity)
        out.append(DailyPoint(d.day, len(d.trades), d.net, equity, peak - equity))
    return out


def _monthly(days: Sequence[DayResult], capital: Decimal) -> list[MonthRow]:
    months: dict[tuple[int, int], list[DayResult]] = {}
    for d in days:
        months.setdefault((d.day.year, d.day.month), []).append(d)
    rows = []
    for (y, m), group in sorted(months.items()):
        net = sum((d.net for d in group), Decimal(0))
        rows.append(
            MonthRow(
                y, m, len(group), sum(len(d.trades) for d in group), net, float(net / capital * 100)
            )
        )
    return rows


def format_minutes(minutes: float) -> str:
    """Market time as 'Nd HH:MM' (a day = one 375-minute session)."""
    whole = round(minutes)
    days, rest = divmod(whole, _MARKET_MINUTES)
    text = f"{rest // 60:02d}:{rest % 60:02d}"
    return f"{days}d {text}" if days else text


def report_json(report: BacktestReport) -> dict[str, Any]:
    """Everything, for machines: money as exact strings (rupees, to the paisa)."""
    return {
        "backtest_id": str(report.backtest_id) if report.backtest_id else None,
        "label": report.label,
        "synthetic": report.synthetic,
        "from": report.first.isoformat(),
        "to": report.last.isoformat(),
        "config_sha": report.config_sha,
        "settings": {
            "capital_rupees": str(report.settings.capital),
            "risk_free_rate_pct": report.settings.risk_free_rate_pct,
            "periods_per_year": report.settings.periods_per_year,
        },
        "days_run": [
            {
                "day": d.day.isoformat(),
                "status": d.status,
                "session_id": str(d.session_id) if d.session_id else None,
                "ticks": d.ticks,
                "trades": len(d.trades),
                "net": str(paise(d.net)),
            }
            for d in report.days
        ],
        "skipped": [
            {"day": s.day.isoformat(), "reason": s.reason, "ticks": s.ticks} for s in report.skipped
        ],
        "total": report.total.as_json(),
        "by_day": [g.as_json() for g in report.by_day],
        "by_strategy": [g.as_json() for g in report.by_strategy],
        "by_symbol": [g.as_json() for g in report.by_symbol],
        "daily": [
            {
                "day": p.day.isoformat(),
                "trades": p.trades,
                "net": str(paise(p.net)),
                "equity": str(paise(p.equity)),
                "drawdown": str(paise(p.drawdown)),
            }
            for p in report.daily
        ],
        "monthly": [
            {
                "year": m.year,
                "month": m.month,
                "days": m.days,
                "trades": m.trades,
                "net": str(paise(m.net)),
                "return_pct": round(m.return_pct, 6),
            }
            for m in report.monthly
        ],
        "trades": [_trade_json(t) for t in report.trades],
    }


def _trade_json(t: TradeRecord) -> dict[str, Any]:
    slip = t.slippage
    return {
        "day": t.day.isoformat(),
        "plan_id": t.plan_id,
        "strategy": t.strategy,
        "symbol": t.symbol,
        "side": t.side,
        "qty": t.qty,
        "entry_price": str(t.entry_price),
        "exit_price": str(t.exit_price),
        "opened_at": t.opened_at.isoformat(),
        "closed_at": t.closed_at.isoformat(),
        "exit_reason": t.exit_reason,
        "planned_risk": str(paise(t.planned_risk)),
        "gross": str(paise(t.gross)),
        "charges": str(paise(t.charges)),
        "net": str(paise(t.net)),
        "slippage": None if slip is None else str(paise(slip)),
    }


def ist_time(ts: datetime) -> time:
    return ts.astimezone(IST).time()


__all__ = [
    "TRADING_DAYS_PER_YEAR",
    "BacktestReport",
    "DailyPoint",
    "GroupStats",
    "MonthRow",
    "ReportSettings",
    "build_report",
    "exposure_minutes",
    "format_minutes",
    "group_stats",
    "market_minutes",
    "max_drawdown",
    "paise",
    "report_json",
    "sharpe_sortino",
]
