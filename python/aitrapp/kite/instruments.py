"""Kite's instruments master: tick size, lot size and (where known) freeze quantity.

Kite publishes one CSV dump per exchange each morning (``GET
/instruments/{exchange}``) with the columns ``instrument_token,
exchange_token, tradingsymbol, name, last_price, expiry, strike, tick_size,
lot_size, instrument_type, segment, exchange``. It is cached on disk per
exchange and IST trading date, so a restart during the day neither refetches
the ~MBs nor sees a different universe.

Freeze quantities have no API. They come from a table the operator maintains
(:func:`load_freeze_table`: CSV ``symbol,freeze_qty``, keyed by the
underlying's ``name`` for F&O and the trading symbol for cash equity);
without an entry an instrument cannot become a tradable core
:class:`~aitrapp.Instrument`, so nothing trades with an unknown limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import os
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from aitrapp import Instrument
from aitrapp.exceptions import ConfigError, InstrumentError

COLUMNS = (
    "instrument_token",
    "exchange_token",
    "tradingsymbol",
    "name",
    "last_price",
    "expiry",
    "strike",
    "tick_size",
    "lot_size",
    "instrument_type",
    "segment",
    "exchange",
)
_REQUIRED = ("instrument_token", "tradingsymbol", "tick_size", "lot_size", "instrument_type")


@dataclass(frozen=True, slots=True)
class KiteInstrument:
    instrument_token: int
    exchange_token: int
    tradingsymbol: str
    name: str
    expiry: date | None
    strike: Decimal
    tick_size: Decimal  # rupees, exact
    lot_size: int
    instrument_type: str  # EQ, FUT, CE, PE
    segment: str  # NSE, NFO-FUT, NFO-OPT, INDICES, ...
    exchange: str
    freeze_qty: int | None = None
    last_price: Decimal = Decimal(0)  # rupees, as of the dump (0 when Kite has none)

    @property
    def key(self) -> str:
        return f"{self.exchange}:{self.tradingsymbol}"

    @property
    def freeze_key(self) -> str:
        """The freeze table's key: the underlying for F&O, the symbol for cash."""
        return freeze_key(self.instrument_type, self.name, self.tradingsymbol)

    @property
    def core_segment(self) -> str:
        """EQ, FUT, OPT or IDX: the segment the Rust core knows."""
        if self.segment == "INDICES":
            return "IDX"
        if self.instrument_type in ("CE", "PE"):
            return "OPT"
        if self.instrument_type == "FUT":
            return "FUT"
        return "EQ"

    @property
    def tick_paise(self) -> int | None:
        """Tick in whole paise; None for sub-paisa ticks (currency, some commodities)."""
        paise = self.tick_size * 100
        return int(paise) if paise == paise.to_integral_value() and paise > 0 else None

    def to_instrument(self) -> Instrument:
        """The core instrument; refuses what cannot be traded safely, naming the field.

        Indices have no tick, lot or freeze quantity in the dump (zeros): they
        get a nominal 0.05 tick and one-unit lot so a feed can carry them; the
        segment IDX is what keeps them from ever being traded.
        """
        if self.core_segment == "IDX":
            return Instrument(
                exchange=self.exchange,
                tradingsymbol=self.tradingsymbol,
                instrument_token=self.instrument_token,
                segment="IDX",
                tick_size=str(self.tick_size) if self.tick_paise else "0.05",
                lot_size=max(1, self.lot_size),
                freeze_qty=max(1, self.lot_size),
            )
        if self.tick_paise is None:
            raise InstrumentError(
                f"instrument {self.key}: tick_size {self.tick_size} is not a whole number of paise"
            )
        if self.freeze_qty is None:
            raise InstrumentError(
                f"instrument {self.key}: freeze_qty unknown: add "
                f"{self.freeze_key!r} to the freeze-quantity table"
            )
        return Instrument(
            exchange=self.exchange,
            tradingsymbol=self.tradingsymbol,
            instrument_token=self.instrument_token,
            segment=self.core_segment,
            tick_size=str(self.tick_size),
            lot_size=self.lot_size,
            freeze_qty=self.freeze_qty,
        )


def freeze_key(instrument_type: str, name: str, tradingsymbol: str) -> str:
    return name if instrument_type in ("FUT", "CE", "PE") and name else tradingsymbol


