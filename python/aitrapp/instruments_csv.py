"""Your own instruments: a CSV in Kite's instrument dump format as a trading `Universe`.

The file has Kite's columns (``instrument_token, exchange_token,
tradingsymbol, name, last_price, expiry, strike, tick_size, lot_size,
instrument_type, segment, exchange``; the dump `aitrapp kite instruments`
caches is such a file) plus, optionally, a ``freeze_qty`` column. Freeze
quantities may instead come from the freeze table the Kite commands use
(CSV ``symbol,freeze_qty``); the column wins for its row.

Parsing is :func:`aitrapp.kite.instruments.parse_instruments_csv`; this
module only turns its rows into universe entries. Every error names the
file, the row (the header is row 1) and the column. A row that parses but
cannot be traded safely (no freeze quantity, a tick finer than a paisa) is
kept aside: choosing it names the row and what is missing, so a full Kite
dump can be used with ``--symbols`` without pricing every contract.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from aitrapp._core import Instrument
from aitrapp.exceptions import AitrappError, ConfigError, InstrumentError
from aitrapp.kite.instruments import KiteInstrument, load_freeze_table, parse_instruments_csv
from aitrapp.universe import Universe, UniverseEntry

# Columns a file of your own must have (the rest of Kite's are optional).
REQUIRED_COLUMNS = (
    "instrument_token",
    "tradingsymbol",
    "tick_size",
    "lot_size",
    "instrument_type",
    "segment",
    "exchange",
)
# Only the synthetic feed reads these: the price scale comes from last_price.
SYNTHETIC_DAILY_VOL = 0.013
SYNTHETIC_DAILY_VOLUME = 1_000_000


@dataclass(frozen=True, slots=True)
class _Unavailable:
    row: int
    reason: str


class FileUniverse(Universe):
    """A universe read from an instruments file; remembers where each symbol came from."""

    def __init__(
        self,
        entries: Iterable[UniverseEntry],
        *,
        path: Path,
        rows: Mapping[str, int],
        unavailable: Mapping[str, _Unavailable],
    ) -> None:
        super().__init__(entries)
        self.path = path
        self._rows = dict(rows)
        self._unavailable = dict(unavailable)

    def row_of(self, symbol: str) -> int | None:
        return self._rows.get(symbol.strip().upper())

    def by_symbol(self, symbol: str) -> UniverseEntry:
        missing = self._unavailable.get(symbol.strip().upper())
        if missing is not None and symbol.strip().upper() not in self:
            raise ConfigError(f"{self.path} row {missing.row}: {missing.reason}")
        try:
            return super().by_symbol(symbol)
        except ConfigError as exc:
            raise ConfigError(f"{self.path}: {exc}") from None

    def defaults(self) -> Universe:
        """Every tradable row (indices are carried by feeds, never traded)."""
        chosen = [e for e in self if e.instrument.segment != "IDX"]
        if not chosen:
            first = next(iter(self._unavailable.values()), None)
            why = f"; e.g. row {first.row}: {first.reason}" if first else ""
            raise ConfigError(f"{self.path}: no tradable instrument{why}")
        return Universe(chosen)

    def require_prices(self, symbols: Iterable[str]) -> None:
        """The synthetic feed starts each instrument at its last_price: it must be set."""
        for s in symbols:
            e = self.by_symbol(s)
            if e.ref_price <= 0:
                raise ConfigError(
                    f"{self.path} row {self.row_of(e.symbol)}, column last_price: the synthetic "
                    f"feed needs a positive price for {e.symbol} (got 0)"
                )


def load_instruments_file(path: Path, *, freeze_file: Path | None = None) -> FileUniverse:
    """Reads your instruments CSV (and the optional freeze table) into a universe."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"instruments file {path}: {exc.strerror or exc}") from None
    freeze = load_freeze_table(freeze_file) if freeze_file is not None else {}
    try:
        rows = parse_instruments_csv(text, freeze, source=str(path), required=REQUIRED_COLUMNS)
    except InstrumentError as exc:
        raise ConfigError(str(exc)) from None
    if not rows:
        raise ConfigError(f"{path}: no instrument rows")
    lines = _row_numbers(text)
    entries: list[UniverseEntry] = []
    where: dict[str, int] = {}
    tokens: dict[int, int] = {}
    unavailable: dict[str, _Unavailable] = {}
    for ki, row in zip(rows, lines, strict=True):
        at = f"{path} row {row}"
        key = ki.tradingsymbol.upper()
        if key in where or key in unavailable:
            first = where.get(key) or unavailable[key].row
            raise ConfigError(
                f"{at}, column tradingsymbol: {ki.tradingsymbol} already appears in row {first}"
            )
        if ki.instrument_token in tokens:
            raise ConfigError(
                f"{at}, column instrument_token: {ki.instrument_token} already appears in "
                f"row {tokens[ki.instrument_token]}"
            )
        tokens[ki.instrument_token] = row
        if not 0 < ki.instrument_token < 2**32:
            raise ConfigError(
                f"{at}, column instrument_token: {ki.instrument_token} is not a u32 token"
            )
        try:
            instrument = ki.to_instrument()
        except InstrumentError as exc:
            column = "tick_size" if ki.tick_paise is None else "freeze_qty"
            hint = (
                " (add a freeze_qty column, or pass the freeze table with --freeze)"
                if column == "freeze_qty"
                else ""
            )
            unavailable[key] = _Unavailable(row, f"column {column}: {exc}{hint}")
            continue
        except (AitrappError, OverflowError, ValueError) as exc:
            raise ConfigError(f"{at}: {exc}") from None
        where[key] = row
        entries.append(_entry(ki, instrument))
    return FileUniverse(entries, path=path, rows=where, unavailable=unavailable)


def _entry(ki: KiteInstrument, instrument: Instrument) -> UniverseEntry:
    # Only the synthetic feed reads the price (a seed, rounded onto the tick grid).
    tick = instrument.tick_paise
    paise = int(ki.last_price * 100 / tick + Decimal("0.5")) * tick if tick else 0
    return UniverseEntry(
        instrument=instrument,
        token_source="kite",
        ref_price=paise / 100,
        daily_vol=SYNTHETIC_DAILY_VOL,
        avg_daily_volume=SYNTHETIC_DAILY_VOLUME,
        default=instrument.segment != "IDX",
        name=ki.name,
        root=ki.tradingsymbol,  # no aliases: a dump holds many contracts of one underlying
    )


def _row_numbers(text: str) -> list[int]:
    """The spreadsheet row of each data row (quoted newlines make rows span lines)."""
    reader = csv.reader(io.StringIO(text))
    next(reader, None)
    out = []
    for fields in reader:
        if fields:
            out.append(reader.line_num)
    return out


def load_own_universe(
    instruments: Path | None, freeze_file: Path | None = None
) -> FileUniverse | None:
    """What ``--instruments FILE [--freeze-file F]`` select: your file, or None (built-in)."""
    if instruments is None:
        if freeze_file is not None:
            raise ConfigError("--freeze-file: only with --instruments FILE")
        return None
    return load_instruments_file(instruments, freeze_file=freeze_file)


__all__ = ["FileUniverse", "load_instruments_file", "load_own_universe"]
