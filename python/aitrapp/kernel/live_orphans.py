"""Orders the live kernel was told were never placed, showing up at Kite after all.

A placement whose outcome was unknown is looked up by tag a few times; when the
lookups give up, the kernel hears REJECTED and moves on (its bracket cancelled
or exited). Should the order then appear at Kite, nothing protects it: what
still works is cancelled and whatever it filled is squared at market, each
with a CRITICAL alert (the operator must know an order lived unmanaged).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from aitrapp import broker_tag, order_client_id, parse_order_client_id
from aitrapp.brokers.base import BrokerError, OrderRequest, OrderType, OrderUpdate, Side
from aitrapp.brokers.journal import JournaledBroker

log = logging.getLogger(__name__)

# The squaring exits count down from EXIT99 (the kernel's own count up from EXIT).
_LAST_EXIT_N = 99

Alert = Callable[[str, str, str], None]  # (client order id, code, message)
Spawn = Callable[[Coroutine[Any, Any, None]], None]


@dataclass(slots=True)
class Retry:
    """How often a cancel is sent again when its answer is lost, and how soon."""

    attempts: int = 5
    backoff_s: float = 0.2  # doubled each time


class OrphanOrders:
    """The orders told to the kernel as never placed, and what was done about
    each one that turned up (one instance per live driver)."""

    def __init__(
        self, journal: JournaledBroker, *, alert: Alert, spawn: Spawn, retry: Retry
    ) -> None:
        self.journal = journal
        self._alert = alert
        self._spawn = spawn
        self.retry = retry
        # client id -> the request the kernel was told was rejected
        self.absent: dict[str, OrderRequest] = {}
        self._squared: dict[str, int] = {}  # client id -> quantity squared so far
        self._cancelled: set[str] = set()  # broker ids whose cancel was sent
        self._exit_n: dict[str, int] = {}  # plan -> the last squaring EXITn used
        self.squares: set[str] = set()  # client ids of the squaring market orders

    def mark_absent(self, req: OrderRequest) -> None:
        self.absent[req.client_order_id] = req

    def report(self, cid: str, u: OrderUpdate) -> None:
        """A report of an absent order: cancel it if it works, square new fills."""
        req = self.absent[cid]
        if not u.status.is_terminal and u.order_id not in self._cancelled:
            self._cancelled.add(u.order_id)
            self._spawn(self._cancel(cid, u.order_id))
        squared = self._squared.get(cid, 0)
        if u.filled_quantity > squared:
            self._squared[cid] = u.filled_quantity
            self._spawn(self._square(req, u.filled_quantity - squared, u.order_id))

    async def _cancel(self, cid: str, broker_id: str) -> None:
        self._alert(
            cid,
            "ORPHAN_ORDER",
            f"{cid} is at the broker as {broker_id} after it was taken as never placed: "
            "cancelling it",
        )
        for attempt in range(self.retry.attempts):
            try:
                await self.journal.cancel_order(broker_id)
                return
            except BrokerError as exc:
                if not exc.retryable or attempt + 1 == self.retry.attempts:
                    if "complete" not in str(exc).lower():  # filled: squared on its report
                        self._alert(
                            cid, "ORPHAN_ORDER", f"cancel of {broker_id} ({cid}) failed: {exc}"
                        )
                    return
                await asyncio.sleep(self.retry.backoff_s * 2**attempt)

    async def _square(self, req: OrderRequest, qty: int, broker_id: str) -> None:
        plan_id, role = parse_order_client_id(req.client_order_id)
        n = self._exit_n.get(plan_id, _LAST_EXIT_N + 1) - 1
        self._exit_n[plan_id] = n
        cid = order_client_id(f"EXIT{n}", plan_id)
        self.squares.add(cid)
        side: Side = "SELL" if req.side == "BUY" else "BUY"
        self._alert(
            req.client_order_id,
            "ORPHAN_FILL",
            f"{role.lower()} {req.client_order_id} filled {qty} at the broker ({broker_id}) "
            f"after it was taken as never placed: squaring it at market ({cid}, {side} {qty})",
        )
        exit_req = OrderRequest(
            client_order_id=cid,
            tag=broker_tag(cid),
            exchange=req.exchange,
            tradingsymbol=req.tradingsymbol,
            instrument_token=req.instrument_token,
            side=side,
            quantity=qty,
            order_type=OrderType.MARKET,
            market_protection=-1,
        )
        try:
            await self.journal.place_order(exit_req)
        except Exception as exc:  # told, never silent
            self._alert(
                req.client_order_id,
                "ORPHAN_FILL",
                f"squaring {req.client_order_id} failed ({exc}): square it by hand",
            )
