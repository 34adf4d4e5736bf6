"""How the console writes numbers: rupees with Indian digit grouping, signed
P&L with its colour class, milliseconds, percentages and IST times.

Each filter takes what the API carries (float, Decimal, decimal string or
None) and never raises: a value it cannot read is shown as ``-``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

IST = ZoneInfo("Asia/Kolkata")
DASH = "-"


def to_decimal(value: object) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        d = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() else None


def indian(value: object, places: int = 2) -> str:
    """1234567.5 -> ``12,34,567.50`` (lakh/crore grouping); the sign stays in front."""
    d = to_decimal(value)
    if d is None:
        return DASH
    text = f"{abs(d):.{places}f}"
    whole, _, frac = text.partition(".")
    if len(whole) > 3:
        head, tail = whole[:-3], whole[-3:]
        groups: list[str] = []
        while len(head) > 2:
            groups.insert(0, head[-2:])
            head = head[:-2]
        if head:
            groups.insert(0, head)
        whole = ",".join([*groups, tail])
    sign = "-" if d < 0 and (d.quantize(Decimal(1).scaleb(-places)) != 0) else ""
    return sign + whole + ("." + frac if frac else "")


def money(value: object) -> str:
    """Rupees, signed when negative: ``₹1,23,456.78``."""
    text = indian(value)
    if text == DASH:
        return text
    return "-₹" + text[1:] if text.startswith("-") else "₹" + text


def pnl(value: object) -> str:
    """Signed rupees for P&L: ``+₹1,250.00`` / ``-₹310.50``."""
    d = to_decimal(value)
    if d is None:
        return DASH
    text = money(d)
    return "+" + text if d > 0 and text != "₹0.00" else text


def pnl_class(value: object) -> str:
    d = to_decimal(value)
    if d is None or d.quantize(Decimal("0.01")) == 0:
        return "flat"
    return "up" if d > 0 else "down"


def price(value: object) -> str:
    return indian(value, 2)


def qty(value: object) -> str:
    return indian(value, 0)


def ms(value: object) -> str:
    d = to_decimal(value)
    if d is None:
        return DASH
    if d >= 100:
        return f"{d:,.0f} ms"
    if d >= 1:
        return f"{d:.2f} ms"
    return f"{d * 1000:.1f} µs"


def pct(value: object, places: int = 2) -> str:
    """A percent value as given (2.5 -> ``2.50%``)."""
    d = to_decimal(value)
    return DASH if d is None else f"{d:.{places}f}%"


def share(value: object, places: int = 2) -> str:
    """A share 0..1 as a percent (0.9931 -> ``99.31%``)."""
    d = to_decimal(value)
    return DASH if d is None else f"{d * 100:.{places}f}%"


def ist(value: object, with_date: bool = False) -> str:
    """An ISO time (or datetime) in IST: ``10:03:27`` or ``2026-01-05 10:03:27``."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return DASH
    if not isinstance(value, datetime):
        return DASH
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    local = value.astimezone(IST)
    return local.strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S")


def short_id(value: object, n: int = 8) -> str:
    text = str(value or "")
    return text[:n] if text else DASH


FILTERS = {
    "indian": indian,
    "money": money,
    "pnl": pnl,
    "pnl_class": pnl_class,
    "price": price,
    "qty": qty,
    "ms": ms,
    "pct": pct,
    "share": share,
    "ist": ist,
    "short_id": short_id,
}
