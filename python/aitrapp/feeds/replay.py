"""Replay your own data: CSV or Parquet files of ticks or of Kite-style candles.

Tick files have a ``timestamp`` column (ISO 8601 with a zone offset, or
epoch nanoseconds), ``tradingsymbol`` or ``instrument_token``, ``last_price``
and optionally ``last_qty``, ``volume`` (cumulative for the day), ``bid``,
``ask`` and ``oi``. Candle files have ``date`` (or ``timestamp``), ``open``,
``high``, ``low``, ``close`` and optionally ``volume`` and ``oi``, one file
per instrument (the file name is the symbol, e.g. ``RELIANCE.csv``) or with a
symbol column. A candle becomes four ticks inside its bar, O -> L -> H -> C
for a rising bar (close >= open) and O -> H -> L -> C for a falling one, with
the bar's volume split evenly.

Every problem is a `ReplayError` naming the file, the row and the column. CSV
rows are numbered like a spreadsheet (the header is row 1, so row N is line N
of the file); Parquet rows are numbered from 1. An optional ``source`` column
whose value is ``synthetic`` marks generated data: the feed is then labelled
SYNTHETIC.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
import pyarrow.compute as pc  # type: ignore[import-untyped, unused-ignore]
import pyarrow.csv as pacsv  # type: ignore[import-untyped, unused-ignore]
import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]

from aitrapp._core import Instrument
from aitrapp.calendar import (
    DAY_NS,
    IST_OFFSET_NS,
    datetime_to_ns,
    format_ist,
    ist_date,
    ist_ns,
)
from aitrapp.exceptions import ReplayError
from aitrapp.feeds.base import OI_ABSENT, ArrayFeed, TickBatch
from aitrapp.universe import Universe

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
U32 = npt.NDArray[np.uint32]

TIME_COLUMNS = ("timestamp", "exchange_timestamp", "date", "datetime")
SYMBOL_COLUMNS = ("tradingsymbol", "symbol")
CANDLE_COLUMNS = ("open", "high", "low", "close")
SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")

# Epoch-nanosecond values must fall in 1990..2100; anything smaller is
# probably seconds, milliseconds or microseconds.
_MIN_NS = 631_152_000 * 10**9
_MAX_NS = 4_102_444_800 * 10**9
_HOURS_FROM_NS = 9 * 3600 * 1_000_000_000
_HOURS_TO_NS = 16 * 3600 * 1_000_000_000
_MAX_RUPEES = 1e10  # far above any NSE price; keeps paise inside int64
_SESSION_NS = (6 * 3600 + 15 * 60) * 1_000_000_000  # 09:15-15:30
_TZ_ALIASES = {"IST": "+05:30", "UTC": "+00:00"}


# -- one file's table ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Table:
    path: Path
    table: Any  # pyarrow.Table, blank rows removed
    rows: I64  # the row number shown in messages, per table row
    columns: dict[str, str]  # normalised name -> the file's own column name

    def at(self, i: int, column: str | None = None) -> str:
        where = f"{self.path.name} row {int(self.rows[i])}"
        if column is not None:
            where += f", column {self.columns.get(column, column)}"
        return where

    def has(self, name: str) -> bool:
        return name in self.columns

    def raw(self, name: str) -> Any:
        col = self.table.column(self.columns[name])
        if pa.types.is_dictionary(col.type):
            col = col.cast(col.type.value_type)
        return col


def _read(path: Path) -> _Table:
    if not path.exists():
        raise ReplayError(f"{path}: no such file")
    name = path.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            table = pq.read_table(path)
            rows = np.arange(1, table.num_rows + 1, dtype=np.int64)
        elif name.endswith((".csv", ".csv.gz")):
            table = _read_csv(path)
            rows = np.arange(2, table.num_rows + 2, dtype=np.int64)
        else:
            raise ReplayError(f"{path.name}: unsupported file type; use {', '.join(SUFFIXES)}")
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as e:
        raise ReplayError(f"{path.name}: cannot read: {_first_line(e)}") from None
    columns: dict[str, str] = {}
    for col in table.column_names:
        key = str(col).strip().lower()
        if key in columns:
            raise ReplayError(f"{path.name}: column {key!r} appears twice")
        columns[key] = col
    # Blank lines come through as all-null rows: drop them, keep the numbering.
    if table.num_rows and table.num_columns:
        blank = np.ones(table.num_rows, dtype=bool)
        for col in table.columns:
            blank &= np.asarray(col.is_null(), dtype=bool)
        if blank.any():
            keep = ~blank
            table = table.filter(pa.array(keep))
            rows = rows[keep]
    return _Table(path, table, rows, columns)


_CSV_PARSE = pacsv.ParseOptions(ignore_empty_lines=False)  # keeps row numbers = lines


def _read_csv(path: Path) -> Any:
    try:
        return _csv(path, pacsv.ConvertOptions(strings_can_be_null=True))
    except pa.ArrowInvalid:
        # A value that does not fit the type inferred from the first block:
        # read every column as text and let the column checks find the row.
        names = pacsv.open_csv(path, parse_options=_CSV_PARSE).schema.names
        text = {n: pa.string() for n in names}
        return _csv(path, pacsv.ConvertOptions(strings_can_be_null=True, column_types=text))


def _csv(path: Path, convert: Any) -> Any:
    try:
        return pacsv.read_csv(path, parse_options=_CSV_PARSE, convert_options=convert)
    except pa.ArrowInvalid as e:
        if "CSV parse error" in str(e):
            _raise_field_count(path, str(e))
        raise


def _raise_field_count(path: Path, message: str) -> None:
    """Finds the CSV row whose field count differs from the header's."""
    opener = _open_text(path)
    with opener as f:
        reader = csv.reader(f)
        header = next(reader, [])
        for row in reader:
            if row and len(row) != len(header):
                raise ReplayError(
                    f"{path.name} row {reader.line_num}: {len(row)} fields, "
                    f"the header has {len(header)}"
                )
    raise ReplayError(f"{path.name}: {_first_line(message)}")


