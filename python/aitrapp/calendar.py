"""The NSE session calendar, in IST (Asia/Kolkata, UTC+05:30, no daylight saving).

Times inside the system are UTC nanoseconds; this module is where a date and
an IST wall time become those nanoseconds and back. Holidays are data
(`aitrapp/data/nse_holidays.json`, with its source and assumptions).

A normal day: pre-open 09:00-09:15 (order entry till 09:08, then the call
auction), normal market 09:15-15:30. Entries are allowed 09:15-15:20 by
default; Zerodha squares off MIS positions at 15:20 (equity) and 15:25
(equity derivatives).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from enum import StrEnum
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from aitrapp.exceptions import CalendarError

IST = timezone(timedelta(hours=5, minutes=30), "IST")
IST_OFFSET_NS = 19_800 * 1_000_000_000
DAY_NS = 86_400 * 1_000_000_000
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()

PRE_OPEN = time(9, 0)
PRE_OPEN_ORDER_ENTRY_END = time(9, 8)
MARKET_OPEN = time(9, 15)
ENTRY_END = time(15, 20)
SQUARE_OFF_EQUITY = time(15, 20)
SQUARE_OFF_DERIVATIVES = time(15, 25)
MARKET_CLOSE = time(15, 30)


# -- conversions ----------------------------------------------------------------
def ist_ns(day: date, at: time) -> int:
    """UTC nanoseconds of IST wall time `at` on `day` (`at` must be naive)."""
    if at.tzinfo is not None:
        raise CalendarError(f"ist_ns: time {at} must be naive (it is read as IST)")
    secs = (day.toordinal() - _EPOCH_ORDINAL) * 86_400 + at.hour * 3600 + at.minute * 60 + at.second
    return secs * 1_000_000_000 + at.microsecond * 1000 - IST_OFFSET_NS


def datetime_to_ns(dt: datetime) -> int:
    """UTC nanoseconds of an aware datetime (naive ones are refused: ambiguous)."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise CalendarError(f"datetime {dt.isoformat()} has no timezone; attach IST or UTC")
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def to_ist(ts_ns: int) -> datetime:
    """IST datetime of UTC nanoseconds (truncated to microseconds)."""
    days, rem = divmod(ts_ns + IST_OFFSET_NS, DAY_NS)
    base = datetime.combine(date.fromordinal(_EPOCH_ORDINAL + days), time(), IST)
    return base + timedelta(microseconds=rem // 1000)


def ist_date(ts_ns: int) -> date:
    """The IST calendar date of UTC nanoseconds."""
    return date.fromordinal(_EPOCH_ORDINAL + (ts_ns + IST_OFFSET_NS) // DAY_NS)


def format_ist(ts_ns: int) -> str:
    """'2026-01-05 09:15:00.250 IST' for logs and error messages."""
    return to_ist(ts_ns).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " IST"


# -- one day's session -------------------------------------------------------------
class SessionPhase(StrEnum):
    CLOSED = "CLOSED"
    PRE_OPEN = "PRE_OPEN"  # 09:00-09:15: warm-up, no continuous trading
    ENTRIES = "ENTRIES"  # entry window: new positions allowed
    EXITS_ONLY = "EXITS_ONLY"  # after the entry window until the close


@dataclass(frozen=True, slots=True)
class SessionTimes:
    """One trading day's boundaries as UTC nanoseconds."""

    day: date
    pre_open_ns: int
    pre_open_order_entry_end_ns: int
    open_ns: int
    entry_start_ns: int
    entry_end_ns: int
    square_off_equity_ns: int
    square_off_derivatives_ns: int
    close_ns: int

    def square_off_ns(self, segment: str) -> int:
        """MIS square-off moment for an instrument segment (EQ, FUT, OPT)."""
        if segment == "EQ":
            return self.square_off_equity_ns
        if segment in ("FUT", "OPT"):
            return self.square_off_derivatives_ns
        raise CalendarError(f"segment {segment!r} has no square-off time (expected EQ, FUT, OPT)")

    def phase(self, ts_ns: int) -> SessionPhase:
        if self.pre_open_ns <= ts_ns < self.open_ns:
            return SessionPhase.PRE_OPEN
        if self.entry_start_ns <= ts_ns < self.entry_end_ns:
            return SessionPhase.ENTRIES
        if self.open_ns <= ts_ns < self.close_ns:
            return SessionPhase.EXITS_ONLY
        return SessionPhase.CLOSED

    def entries_allowed(self, ts_ns: int) -> bool:
        return self.entry_start_ns <= ts_ns < self.entry_end_ns

    def is_open(self, ts_ns: int) -> bool:
        """Inside the normal market (09:15 <= t < 15:30)."""
        return self.open_ns <= ts_ns < self.close_ns

    @property
    def duration_ns(self) -> int:
        """Length of the normal market."""
        return self.close_ns - self.open_ns


# -- the calendar -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class NseCalendar:
    """Trading days: weekdays that are not holidays, plus special weekend sessions."""

    holidays: Mapping[date, str]
    special_sessions: Mapping[date, str]
    years: frozenset[int]
    source: str = ""

    @staticmethod
    def load(path: Path | None = None) -> NseCalendar:
        """Reads a holiday file (default: the built-in one); errors name the key."""
        if path is None:
            text = resources.files("aitrapp").joinpath("data", "nse_holidays.json").read_text()
            where = "nse_holidays.json"
        else:
            text = path.read_text()
            where = str(path)
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as e:
            raise CalendarError(f"{where}: not valid JSON: {e}") from None
        return NseCalendar.from_dict(raw, where=where)

    @staticmethod
    def from_dict(raw: Any, *, where: str = "calendar") -> NseCalendar:
        if not isinstance(raw, dict):
            raise CalendarError(f"{where}: expected a JSON object")
        years_raw = raw.get("years")
        if not isinstance(years_raw, list) or not all(isinstance(y, int) for y in years_raw):
            raise CalendarError(f"{where}: key 'years' must be a list of years")
        years = frozenset(years_raw)
        holidays = _dated(raw, "holidays", where)
        special = _dated(raw, "special_sessions", where)
        for day in holidays:
            if day.year not in years:
                raise CalendarError(
                    f"{where}: holiday {day} lies outside the listed years {sorted(years)}"
                )
        clash = sorted(holidays.keys() & special.keys())
        if clash:
            raise CalendarError(f"{where}: {clash[0]} is both a holiday and a special session")
        return NseCalendar(holidays, special, years, str(raw.get("source", "")))

    def has_holiday_data(self, year: int) -> bool:
        return year in self.years

    def holiday_name(self, day: date) -> str | None:
        return self.holidays.get(day)

    def is_trading_day(self, day: date) -> bool:
        if day in self.special_sessions:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def next_trading_day(self, day: date) -> date:
        """The first trading day strictly after `day`."""
        d = day + timedelta(days=1)
        while not self.is_trading_day(d):
            d += timedelta(days=1)
        return d

    def previous_trading_day(self, day: date) -> date:
        """The last trading day strictly before `day`."""
        d = day - timedelta(days=1)
        while not self.is_trading_day(d):
            d -= timedelta(days=1)
        return d

    def trading_days(self, start: date, end: date) -> Iterator[date]:
        """Trading days in ``start..end`` inclusive."""
        d = start
        while d <= end:
            if self.is_trading_day(d):
                yield d
            d += timedelta(days=1)

    def why_closed(self, day: date) -> str:
        """A human reason for a non-trading day (for error messages)."""
        if self.is_trading_day(day):
            return "open"
        name = self.holidays.get(day)
        return name if name else day.strftime("%A")

    def session(
        self,
        day: date,
        *,
        entry_start: time = MARKET_OPEN,
        entry_end: time = ENTRY_END,
    ) -> SessionTimes:
        """Session boundaries of a trading day; a closed day is an error saying why."""
        if not self.is_trading_day(day):
            raise CalendarError(
                f"{day} is not an NSE trading day ({self.why_closed(day)}); "
                f"the next trading day is {self.next_trading_day(day)}"
            )
        if not MARKET_OPEN <= entry_start < entry_end <= MARKET_CLOSE:
            raise CalendarError(
                f"entry window {entry_start}-{entry_end}: entry_start and entry_end must satisfy "
                f"{MARKET_OPEN} <= entry_start < entry_end <= {MARKET_CLOSE}"
            )
        return SessionTimes(
            day=day,
            pre_open_ns=ist_ns(day, PRE_OPEN),
            pre_open_order_entry_end_ns=ist_ns(day, PRE_OPEN_ORDER_ENTRY_END),
            open_ns=ist_ns(day, MARKET_OPEN),
            entry_start_ns=ist_ns(day, entry_start),
            entry_end_ns=ist_ns(day, entry_end),
            square_off_equity_ns=ist_ns(day, SQUARE_OFF_EQUITY),
            square_off_derivatives_ns=ist_ns(day, SQUARE_OFF_DERIVATIVES),
            close_ns=ist_ns(day, MARKET_CLOSE),
        )

    def last_trading_day_on_or_before(self, day: date) -> date:
        return day if self.is_trading_day(day) else self.previous_trading_day(day)


def _dated(raw: dict[str, Any], key: str, where: str) -> dict[date, str]:
    items = raw.get(key, [])
    if not isinstance(items, list):
        raise CalendarError(f"{where}: key {key!r} must be a list")
    out: dict[date, str] = {}
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("date"), str):
            raise CalendarError(f"{where}: {key}[{i}] needs a 'date' string")
        try:
            day = date.fromisoformat(item["date"])
        except ValueError:
            raise CalendarError(
                f"{where}: {key}[{i}].date {item['date']!r} is not a YYYY-MM-DD date"
            ) from None
        if day in out:
            raise CalendarError(f"{where}: {key}[{i}].date {day} is listed twice")
        out[day] = str(item.get("name", ""))
    return out


# -- module-level helpers on the built-in calendar -----------------------------------
@cache
def default_calendar() -> NseCalendar:
    return NseCalendar.load()


def is_trading_day(day: date) -> bool:
    return default_calendar().is_trading_day(day)


def next_trading_day(day: date) -> date:
    return default_calendar().next_trading_day(day)


def previous_trading_day(day: date) -> date:
    return default_calendar().previous_trading_day(day)


def session_times(
    day: date, *, entry_start: time = MARKET_OPEN, entry_end: time = ENTRY_END
) -> SessionTimes:
    return default_calendar().session(day, entry_start=entry_start, entry_end=entry_end)
