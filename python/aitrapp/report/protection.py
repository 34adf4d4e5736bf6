"""Protection figures: did each bracket hold what its plan promised?

Pure (no database, no clock); the daily report, ``/state``, the burn-in and
``python -m aitrapp.research.protection_check`` all compute them here.

- **loss / planned risk**, over trades with a gross loss: the gross loss
  (before charges) over the decision's planned risk, so 1.0 is a stop-out
  exactly at the planned stop. Median, p95, worst, and the trades beyond
  :data:`BEYOND` (3x).
- Beyond 3x is split in two. *Gapped*: the exit was ``STOP_GAPPED`` (the
  price was already through the stop when the entry filled), or the ticks
  show that at the first price at or through the stop, the best exit there
  (the touch, less the venue's modelled slippage) already lost more than 3x:
  the market gapped past the stop between two consecutive ticks, and no
  stop could have done better (:func:`gapped_past_stop`). The rest are *not
  gapped*: a working stop should have held them near 1x. Without the ticks
  (the database) only the exit reason can tell, and the figures say so
  (``gaps_from_ticks``).
- **slippage against the plan**, positive = worse for the trade: the entry
  fill against the planned entry, and a stop exit (``STOP``,
  ``STOP_GAPPED``) against the planned stop or a ``TP`` exit against the
  planned target, in rupees (times the quantity) and in bps of the planned
  level.
- **exits by reason**, **double exits** (both exits filled) and how many
  were recorded **races** (the second fill came before our cancel could
  reach the venue), and **watchdog escalations** (a triggered stop not
  filled in time: ``STOP_FILL_TIMEOUT`` WARNING, then ``STOP_UNFILLED``
  CRITICAL).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from aitrapp.kernel.replay import KernelTrade

# The exit reasons every view lists, in this order (others follow, sorted).
EXIT_REASONS = ("TP", "STOP", "STOP_GAPPED", "UNPROTECTED", "EOD", "TIME", "FLATTEN")
STOP_EXITS = frozenset({"STOP", "STOP_GAPPED"})
WATCHDOG_CODES = ("STOP_FILL_TIMEOUT", "STOP_UNFILLED")
# A loss beyond this multiple of the planned risk means the stop did not hold.
BEYOND = 3.0
_TERMINAL_WITHOUT_TRADE = "CANCELLED"  # bracket state: the entry never filled


@dataclass(frozen=True, slots=True)
class TradeFacts:
    """One closed trade with its plan (prices in rupees, side of the entry)."""

    plan_id: str
    side: str
    qty: int
    exit_reason: str
    entry_price: float
    exit_price: float
    gross: float
    planned_entry: float
    planned_stop: float
    planned_risk: float
    planned_tp: float | None = None
    double_exit: bool = False
    race: bool = False
    # The first price at or through the stop was already beyond BEYOND x the
    # planned risk (from the ticks); None: the ticks were not looked at.
    gapped: bool | None = None

    @property
    def sign(self) -> int:
        return 1 if self.side == "BUY" else -1

    @property
    def loss_over_risk(self) -> float | None:
        """Gross loss over the planned risk (None for a gain or without a plan)."""
        if self.gross >= 0 or self.planned_risk <= 0:
            return None
        return -self.gross / self.planned_risk

    @property
    def entry_slippage(self) -> float:
        """Rupees per unit the entry filled worse than planned (negative: better)."""
        return self.sign * (self.entry_price - self.planned_entry)

    @property
    def exit_plan(self) -> float | None:
        """The price the plan meant this exit to happen at (stop or target), if any."""
        if self.exit_reason in STOP_EXITS:
            return self.planned_stop
        if self.exit_reason == "TP":
            return self.planned_tp
        return None

    @property
    def gapped_past_stop(self) -> bool:
        return self.exit_reason == "STOP_GAPPED" or self.gapped is True


@dataclass(frozen=True, slots=True)
class Slippage:
    """Slippage against the plan over the trades that had a planned price."""

    count: int
    rupees: float  # total, positive = worse
    median_bps: float | None
    p95_bps: float | None
    worst_bps: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "rupees": _round(self.rupees, 2),
            "median_bps": _round(self.median_bps),
            "p95_bps": _round(self.p95_bps),
            "worst_bps": _round(self.worst_bps),
        }


@dataclass(frozen=True, slots=True)
class Protection:
    trades: int
    exits: dict[str, int]  # every EXIT_REASONS key, then any other reason seen
    losses: int  # trades with a gross loss and a planned risk
    loss_risk_median: float | None
    loss_risk_p95: float | None
    loss_risk_worst: float | None
    worst_plan_id: str | None
    beyond: int  # losses beyond BEYOND x the planned risk
    beyond_gapped: int  # ... of which the data gapped past the stop
    entry_slippage: Slippage
    exit_slippage: Slippage
    double_exits: int
    races: int  # double exits that were recorded races
    watchdog: dict[str, int] | None  # alert code -> count; None: not recorded
    gaps_from_ticks: bool  # False: "gapped" knows only the exit reason STOP_GAPPED

    @property
    def beyond_not_gapped(self) -> int:
        return self.beyond - self.beyond_gapped

    @property
    def unprotected(self) -> int:
        return self.exits.get("UNPROTECTED", 0)

    @property
    def unprotected_share(self) -> float | None:
        return self.unprotected / self.trades if self.trades else None

    @property
    def unraced_double_exits(self) -> int:
        return max(self.double_exits - self.races, 0)

    @property
    def watchdog_escalations(self) -> int | None:
        return None if self.watchdog is None else sum(self.watchdog.values())

    def exit_shares(self) -> dict[str, float]:
        n = self.trades
        return {k: (v / n if n else 0.0) for k, v in self.exits.items()}

    def to_json(self) -> dict[str, Any]:
        return {
            "trades": self.trades,
            "exits": dict(self.exits),
            "loss_over_risk": {
                "losses": self.losses,
                "median": _round(self.loss_risk_median),
                "p95": _round(self.loss_risk_p95),
                "worst": _round(self.loss_risk_worst),
                "worst_plan_id": self.worst_plan_id,
                "beyond": BEYOND,
                "beyond_count": self.beyond,
                "beyond_gapped": self.beyond_gapped,
                "beyond_not_gapped": self.beyond_not_gapped,
                "gaps_from_ticks": self.gaps_from_ticks,
            },
            "slippage": {
                "entry": self.entry_slippage.to_json(),
                "exit": self.exit_slippage.to_json(),
            },
            "double_exits": self.double_exits,
            "races": self.races,
            "unraced_double_exits": self.unraced_double_exits,
            "unprotected_share": _round(self.unprotected_share, 4),
            "watchdog_escalations": self.watchdog_escalations,
            "watchdog": None if self.watchdog is None else dict(self.watchdog),
        }


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits) + 0.0  # never -0.0


def _slippage(per_unit: Sequence[float], qty: Sequence[int], planned: Sequence[float]) -> Slippage:
    if not per_unit:
        return Slippage(0, 0.0, None, None, None)
    units = np.asarray(per_unit, dtype=np.float64)
    bps = units / np.asarray(planned, dtype=np.float64) * 1e4
    return Slippage(
        count=len(units),
        rupees=float(np.sum(units * np.asarray(qty, dtype=np.float64))),
        median_bps=float(np.median(bps)),
        p95_bps=float(np.percentile(bps, 95)),
        worst_bps=float(np.max(bps)),
    )


def summarize(
    trades: Iterable[TradeFacts],
    *,
    watchdog: Mapping[str, int] | None = None,
    races_recorded: int | None = None,
    untraded_double_exits: int = 0,
) -> Protection:
    """The figures over ``trades``.

    ``races_recorded``: the count of races when the trades do not carry the
    flag themselves (the database records the kernel's count in the session
    summary); otherwise the trades' own ``race`` flags count.
    ``untraded_double_exits``: double exits of plans that booked no trade.
    """
    facts = list(trades)
    exits = dict.fromkeys(EXIT_REASONS, 0)
    extra = Counter(t.exit_reason for t in facts if t.exit_reason not in exits)
    for t in facts:
        if t.exit_reason in exits:
            exits[t.exit_reason] += 1
    exits.update(sorted(extra.items()))

    losing = [(r, t) for t in facts if (r := t.loss_over_risk) is not None]
    ratios = np.asarray([r for r, _ in losing], dtype=np.float64)
    worst_i = int(np.argmax(ratios)) if len(ratios) else None
    beyond = [t for r, t in losing if r > BEYOND]

    entries = [t for t in facts if t.planned_entry > 0]
    exited = [(t, p) for t in facts if (p := t.exit_plan) is not None and p > 0]
    double = sum(t.double_exit for t in facts) + untraded_double_exits
    races = sum(t.double_exit and t.race for t in facts)
    return Protection(
        trades=len(facts),
        exits=exits,
        losses=len(losing),
        loss_risk_median=float(np.median(ratios)) if len(ratios) else None,
        loss_risk_p95=float(np.percentile(ratios, 95)) if len(ratios) else None,
        loss_risk_worst=float(ratios[worst_i]) if worst_i is not None else None,
        worst_plan_id=losing[worst_i][1].plan_id if worst_i is not None else None,
        beyond=len(beyond),
        beyond_gapped=sum(t.gapped_past_stop for t in beyond),
        entry_slippage=_slippage(
            [t.entry_slippage for t in entries],
            [t.qty for t in entries],
            [t.planned_entry for t in entries],
        ),
        exit_slippage=_slippage(
            [t.sign * (p - t.exit_price) for t, p in exited],
            [t.qty for t, _ in exited],
            [p for _, p in exited],
        ),
        double_exits=double,
        races=min(races_recorded, double) if races_recorded is not None else races,
        watchdog=None if watchdog is None else {c: int(watchdog.get(c, 0)) for c in WATCHDOG_CODES},
        gaps_from_ticks=bool(facts) and all(t.gapped is not None for t in facts),
    )


def problems(
    p: Protection, *, max_unprotected_pct: float, max_unraced_double_exits: int
) -> list[str]:
    """Why the burn-in's ``protection`` criterion fails (empty: it passes)."""
    out = []
    if p.unraced_double_exits > max_unraced_double_exits:
        out.append(
            f"{p.unraced_double_exits} double exits outside recorded races "
            f"(> {max_unraced_double_exits}; {p.double_exits} double exits, {p.races} races)"
        )
    share = p.unprotected_share
    if share is not None and share * 100 > max_unprotected_pct:
        out.append(
            f"UNPROTECTED {p.unprotected} of {p.trades} trades = {share * 100:.1f} % "
            f"(> {max_unprotected_pct:g} %)"
        )
    return out


