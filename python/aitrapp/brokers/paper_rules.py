"""Fill rules of the paper broker, as pure functions on integer paise.

One function per decision, so each rule is stated (and tested) once:

- the *touch* an order trades against is the best ask for a buy and the best
  bid for a sell; without a sane two-sided quote (absent, NaN, crossed) the
  last price stands in for it;
- a MARKET order (and a triggered SL-M) fills at the touch plus slippage,
  never beyond its market-protection price; when the touch itself is beyond
  that price it does not fill and rests as a limit at it, as Kite's market
  protection does;
- a LIMIT order (and a triggered SL) fills when the touch is at or through the
  limit, at the touch (the limit or better: a market that gapped through the
  limit fills at the gap price); an order already resting also fills at the
  limit when trades print through it while the touch is not;
- with a participation model one fill takes at most a share of the tick's
  traded quantity, in whole lots.
"""

from __future__ import annotations

import math

PPM = 1_000_000  # parts per million: 1 bp = 100 ppm, 1 % = 10,000 ppm


def to_paise(rupees: float) -> int:
    """A feed price (rupees, float) in paise; the feed's prices sit on the paisa grid."""
    return round(rupees * 100)


def is_price(x: float | None) -> bool:
    """A usable price: present, finite and positive (NaN and 0 are not)."""
    return x is not None and 0.0 < x < math.inf


def pct_to_ppm(pct: float) -> int:
    return round(pct * 10_000)


def bps_to_ppm(bps: float) -> int:
    return round(bps * 100)


def touches(last: int, bid: float | None, ask: float | None, tick: int) -> tuple[int, int]:
    """The prices a buy and a sell meet: (ask, bid) on the tick grid, each rounded
    against its order; the last price for both when the quote is one-sided,
    absent, NaN or crossed."""
    if bid is not None and ask is not None and 0.0 < bid <= ask < math.inf:
        # round(x * 100) is to_paise, inlined: this runs for every matched tick.
        return -(-round(ask * 100) // tick) * tick, round(bid * 100) // tick * tick
    return last, last


def slipped(is_buy: bool, touch: int, slip_ppm: int, tick: int) -> int:
    """``touch`` moved ``slip_ppm`` against the order, to the nearest tick (a tie
    rounds against the order); a sell never goes below one tick."""
    if is_buy:
        num = touch * (PPM + slip_ppm)
        den = PPM * tick
        return (2 * num + den) // (2 * den) * tick
    num = touch * (PPM - slip_ppm)
    den = PPM * tick
    return max((2 * num + den - 1) // (2 * den) * tick, tick)


def protection_price(is_buy: bool, reference: int, band_ppm: int, tick: int) -> int:
    """The market-protection limit: ``reference`` +/- the band, on the grid,
    inside the band (a buy rounds down, a sell up), at least one tick."""
    if is_buy:
        raw = reference * (PPM + band_ppm) // PPM
        return max(raw // tick * tick, tick)
    raw = -(-reference * (PPM - band_ppm) // PPM)
    return max(-(-raw // tick) * tick, tick)


def market_fill_price(is_buy: bool, touch: int, cap: int, slip_ppm: int, tick: int) -> int | None:
    """Fill price of a MARKET order, or None when the touch is beyond its protection."""
    if is_buy:
        if touch > cap:
            return None
        return min(slipped(True, touch, slip_ppm, tick), cap)
    if touch < cap:
        return None
    return max(slipped(False, touch, slip_ppm, tick), cap)


def limit_fill_price(is_buy: bool, limit: int, touch: int, last: int, resting: bool) -> int | None:
    """Fill price of a LIMIT order at ``limit``, or None when it does not fill.

    ``resting`` is False on the order's first look at the market (arrival,
    trigger or modification): only the touch counts then, since the trades
    that printed before the order arrived were not against it.
    """
    if is_buy:
        if touch <= limit:
            return touch
        if resting and last < limit:
            return limit
        return None
    if touch >= limit:
        return touch
    if resting and last > limit:
        return limit
    return None


def traded_quantity(volume: int, prev_volume: int | None, last_qty: int) -> int:
    """Quantity traded since the instrument's previous tick: the change in the
    cumulative volume, or the tick's last quantity when volume is unknown."""
    if prev_volume is not None and volume > 0 and prev_volume > 0 and volume >= prev_volume:
        return volume - prev_volume
    return max(last_qty, 0)


def participation_quantity(remaining: int, traded: int, share_ppm: int, lot: int) -> int:
    """At most ``share_ppm`` of ``traded``, in whole lots, and no more than ``remaining``."""
    allowed = max(traded, 0) * share_ppm // PPM
    return min(remaining, allowed // lot * lot)
