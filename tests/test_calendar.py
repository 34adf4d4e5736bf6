"""NSE session calendar: trading days, session boundaries in UTC ns, IST conversions."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest

from aitrapp.calendar import (
    IST,
    NseCalendar,
    SessionPhase,
    datetime_to_ns,
    default_calendar,
    format_ist,
    is_trading_day,
    ist_date,
    ist_ns,
    next_trading_day,
    previous_trading_day,
    session_times,
    to_ist,
)
from aitrapp.exceptions import AitrappError, CalendarError

NS = 1_000_000_000


def _utc_ns(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> int:
    return int(datetime(y, mo, d, h, mi, s, tzinfo=UTC).timestamp()) * NS


def test_builtin_holidays_are_labelled_and_cover_2026() -> None:
    cal = default_calendar()
    assert cal.has_holiday_data(2026)
    assert not cal.has_holiday_data(2030)
    assert "2026" in cal.source and "NOT re-verified" in cal.source
    days_2026 = [d for d in cal.holidays if d.year == 2026]
    assert len(days_2026) == 15
    assert all(d.weekday() < 5 for d in cal.holidays), "weekend holidays are not listed"


@pytest.mark.parametrize(
    ("day", "open_"),
    [
        (date(2026, 1, 26), False),  # Republic Day, a Monday
        (date(2026, 3, 3), False),  # Holi
        (date(2026, 6, 26), False),  # Muharram
        (date(2026, 12, 25), False),  # Christmas
        (date(2026, 1, 24), False),  # Saturday
        (date(2026, 1, 25), False),  # Sunday
        (date(2026, 2, 1), True),  # Budget day: a Sunday with a live session
        (date(2026, 1, 27), True),
        (date(2026, 1, 1), True),  # NSE trades on New Year's Day
        (date(2030, 1, 1), True),  # no holiday data: a weekday counts as open
    ],
)
def test_is_trading_day(day: date, open_: bool) -> None:
    assert is_trading_day(day) is open_


def test_next_and_previous_trading_day_skip_weekends_and_holidays() -> None:
    assert next_trading_day(date(2026, 1, 23)) == date(2026, 1, 27)  # Fri -> Tue (26 is a holiday)
    assert previous_trading_day(date(2026, 1, 27)) == date(2026, 1, 23)
    assert next_trading_day(date(2026, 1, 30)) == date(2026, 2, 1)  # the Budget Sunday
    assert next_trading_day(date(2026, 4, 2)) == date(2026, 4, 6)  # Good Friday + weekend
    cal = default_calendar()
    days = list(cal.trading_days(date(2026, 3, 30), date(2026, 4, 6)))
    assert days == [date(2026, 3, 30), date(2026, 4, 1), date(2026, 4, 2), date(2026, 4, 6)]


def test_session_boundaries_are_exact_utc_nanoseconds() -> None:
    s = session_times(date(2026, 1, 5))
    # IST is UTC+05:30 all year: 09:15 IST is 03:45 UTC.
    assert s.open_ns == _utc_ns(2026, 1, 5, 3, 45)
    assert s.pre_open_ns == _utc_ns(2026, 1, 5, 3, 30)
    assert s.pre_open_order_entry_end_ns == _utc_ns(2026, 1, 5, 3, 38)
    assert s.entry_end_ns == _utc_ns(2026, 1, 5, 9, 50)
    assert s.square_off_equity_ns == _utc_ns(2026, 1, 5, 9, 50)
    assert s.square_off_derivatives_ns == _utc_ns(2026, 1, 5, 9, 55)
    assert s.close_ns == _utc_ns(2026, 1, 5, 10, 0)
    assert s.duration_ns == (6 * 3600 + 15 * 60) * NS


def test_phases_and_entry_window_boundaries() -> None:
    s = session_times(date(2026, 1, 5))
    assert s.phase(s.pre_open_ns - 1) is SessionPhase.CLOSED
    assert s.phase(s.pre_open_ns) is SessionPhase.PRE_OPEN
    assert s.phase(s.open_ns - 1) is SessionPhase.PRE_OPEN
    assert s.phase(s.open_ns) is SessionPhase.ENTRIES
    assert s.phase(s.entry_end_ns - 1) is SessionPhase.ENTRIES
    assert s.phase(s.entry_end_ns) is SessionPhase.EXITS_ONLY
    assert s.phase(s.close_ns - 1) is SessionPhase.EXITS_ONLY
    assert s.phase(s.close_ns) is SessionPhase.CLOSED
    assert s.entries_allowed(s.open_ns) and not s.entries_allowed(s.entry_end_ns)
    assert s.is_open(s.close_ns - 1) and not s.is_open(s.close_ns)


def test_square_off_by_segment() -> None:
    s = session_times(date(2026, 1, 5))
    assert s.square_off_ns("EQ") == s.square_off_equity_ns
    assert s.square_off_ns("FUT") == s.square_off_ns("OPT") == s.square_off_derivatives_ns
    with pytest.raises(CalendarError, match="IDX"):
        s.square_off_ns("IDX")


def test_custom_entry_window_and_its_validation() -> None:
    s = session_times(date(2026, 1, 5), entry_start=time(9, 30), entry_end=time(14, 45))
    assert s.entry_start_ns == ist_ns(date(2026, 1, 5), time(9, 30))
    assert s.phase(s.open_ns) is SessionPhase.EXITS_ONLY  # before the window opens
    with pytest.raises(CalendarError, match="entry_end"):
        session_times(date(2026, 1, 5), entry_end=time(15, 45))
    with pytest.raises(CalendarError, match="entry_start"):
        session_times(date(2026, 1, 5), entry_start=time(15, 0), entry_end=time(14, 0))


def test_closed_day_error_says_why_and_when_next() -> None:
    with pytest.raises(CalendarError) as info:
        session_times(date(2026, 1, 26))
    msg = str(info.value)
    assert "Republic Day" in msg and "2026-01-27" in msg
    assert isinstance(info.value, AitrappError)
    with pytest.raises(CalendarError, match="Saturday"):
        session_times(date(2026, 1, 24))


@pytest.mark.parametrize(
    "ts",
    [
        _utc_ns(2026, 1, 5, 3, 45) + 123_456_789,
        _utc_ns(2026, 1, 4, 18, 30),  # IST midnight
        _utc_ns(2026, 1, 4, 18, 29, 59),  # a second before IST midnight
        0,
    ],
)
def test_ist_conversions_round_trip(ts: int) -> None:
    dt = to_ist(ts)
    assert dt.utcoffset() == timedelta(hours=5, minutes=30)
    assert datetime_to_ns(dt) == ts - ts % 1000  # datetime keeps microseconds
    assert ist_date(ts) == dt.date()
    assert ist_ns(dt.date(), dt.time().replace(tzinfo=None)) == ts - ts % 1000


def test_ist_date_switches_at_ist_midnight() -> None:
    assert ist_date(_utc_ns(2026, 1, 4, 18, 29, 59)) == date(2026, 1, 4)
    assert ist_date(_utc_ns(2026, 1, 4, 18, 30)) == date(2026, 1, 5)
    assert format_ist(_utc_ns(2026, 1, 5, 3, 45) + 250_000_000) == "2026-01-05 09:15:00.250 IST"


def test_naive_datetimes_and_times_are_refused() -> None:
    with pytest.raises(CalendarError, match="no timezone"):
        datetime_to_ns(datetime(2026, 1, 5, 9, 15))
    with pytest.raises(CalendarError, match="naive"):
        ist_ns(date(2026, 1, 5), time(9, 15, tzinfo=IST))


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ([], "JSON object"),
        ({"holidays": []}, "'years'"),
        ({"years": [2026], "holidays": [{"date": "2026-13-01"}]}, "holidays[0].date"),
        ({"years": [2026], "holidays": [{"name": "x"}]}, "holidays[0] needs a 'date'"),
        (
            {"years": [2026], "holidays": [{"date": "2026-01-26"}, {"date": "2026-01-26"}]},
            "listed twice",
        ),
        ({"years": [2026], "holidays": [{"date": "2025-01-01"}]}, "outside the listed years"),
        (
            {
                "years": [2026],
                "holidays": [{"date": "2026-01-26"}],
                "special_sessions": [{"date": "2026-01-26"}],
            },
            "both a holiday and a special session",
        ),
    ],
)
def test_calendar_file_errors_name_the_key(raw: object, needle: str) -> None:
    with pytest.raises(CalendarError) as info:
        NseCalendar.from_dict(raw, where="cal.json")
    assert needle in str(info.value) and "cal.json" in str(info.value)


def test_calendar_loads_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "cal.json"
    path.write_text('{"years": [2027], "holidays": [{"date": "2027-01-26", "name": "R"}]}')
    cal = NseCalendar.load(path)
    assert not cal.is_trading_day(date(2027, 1, 26))
    assert cal.holiday_name(date(2027, 1, 26)) == "R"
    path.write_text("{nope")
    with pytest.raises(CalendarError, match="not valid JSON"):
        NseCalendar.load(path)