def headline(p: Protection) -> str:
    """One line for a criterion's detail or a log."""
    if not p.trades:
        return "no trades"
    med, p95, worst = p.loss_risk_median, p.loss_risk_p95, p.loss_risk_worst
    ratio = (
        f"loss/risk median {med:.2f}x, p95 {p95:.2f}x, worst {worst:.2f}x"
        if med is not None and p95 is not None and worst is not None
        else "no losses"
    )
    share = p.unprotected_share or 0.0
    return (
        f"{p.trades} trades, UNPROTECTED {p.unprotected} ({share * 100:.1f} %), "
        f"{p.double_exits} double exits ({p.races} races), {ratio}"
    )


# ---- from the ticks ----
def gapped_past_stop(
    prices: npt.NDArray[np.float64],
    *,
    side: str,
    entry_price: float,
    stop: float,
    bound_per_unit: float,
    exit_quotes: npt.NDArray[np.float64] | None = None,
    slippage_bps: float = 0.0,
    tick: float = 0.0,
    max_cost_per_unit: float | None = None,
) -> bool:
    """Whether the market jumped from the safe side of ``stop`` past the bound in one tick.

    ``prices``: the instrument's last prices from the tick the entry filled on
    to the exit. At the first one at or through the stop (a stop triggers on
    the last price), the best exit the market offered there, the bid for a
    long or the ask for a short (``exit_quotes``, NaN where absent: the last
    price) less the venue's modelled ``slippage_bps`` and half a ``tick`` of
    rounding, was already more than ``bound_per_unit`` against
    ``entry_price``: no stop, however fast, could have done better.

    ``max_cost_per_unit`` caps that allowance for slippage: a stop too tight
    for the modelled costs must not pass its costs off as a gap in the data.
    """
    p = np.asarray(prices, dtype=np.float64)
    through = np.flatnonzero(p <= stop if side == "BUY" else p >= stop)
    if not len(through):
        return False
    i = int(through[0])
    at = float(p[i])
    if exit_quotes is not None and np.isfinite(exit_quotes[i]):
        at = float(exit_quotes[i])
    cost = at * slippage_bps / 1e4 + tick / 2
    if max_cost_per_unit is not None:
        cost = min(cost, max_cost_per_unit)
    loss = entry_price - (at - cost) if side == "BUY" else (at + cost) - entry_price
    return loss > bound_per_unit


