"""Which days a backtest runs: each NSE trading day present in the data, on its own.

The data (every replay file, merged) is split by IST calendar date. Every
date of the range (``--from``/``--to``, default: the data's first and last
day) is either run or listed as skipped with its reason: a weekend, an NSE
holiday (by name), or a trading day without data. Ticks on a closed day are
never replayed; the skip says how many there were.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from aitrapp.calendar import DAY_NS, IST_OFFSET_NS, NseCalendar, default_calendar
from aitrapp.exceptions import ConfigError
from aitrapp.feeds.base import I64, TickBatch

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


@dataclass(frozen=True, slots=True)
class SkippedDay:
    day: date
    reason: str  # "weekend", "holiday: <name>", "no data"
    ticks: int = 0  # ticks present (and not replayed) on that day

    def describe(self) -> str:
        extra = f" ({self.ticks:,} ticks not replayed)" if self.ticks else ""
        return f"{self.day} {self.day:%a}: {self.reason}{extra}"


@dataclass(frozen=True, slots=True)
class TradingDay:
    day: date
    ticks: TickBatch


@dataclass(frozen=True, slots=True)
class DaySplit:
    days: tuple[TradingDay, ...]
    skipped: tuple[SkippedDay, ...]
    first: date
    last: date

    @property
    def total_ticks(self) -> int:
        return sum(len(d.ticks) for d in self.days)


def ist_days(ts_ns: I64) -> I64:
    """IST calendar day numbers (days since 1970-01-01) of UTC-ns timestamps."""
    return (ts_ns + IST_OFFSET_NS) // DAY_NS


def _to_date(day_number: int) -> date:
    return date.fromordinal(_EPOCH_ORDINAL + day_number)


def split_days(
    data: TickBatch,
    *,
    start: date | None = None,
    end: date | None = None,
    calendar: NseCalendar | None = None,
) -> DaySplit:
    """The trading days of ``data`` within ``start..end``, each with its own ticks."""
    cal = calendar or default_calendar()
    if not len(data):
        raise ConfigError("replay: the data holds no ticks")
    numbers = ist_days(data.ts_ns)
    first = start or _to_date(int(numbers.min()))
    last = end or _to_date(int(numbers.max()))
    if last < first:
        raise ConfigError(f"--from {first} is after --to {last}")
    # Feed order is time order, so each day's rows are one contiguous run.
    uniq, begin, counts = np.unique(numbers, return_index=True, return_counts=True)
    present = {
        _to_date(int(u)): (int(b), int(c)) for u, b, c in zip(uniq, begin, counts, strict=True)
    }
    days: list[TradingDay] = []
    skipped: list[SkippedDay] = []
    d = first
    while d <= last:
        span = present.get(d)
        ticks = span[1] if span else 0
        if not cal.is_trading_day(d):
            name = cal.holiday_name(d)
            reason = f"holiday: {name}" if name else "weekend"
            skipped.append(SkippedDay(d, reason, ticks))
        elif span is None:
            skipped.append(SkippedDay(d, "no data"))
        else:
            b, c = span
            days.append(TradingDay(d, data.slice(b, b + c)))
        d += timedelta(days=1)
    if not days:
        covered = f"{_to_date(int(numbers.min()))}..{_to_date(int(numbers.max()))}"
        raise ConfigError(
            f"no NSE trading day with data in {first}..{last} (the data covers {covered})"
        )
    return DaySplit(tuple(days), tuple(skipped), first, last)


def describe_skipped(skipped: Sequence[SkippedDay]) -> list[str]:
    """Holidays and days without data one by one; weekends without data counted."""
    lines = [s.describe() for s in skipped if s.reason != "weekend" or s.ticks]
    quiet = sum(1 for s in skipped if s.reason == "weekend" and not s.ticks)
    if quiet:
        lines.append(f"{quiet} weekend day(s) without data")
    return lines


__all__ = ["DaySplit", "SkippedDay", "TradingDay", "describe_skipped", "split_days"]
