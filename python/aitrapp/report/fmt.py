"""Number and time formatting shared by the terminal and HTML renderers."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

IST = ZoneInfo("Asia/Kolkata")
_PAISA = Decimal("0.01")


def money(value: Decimal) -> str:
    """Rupees to the paisa with thousands separators, e.g. ``-1,234.50``."""
    return f"{value.quantize(_PAISA, rounding=ROUND_HALF_UP):,.2f}"


def price(value: Decimal | None) -> str:
    return "-" if value is None else f"{value.quantize(_PAISA, rounding=ROUND_HALF_UP):f}"


def pct(share: float | None, digits: int = 1) -> str:
    return "-" if share is None else f"{share * 100:.{digits}f} %"


def ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if value < 10 else f"{value:,.1f}"


def ist(ts: datetime | None, with_date: bool = False) -> str:
    if ts is None:
        return "-"
    return ts.astimezone(IST).strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S")


def measured(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    text = f"{int(value)}" if float(value).is_integer() else f"{value:g}"
    return f"{text} {unit}".rstrip()