def facts_of(
    trade: KernelTrade, *, planned_tp: float | None, gapped: bool | None = None
) -> TradeFacts:
    """A kernel trade as :class:`TradeFacts`."""
    return TradeFacts(
        plan_id=trade.plan_id,
        side=trade.side,
        qty=trade.qty,
        exit_reason=trade.exit_reason,
        entry_price=float(trade.entry_price),
        exit_price=float(trade.exit_price),
        gross=float(trade.gross),
        planned_entry=float(trade.planned_entry),
        planned_stop=float(trade.planned_stop),
        planned_risk=float(trade.planned_risk),
        planned_tp=planned_tp,
        double_exit=trade.double_exit,
        race=trade.race,
        gapped=gapped,
    )


# ---- the running tally behind /state ----
def _rows(ev: Mapping[str, Mapping[str, list[Any]]], table: str) -> Iterable[dict[str, Any]]:
    cols = ev.get(table) or {}
    names = list(cols)
    for values in zip(*cols.values(), strict=True):
        yield dict(zip(names, values, strict=True))


@dataclass(slots=True)
class ProtectionTally:
    """Fed every event batch of a session's kernel; the figures so far, for ``/state``
    and the session summary. Holds the planned target of each open plan (O(open))
    and one small record per closed trade of the day."""

    _targets: dict[str, float] = field(default_factory=dict)
    _trades: list[TradeFacts] = field(default_factory=list)
    _watchdog: Counter[str] = field(default_factory=Counter)
    _cached: dict[str, Any] | None = None

    def absorb(
        self, ev: Mapping[str, Mapping[str, list[Any]]], trades: Sequence[KernelTrade]
    ) -> None:
        for d in _rows(ev, "decisions"):
            self._targets[d["plan_id"]] = d["tp"] / 100  # paise
        for t in trades:
            self._trades.append(facts_of(t, planned_tp=self._targets.pop(t.plan_id, None)))
        for tr in _rows(ev, "transitions"):
            if tr["to"] == _TERMINAL_WITHOUT_TRADE:
                self._targets.pop(tr["plan_id"], None)
        for a in _rows(ev, "alerts"):
            if a["code"] in WATCHDOG_CODES:
                self._watchdog[a["code"]] += 1
        self._cached = None

    @property
    def open_plans(self) -> int:
        """Plans whose target is kept: decided, not yet traded or cancelled."""
        return len(self._targets)

    def summary(self) -> Protection:
        return summarize(self._trades, watchdog=self._watchdog)

    def snapshot(self) -> dict[str, Any]:
        if self._cached is None:
            self._cached = self.summary().to_json()
        return self._cached