def _decimal(row: Mapping[str, str], key: str, at: str) -> Decimal:
    raw = (row.get(key) or "0").strip() or "0"
    try:
        value = Decimal(raw)
    except InvalidOperation as exc:
        raise InstrumentError(f"{at}, column {key}: not a number: {raw!r}") from exc
    if not value.is_finite():
        raise InstrumentError(f"{at}, column {key}: not finite: {raw!r}")
    return value


def _int(row: Mapping[str, str], key: str, at: str, *, default: int | None = None) -> int:
    raw = (row.get(key) or "").strip()
    if not raw and default is not None:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise InstrumentError(f"{at}, column {key}: not an integer: {raw!r}") from exc


def _freeze_column(row: Mapping[str, str], at: str) -> int | None:
    """The optional per-row ``freeze_qty`` column (empty: not known here)."""
    raw = (row.get("freeze_qty") or "").strip()
    if not raw:
        return None
    qty = _int(row, "freeze_qty", at)
    if qty <= 0:
        raise InstrumentError(f"{at}, column freeze_qty: must be positive, got {qty}")
    return qty


def _parse_row(row: Mapping[str, str], at: str, freeze: Mapping[str, int]) -> KiteInstrument:
    for key in _REQUIRED:
        if not (row.get(key) or "").strip():
            raise InstrumentError(f"{at}, column {key}: missing value")
    expiry_raw = (row.get("expiry") or "").strip()
    try:
        expiry = date.fromisoformat(expiry_raw) if expiry_raw else None
    except ValueError as exc:
        raise InstrumentError(f"{at}, column expiry: not YYYY-MM-DD: {expiry_raw!r}") from exc
    tick = _decimal(row, "tick_size", at)
    lot = _int(row, "lot_size", at)
    if tick < 0:
        raise InstrumentError(f"{at}, column tick_size: negative: {tick}")
    if lot < 0:
        raise InstrumentError(f"{at}, column lot_size: negative: {lot}")
    last = _decimal(row, "last_price", at)
    if last < 0:
        raise InstrumentError(f"{at}, column last_price: negative: {last}")
    tradingsymbol = row["tradingsymbol"].strip()
    name = (row.get("name") or "").strip()
    itype = row["instrument_type"].strip()
    key = freeze_key(itype, name, tradingsymbol)
    own = _freeze_column(row, at)
    return KiteInstrument(
        instrument_token=_int(row, "instrument_token", at),
        exchange_token=_int(row, "exchange_token", at, default=0),
        tradingsymbol=tradingsymbol,
        name=name,
        expiry=expiry,
        strike=_decimal(row, "strike", at),
        tick_size=tick,
        lot_size=lot,
        instrument_type=itype,
        segment=(row.get("segment") or "").strip(),
        exchange=(row.get("exchange") or "").strip(),
        freeze_qty=own if own is not None else freeze.get(key),
        last_price=last,
    )


def parse_instruments_csv(
    text: str,
    freeze: Mapping[str, int] | None = None,
    *,
    source: str = "instruments",
    required: Sequence[str] = _REQUIRED,
) -> list[KiteInstrument]:
    """Every row of a Kite instruments dump; errors name the source, row and column.

    Rows are numbered like a spreadsheet (the header is row 1). An optional
    ``freeze_qty`` column wins over the ``freeze`` table for its row.
    """
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in required if c not in (reader.fieldnames or ())]
    if missing:
        raise InstrumentError(
            f"{source}: missing column(s) {', '.join(missing)}; a Kite instrument dump has "
            f"{', '.join(COLUMNS)} (and optionally freeze_qty)"
        )
    table = freeze or {}
    return [_parse_row(row, f"{source} row {reader.line_num}", table) for row in reader]


