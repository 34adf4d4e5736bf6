"""Executes one OCO command through a `Broker`, turning unknown outcomes into known ones.

A placement carries its deterministic client id and broker tag. ``BrokerError``
means the outcome is unknown: the order is looked up by tag before anything is
sent again, and a placement is reported failed only when the broker does not
have it (if it turns up later anyway, the machine cancels it). Modify and
cancel answers go back to the machine as feedback. ``to_market`` turns a stop
into a market exit for a flatten (see ``aitrapp.oco.flatten``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from aitrapp._core import Instrument, OcoCommand, broker_tag
from aitrapp.brokers.base import (
    Broker,
    BrokerError,
    OrderRequest,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Product,
    Side,
)

log = logging.getLogger(__name__)

_MARKET_TYPES = (OrderType.MARKET, OrderType.SLM)


@dataclass(frozen=True, slots=True)
class ModifyAnswer:
    tag: str
    seq: int
    accepted: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class CancelRefusedFilled:
    """The broker refused our cancel because the order had filled."""

    tag: str


@dataclass(frozen=True, slots=True)
class PlacementFailed:
    """The broker does not have the order: the machine treats it as rejected."""

    tag: str
    reason: str


Feedback = OrderUpdate | ModifyAnswer | CancelRefusedFilled | PlacementFailed
Conversion = Literal["converted", "finished", "refused"]


def _paise(rupees: float | None) -> int | None:
    return None if rupees is None else round(rupees * 100)


def _side(text: str | None) -> Side:
    if text == "BUY":
        return "BUY"
    if text == "SELL":
        return "SELL"
    raise ValueError(f"command side must be BUY or SELL, got {text!r}")


class CommandExecutor:
    """Broker calls for OCO commands (the caller serialises calls per bracket)."""

    def __init__(
        self,
        broker: Broker,
        *,
        product: Product = Product.MIS,
        market_protection: float = -1.0,
        attempts: int = 3,
        retry_delay_s: float = 0.2,
    ) -> None:
        if attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {attempts}")
        self._broker = broker
        self._product = product
        self._market_protection = market_protection
        self._attempts = attempts
        self._delay = retry_delay_s

    def request(self, cmd: OcoCommand, instrument: Instrument) -> OrderRequest:
        """The broker request for a PLACE_ORDER / EXIT_AT_MARKET command."""
        if cmd.client_order_id is None or cmd.qty is None or cmd.order_type is None:
            raise ValueError(f"not a placement: {cmd!r}")
        order_type = OrderType(cmd.order_type)
        return OrderRequest(
            client_order_id=cmd.client_order_id,
            tag=broker_tag(cmd.client_order_id),
            exchange=instrument.exchange,
            tradingsymbol=instrument.tradingsymbol,
            instrument_token=instrument.instrument_token,
            side=_side(cmd.side),
            quantity=cmd.qty,
            order_type=order_type,
            product=self._product,
            price_paise=cmd.price.paise if cmd.price is not None else None,
            trigger_paise=cmd.trigger.paise if cmd.trigger is not None else None,
            # Kite rejects API market orders without a protection band.
            market_protection=self._market_protection if order_type in _MARKET_TYPES else None,
        )

    async def place(
        self, cmd: OcoCommand, instrument: Instrument, seen: Callable[[], str | None]
    ) -> tuple[str | None, list[Feedback]]:
        """Places the order; returns its broker id (None if it failed) and feedback.

        ``seen`` returns the broker order id if an update of this order has
        arrived meanwhile: then the order exists, whatever the call said.
        """
        req = self.request(cmd, instrument)
        tag = cmd.tag or ""
        last = ""
        for attempt in range(self._attempts):
            try:
                return await self._broker.place_order(req), []
            except BrokerError as e:
                last = str(e)
                log.warning("place %s failed (attempt %d): %s", req.client_order_id, attempt + 1, e)
            found, known = await self._lookup(req.client_order_id)
            if found is not None:
                return found.order_id, [found]
            order_id = seen()
            if order_id is not None:
                return order_id, []
            if not known:
                # The broker could not say whether it has the order: sending it
                # again could duplicate it. Report failure; if the order turns
                # up after all, the machine cancels it.
                break
            if attempt + 1 < self._attempts:
                await asyncio.sleep(self._delay * 2**attempt)
        return None, [PlacementFailed(tag, f"placement failed: {last}")]

    async def modify(self, cmd: OcoCommand, order_id: str | None) -> list[Feedback]:
        tag, seq = cmd.tag or "", cmd.seq or 0
        if order_id is None:
            return [ModifyAnswer(tag, seq, False, "no broker order id (placement failed)")]
        price = cmd.price.paise if cmd.price is not None else None
        trigger = cmd.trigger.paise if cmd.trigger is not None else None
        try:
            await self._broker.modify_order(
                order_id, quantity=cmd.qty, price_paise=price, trigger_paise=trigger
            )
            return [ModifyAnswer(tag, seq, True)]
        except BrokerError as e:
            reason = str(e)
        # Unknown outcome or refusal: the order book says which.
        found, _ = await self._lookup(cmd.client_order_id or "")
        if (
            found is not None
            and not found.status.is_terminal
            and found.quantity == cmd.qty
            and _paise(found.trigger_price) == trigger
            and (price is None or _paise(found.price) == price)
        ):
            return [ModifyAnswer(tag, seq, True)]
        out: list[Feedback] = [ModifyAnswer(tag, seq, False, reason)]
        if found is not None:
            out.append(found)
        return out

    async def to_market(
        self, cmd: OcoCommand, order_id: str | None
    ) -> tuple[Conversion, list[Feedback]]:
        """Turns the working stop of a CANCEL command into a market order with one
        modify (flatten: exit first). ``converted``: its fill will arrive as an
        update; ``finished``: the order had ended (the feedback tells the
        machine how); ``refused``: carry the cancel out instead."""
        if order_id is None:
            return "refused", []
        try:
            await self._broker.modify_order(order_id, order_type=OrderType.MARKET)
            return "converted", []
        except BrokerError as e:
            reason = str(e)
        # Refused, or the outcome is unknown: the order book says which.
        found, _ = await self._lookup(cmd.client_order_id or "")
        if found is None:
            log.warning("%s: not turned into a market exit: %s", cmd.client_order_id, reason)
            return "refused", []
        if found.status.is_terminal:
            return "finished", [found]
        if found.order_type is OrderType.MARKET:
            return "converted", [found]
        log.warning("%s: not turned into a market exit: %s", cmd.client_order_id, reason)
        return "refused", [found]

    async def cancel(self, cmd: OcoCommand, order_id: str | None) -> list[Feedback]:
        tag, cid = cmd.tag or "", cmd.client_order_id or ""
        reason = "no broker order id"
        for attempt in range(self._attempts):
            if order_id is None:
                found, _ = await self._lookup(cid)
                if found is None:
                    break
                order_id = found.order_id
            try:
                await self._broker.cancel_order(order_id)
                return []
            except BrokerError as e:
                reason = str(e)
                log.warning(
                    "cancel %s failed (attempt %d): %s", cmd.client_order_id, attempt + 1, e
                )
            found, _ = await self._lookup(cid)
            if found is not None and found.status is OrderStatus.COMPLETE:
                return [CancelRefusedFilled(tag), found]
            if found is not None and found.status.is_terminal:
                return [found]
            if attempt + 1 < self._attempts:
                await asyncio.sleep(self._delay * 2**attempt)
        # Still working as far as anyone can tell: the order's own updates (or
        # the order watcher's polling) will settle it; the machine keeps waiting.
        log.error("cancel %s not confirmed: %s", cmd.client_order_id, reason)
        return []

    async def _lookup(self, cid: str) -> tuple[OrderUpdate | None, bool]:
        """The broker's order for client id `cid` (looked up by its tag), and
        whether the broker could be asked at all."""
        tag = broker_tag(cid)
        try:
            found = await self._broker.find_by_tag(tag)
        except BrokerError as e:
            log.warning("lookup of %s (tag %s) failed: %s", cid, tag, e)
            return None, False
        if found is not None and found.client_order_id not in (None, cid):
            # Tags keep 64 bits of the plan id: never take another plan's order.
            log.error("tag %s belongs to %s, not %s", tag, found.client_order_id, cid)
            return None, True
        return found, True
