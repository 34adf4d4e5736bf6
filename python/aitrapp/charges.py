"""Trading charges on NSE through Zerodha, computed from rates kept as data.

Rates live in ``aitrapp/data/charges.json`` as schedules with an
``effective_from`` date, so a rate change (the STT increase for F&O on
2026-04-01, a new NSE transaction-charge table) is a new row, not a code change,
and old trades keep being priced at the rates of their own trade date.

Rounding follows Zerodha's contract notes (the quantum per component is data
too): brokerage is computed per executed order and rounded to the paisa; STT
and stamp duty are computed on the contract note's totals per scrip and
rounded to the whole rupee; transaction charges, the SEBI fee and GST are
rounded to the paisa. Every rounding is ROUND_HALF_UP. Consequently the charges
of a round trip (``round_trip_charges``) can differ by a rupee from the sum of
its two orders priced alone (``compute_charges``): use the contract-note form
for a trade's net PnL.

Money is ``Decimal`` rupees throughout; floats are refused.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import cache
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import Literal

from aitrapp.exceptions import AitrappError

__all__ = [
    "ChargeBreakdown",
    "ChargeKind",
    "ChargeRates",
    "ChargeSchedule",
    "ChargesError",
    "ExecutedOrder",
    "charge_kind",
    "compute_charges",
    "contract_note_charges",
    "round_trip_charges",
]


class ChargesError(AitrappError):
    """Charges cannot be computed: bad input, an unknown segment, product or
    exchange, no schedule for the trade date, or malformed rate data. The
    message names the argument or the data key."""


ChargeKind = Literal["EQ_INTRADAY", "EQ_DELIVERY", "FUT", "OPT"]
_KINDS: tuple[ChargeKind, ...] = ("EQ_INTRADAY", "EQ_DELIVERY", "FUT", "OPT")
_COMPONENTS = ("brokerage", "stt", "exchange_txn", "sebi", "stamp", "gst")
# Kite names the F&O segments of an exchange separately; they share its charges.
_EXCHANGE_ALIASES = {"NFO": "NSE", "BFO": "BSE"}
_HUNDRED = Decimal(100)
_CRORE = Decimal(10_000_000)
_ZERO = Decimal(0)


def _q(value: Decimal, quantum: Decimal) -> Decimal:
    return value.quantize(quantum, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class ChargeRates:
    """One schedule: the rates for one exchange and kind from ``effective_from`` on.

    Percentages are percent (0.03 means 0.03 %). Brokerage is either
    ``brokerage_pct`` of an order's turnover capped at ``brokerage_cap``
    rupees, or ``brokerage_flat`` rupees per executed order.
    """

    exchange: str
    kind: ChargeKind
    effective_from: date
    brokerage_pct: Decimal | None
    brokerage_cap: Decimal | None
    brokerage_flat: Decimal | None
    stt_buy_pct: Decimal
    stt_sell_pct: Decimal
    exchange_txn_pct: Decimal
    sebi_per_crore: Decimal
    stamp_buy_pct: Decimal
    gst_pct: Decimal

    def brokerage_for(self, turnover: Decimal) -> Decimal:
        """Brokerage of one executed order with this turnover, before rounding."""
        if self.brokerage_flat is not None:
            return self.brokerage_flat
        assert self.brokerage_pct is not None and self.brokerage_cap is not None
        return min(turnover * self.brokerage_pct / _HUNDRED, self.brokerage_cap)


@dataclass(frozen=True, slots=True)
class ChargeBreakdown:
    """Charges in rupees, each component already rounded as on a contract note."""

    brokerage: Decimal
    stt: Decimal
    exchange_txn: Decimal
    sebi: Decimal
    stamp: Decimal
    gst: Decimal
    total: Decimal

    @staticmethod
    def zero() -> ChargeBreakdown:
        return ChargeBreakdown(_ZERO, _ZERO, _ZERO, _ZERO, _ZERO, _ZERO, _ZERO)

    def __add__(self, other: ChargeBreakdown) -> ChargeBreakdown:
        return ChargeBreakdown(
            brokerage=self.brokerage + other.brokerage,
            stt=self.stt + other.stt,
            exchange_txn=self.exchange_txn + other.exchange_txn,
            sebi=self.sebi + other.sebi,
            stamp=self.stamp + other.stamp,
            gst=self.gst + other.gst,
            total=self.total + other.total,
        )

    def as_dict(self) -> dict[str, str]:
        """Components as decimal strings (JSON-safe, exact)."""
        return {
            "brokerage": str(self.brokerage),
            "stt": str(self.stt),
            "exchange_txn": str(self.exchange_txn),
            "sebi": str(self.sebi),
            "stamp": str(self.stamp),
            "gst": str(self.gst),
            "total": str(self.total),
        }


def _money(value: object, name: str) -> Decimal:
    """A positive finite rupee amount from Decimal, int or str; floats are refused."""
    if isinstance(value, bool | float):
        raise ChargesError(
            f"{name} must be a Decimal, int or str of rupees, not {type(value).__name__} "
            "(floats must not decide money)"
        )
    if isinstance(value, Decimal):
        out = value
    elif isinstance(value, int | str):
        try:
            out = Decimal(value)
        except InvalidOperation:
            raise ChargesError(f"{name} is not a number: {value!r}") from None
    else:
        raise ChargesError(f"{name} must be a Decimal, int or str, not {type(value).__name__}")
    if not out.is_finite() or out <= 0:
        raise ChargesError(f"{name} must be a positive finite amount, got {value!r}")
    return out


def _quantity(value: object, name: str = "quantity") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ChargesError(f"{name} must be a positive int, got {value!r}")
    return value


def _side(value: object) -> Literal["BUY", "SELL"]:
    if value == "BUY":
        return "BUY"
    if value == "SELL":
        return "SELL"
    raise ChargesError(f"side must be 'BUY' or 'SELL', got {value!r}")


@dataclass(frozen=True, slots=True)
class ExecutedOrder:
    """One executed order of a contract note: its side, filled quantity and
    turnover (sum of quantity x price over its fills, in rupees)."""

    side: Literal["BUY", "SELL"]
    quantity: int
    turnover: Decimal

    def __post_init__(self) -> None:
        _side(self.side)
        _quantity(self.quantity)
        _money(self.turnover, "turnover")

    @staticmethod
    def at(side: str, quantity: int, price: Decimal | int | str) -> ExecutedOrder:
        """An order filled entirely at one price."""
        qty = _quantity(quantity)
        return ExecutedOrder(_side(side), qty, _money(price, "price") * qty)


def charge_kind(segment: str, product: str = "MIS") -> ChargeKind:
    """The charge schedule kind for an instrument segment and an order product."""
    if segment == "EQ":
        if product == "MIS":
            return "EQ_INTRADAY"
        if product == "CNC":
            return "EQ_DELIVERY"
        raise ChargesError(f"product {product!r} is not valid for EQ: expected MIS or CNC")
    if segment in ("FUT", "OPT"):
        if product in ("MIS", "NRML"):
            return "FUT" if segment == "FUT" else "OPT"
        raise ChargesError(f"product {product!r} is not valid for {segment}: expected MIS or NRML")
    if segment == "IDX":
        raise ChargesError("segment 'IDX' is an index: it cannot be traded and has no charges")
    raise ChargesError(f"unknown segment {segment!r}: expected EQ, FUT or OPT")


class ChargeSchedule:
    """All schedules, looked up by exchange, kind and trade date."""

    def __init__(self, rates: Iterable[ChargeRates], rounding: Mapping[str, Decimal]) -> None:
        missing = [c for c in _COMPONENTS if c not in rounding]
        if missing:
            raise ChargesError(f"rounding is missing {', '.join(missing)}")
        self.rounding: dict[str, Decimal] = {c: rounding[c] for c in _COMPONENTS}
        by_key: dict[tuple[str, str], list[ChargeRates]] = {}
        for r in rates:
            by_key.setdefault((r.exchange, r.kind), []).append(r)
        for (exchange, kind), rows in by_key.items():
            rows.sort(key=lambda r: r.effective_from)
            for a, b in pairwise(rows):
                if a.effective_from == b.effective_from:
                    raise ChargesError(
                        f"two schedules for {exchange} {kind} from {a.effective_from}"
                    )
        self._by_key = by_key

    @staticmethod
    @cache
    def default() -> ChargeSchedule:
        """The schedules shipped with the package (``aitrapp/data/charges.json``)."""
        text = resources.files("aitrapp").joinpath("data/charges.json").read_text("utf-8")
        return ChargeSchedule.from_json(json.loads(text), source="charges.json")

    @staticmethod
    def load(path: str | Path) -> ChargeSchedule:
        """Schedules from a JSON file shaped like the bundled ``charges.json``."""
        p = Path(path)
        try:
            data = json.loads(p.read_text("utf-8"))
        except (OSError, ValueError) as e:
            raise ChargesError(f"{p}: cannot read charge schedules: {e}") from None
        return ChargeSchedule.from_json(data, source=p.name)

    @staticmethod
    def from_json(data: object, *, source: str = "charges") -> ChargeSchedule:
        if not isinstance(data, dict):
            raise ChargesError(f"{source}: expected a JSON object at the top level")
        rounding_raw = data.get("rounding")
        if not isinstance(rounding_raw, dict):
            raise ChargesError(f"{source}: 'rounding' must be an object")
        rounding = {
            c: _rate(rounding_raw.get(c), f"{source}: rounding.{c}", positive=True)
            for c in _COMPONENTS
        }
        rows = data.get("schedules")
        if not isinstance(rows, list) or not rows:
            raise ChargesError(f"{source}: 'schedules' must be a non-empty list")
        rates = [_parse_schedule(row, f"{source}: schedules[{i}]") for i, row in enumerate(rows)]
        return ChargeSchedule(rates, rounding)

    def rates_for(self, exchange: str, kind: ChargeKind, trade_date: date) -> ChargeRates:
        """The schedule in force on ``trade_date`` (an IST calendar date)."""
        if not isinstance(trade_date, date):
            raise ChargesError(f"trade_date must be a datetime.date, got {trade_date!r}")
        ex = _EXCHANGE_ALIASES.get(exchange, exchange)
        rows = self._by_key.get((ex, kind))
        if not rows:
            raise ChargesError(f"no charge schedule for exchange {exchange!r} and kind {kind}")
        found: ChargeRates | None = None
        for r in rows:
            if r.effective_from <= trade_date:
                found = r
        if found is None:
            raise ChargesError(
                f"no {ex} {kind} charge schedule in force on {trade_date}: the earliest is "
                f"from {rows[0].effective_from} (add older rates to the schedule data)"
            )
        return found

    def contract_note(self, rates: ChargeRates, orders: Iterable[ExecutedOrder]) -> ChargeBreakdown:
        """Charges of the executed orders of one scrip on one contract note."""
        r = self.rounding
        brokerage = _ZERO
        buy = _ZERO
        sell = _ZERO
        n = 0
        for o in orders:
            n += 1
            brokerage += _q(rates.brokerage_for(o.turnover), r["brokerage"])
            if o.side == "BUY":
                buy += o.turnover
            else:
                sell += o.turnover
        if n == 0:
            return ChargeBreakdown.zero()
        turnover = buy + sell
        stt = _q((buy * rates.stt_buy_pct + sell * rates.stt_sell_pct) / _HUNDRED, r["stt"])
        txn = _q(turnover * rates.exchange_txn_pct / _HUNDRED, r["exchange_txn"])
        sebi = _q(turnover * rates.sebi_per_crore / _CRORE, r["sebi"])
        stamp = _q(buy * rates.stamp_buy_pct / _HUNDRED, r["stamp"])
        gst = _q((brokerage + txn + sebi) * rates.gst_pct / _HUNDRED, r["gst"])
        total = brokerage + stt + txn + sebi + stamp + gst
        return ChargeBreakdown(brokerage, stt, txn, sebi, stamp, gst, total)


def _rate(value: object, key: str, *, positive: bool = False) -> Decimal:
    if not isinstance(value, str):
        raise ChargesError(f'{key}: expected a decimal string such as "0.03", got {value!r}')
    try:
        out = Decimal(value)
    except InvalidOperation:
        raise ChargesError(f"{key}: {value!r} is not a decimal number") from None
    if not out.is_finite() or out < 0 or (positive and out == 0):
        raise ChargesError(f"{key}: {value!r} must be {'positive' if positive else '>= 0'}")
    return out


def _parse_schedule(row: object, key: str) -> ChargeRates:
    if not isinstance(row, dict):
        raise ChargesError(f"{key}: expected an object")
    known = {
        "exchange",
        "kind",
        "effective_from",
        "brokerage",
        "stt_buy_pct",
        "stt_sell_pct",
        "exchange_txn_pct",
        "sebi_per_crore",
        "stamp_buy_pct",
        "gst_pct",
    }
    unknown = sorted(set(row) - known)
    if unknown:
        raise ChargesError(f"{key}: unknown key(s) {', '.join(unknown)}")
    exchange = row.get("exchange")
    if not isinstance(exchange, str) or not exchange:
        raise ChargesError(f'{key}.exchange: expected an exchange name such as "NSE"')
    kind = row.get("kind")
    if kind not in _KINDS:
        raise ChargesError(f"{key}.kind: {kind!r} is not one of {', '.join(_KINDS)}")
    eff = row.get("effective_from")
    try:
        effective_from = date.fromisoformat(eff) if isinstance(eff, str) else None
    except ValueError:
        effective_from = None
    if effective_from is None:
        raise ChargesError(f"{key}.effective_from: expected a date YYYY-MM-DD, got {eff!r}")
    brokerage = row.get("brokerage")
    if not isinstance(brokerage, dict):
        raise ChargesError(f'{key}.brokerage: expected {{"pct", "cap"}} or {{"flat"}}')
    pct = cap = flat = None
    if set(brokerage) == {"flat"}:
        flat = _rate(brokerage["flat"], f"{key}.brokerage.flat")
    elif set(brokerage) == {"pct", "cap"}:
        pct = _rate(brokerage["pct"], f"{key}.brokerage.pct")
        cap = _rate(brokerage["cap"], f"{key}.brokerage.cap")
    else:
        raise ChargesError(
            f'{key}.brokerage: expected exactly {{"pct", "cap"}} or {{"flat"}}, '
            f"got keys {sorted(brokerage)}"
        )
    return ChargeRates(
        exchange=exchange,
        kind=kind,
        effective_from=effective_from,
        brokerage_pct=pct,
        brokerage_cap=cap,
        brokerage_flat=flat,
        stt_buy_pct=_rate(row.get("stt_buy_pct"), f"{key}.stt_buy_pct"),
        stt_sell_pct=_rate(row.get("stt_sell_pct"), f"{key}.stt_sell_pct"),
        exchange_txn_pct=_rate(row.get("exchange_txn_pct"), f"{key}.exchange_txn_pct"),
        sebi_per_crore=_rate(row.get("sebi_per_crore"), f"{key}.sebi_per_crore"),
        stamp_buy_pct=_rate(row.get("stamp_buy_pct"), f"{key}.stamp_buy_pct"),
        gst_pct=_rate(row.get("gst_pct"), f"{key}.gst_pct"),
    )


def contract_note_charges(
    segment: str,
    orders: Iterable[ExecutedOrder],
    trade_date: date,
    exchange: str = "NSE",
    *,
    product: str = "MIS",
    schedule: ChargeSchedule | None = None,
) -> ChargeBreakdown:
    """Charges of one scrip's executed orders on one trade date, as on a contract note
    (e.g. a trade's entry and all its exits)."""
    sched = schedule or ChargeSchedule.default()
    rates = sched.rates_for(exchange, charge_kind(segment, product), trade_date)
    return sched.contract_note(rates, orders)


def compute_charges(
    segment: str,
    side: str,
    quantity: int,
    price: Decimal | int | str,
    trade_date: date,
    exchange: str = "NSE",
    *,
    product: str = "MIS",
    schedule: ChargeSchedule | None = None,
) -> ChargeBreakdown:
    """Charges of one executed order filled at ``price`` (rupees), priced alone."""
    order = ExecutedOrder.at(side, quantity, price)
    return contract_note_charges(
        segment, [order], trade_date, exchange, product=product, schedule=schedule
    )


def round_trip_charges(
    segment: str,
    quantity: int,
    buy_price: Decimal | int | str,
    sell_price: Decimal | int | str,
    trade_date: date,
    exchange: str = "NSE",
    *,
    product: str = "MIS",
    schedule: ChargeSchedule | None = None,
) -> ChargeBreakdown:
    """Charges of a same-day round trip: one buy order and one sell order of ``quantity``."""
    orders = [
        ExecutedOrder.at("BUY", quantity, buy_price),
        ExecutedOrder.at("SELL", quantity, sell_price),
    ]
    return contract_note_charges(
        segment, orders, trade_date, exchange, product=product, schedule=schedule
    )