def _open_text(path: Path) -> io.TextIOWrapper:
    if path.name.lower().endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path), newline="")
    return open(path, newline="")


def _first_line(e: object) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


# -- column conversion -------------------------------------------------------------------
def _floats(t: _Table, name: str, *, required: bool) -> F64:
    """A numeric column as float64 (NaN where empty); names the first bad row."""
    if not t.has(name):
        if required:
            raise ReplayError(f"{t.path.name}: missing column {name!r}")
        return np.full(t.table.num_rows, np.nan)
    col = t.raw(name)
    if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)):
        if pa.types.is_null(col.type):
            col = col.cast(pa.float64())
        else:
            try:
                col = pc.cast(col, pa.float64())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                _raise_not_number(t, name, col)
    values = np.array(col.to_numpy(zero_copy_only=False), dtype=np.float64)  # writable copy
    if required:
        missing = np.flatnonzero(np.isnan(values))
        if len(missing):
            raise ReplayError(f"{t.at(int(missing[0]), name)}: missing value")
    return values


def _raise_not_number(t: _Table, name: str, col: Any) -> None:
    for i, v in enumerate(col.to_pylist()):
        if v is None:
            continue
        try:
            float(v)
        except (TypeError, ValueError):
            raise ReplayError(f"{t.at(i, name)}: {v!r} is not a number") from None
    raise ReplayError(f"{t.path.name}, column {name}: not numeric ({col.type})")


def _whole(t: _Table, name: str, values: F64, *, absent: int) -> I64:
    """Non-negative whole numbers; NaN (empty) becomes `absent`."""
    present = ~np.isnan(values)
    whole = np.isfinite(values) & (values >= 0) & (values < 2.0**62)
    whole &= np.where(whole, values, 0.0) == np.floor(np.where(whole, values, 0.0))
    bad = np.flatnonzero(present & ~whole)
    if len(bad):
        v = float(values[bad[0]])
        raise ReplayError(f"{t.at(int(bad[0]), name)}: {v:g} is not a whole number >= 0")
    out = np.full(len(values), absent, dtype=np.int64)
    out[present] = values[present].astype(np.int64)
    return out