# ---- as text (terminal, HTML, burn-in check) ----
def _x(v: float | None) -> str:
    return "-" if v is None else f"{v + 0.0:.2f}x"


def _bps(s: Slippage) -> str:
    if not s.count:
        return "-"
    return (
        f"median {s.median_bps or 0.0:+.1f} bps, p95 {s.p95_bps or 0.0:+.1f} bps, worst "
        f"{s.worst_bps or 0.0:+.1f} bps; {s.rupees + 0.0:+,.2f} rupees over {s.count} trades"
    )


def describe(p: Protection) -> list[tuple[str, str]]:
    """The figures as (label, text) rows, shared by every renderer."""
    out = [(f"exit {reason}", f"{n} ({share * 100:.1f} %)")
           for (reason, n), share in zip(p.exits.items(), p.exit_shares().values(), strict=True)
           if n or reason in EXIT_REASONS]  # fmt: skip
    worst = f" (plan {p.worst_plan_id})" if p.worst_plan_id else ""
    out.append(
        (
            f"loss / planned risk ({p.losses} losing trades)",
            f"median {_x(p.loss_risk_median)}, p95 {_x(p.loss_risk_p95)}, "
            f"worst {_x(p.loss_risk_worst)}{worst}",
        )
    )
    how = "between two ticks" if p.gaps_from_ticks else "exit STOP_GAPPED only: no ticks here"
    out.append(
        (
            f"losses beyond {BEYOND:g}x planned risk",
            f"{p.beyond}: {p.beyond_gapped} gapped past the stop ({how}), "
            f"{p.beyond_not_gapped} not",
        )
    )
    out.append(("slippage vs plan: entry", _bps(p.entry_slippage)))
    out.append(("slippage vs plan: exit (stop, target)", _bps(p.exit_slippage)))
    out.append(
        (
            "double exits",
            f"{p.double_exits} ({p.races} recorded races, {p.unraced_double_exits} outside races)",
        )
    )
    esc = p.watchdog_escalations
    detail = ", ".join(f"{k} {v}" for k, v in (p.watchdog or {}).items())
    out.append(("watchdog escalations", "not recorded" if esc is None else f"{esc} ({detail})"))
    return out
