"""LIVE on the trading kernel: the shell between ``LiveKernel`` and Kite.

The kernel (engine, every OCO bracket, the external venue) decides; this
shell only carries things across:

- ticks go in through :class:`~aitrapp.kernel.driver.KernelDriver` (the same
  persistence, bus, metrics and read side as paper); after every kernel call
  the commands it queued are executed;
- a PLACE goes through the :class:`~aitrapp.pipeline.journal.JournaledBroker`:
  the order row (status NEW, unique client order id) is written before the
  HTTP call, a retried or duplicated client id never becomes a second order,
  and Kite's rate limiter sends stops and exits ahead of entries. The
  broker's id is mapped to the kernel's venue-local id;
- MODIFY and CANCEL go to the broker by that id; what the broker answers at
  once (a failed placement, a refused modification or cancel) goes back into
  the kernel, as does every order report of the broker's stream;
- commands of one order run in order (a cancel waits for its placement);
  commands of different orders run concurrently.

Persisted rows carry the broker's order ids (fills are keyed by them, so a
restarted process sees the same fill once). Order rows themselves are the
journal's: the kernel's PLACE rows are not written a second time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

from aitrapp._core import AdoptedOrder, BracketSpec, Instrument, LiveKernel, Price
from aitrapp.brokers.base import BrokerError, OrderRequest, OrderType, OrderUpdate
from aitrapp.brokers.kite import LOCAL_REJECT_PREFIX
from aitrapp.db.pool import Pool
from aitrapp.exceptions import AitrappError
from aitrapp.kernel.driver import KernelDriver
from aitrapp.kernel.events import EventBatch
from aitrapp.kernel.persist import _Plan
from aitrapp.logs import order_log
from aitrapp.pipeline.engine_restore import AdoptedPlan
from aitrapp.pipeline.journal import JournaledBroker

log = logging.getLogger(__name__)

_ORDER_TABLES = ("updates", "fills")


class LiveKernelDriver(KernelDriver):
    """A :class:`KernelDriver` whose kernel trades through a journalled broker."""

    def __init__(
        self,
        kernel: LiveKernel,
        *,
        journal: JournaledBroker,
        now_ns: Callable[[], int],
        **kw: Any,
    ) -> None:
        super().__init__(kernel, **kw)
        self.live = kernel
        self.journal = journal
        self._now_ns = now_ns
        self.persister.orders_journalled = True
        self.broker_ids: dict[int, str] = {}  # venue-local id -> broker order id
        # broker order id -> client order id (a restarted broker may not know the tag)
        self._cid_of_broker: dict[str, str] = {}
        self._chains: dict[int, asyncio.Task[None]] = {}
        self._inflight: set[asyncio.Task[None]] = set()
        self._updates_task: asyncio.Task[None] | None = None
        self._strategies: dict[str, str] = {}  # adopted plan -> strategy
        self._transitions_so_far: dict[str, int] = {}  # plan -> last seq written
        self.reports = 0
        self.reports_ignored = 0
        self.error: BaseException | None = None

    # ---------------------------------------------------------------- kernel calls
    def on_tick(self, *args: Any, **kw: Any) -> None:
        super().on_tick(*args, **kw)
        self.dispatch()

    def advance_time(self, ts_ns: int) -> None:
        super().advance_time(ts_ns)
        self.dispatch()

    def finish(self, ts_ns: int, until_ns: int) -> None:
        super().finish(ts_ns, until_ns)
        self.dispatch()

    def flatten(self, ts_ns: int) -> tuple[int, int]:
        out = super().flatten(ts_ns)
        self.dispatch()
        return out

    def absorb(self, ev: EventBatch | None) -> None:
        """Rows with the broker's order ids (a restarted process keys the same
        fill the same way); ids the broker never gave stay local."""
        if ev:
            for table in _ORDER_TABLES:
                cols = ev.get(table)
                if cols:
                    cols["order_id"] = [self._persisted_id(i, table) for i in cols["order_id"]]
        super().absorb(ev)

    def _persisted_id(self, local: int, table: str) -> int | str:
        broker = self.broker_ids.get(local)
        if broker is None:
            return local
        if table == "fills":
            return int(broker) if broker.isdigit() else local
        return broker

    # ---------------------------------------------------------------- reports in
    def start(self) -> None:
        """Consumes the broker's order stream (one consumer: this driver)."""
        self._updates_task = asyncio.create_task(self._consume(), name="kernel-order-updates")

    async def stop(self) -> None:
        task, self._updates_task = self._updates_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def running(self) -> bool:
        return self._updates_task is not None and not self._updates_task.done()

    async def _consume(self) -> None:
        try:
            async for u in self.journal.updates():
                self.on_update(u)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # shown in /health, never silent
            self.error = exc
            log.exception("kernel order stream stopped")
            raise

    def on_update(self, u: OrderUpdate) -> None:
        """One broker report into the kernel (duplicates and stale ones change nothing)."""
        cid = u.client_order_id or self._cid_of_broker.get(u.order_id)
        if cid is None:
            self.reports_ignored += 1
            return
        local = self.live.order_id_of(cid)
        if local is None:
            self.reports_ignored += 1  # not an order of this kernel
            return
        if not u.order_id.startswith(LOCAL_REJECT_PREFIX):
            self._map(local, cid, u.order_id)
        # At its exchange time, but never ahead of the session clock (the feed's
        # exchange time): a broker clock ahead of the feed must not fire timers
        # (square-off, time stops) early. The kernel never goes back in time.
        now = self._now_ns()
        ts = u.exchange_timestamp or u.order_timestamp
        ts_ns = min(int(ts.timestamp() * 1e9), now) if ts is not None else now
        try:
            ev = self.live.on_order_update(
                cid, u.status.value, u.filled_quantity, u.average_price, ts_ns, u.status_message
            )
        except (AitrappError, ValueError) as exc:
            order_log(log, cid, order_id=u.order_id).error("malformed order report: %s", exc)
            return
        if ev is None:
            self.reports_ignored += 1  # a duplicate or stale report: nothing changed
            return
        self.reports += 1
        self.absorb(ev)
        self.dispatch()

    # ---------------------------------------------------------------- commands out
    def dispatch(self) -> None:
        """Starts every command the kernel queued (in order per order)."""
        for cmd in self.live.take_commands():
            local = int(cmd["order_id"])
            before = self._chains.get(local)
            task = asyncio.get_running_loop().create_task(self._run(cmd, before))
            self._chains[local] = task
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)

    async def drain(self, timeout_s: float = 10.0) -> None:
        """Waits until every command started so far (and what they caused) is done."""
        async with asyncio.timeout(timeout_s):
            while self._inflight:
                await asyncio.gather(*list(self._inflight), return_exceptions=True)

    @property
    def commands_in_flight(self) -> int:
        return len(self._inflight)

    async def _run(self, cmd: dict[str, Any], before: asyncio.Task[None] | None) -> None:
        if before is not None:
            with contextlib.suppress(BaseException):
                await before
        try:
            action = cmd["action"]
            if action == "PLACE":
                await self._place(cmd)
            elif action == "MODIFY":
                await self._modify(cmd)
            else:
                await self._cancel(cmd)
        except Exception:  # a command must never take the session down
            order_log(log, cmd["client_order_id"]).exception("%s failed", cmd["action"])

    def _request(self, cmd: dict[str, Any]) -> OrderRequest:
        inst: Instrument = self.instruments[int(cmd["token"])]
        return OrderRequest(
            client_order_id=cmd["client_order_id"],
            tag=cmd["tag"],
            exchange=inst.exchange,
            tradingsymbol=inst.tradingsymbol,
            instrument_token=inst.instrument_token,
            side=cmd["side"],
            quantity=int(cmd["qty"]),
            order_type=OrderType(cmd["order_type"]),
            price_paise=cmd["price"],
            trigger_paise=cmd["trigger"],
            market_protection=cmd["market_protection"],
        )

    async def _place(self, cmd: dict[str, Any]) -> None:
        local = int(cmd["order_id"])
        req = self._request(cmd)
        try:
            broker_id = await self.journal.place_order(req)
        except (BrokerError, AitrappError, ValueError) as exc:
            order_log(log, req.client_order_id).warning("placement failed: %s", exc)
            self._answer(self.live.on_place_failed(local, self._now_ns(), str(exc)))
            return
        if broker_id.startswith(LOCAL_REJECT_PREFIX):
            return  # the REJECTED report (with Kite's reason) is on the stream
        self._map(local, req.client_order_id, broker_id)

    def _map(self, local: int, client_order_id: str, broker_id: str) -> None:
        self.broker_ids.setdefault(local, broker_id)
        self._cid_of_broker.setdefault(broker_id, client_order_id)

    async def _modify(self, cmd: dict[str, Any]) -> None:
        local = int(cmd["order_id"])
        broker_id = self.broker_ids.get(local)
        if broker_id is None:
            self._answer(self.live.on_modify_answer(local, self._now_ns(), "order not placed"))
            return
        order_type = OrderType(cmd["order_type"]) if cmd["order_type"] else None
        try:
            await self.journal.modify_order(
                broker_id,
                quantity=cmd["qty"],
                price_paise=cmd["price"],
                trigger_paise=cmd["trigger"],
                order_type=order_type,
            )
        except BrokerError as exc:
            self._answer(self.live.on_modify_answer(local, self._now_ns(), str(exc)))
            return
        self._answer(self.live.on_modify_answer(local, self._now_ns(), None))

    async def _cancel(self, cmd: dict[str, Any]) -> None:
        local = int(cmd["order_id"])
        broker_id = self.broker_ids.get(local)
        if broker_id is None:
            return  # never placed: the kernel heard the placement fail
        try:
            await self.journal.cancel_order(broker_id)
        except BrokerError as exc:
            self._answer(self.live.on_cancel_refused(local, self._now_ns(), str(exc)))

    def _answer(self, ev: EventBatch | None) -> None:
        self.absorb(ev)
        self.dispatch()

    # ---------------------------------------------------------------- adoption
    async def load_transitions(self, pool: Pool) -> None:
        """The transition numbers earlier processes used (an adopted plan's
        rows continue after them instead of colliding with them)."""
        rows = await pool.fetch(
            "SELECT plan_id, max(seq) AS seq FROM bracket_transitions GROUP BY plan_id"
        )
        self._transitions_so_far = {str(r["plan_id"]): int(r["seq"]) for r in rows}

    def book_adopted(self, plan: AdoptedPlan) -> None:
        """What the database says of an adopted plan (before its machine runs)."""
        self._strategies[plan.plan_id] = plan.strategy
        paise = round(plan.entry_avg * 100)
        self.persister.plans[plan.plan_id] = _Plan(
            plan.instrument.instrument_token,
            entry_qty=plan.entry_filled,
            entry_value=paise * plan.entry_filled,
            exited=plan.exited,
            position_open=True,
        )
        last = self._transitions_so_far.get(plan.plan_id)
        self.persister.steps[plan.plan_id] = 0 if last is None else last + 1
        self._plan_side[plan.plan_id] = (plan.side, plan.instrument.instrument_token)
        self.positions[plan.plan_id] = {
            "plan_id": plan.plan_id,
            "instrument_token": plan.instrument.instrument_token,
            "tradingsymbol": plan.instrument.tradingsymbol,
            "side": plan.side,
            "qty": plan.entry_filled - plan.exited,
            "entry_value": plan.entry_avg * (plan.entry_filled - plan.exited),
        }

    async def adopt_bracket(
        self,
        spec: BracketSpec,
        *,
        entry_filled: int,
        entry_avg: Price,
        children: list[AdoptedOrder],
        order_ids: Mapping[str, str],
    ) -> None:
        """Takes over an earlier process's bracket: its children keep their
        broker ids; what is missing (a stop, a target) is placed."""
        ids, ev = self.live.adopt(
            self._now_ns(),
            spec,
            self._strategies.get(spec.plan_id, "ADOPTED"),
            entry_filled,
            entry_avg.paise / 100,
            children,
        )
        for cid, local in ids:
            broker_id = order_ids.get(cid)
            if broker_id is not None:
                self._map(local, cid, broker_id)
        self.absorb(ev)
        self.dispatch()


__all__ = ["LiveKernelDriver"]
