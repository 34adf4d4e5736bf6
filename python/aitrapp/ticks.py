"""The tick as Python sees it: what feeds produce and brokers match against."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Tick:
    """One market update for one instrument.

    Prices are rupees as the feed reports them (Kite: u32 paise / 100); the
    Rust core converts them to paise once, on intake. ``recv_ns`` is the
    monotonic clock (``time.perf_counter_ns``) when the tick entered the
    process: tick_to_decision latency is measured from it.
    """

    instrument_token: int
    ts_ns: int  # exchange timestamp, UTC nanoseconds
    last_price: float
    last_qty: int = 0
    volume: int = 0  # cumulative traded volume for the day
    bid: float | None = None
    ask: float | None = None
    oi: int | None = None
    recv_ns: int = 0