def _prices(t: _Table, name: str, values: F64, tick_paise: I64 | None) -> None:
    """Positive, finite, whole paise and (optionally) on each row's tick grid."""
    present = ~np.isnan(values)
    sane = np.isfinite(values) & (values > 0) & (values < _MAX_RUPEES)
    bad = np.flatnonzero(present & ~sane)
    if len(bad):
        v = float(values[bad[0]])
        raise ReplayError(f"{t.at(int(bad[0]), name)}: {v!r} is not a positive price")
    scaled = np.where(present, values, 0.0) * 100.0
    paise = np.rint(scaled)
    frac = np.flatnonzero(np.abs(scaled - paise) > 1e-6 * np.maximum(1.0, paise))
    if len(frac):
        v = float(values[frac[0]])
        raise ReplayError(f"{t.at(int(frac[0]), name)}: {v!r} has more than two decimals")
    if tick_paise is not None:
        off = np.flatnonzero(present & (paise.astype(np.int64) % tick_paise != 0))
        if len(off):
            i = int(off[0])
            raise ReplayError(
                f"{t.at(i, name)}: {values[i]:.2f} is not on the tick grid of "
                f"{tick_paise[i] / 100:.2f}"
            )


def _timestamps(t: _Table, name: str, assume_tz: str | None) -> I64:
    """UTC epoch nanoseconds from timestamp, date, integer or text columns."""
    col = t.raw(name)
    typ = col.type
    if col.null_count:
        first = int(np.flatnonzero(np.asarray(col.is_null(), dtype=bool))[0])
        raise ReplayError(f"{t.at(first, name)}: missing timestamp")
    if pa.types.is_timestamp(typ):
        if typ.tz is None:
            col = _assume(t, name, col, assume_tz)
        ns = col.cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64())
        return np.asarray(ns.to_numpy(zero_copy_only=False), dtype=np.int64)
    if pa.types.is_date(typ):
        # A calendar date (daily candles): midnight IST of that day.
        days = np.asarray(col.cast(pa.date32()).cast(pa.int32()).to_numpy(zero_copy_only=False))
        return days.astype(np.int64) * DAY_NS - IST_OFFSET_NS
    if pa.types.is_integer(typ):
        ns = np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.int64)
        _check_epoch_ns(t, name, ns)
        return ns
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        return _text_timestamps(t, name, col, assume_tz)
    raise ReplayError(f"{t.path.name}, column {name}: cannot read timestamps of type {typ}")


def _assume(t: _Table, name: str, col: Any, assume_tz: str | None) -> Any:
    if assume_tz is None:
        raise ReplayError(
            f"{t.at(0, name)}: timestamps have no timezone; write them with an offset "
            "(e.g. 2026-01-05T09:15:00+05:30) or replay with assume_tz='IST'"
        )
    return pc.assume_timezone(col.cast(pa.timestamp("ns")), timezone=assume_tz)


def _check_epoch_ns(t: _Table, name: str, ns: I64) -> None:
    bad = np.flatnonzero((ns < _MIN_NS) | (ns > _MAX_NS))
    if len(bad):
        v = int(ns[bad[0]])
        unit = next(
            (u for u, scale in (("seconds", 9), ("milliseconds", 6), ("microseconds", 3))
             if _MIN_NS <= v * 10**scale <= _MAX_NS),
            None,
        )  # fmt: skip
        hint = f" (it looks like epoch {unit})" if unit else ""
        raise ReplayError(
            f"{t.at(int(bad[0]), name)}: {v} is not an epoch-nanosecond time "
            f"between 1990 and 2100{hint}"
        )


