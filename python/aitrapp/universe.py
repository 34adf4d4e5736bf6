"""The built-in universe: liquid NSE names and index futures, as `Instrument`s.

The data lives in `aitrapp/data/universe.csv` (its header comments state the
sources and what is approximate). Besides the instrument definition each row
carries a reference price, a typical intraday volatility and daily volume:
they seed the synthetic feed and are never market data.
"""

from __future__ import annotations

import csv
import difflib
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from importlib import resources
from pathlib import Path
from typing import Literal

from aitrapp._core import Instrument, Price
from aitrapp.calendar import NseCalendar, default_calendar
from aitrapp.exceptions import AitrappError, ConfigError

TokenSource = Literal["kite", "synthetic"]

# Kite's token low byte is the exchange segment; the ticker decodes prices by it.
_SEGMENT_BYTE = {"NSE": 1, "NFO": 2, "BSE": 4, "BFO": 5}
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
# NSE moved monthly index expiries from the last Thursday to the last Tuesday.
_TUESDAY_EXPIRY_FROM = date(2025, 9, 1)
_COLUMNS = (
    "exchange",
    "tradingsymbol",
    "instrument_token",
    "token_source",
    "segment",
    "tick_size",
    "lot_size",
    "freeze_qty",
    "ref_price",
    "daily_vol_pct",
    "avg_daily_volume",
    "default",
    "name",
)


@dataclass(frozen=True, slots=True, eq=False)
class UniverseEntry:
    instrument: Instrument
    token_source: TokenSource
    ref_price: float  # rupees, on the tick grid; seeds the synthetic feed
    daily_vol: float  # typical intraday 1-sigma move as a fraction (0.013 = 1.3%)
    avg_daily_volume: int  # units per day
    default: bool  # part of the default paper session
    name: str
    root: str  # the symbol without expiry: NIFTY for NIFTY26JANFUT, RELIANCE for RELIANCE

    @property
    def symbol(self) -> str:
        return self.instrument.tradingsymbol

    @property
    def token(self) -> int:
        return self.instrument.instrument_token


