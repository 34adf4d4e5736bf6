"""Kite-like order validation for the paper broker.

Each check returns None or the ``status_message`` of a REJECTED order, worded
like Kite's own messages, so PAPER rejects look like LIVE rejects. A check that
needs the last traded price skips it while no tick has been seen.
"""

from __future__ import annotations

from dataclasses import dataclass

from aitrapp._core import Instrument
from aitrapp.brokers.base import OrderRequest, OrderType, Product, Validity

MAX_TAG_LEN = 20  # Kite rejects (does not truncate) longer tags

STOP_TYPES = (OrderType.SL, OrderType.SLM)
PRICED_TYPES = (OrderType.LIMIT, OrderType.SL)
PROTECTED_TYPES = (OrderType.MARKET, OrderType.SLM)

_PRODUCTS_BY_SEGMENT = {
    "EQ": (Product.MIS, Product.CNC),
    "FUT": (Product.MIS, Product.NRML),
    "OPT": (Product.MIS, Product.NRML),
}


@dataclass(frozen=True, slots=True)
class PaperInstrument:
    """The fields of an `Instrument` the simulator reads, copied out once."""

    token: int
    exchange: str
    tradingsymbol: str
    segment: str
    tick: int  # paise
    lot: int
    freeze: int

    @staticmethod
    def of(inst: Instrument) -> PaperInstrument:
        return PaperInstrument(
            token=inst.instrument_token,
            exchange=inst.exchange,
            tradingsymbol=inst.tradingsymbol,
            segment=inst.segment,
            tick=inst.tick_paise,
            lot=inst.lot_size,
            freeze=inst.freeze_qty,
        )


def _rupees(paise: int) -> str:
    return f"{paise / 100:.2f}"


def check_instrument(req: OrderRequest, inst: PaperInstrument | None) -> str | None:
    if inst is None:
        return (
            f"Invalid `tradingsymbol` or `exchange`: instrument_token {req.instrument_token} "
            f"({req.exchange}:{req.tradingsymbol}) is not a known instrument."
        )
    if (req.exchange, req.tradingsymbol) != (inst.exchange, inst.tradingsymbol):
        return (
            f"Invalid `tradingsymbol`: instrument_token {inst.token} is "
            f"{inst.exchange}:{inst.tradingsymbol}, not {req.exchange}:{req.tradingsymbol}."
        )
    if inst.segment == "IDX":
        return f"{inst.tradingsymbol} is an index and cannot be traded."
    return None


def check_enums(req: OrderRequest) -> str | None:
    if req.side not in ("BUY", "SELL"):
        return f"Invalid `transaction_type` {req.side!r}: expected BUY or SELL."
    for name, enum, value in (
        ("order_type", OrderType, req.order_type),
        ("product", Product, req.product),
        ("validity", Validity, req.validity),
    ):
        try:
            enum(value)
        except ValueError:
            allowed = ", ".join(m.value for m in enum)
            return f"Invalid `{name}` {value!r}: expected one of {allowed}."
    return None


def check_tag(tag: object) -> str | None:
    if not isinstance(tag, str) or len(tag) > MAX_TAG_LEN:
        return f"Invalid `tag`: at most {MAX_TAG_LEN} characters are allowed, got {tag!r}."
    return None


def check_product(product: Product, inst: PaperInstrument) -> str | None:
    allowed = _PRODUCTS_BY_SEGMENT.get(inst.segment, ())
    if product not in allowed:
        names = " or ".join(p.value for p in allowed)
        return (
            f"Product {product.value} is not allowed for {inst.tradingsymbol} "
            f"({inst.segment}): use {names}."
        )
    return None


def check_quantity(quantity: object, inst: PaperInstrument) -> str | None:
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
        return f"Invalid `quantity` {quantity!r}: it must be a positive whole number of units."
    if quantity % inst.lot:
        return (
            f"Quantity should be a multiple of the lot size ({inst.lot}) for {inst.tradingsymbol}."
        )
    if quantity > inst.freeze:
        return (
            f"Quantity {quantity} is above the freeze quantity ({inst.freeze}) for "
            f"{inst.tradingsymbol}. Reduce the quantity or use autoslice."
        )
    return None


def _paise_field(name: str, value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return f"Invalid `{name}` {value!r}: it must be a positive price (integer paise)."
    return None


def check_prices(
    order_type: OrderType,
    is_buy: bool,
    price: int | None,
    trigger: int | None,
    inst: PaperInstrument,
    ltp: int | None,
    *,
    check_trigger_side: bool = True,
) -> str | None:
    """Presence, tick grid, stop-limit consistency and the trigger's side of the LTP."""
    if order_type in PRICED_TYPES:
        if price is None:
            return f"Invalid `price`: {order_type.value} orders need a price."
        bad = _paise_field("price", price)
        if bad:
            return bad
        if price % inst.tick:
            return (
                f"Tick size for this script is {_rupees(inst.tick)}. Kindly enter price "
                f"in the multiple of tick size for this script ({_rupees(price)})."
            )
    if order_type in STOP_TYPES:
        if trigger is None:
            return f"Invalid `trigger_price`: {order_type.value} orders need a trigger price."
        bad = _paise_field("trigger_price", trigger)
        if bad:
            return bad
        if trigger % inst.tick:
            return (
                f"Tick size for this script is {_rupees(inst.tick)}. Kindly enter trigger "
                f"price in the multiple of tick size for this script ({_rupees(trigger)})."
            )
        if order_type is OrderType.SL:
            assert price is not None
            if is_buy and trigger > price:
                return "Trigger price for stoploss buy orders cannot be above the limit price."
            if not is_buy and trigger < price:
                return "Trigger price for stoploss sell orders cannot be below the limit price."
        if check_trigger_side and ltp is not None:
            if is_buy and trigger <= ltp:
                return (
                    "Trigger price for stoploss buy orders should be higher than the last "
                    f"traded price ({_rupees(ltp)})."
                )
            if not is_buy and trigger >= ltp:
                return (
                    "Trigger price for stoploss sell orders should be lower than the last "
                    f"traded price ({_rupees(ltp)})."
                )
    return None


def check_protection(order_type: OrderType, market_protection: object) -> str | None:
    """MARKET and SL-M need a positive band (percent) or -1 for Kite's automatic one."""
    if order_type not in PROTECTED_TYPES:
        return None
    mp = market_protection
    if mp is None or (isinstance(mp, int | float) and not isinstance(mp, bool) and mp == 0):
        return (
            "Market orders without market protection are not allowed via API. "
            "Set `market_protection` (a percentage, or -1 for automatic) or use a limit order."
        )
    if isinstance(mp, bool) or not isinstance(mp, int | float) or not (mp == -1 or 0 < mp <= 100):
        return (
            f"Invalid `market_protection` {mp!r}: use -1 (automatic) or a percentage "
            "above 0 and at most 100."
        )
    return None


def check_new_order(req: OrderRequest, inst: PaperInstrument | None, ltp: int | None) -> str | None:
    """Every check a new order passes, in Kite's order; the first failure wins."""
    msg = check_tag(req.tag) or check_enums(req) or check_instrument(req, inst)
    if msg:
        return msg
    assert inst is not None
    order_type = OrderType(req.order_type)
    return (
        check_product(Product(req.product), inst)
        or check_quantity(req.quantity, inst)
        or check_prices(
            order_type,
            req.side == "BUY",
            req.price_paise if order_type in PRICED_TYPES else None,
            req.trigger_paise if order_type in STOP_TYPES else None,
            inst,
            ltp,
        )
        or check_protection(order_type, req.market_protection)
    )
