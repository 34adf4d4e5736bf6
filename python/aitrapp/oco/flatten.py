"""Flatten: exits first, then clean-up.

The machine answers ``Flatten`` by cancelling every working order and exiting
at market whatever no stop covers; the part a stop covers exits only once
that stop's cancel is confirmed. At scale that is slow (cancel, wait, exit:
three requests per bracket, at Kite's 10 a second) and the position stays
open meanwhile. So the manager carries the machine's commands out in another
order, without changing what they achieve:

1. every working stop is turned into a market exit with *one* modify (SL-M
   or SL -> MARKET) where the broker takes it: the machine still believes it
   asked for a cancel, and the stop's fill then closes the position as a
   refused cancel would; where the broker refuses, the machine's own cancel
   goes out at once (and its market exit once the cancel is confirmed);
   market exits and entry cancels go out in the same first wave;
2. only then the take-profit cancels, the clean-up.

:func:`split_flatten` (pure) sorts one transition's commands into those
waves; :class:`FlattenReport` is what a flatten reports.

What the machine would need to do this itself: a ``Flatten`` variant that
asks for ``MODIFY stop order_type=MARKET`` instead of ``CANCEL stop`` and
counts the converted stop as the exit (its fill reason FLATTEN), with
take-profit cancels as a separate, later command batch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aitrapp._core import OcoBracket, OcoCommand, OcoOrder


@dataclass(frozen=True, slots=True)
class FlattenSplit:
    to_market: tuple[OcoCommand, ...] = ()  # stop cancels to carry out as a modify to MARKET
    now: tuple[OcoCommand, ...] = ()  # market exits, entry cancels, stops that stay cancels
    later: tuple[OcoCommand, ...] = ()  # take-profit cancels: after every exit is out

    def note(self) -> str:
        """One line for the transition record (its commands say CANCEL for these stops)."""
        if not self.to_market:
            return ""
        ids = ", ".join(c.client_order_id or "?" for c in self.to_market)
        return f"; flatten: {ids} turned into a market exit by modify (cancelled if refused)"


def _convertible(leg: OcoOrder | None, net: int) -> bool:
    """A working stop whose remaining quantity the broker confirmed and that does
    not exceed the open position: its market fill exits exactly its share."""
    if leg is None or leg.role != "STOP" or leg.status != "WORKING":
        return False
    remaining = leg.qty - leg.filled
    return leg.qty == leg.wanted_qty and 0 < remaining <= abs(net)


def split_flatten(
    commands: Iterable[OcoCommand], machine: OcoBracket, *, convert_stops: bool = True
) -> FlattenSplit:
    """Sorts the commands of a bracket's Flatten transition into waves (alerts dropped:
    the manager reports them on publishing)."""
    legs = {o.client_order_id: o for o in machine.orders()}
    net = machine.net_qty
    to_market: list[OcoCommand] = []
    exits: list[OcoCommand] = []
    cancels: list[OcoCommand] = []
    later: list[OcoCommand] = []
    for c in commands:
        if c.kind == "ALERT":
            continue
        leg = legs.get(c.client_order_id or "")
        if c.kind != "CANCEL":
            exits.append(c)  # market exits cover what no stop does: no double exit
        elif convert_stops and _convertible(leg, net):
            to_market.append(c)
        elif leg is not None and leg.role == "TAKE_PROFIT":
            later.append(c)
        else:
            cancels.append(c)
    return FlattenSplit(tuple(to_market), (*exits, *cancels), tuple(later))


@dataclass(frozen=True, slots=True)
class FlattenReport:
    """What one flatten did and when it got there (seconds from its start)."""

    brackets: int  # not terminal when the flatten started
    converted_stops: int  # stops turned into market exits by one modify
    market_exits: int  # market orders placed (uncovered quantity, refused conversions)
    cancels: int  # cancels sent (targets, entries, stops that could not be converted)
    flat_after_s: float | None  # every position flat (None: not within the timeout)
    clean_after_s: float | None  # nothing working any more (None: not within the timeout)

    @property
    def exits(self) -> int:
        return self.converted_stops + self.market_exits

    def as_dict(self) -> dict[str, object]:
        return {
            "brackets": self.brackets,
            "converted_stops": self.converted_stops,
            "market_exits": self.market_exits,
            "cancels": self.cancels,
            "flat_after_ms": _ms(self.flat_after_s),
            "clean_after_ms": _ms(self.clean_after_s),
        }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


__all__ = ["FlattenReport", "FlattenSplit", "split_flatten"]