def rows_to_csv(rows: Iterable[Mapping[str, Any]]) -> str:
    """Kite's CSV from ``KiteConnect.instruments()`` rows (what the cache stores)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        flat = {}
        for col in COLUMNS:
            value = row.get(col, "")
            if isinstance(value, (date, datetime)):
                value = value.isoformat()[:10]
            elif value is None:
                value = ""
            flat[col] = value
        writer.writerow(flat)
    return out.getvalue()


def load_freeze_table(path: Path | str) -> dict[str, int]:
    """``symbol,freeze_qty`` CSV -> {symbol: max units per order}."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"freeze table {p}: {exc.strerror}") from exc
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or {"symbol", "freeze_qty"} - set(reader.fieldnames):
        raise ConfigError(f"freeze table {p}: expected the columns symbol,freeze_qty")
    table: dict[str, int] = {}
    for line, row in enumerate(reader, start=2):
        symbol = (row.get("symbol") or "").strip()
        raw = (row.get("freeze_qty") or "").strip()
        if not symbol:
            raise ConfigError(f"freeze table {p} line {line}: empty symbol")
        try:
            qty = int(raw)
        except ValueError as exc:
            raise ConfigError(
                f"freeze table {p} line {line}: freeze_qty is not an integer: {raw!r}"
            ) from exc
        if qty <= 0:
            raise ConfigError(f"freeze table {p} line {line}: freeze_qty must be positive")
        table[symbol] = qty
    return table


class InstrumentsMaster:
    """Lookup by token or by ``EXCHANGE:TRADINGSYMBOL``."""

    def __init__(self, instruments: Iterable[KiteInstrument]) -> None:
        self._by_token: dict[int, KiteInstrument] = {}
        self._by_key: dict[str, KiteInstrument] = {}
        for inst in instruments:
            self._by_token[inst.instrument_token] = inst
            self._by_key[inst.key] = inst

    def __len__(self) -> int:
        return len(self._by_token)

    def __iter__(self) -> Iterator[KiteInstrument]:
        return iter(self._by_token.values())

    def __contains__(self, token: object) -> bool:
        return token in self._by_token

    def by_token(self, token: int) -> KiteInstrument:
        try:
            return self._by_token[token]
        except KeyError:
            raise InstrumentError(f"instrument_token {token} is not in the master") from None

    def by_symbol(self, key: str) -> KiteInstrument:
        """``key`` is ``EXCHANGE:TRADINGSYMBOL``, e.g. ``NSE:RELIANCE``."""
        try:
            return self._by_key[key]
        except KeyError:
            raise InstrumentError(f"instrument {key!r} is not in the master") from None

    def instrument(self, token: int) -> Instrument:
        return self.by_token(token).to_instrument()

    def instruments(self, tokens: Iterable[int]) -> dict[int, Instrument]:
        return {t: self.instrument(t) for t in tokens}

    def tokens_for(self, keys: Iterable[str]) -> list[int]:
        """Tokens for a configured universe of ``EXCHANGE:TRADINGSYMBOL`` keys."""
        return [self.by_symbol(k).instrument_token for k in keys]


def cache_path(cache_dir: Path, exchange: str, day: date) -> Path:
    return cache_dir / f"instruments-{exchange}-{day.isoformat()}.csv"


def _read_cache(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def _store(path: Path, text: str) -> None:
    """Write today's dump atomically and drop the exchange's older ones."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    exchange = path.name.split("-")[1]
    for old in path.parent.glob(f"instruments-{exchange}-*.csv"):
        if old != path:
            with contextlib.suppress(FileNotFoundError):
                old.unlink()


async def load_instruments(
    fetch: Callable[[str], Awaitable[str]],
    *,
    exchanges: Sequence[str],
    cache_dir: Path | str,
    day: date,
    freeze: Mapping[str, int] | None = None,
    refresh: bool = False,
) -> InstrumentsMaster:
    """The master for ``exchanges``, from today's cache or else from ``fetch(exchange)``.

    ``fetch`` returns Kite's CSV text. ``day`` is the IST trading date (the
    caller reads the clock). Older cache files of an exchange are removed
    once today's is written. File work runs in a thread: the loop never blocks.
    """
    directory = Path(cache_dir)
    rows: list[KiteInstrument] = []
    for exchange in exchanges:
        if not exchange.isalnum():
            raise ConfigError(f"exchanges: {exchange!r} is not an exchange code")
        path = cache_path(directory, exchange, day)
        text = None if refresh else await asyncio.to_thread(_read_cache, path)
        if text is not None:
            rows.extend(parse_instruments_csv(text, freeze))
            continue
        text = await fetch(exchange)
        rows.extend(parse_instruments_csv(text, freeze))  # parsed first: never cache junk
        await asyncio.to_thread(_store, path, text)
    return InstrumentsMaster(rows)