def _text_timestamps(t: _Table, name: str, col: Any, assume_tz: str | None) -> I64:
    try:
        parsed = pc.cast(col, pa.timestamp("ns", tz="UTC"))
    except pa.ArrowInvalid:
        parsed = None
    if parsed is None and assume_tz is not None:
        try:
            parsed = pc.assume_timezone(pc.cast(col, pa.timestamp("ns")), timezone=assume_tz)
        except pa.ArrowInvalid:
            parsed = None
    if parsed is not None:
        ns = parsed.cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64())
        return np.asarray(ns.to_numpy(zero_copy_only=False), dtype=np.int64)
    values = col.to_pylist()
    if all(str(v).strip().isdigit() for v in values):
        ns = np.array([int(v) for v in values], dtype=np.int64)
        _check_epoch_ns(t, name, ns)
        return ns
    # pyarrow refused the column: find the row, or convert what Python can read.
    out = np.empty(len(values), dtype=np.int64)
    aware_first: bool | None = None
    for i, v in enumerate(values):
        text = str(v).strip()
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            if text.isdigit():
                raise ReplayError(
                    f"{t.at(i, name)}: mixes epoch numbers and ISO 8601 text"
                ) from None
            raise ReplayError(
                f"{t.at(i, name)}: {text!r} is not an ISO 8601 timestamp "
                "(e.g. 2026-01-05T09:15:00+05:30) or epoch nanoseconds"
            ) from None
        aware = dt.tzinfo is not None
        if not aware and assume_tz is None:
            raise ReplayError(
                f"{t.at(i, name)}: {text!r} has no timezone; add an offset "
                "(e.g. +05:30) or replay with assume_tz='IST'"
            )
        if aware_first is None:
            aware_first = aware
        elif aware != aware_first:
            raise ReplayError(
                f"{t.at(i, name)}: {text!r} mixes timestamps with and without a zone offset"
            )
        if not aware:
            break  # naive text pyarrow could not read: no row-level fault found
        out[i] = datetime_to_ns(dt)
    else:
        return out
    raise ReplayError(f"{t.path.name}, column {name}: cannot parse the timestamps")


# -- instruments ------------------------------------------------------------------------
class _Resolver:
    """Symbols and tokens of the instruments a replay may contain."""

    def __init__(self, instruments: Universe | Iterable[Instrument]) -> None:
        if isinstance(instruments, Universe):
            self.universe: Universe | None = instruments
            insts = instruments.instruments
        else:
            self.universe = None
            insts = list(instruments)
        if not insts:
            raise ReplayError("replay needs the instruments it may contain (none given)")
        self.by_token = {i.instrument_token: i for i in insts}
        self.by_symbol = {i.tradingsymbol.upper(): i for i in insts}

    def symbol(self, text: str) -> Instrument | None:
        key = text.strip().upper()
        if ":" in key:  # Kite's "NSE:RELIANCE"
            exchange, _, key = key.partition(":")
            inst = self.by_symbol.get(key)
            return inst if inst is not None and inst.exchange == exchange else None
        inst = self.by_symbol.get(key)
        if inst is None and self.universe is not None and key in self.universe:
            inst = self.universe.by_symbol(key).instrument  # a futures root: NIFTY
        return inst


