"""One trading day replayed on the kernel with no database: the research
path (``aitrapp backtest --no-db``, sweep tasks). The figures are the ones a
persisted session gets: the same kernel, the same charges."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, time
from decimal import Decimal
from typing import Any

from aitrapp._core import Instrument, Kernel
from aitrapp.calendar import ist_date, ist_ns
from aitrapp.charges import ChargeSchedule, ExecutedOrder, charge_kind
from aitrapp.config import EngineConfig
from aitrapp.feeds.base import TickBatch
from aitrapp.kernel.events import EventBatch, extend, rows

CHUNK_ROWS = 65_536
# Time runs on to the close after the last tick, so every bracket squares off.
CLOSE = time(15, 30)

_PAISE = Decimal(100)


@dataclass(frozen=True, slots=True)
class KernelTrade:
    plan_id: str
    strategy: str
    exchange: str
    tradingsymbol: str
    side: str
    qty: int
    opened_ns: int
    closed_ns: int
    entry_price: Decimal
    exit_price: Decimal
    planned_entry: Decimal
    planned_stop: Decimal
    planned_risk: Decimal
    exit_reason: str
    gross: Decimal
    charges: Decimal
    net: Decimal
    double_exit: bool
    race: bool

    @property
    def loss_over_risk(self) -> float | None:
        """Net loss as a multiple of the planned risk (None for a win or no risk)."""
        if self.net >= 0 or self.planned_risk <= 0:
            return None
        return float(-self.net / self.planned_risk)


@dataclass(slots=True)
class KernelDay:
    day: date
    events: EventBatch
    counters: dict[str, Any]
    tick_rejections: dict[str, int]
    trades: list[KernelTrade] = field(default_factory=list)

    @property
    def net(self) -> Decimal:
        return sum((t.net for t in self.trades), Decimal(0))


def _rupees(paise: float) -> Decimal:
    return (Decimal(str(paise)) / _PAISE).quantize(Decimal("0.0001"))


def _charges(
    fills: Iterable[Mapping[str, Any]],
    inst: Instrument,
    schedule: ChargeSchedule,
    day: date,
) -> Decimal:
    """Zerodha charges of one trade's executed orders, as one contract note."""
    per_order: dict[str, list[Any]] = {}
    for f in fills:
        o = per_order.setdefault(f["client_order_id"], [f["side"], 0, Decimal(0)])
        o[1] += f["qty"]
        o[2] += Decimal(f["qty"]) * Decimal(f["price"]) / _PAISE
    orders = [ExecutedOrder(side, qty, turnover) for side, qty, turnover in per_order.values()]
    if not orders:
        return Decimal(0)
    rates = schedule.rates_for(inst.exchange, charge_kind(inst.segment), day)
    return schedule.contract_note(rates, orders).total


def trades_of(
    events: EventBatch,
    instruments: Mapping[int, Instrument],
    schedule: ChargeSchedule,
    fills_by_plan: dict[str, list[dict[str, Any]]] | None = None,
) -> list[KernelTrade]:
    """The batch's trades with their charges. ``fills_by_plan`` carries the
    fills of plans still open across batches (the batch's fills are added;
    a booked plan's are removed)."""
    if fills_by_plan is None:
        fills_by_plan = defaultdict(list)
    for f in rows(events, "fills"):
        fills_by_plan.setdefault(f["plan_id"], []).append(f)
    out = []
    for t in rows(events, "trades"):
        inst = instruments[t["token"]]
        gross = Decimal(t["gross_paise"]) / _PAISE
        day = ist_date(t["closed_ns"])
        charges = _charges(fills_by_plan.pop(t["plan_id"], []), inst, schedule, day)
        out.append(
            KernelTrade(
                plan_id=t["plan_id"],
                strategy=t["strategy"],
                exchange=inst.exchange,
                tradingsymbol=inst.tradingsymbol,
                side=t["side"],
                qty=t["qty"],
                opened_ns=t["opened_ns"],
                closed_ns=t["closed_ns"],
                entry_price=_rupees(t["entry_avg"]),
                exit_price=_rupees(t["exit_avg"]),
                planned_entry=_rupees(t["planned_entry"]),
                planned_stop=_rupees(t["planned_stop"]),
                planned_risk=_rupees(t["planned_risk_paise"]),
                exit_reason=t["exit_reason"],
                gross=gross,
                charges=charges,
                net=gross - charges,
                double_exit=t["double_exit"],
                race=t["race"],
            )
        )
    return out


def replay_day(
    ticks: TickBatch,
    instruments: list[Instrument],
    config: EngineConfig,
    *,
    venue: Mapping[str, Any] | None = None,
    bracket: Mapping[str, Any] | None = None,
    charges: ChargeSchedule | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> KernelDay:
    """Replays one IST day of ticks (time-ordered) on a fresh kernel.

    ``venue`` and ``bracket`` are the paper venue and bracket settings (the
    kernel refuses unknown keys, naming them). After the last tick, time runs
    on to 15:30 IST so entry timeouts and the square-off happen.
    """
    if len(ticks) == 0:
        raise ValueError("replay_day: no ticks")
    kernel = Kernel(
        config.to_core_json(),
        instruments,
        json.dumps(dict(venue or {})),
        json.dumps(dict(bracket or {})),
    )
    events: EventBatch = {}
    for lo in range(0, len(ticks), chunk_rows):
        hi = min(lo + chunk_rows, len(ticks))
        extend(
            events,
            kernel.run(
                ticks.token[lo:hi],
                ticks.ts_ns[lo:hi],
                ticks.last_price[lo:hi],
                ticks.last_qty[lo:hi],
                ticks.volume[lo:hi],
                ticks.bid[lo:hi],
                ticks.ask[lo:hi],
                ticks.oi[lo:hi],
            ),
        )
    last_ns = int(ticks.ts_ns[-1])
    day = ist_date(last_ns)
    extend(events, kernel.finish(last_ns, max(last_ns, ist_ns(day, CLOSE))))
    by_token = {i.instrument_token: i for i in instruments}
    return KernelDay(
        day=day,
        events=events,
        counters=kernel.counters(),
        tick_rejections=kernel.tick_rejections(),
        trades=trades_of(events, by_token, charges or ChargeSchedule.default()),
    )