class Universe:
    """An ordered, lookup-friendly set of entries (symbols and tokens unique)."""

    def __init__(self, entries: Iterable[UniverseEntry]) -> None:
        self._entries = tuple(entries)
        self._by_symbol: dict[str, UniverseEntry] = {}
        self._by_token: dict[int, UniverseEntry] = {}
        for e in self._entries:
            for key in {e.symbol.upper(), e.root.upper()}:
                if key in self._by_symbol:
                    raise ConfigError(f"universe: symbol {key} appears twice")
                self._by_symbol[key] = e
            if e.token in self._by_token:
                raise ConfigError(
                    f"universe: instrument_token {e.token} is used by both "
                    f"{self._by_token[e.token].symbol} and {e.symbol}"
                )
            self._by_token[e.token] = e

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[UniverseEntry]:
        return iter(self._entries)

    def __contains__(self, symbol: object) -> bool:
        return isinstance(symbol, str) and symbol.upper() in self._by_symbol

    @property
    def entries(self) -> Sequence[UniverseEntry]:
        return self._entries

    @property
    def instruments(self) -> list[Instrument]:
        return [e.instrument for e in self._entries]

    @property
    def symbols(self) -> list[str]:
        return [e.symbol for e in self._entries]

    def by_symbol(self, symbol: str) -> UniverseEntry:
        """Entry by symbol or root, any case: 'RELIANCE', 'NIFTY', 'NIFTY26JANFUT'."""
        entry = self._by_symbol.get(symbol.strip().upper())
        if entry is None:
            close = difflib.get_close_matches(symbol.upper(), self._by_symbol, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(f"instruments: unknown symbol {symbol!r}{hint}")
        return entry

    def by_token(self, token: int) -> UniverseEntry:
        entry = self._by_token.get(token)
        if entry is None:
            raise ConfigError(f"instruments: unknown instrument_token {token}")
        return entry

    def select(self, symbols: Iterable[str]) -> Universe:
        """The named entries, in the order given; duplicates are dropped."""
        chosen: dict[int, UniverseEntry] = {}
        for s in symbols:
            e = self.by_symbol(s)
            chosen.setdefault(e.token, e)
        if not chosen:
            raise ConfigError("instruments: select at least one symbol")
        return Universe(chosen.values())

    def defaults(self) -> Universe:
        """The default paper-session selection (rows marked default=1)."""
        return Universe(e for e in self._entries if e.default)


# -- futures symbols ------------------------------------------------------------------
def monthly_expiry(year: int, month: int, calendar: NseCalendar | None = None) -> date:
    """Expiry of NSE monthly index futures: the last Tuesday of the month (the last
    Thursday before September 2025), moved to the previous trading day on a holiday."""
    cal = calendar or default_calendar()
    first_next = date(year + month // 12, month % 12 + 1, 1)
    last = first_next - timedelta(days=1)
    weekday = 3 if last < _TUESDAY_EXPIRY_FROM else 1  # Thursday or Tuesday
    day = last - timedelta(days=(last.weekday() - weekday) % 7)
    return cal.last_trading_day_on_or_before(day)


def near_month_expiry(on: date, calendar: NseCalendar | None = None) -> date:
    """The expiry of the near-month contract trading on `on` (it trades on its expiry day)."""
    expiry = monthly_expiry(on.year, on.month, calendar)
    if on > expiry:
        year, month = (on.year + 1, 1) if on.month == 12 else (on.year, on.month + 1)
        expiry = monthly_expiry(year, month, calendar)
    return expiry


def expiry_code(expiry: date) -> str:
    """Kite's monthly futures code: 2026-01-27 -> '26JAN' (as in NIFTY26JANFUT)."""
    return f"{expiry.year % 100:02d}{_MONTHS[expiry.month - 1]}"


# -- loading ---------------------------------------------------------------------------
def load_universe(
    path: Path | None = None, *, on: date | None = None, calendar: NseCalendar | None = None
) -> Universe:
    """Reads a universe CSV (default: the built-in one).

    ``on`` is the session date that fills ``{expiry}`` in futures symbols
    (default: today). Lines starting with '#' are comments. Errors name the
    file, line and column.
    """
    if path is None:
        text = resources.files("aitrapp").joinpath("data", "universe.csv").read_text()
        where = "universe.csv"
    else:
        try:
            text = path.read_text()
        except OSError as e:
            raise ConfigError(f"universe file {path}: {e.strerror or e}") from None
        where = path.name
    code = expiry_code(near_month_expiry(on or date.today(), calendar))
    return Universe(_parse(text, where, code))


def _parse(text: str, where: str, code: str) -> Iterator[UniverseEntry]:
    numbered = [
        (i, line)
        for i, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not numbered:
        raise ConfigError(f"{where}: no header line")
    reader = csv.reader(io.StringIO("\n".join(line for _, line in numbered)))
    header = [h.strip() for h in next(reader)]
    missing = [c for c in _COLUMNS if c not in header]
    if missing:
        raise ConfigError(
            f"{where} line {numbered[0][0]}: missing column(s) {', '.join(missing)}; "
            f"expected {', '.join(_COLUMNS)}"
        )
    col = {name: header.index(name) for name in _COLUMNS}
    for (lineno, _), row in zip(numbered[1:], reader, strict=True):
        if len(row) != len(header):
            raise ConfigError(
                f"{where} line {lineno}: {len(row)} fields, the header has {len(header)}"
            )
        yield _entry({k: row[i].strip() for k, i in col.items()}, f"{where} line {lineno}", code)


def _entry(row: dict[str, str], at: str, code: str) -> UniverseEntry:
    def num(key: str) -> float:
        try:
            value = float(row[key])
        except ValueError:
            raise ConfigError(f"{at}, column {key}: {row[key]!r} is not a number") from None
        if not value > 0:
            raise ConfigError(f"{at}, column {key}: must be positive, got {row[key]}")
        return value

    def integer(key: str) -> int:
        try:
            return int(row[key])
        except ValueError:
            raise ConfigError(f"{at}, column {key}: {row[key]!r} is not an integer") from None

    source = row["token_source"]
    if source not in ("kite", "synthetic"):
        raise ConfigError(f"{at}, column token_source: {source!r} is not 'kite' or 'synthetic'")
    exchange = row["exchange"]
    token = integer("instrument_token")
    seg_byte = _SEGMENT_BYTE.get(exchange)
    if seg_byte is None:
        raise ConfigError(
            f"{at}, column exchange: {exchange!r} is not one of {sorted(_SEGMENT_BYTE)}"
        )
    if not 0 < token < 2**32 or token & 0xFF != seg_byte:
        raise ConfigError(
            f"{at}, column instrument_token: {token} is not a Kite {exchange} token "
            f"(a u32 whose low byte is {seg_byte})"
        )
    template = row["tradingsymbol"]
    symbol = template.replace("{expiry}", code)
    root = template.split("{expiry}")[0] if "{expiry}" in template else template
    default = row["default"]
    if default not in ("0", "1"):
        raise ConfigError(f"{at}, column default: {default!r} is not 0 or 1")
    tick = _price(row, "tick_size", at)
    ref = _price(row, "ref_price", at)
    try:
        instrument = Instrument(
            exchange=exchange,
            tradingsymbol=symbol,
            instrument_token=token,
            segment=row["segment"],
            tick_size=tick,
            lot_size=integer("lot_size"),
            freeze_qty=integer("freeze_qty"),
        )
    except (AitrappError, OverflowError, ValueError) as e:
        raise ConfigError(f"{at}: {e}") from None
    if not ref.is_on_grid(tick):
        raise ConfigError(
            f"{at}, column ref_price: {ref} is not on the {tick} tick grid of {symbol}"
        )
    return UniverseEntry(
        instrument=instrument,
        token_source="kite" if source == "kite" else "synthetic",
        ref_price=ref.rupees,
        daily_vol=num("daily_vol_pct") / 100.0,
        avg_daily_volume=integer("avg_daily_volume"),
        default=default == "1",
        name=row["name"],
        root=root,
    )


def _price(row: dict[str, str], key: str, at: str) -> Price:
    try:
        value = Price.from_rupees(row[key])
    except AitrappError as e:
        raise ConfigError(f"{at}, column {key}: {e}") from None
    if value.paise <= 0:
        raise ConfigError(f"{at}, column {key}: must be positive, got {row[key]}")
    return value