def _tokens(t: _Table, r: _Resolver, kind: str) -> U32:
    n = t.table.num_rows
    token: U32 | None = None
    if t.has("instrument_token"):
        raw = _floats(t, "instrument_token", required=True)
        ints = _whole(t, "instrument_token", raw, absent=0)
        known = np.fromiter(r.by_token, dtype=np.int64, count=len(r.by_token))
        unknown = np.flatnonzero(~np.isin(ints, known))
        if len(unknown):
            i = int(unknown[0])
            raise ReplayError(
                f"{t.at(i, 'instrument_token')}: unknown instrument_token {int(ints[i])}"
            )
        token = ints.astype(np.uint32)
    sym_col = next((c for c in SYMBOL_COLUMNS if t.has(c)), None)
    if sym_col is not None:
        col = t.raw(sym_col)
        if col.null_count:
            first = int(np.flatnonzero(np.asarray(col.is_null(), dtype=bool))[0])
            raise ReplayError(f"{t.at(first, sym_col)}: missing symbol")
        enc = pc.dictionary_encode(col.cast(pa.string()).combine_chunks())
        names = enc.dictionary.to_pylist()
        codes = np.asarray(enc.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
        mapped = np.zeros(len(names), dtype=np.uint32)
        for k, text in enumerate(names):
            inst = r.symbol(text)
            if inst is None:
                i = int(np.flatnonzero(codes == k)[0])
                raise ReplayError(f"{t.at(i, sym_col)}: unknown symbol {text!r}")
            mapped[k] = inst.instrument_token
        by_symbol = mapped[codes]
        if token is not None:
            clash = np.flatnonzero(by_symbol != token)
            if len(clash):
                i = int(clash[0])
                raise ReplayError(
                    f"{t.at(i, sym_col)}: symbol {names[codes[i]]!r} does not match "
                    f"instrument_token {int(token[i])}"
                )
        token = by_symbol
    if token is None:
        stem = t.path.name.split(".")[0]
        inst = r.symbol(stem)
        if inst is None:
            raise ReplayError(
                f"{t.path.name}: no tradingsymbol or instrument_token column, and the file "
                f"name {stem!r} is not a known symbol (name {kind} files after the symbol, "
                "e.g. RELIANCE.csv, or add a tradingsymbol column)"
            )
        token = np.full(n, inst.instrument_token, dtype=np.uint32)
    return token


def _tick_paise(tokens: U32, r: _Resolver) -> I64:
    table = {tok: inst.tick_paise for tok, inst in r.by_token.items()}
    uniq, inv = np.unique(tokens, return_inverse=True)
    return np.array([table[int(u)] for u in uniq], dtype=np.int64)[inv]


def _check_order(
    t: _Table, column: str, ts: I64, tokens: U32, r: _Resolver, *, strict: bool
) -> None:
    """Each instrument's rows must move forward in time (strictly for candles)."""
    order = np.argsort(tokens, kind="stable")
    st, tk = ts[order], tokens[order]
    same = tk[1:] == tk[:-1]
    back = same & ((st[1:] <= st[:-1]) if strict else (st[1:] < st[:-1]))
    bad = np.flatnonzero(back)
    if not len(bad):
        return
    # Report the earliest offending row of the file.
    k = int(bad[np.argmin(order[bad + 1])])
    i, prev = int(order[k + 1]), int(order[k])
    symbol = r.by_token[int(tokens[i])].tradingsymbol
    what = "is not after" if strict else "is earlier than"
    raise ReplayError(
        f"{t.at(i, column)}: {format_ist(int(ts[i]))} {what} the previous {symbol} row "
        f"(row {int(t.rows[prev])}, {format_ist(int(ts[prev]))}); "
        "rows of one instrument must be in time order"
    )


def _is_synthetic(t: _Table) -> bool:
    if not t.has("source"):
        return False
    values = pc.utf8_lower(pc.utf8_trim_whitespace(t.raw("source").cast(pa.string())))
    return bool(pc.any(pc.equal(values, "synthetic")).as_py())


# -- ticks and candles ------------------------------------------------------------------
def _load_ticks(t: _Table, r: _Resolver, time_col: str, opts: _Options) -> TickBatch:
    ts = _timestamps(t, time_col, opts.assume_tz)
    tokens = _tokens(t, r, "tick")
    grid = _tick_paise(tokens, r) if opts.check_tick_grid else None
    last = _floats(t, "last_price", required=True)
    _prices(t, "last_price", last, grid)
    qty = _whole(t, "last_qty", _floats(t, "last_qty", required=False), absent=0)
    vol_raw = _floats(t, "volume", required=False)
    volume = _whole(t, "volume", vol_raw, absent=-1)
    oi = _whole(t, "oi", _floats(t, "oi", required=False), absent=OI_ABSENT)
    bid = _floats(t, "bid", required=False)
    ask = _floats(t, "ask", required=False)
    # Kite reports an empty side of the book as price 0.
    bid[bid == 0] = np.nan
    ask[ask == 0] = np.nan
    _prices(t, "bid", bid, grid)
    _prices(t, "ask", ask, grid)
    crossed = np.flatnonzero(bid > ask)
    if len(crossed):
        i = int(crossed[0])
        raise ReplayError(f"{t.at(i, 'bid')}: bid {bid[i]:.2f} is above ask {ask[i]:.2f}")
    _check_order(t, time_col, ts, tokens, r, strict=False)
    if t.has("volume"):
        missing = np.flatnonzero(volume < 0)
        if len(missing):
            raise ReplayError(f"{t.at(int(missing[0]), 'volume')}: missing value")
        _check_volume(t, ts, tokens, volume, r)
    return TickBatch(
        token=tokens,
        ts_ns=ts,
        last_price=last,
        last_qty=qty,
        volume=volume,  # -1 until derived from last_qty (see _fill_volume)
        bid=bid,
        ask=ask,
        oi=oi,
        synthetic=_is_synthetic(t),
    )


def _check_volume(t: _Table, ts: I64, tokens: U32, volume: I64, r: _Resolver) -> None:
    """Cumulative volume never falls within an instrument's day."""
    day = (ts + IST_OFFSET_NS) // DAY_NS
    order = np.lexsort((np.arange(len(ts)), day, tokens))
    v, tk, dy = volume[order], tokens[order], day[order]
    same = (tk[1:] == tk[:-1]) & (dy[1:] == dy[:-1])
    bad = np.flatnonzero(same & (v[1:] < v[:-1]))
    if len(bad):
        k = int(bad[np.argmin(order[bad + 1])])
        i, prev = int(order[k + 1]), int(order[k])
        symbol = r.by_token[int(tokens[i])].tradingsymbol
        raise ReplayError(
            f"{t.at(i, 'volume')}: cumulative volume of {symbol} fell from "
            f"{int(volume[prev])} (row {int(t.rows[prev])}) to {int(volume[i])}"
        )


def _load_candles(t: _Table, r: _Resolver, time_col: str, opts: _Options) -> TickBatch:
    ts = _timestamps(t, time_col, opts.assume_tz)
    tokens = _tokens(t, r, "candle")
    grid = _tick_paise(tokens, r) if opts.check_tick_grid else None
    o, h, lo, c = (_floats(t, k, required=True) for k in CANDLE_COLUMNS)
    for name, values in zip(CANDLE_COLUMNS, (o, h, lo, c), strict=True):
        _prices(t, name, values, grid)
    bad_h = np.flatnonzero(h < np.maximum.reduce([o, c, lo]))
    if len(bad_h):
        i = int(bad_h[0])
        raise ReplayError(
            f"{t.at(i, 'high')}: high {h[i]:.2f} is below open/low/close "
            f"({o[i]:.2f}/{lo[i]:.2f}/{c[i]:.2f})"
        )
    bad_l = np.flatnonzero(lo > np.minimum(o, c))
    if len(bad_l):
        i = int(bad_l[0])
        raise ReplayError(
            f"{t.at(i, 'low')}: low {lo[i]:.2f} is above open/close ({o[i]:.2f}/{c[i]:.2f})"
        )
    vol = _whole(t, "volume", _floats(t, "volume", required=False), absent=0)
    oi = _whole(t, "oi", _floats(t, "oi", required=False), absent=OI_ABSENT)
    _check_order(t, time_col, ts, tokens, r, strict=True)
    bar_ns = _bar_length(t, ts, tokens, opts.candle_interval_s)
    daily = bar_ns >= DAY_NS

    # Four ticks per bar: the extremes in the order the bar's direction implies.
    rising = c >= o
    path = np.stack([o, np.where(rising, lo, h), np.where(rising, h, lo), c], axis=1)
    if daily:
        start = _session_open(ts)
        step = _SESSION_NS // 4
    else:
        start, step = ts, bar_ns // 4
    times = start[:, None] + np.arange(4, dtype=np.int64)[None, :] * step
    q = vol // 4
    parts = np.stack([q, q, q, vol - 3 * q], axis=1)
    n = len(ts)
    return TickBatch(
        token=np.repeat(tokens, 4),
        ts_ns=times.reshape(-1),
        last_price=path.reshape(-1),
        last_qty=parts.reshape(-1),
        volume=np.full(4 * n, -1, dtype=np.int64),  # cumulated per day after the merge
        bid=np.full(4 * n, np.nan),
        ask=np.full(4 * n, np.nan),
        oi=np.repeat(oi, 4),
        synthetic=_is_synthetic(t),
    )


def _bar_length(t: _Table, ts: I64, tokens: U32, given_s: int | None) -> int:
    """The candle interval: given, or the smallest gap between an instrument's bars."""
    if given_s is not None:
        return given_s * 1_000_000_000
    order = np.lexsort((ts, tokens))
    st, tk = ts[order], tokens[order]
    gaps = np.diff(st)[tk[1:] == tk[:-1]]
    if not len(gaps):
        raise ReplayError(
            f"{t.path.name}: one candle per instrument, so the interval is unknown; "
            "pass candle_interval_s"
        )
    return int(gaps.min())


def _session_open(ts: I64) -> I64:
    """09:15 IST on each timestamp's IST date."""
    day = (ts + IST_OFFSET_NS) // DAY_NS
    return day * DAY_NS - IST_OFFSET_NS + (9 * 3600 + 15 * 60) * 1_000_000_000


def _fill_volume(batch: TickBatch) -> None:
    """Where a file gave no cumulative volume, cumulate last_qty per instrument and day."""
    need = batch.volume < 0
    if not need.any():
        return
    day = (batch.ts_ns + IST_OFFSET_NS) // DAY_NS
    order = np.lexsort((np.arange(len(batch)), day, batch.token))
    qty = np.where(need, batch.last_qty, 0)[order]
    total = np.cumsum(qty)
    key_tok, key_day = batch.token[order], day[order]
    start = np.ones(len(order), dtype=bool)
    start[1:] = (key_tok[1:] != key_tok[:-1]) | (key_day[1:] != key_day[:-1])
    base = np.maximum.accumulate(np.where(start, np.arange(len(order)), 0))
    before = np.where(base > 0, total[np.maximum(base - 1, 0)], 0)
    cum = total - before
    batch.volume[order[need[order]]] = cum[need[order]]


# -- the feed ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Options:
    assume_tz: str | None
    candle_interval_s: int | None
    check_tick_grid: bool


def expand_paths(paths: Sequence[Path | str]) -> list[Path]:
    """Files as given; a directory contributes its CSV/Parquet files, sorted by name."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.name.lower().endswith(SUFFIXES))
            if not found:
                raise ReplayError(f"{p}: no {', '.join(SUFFIXES)} files in this folder")
            out.extend(found)
        else:
            out.append(p)
    if not out:
        raise ReplayError("replay: no files given")
    return out


def load_file(
    path: Path,
    instruments: Universe | Iterable[Instrument],
    *,
    assume_tz: str | None = None,
    candle_interval_s: int | None = None,
    check_tick_grid: bool = True,
) -> TickBatch:
    """One file's ticks (candles already expanded), validated, in file order."""
    opts = _Options(_tz(assume_tz), candle_interval_s, check_tick_grid)
    return _load(path, _Resolver(instruments), opts)


def _load(path: Path, r: _Resolver, opts: _Options) -> TickBatch:
    t = _read(path)
    time_col = next((c for c in TIME_COLUMNS if t.has(c)), None)
    if time_col is None:
        raise ReplayError(
            f"{path.name}: no time column; expected one of {', '.join(TIME_COLUMNS)} "
            f"(found {', '.join(t.columns.values())})"
        )
    is_ticks = t.has("last_price")
    if is_ticks or all(t.has(c) for c in CANDLE_COLUMNS):
        if t.table.num_rows == 0:
            raise ReplayError(f"{path.name}: no data rows")
        batch = (_load_ticks if is_ticks else _load_candles)(t, r, time_col, opts)
        _check_market_hours(path, batch)
        return batch
    raise ReplayError(
        f"{path.name}: neither ticks (a last_price column) nor candles "
        f"(open, high, low, close); found {', '.join(t.columns.values())}"
    )


def _check_market_hours(path: Path, batch: TickBatch) -> None:
    """A file with no row inside NSE hours almost always has the wrong time zone."""
    of_day = (batch.ts_ns + IST_OFFSET_NS) % DAY_NS
    inside = (of_day >= _HOURS_FROM_NS) & (of_day < _HOURS_TO_NS)
    if not inside.any():
        raise ReplayError(
            f"{path.name}: no row falls inside NSE hours (09:00-16:00 IST); the first is at "
            f"{format_ist(int(batch.ts_ns[0]))}. Check the time zone: IST wall times need "
            "+05:30 (or assume_tz='IST')"
        )


def _tz(assume_tz: str | None) -> str | None:
    """'IST', '+05:30' or a zone name, checked once; errors name assume_tz."""
    if assume_tz is None:
        return None
    tz = _TZ_ALIASES.get(assume_tz.strip().upper(), assume_tz.strip())
    try:
        pc.assume_timezone(pa.array([0], pa.timestamp("s")), timezone=tz)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise ReplayError(
            f"assume_tz: {assume_tz!r} is not a time zone (use IST, +05:30 or Asia/Kolkata)"
        ) from None
    return tz


class ReplayFeed(ArrayFeed):
    """Replays files of ticks or candles, merged across instruments in time order.

    ``instruments`` are those the files may name (a `Universe` also resolves
    futures roots such as NIFTY); after `start()`, ``feed.instruments`` lists
    the ones the data holds. ``day`` keeps one IST date only (the paper
    session's); ``assume_tz`` ('IST', '+05:30', 'Asia/Kolkata') reads
    timestamps without an offset as that zone's wall time. Files may not
    overlap in time for one instrument.
    """

    def __init__(
        self,
        paths: Sequence[Path | str],
        *,
        instruments: Universe | Iterable[Instrument],
        day: date | None = None,
        assume_tz: str | None = None,
        candle_interval_s: int | None = None,
        check_tick_grid: bool = True,
        name: str | None = None,
    ) -> None:
        self.paths = expand_paths(paths)
        if candle_interval_s is not None and candle_interval_s < 4:
            raise ReplayError(f"candle_interval_s must be at least 4, got {candle_interval_s}")
        self._resolver = _Resolver(instruments)
        self._opts = _Options(_tz(assume_tz), candle_interval_s, check_tick_grid)
        self.day = day
        shown = ", ".join(p.name for p in self.paths[:3])
        more = f" and {len(self.paths) - 3} more" if len(self.paths) > 3 else ""
        super().__init__(
            name=name or f"replay of {shown}{more}",
            kind="replay",
            instruments=list(self._resolver.by_token.values()),
            synthetic=False,
        )

    @property
    def label(self) -> str:
        if self.is_synthetic:
            return f"SYNTHETIC DATA ({self.name})"
        return self.name

    def _load(self) -> tuple[TickBatch, tuple[int, int]]:
        parts = [_load(p, self._resolver, self._opts) for p in self.paths]
        self._check_overlap(parts)
        if self.day is not None:
            covered = _days_covered(parts)
            parts = [_on_day(b, self.day) for b in parts]
            if not any(len(b) for b in parts):
                raise ReplayError(
                    f"replay: no ticks on {self.day} (IST) in {self.name}; "
                    f"the files cover {covered}"
                )
        merged = TickBatch.merge([b for b in parts if len(b)])
        _fill_volume(merged)
        self._synthetic = any(b.synthetic for b in parts)
        used = set(np.unique(merged.token).tolist())
        self._instruments = tuple(i for i in self._instruments if i.instrument_token in used)
        return merged, (merged.first_ts_ns, merged.last_ts_ns)

    def _check_overlap(self, parts: list[TickBatch]) -> None:
        spans: dict[int, list[tuple[int, int, Path]]] = {}
        for path, b in zip(self.paths, parts, strict=True):
            for tok in np.unique(b.token).tolist():
                m = b.token == tok
                spans.setdefault(tok, []).append(
                    (int(b.ts_ns[m].min()), int(b.ts_ns[m].max()), path)
                )
        for tok, items in spans.items():
            items.sort(key=lambda s: (s[0], s[1]))
            for (_, end_a, pa_), (start_b, _, pb) in itertools.pairwise(items):
                if start_b < end_a:
                    symbol = self._resolver.by_token[tok].tradingsymbol
                    raise ReplayError(
                        f"replay: {symbol} appears in {pa_.name} and {pb.name} with overlapping "
                        f"times ({format_ist(start_b)} < {format_ist(end_a)})"
                    )


def _days_covered(parts: list[TickBatch]) -> str:
    firsts = [int(b.ts_ns.min()) for b in parts if len(b)]
    lasts = [int(b.ts_ns.max()) for b in parts if len(b)]
    if not firsts:
        return "no days"
    return f"{ist_date(min(firsts))}..{ist_date(max(lasts))}"


def _on_day(b: TickBatch, day: date) -> TickBatch:
    start = ist_ns(day, datetime.min.time())
    keep = (b.ts_ns >= start) & (b.ts_ns < start + DAY_NS)
    return b.take(np.flatnonzero(keep))


__all__ = ["ReplayFeed", "expand_paths", "load_file"]
