"""LIVE on the trading kernel: the shell between ``LiveKernel`` and Kite.

The kernel (engine, every OCO bracket, the external venue) decides; this
shell only carries things across:

- ticks go in through :class:`~aitrapp.kernel.driver.KernelDriver` (the same
  persistence, bus, metrics and read side as paper); after every kernel call
  the commands it queued are executed;
- a PLACE goes through the :class:`~aitrapp.brokers.journal.JournaledBroker`:
  the order row (status NEW, unique client order id) is written before the
  HTTP call, a retried or duplicated client id never becomes a second order,
  and Kite's rate limiter sends stops and exits ahead of entries. The
  broker's id is mapped to the kernel's venue-local id;
- MODIFY and CANCEL go to the broker by that id; what the broker answers at
  once (a failed placement, a refused modification or cancel) goes back into
  the kernel, as does every order report of the broker's stream;
- commands of one order run in order (a cancel waits for its placement);
  commands of different orders run concurrently;
- an answer lost on the way is never read as a refusal: a placement whose
  outcome is unknown is looked up by its tag (a bounded number of times)
  before the kernel hears REJECTED; a modification whose outcome is unknown is
  read back from the order book; a cancel whose outcome is unknown is sent
  again while the order works. An order that turns up at Kite after the
  kernel was told it does not exist is cancelled, and what it filled is
  squared at market (with a CRITICAL alert): nothing the kernel does not know
  keeps working, no position stays unprotected;
- time: a clock task moves the kernel to the exchange time every
  ``CLOCK_INTERVAL_S`` (and before commands are executed), so entry timeouts,
  time stops, the square-off and the stop watchdog fire at their own time on a
  quiet feed; broker reports are applied at their exchange time, never later
  than that clock.

Persisted rows carry the broker's order ids (fills are keyed by them, so a
restarted process sees the same fill once). Order rows themselves are the
journal's: the kernel's PLACE rows are not written a second time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, date, datetime
from typing import Any

from aitrapp import broker_tag, parse_order_client_id
from aitrapp._core import AdoptedOrder, BracketSpec, Instrument, LiveKernel, Price
from aitrapp.brokers.base import (
    LOCAL_REJECT_PREFIX,
    BrokerError,
    OrderRequest,
    OrderType,
    OrderUpdate,
)
from aitrapp.brokers.journal import (
    ClientIdTakenError,
    EntryRefusedError,
    JournaledBroker,
    OrderFinishedError,
)
from aitrapp.db.pool import Pool
from aitrapp.db.repo import OrderAck, RiskEventRow
from aitrapp.exceptions import AitrappError
from aitrapp.kernel.driver import KernelDriver
from aitrapp.kernel.events import EventBatch
from aitrapp.kernel.evidence import ReportEvidence
from aitrapp.kernel.live_orphans import OrphanOrders, Retry
from aitrapp.kernel.persist import _Plan, utc
from aitrapp.logs import order_log
from aitrapp.recovery.engine_restore import AdoptedPlan

log = logging.getLogger(__name__)

_ORDER_TABLES = ("updates", "fills")
# The clock task's period: a timer between ticks fires at most this late.
CLOCK_INTERVAL_S = 0.2
_CLOCK_STEP_NS = 1_000_000
# How long an entry waits for its plan's rows to be written before it is refused.
PLAN_RECORD_TIMEOUT_S = 2.0
# A placement with an unknown outcome: looked up by tag this often, this far apart,
# before the kernel hears REJECTED (the broker's own look-ups come first).
LOOKUP_ATTEMPTS = 5
LOOKUP_DELAY_S = 0.5
# A cancel with an unknown outcome is sent again (backoff doubling) this often.
CANCEL_ATTEMPTS = 5
CANCEL_BACKOFF_S = 0.2
# Kite's 429 refuses an order on arrival: a stop, target or exit is sent again
# this many times (doubling backoff) before the kernel hears it was rejected.
RATE_LIMITED_ATTEMPTS = 4
RATE_LIMITED_BACKOFF_S = 0.25


def _certainly_not_placed(exc: BaseException) -> bool:
    """Failures after which the order cannot be at the broker: refused before the
    call (the journal, our own checks) or refused by Kite's rate limit (a 429 is
    refused on arrival); everything else may have reached Kite."""
    if isinstance(exc, EntryRefusedError | ClientIdTakenError | ValueError):
        return True
    if isinstance(exc, BrokerError):
        return exc.code == 429 or not exc.retryable
    return False


def _stamp(updates: dict[str, list[Any]] | None, cid: str, ts_ns: int) -> None:
    """The report's own update rows carry the exchange time of the report (the
    kernel acts at its own time, which never goes back): order_events is the
    history as Kite told it, in exchange time, ignored reports included."""
    if not updates:
        return
    stamps = updates["ts_ns"]
    for i, c in enumerate(updates["client_order_id"]):
        if c == cid:
            stamps[i] = ts_ns


class LiveKernelDriver(KernelDriver):
    """A :class:`KernelDriver` whose kernel trades through a journalled broker."""

    def __init__(
        self,
        kernel: LiveKernel,
        *,
        journal: JournaledBroker,
        start_ns: int,
        clock: Callable[[], int] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(kernel, **kw)
        self.live = kernel
        self.journal = journal
        self.evidence = ReportEvidence(self.writer, self.persister.fill_scope)
        # Exchange time now (UTC ns); None: only ticks and reports move the kernel.
        self.clock = clock
        self.clock_ns = start_ns  # the latest time the kernel was moved to by the clock
        self._clock_task: asyncio.Task[None] | None = None
        self.plan_record_timeout_s = PLAN_RECORD_TIMEOUT_S
        self.lookup_attempts = LOOKUP_ATTEMPTS
        self.lookup_delay_s = LOOKUP_DELAY_S
        self.cancel_retry = Retry(CANCEL_ATTEMPTS, CANCEL_BACKOFF_S)
        self.rate_limited_attempts = RATE_LIMITED_ATTEMPTS
        self.rate_limited_backoff_s = RATE_LIMITED_BACKOFF_S
        # Orders the kernel was told do not exist, should they turn up at Kite.
        self.orphans = OrphanOrders(
            journal, alert=self._critical, spawn=self._spawn, retry=self.cancel_retry
        )
        self._done: set[int] = set()  # venue-local ids the broker reported over
        self.persister.orders_journalled = True
        self.broker_ids: dict[int, str] = {}  # venue-local id -> broker order id
        # broker order id -> client order id (a restarted broker may not know the tag)
        self._cid_of_broker: dict[str, str] = {}
        self._chains: dict[int, asyncio.Task[None]] = {}
        self._inflight: set[asyncio.Task[None]] = set()
        self._updates_task: asyncio.Task[None] | None = None
        self._strategies: dict[str, str] = {}  # adopted plan -> strategy
        self._transitions_so_far: dict[str, int] = {}  # plan -> last seq written
        self._earlier_orders: dict[str, str] = {}  # broker id -> client id (earlier processes)
        self.reports = 0
        self.reports_ignored = 0
        self.error: BaseException | None = None
        # Kernel events not recorded (or reports not handled) because of an error.
        self.absorb_failures = 0

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

    def flatten(self, ts_ns: int) -> None:
        super().flatten(ts_ns)
        self.dispatch()

    def absorb(self, ev: EventBatch | None) -> None:
        """Rows with the broker's order ids (a restarted process keys the same
        fill the same way); ids the broker never gave stay local.

        The kernel has already acted on ``ev``: a failure to record or publish it
        (a bug, a broken bus) must not stop its commands going out nor the order
        stream being read. It is logged CRITICAL and shown in /health."""
        if ev:
            for table in _ORDER_TABLES:
                cols = ev.get(table)
                if cols:
                    cols["order_id"] = [self._persisted_id(i, table) for i in cols["order_id"]]
        try:
            super().absorb(ev)
        except Exception:
            self.absorb_failures += 1
            log.critical("the kernel's events were not recorded; protection goes on", exc_info=True)

    def _persisted_id(self, local: int, table: str) -> int | str:
        broker = self.broker_ids.get(local)
        if broker is None:
            return local
        if table == "fills":
            return int(broker) if broker.isdigit() else local
        return broker

    # ---------------------------------------------------------------- time
    def now_ns(self) -> int:
        """The session's exchange time: the clock's, or the last tick's if later."""
        self._advance_clock()
        last = self.live.counters()["last_tick_ns"]
        return max(self.clock_ns, int(last or 0))

    def _advance_clock(self, *, force: bool = True) -> None:
        """Moves the kernel to the clock's time (timers due by then fire); the
        commands they queue are the caller's to dispatch. Unforced (after each
        tick), only once the clock moved a millisecond: the tick path stays lean."""
        if self.clock is None:
            return
        t = self.clock()
        if t > self.clock_ns and (force or t - self.clock_ns >= _CLOCK_STEP_NS):
            self.clock_ns = t
            self.absorb(self.live.advance_time(t))

    async def _run_clock(self) -> None:
        while True:
            try:
                self.dispatch()  # moves the clock first
            except Exception:  # the clock must outlive one bad batch
                log.exception("kernel clock step failed")
            await asyncio.sleep(CLOCK_INTERVAL_S)

    # ---------------------------------------------------------------- reports in
    def start(self) -> None:
        """Consumes the broker's order stream (one consumer: this driver) and, with
        a clock, moves the kernel's time with it."""
        self._updates_task = asyncio.create_task(self._consume(), name="kernel-order-updates")
        if self.clock is not None:
            self._clock_task = asyncio.create_task(self._run_clock(), name="kernel-clock")

    async def stop(self) -> None:
        for name in ("_clock_task", "_updates_task"):
            task = getattr(self, name)
            setattr(self, name, None)
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
                try:
                    self.on_update(u)
                except Exception:  # one bad report must not end the stream
                    self.absorb_failures += 1
                    order_log(log, u.client_order_id or "", order_id=u.order_id).critical(
                        "order report not handled", exc_info=True
                    )
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # shown in /health, never silent
            self.error = exc
            log.exception("kernel order stream stopped")
            raise

    def on_update(self, u: OrderUpdate) -> None:
        """One broker report into the kernel (duplicates and stale ones change nothing)."""
        cid = (
            u.client_order_id
            or self._cid_of_broker.get(u.order_id)
            or self._earlier_orders.get(u.order_id)
        )
        local = None if cid is None else self.live.order_id_of(cid)
        if cid is None or local is None:  # not an order of this kernel: kept as evidence
            self.reports_ignored += 1
            if cid is None or cid in self.orphans.squares:  # its fills are recorded here
                self.evidence.unmanaged_report(u, cid)
            else:  # ours, from an earlier process: its fills were recorded then
                self.evidence.ignored_report(u, cid)
            return
        real = not u.order_id.startswith(LOCAL_REJECT_PREFIX)
        if real and cid in self.orphans.absent:
            self.reports_ignored += 1
            self._cid_of_broker.setdefault(u.order_id, cid)
            self.evidence.unmanaged_report(u, cid)  # a real execution: recorded
            self.orphans.report(cid, u)
            return
        if real:
            self._map(local, cid, u.order_id)
        if u.status.is_terminal:
            self._done.add(local)
        # At its exchange time, but never ahead of the session's clock (or the
        # feed's time): a broker clock ahead of ours must not fire timers
        # (square-off, time stops) early. The kernel never goes back in time.
        now = self.now_ns()
        ts = u.exchange_timestamp or u.order_timestamp
        ts_ns = min(int(ts.timestamp() * 1e9), now) if ts is not None else now
        try:
            ev = self.live.on_order_update(
                cid, u.status.value, u.filled_quantity, u.average_price, ts_ns, u.status_message
            )
        except (AitrappError, ValueError) as exc:  # kept, said, and nothing changed
            order_log(log, cid, order_id=u.order_id).error("malformed order report: %s", exc)
            self.evidence.ignored_report(u, cid)
            self.alert(now, "ERROR", "MACHINE_ERROR", f"malformed order report of {cid}: {exc}")
            return
        if ev is None:
            self.reports_ignored += 1  # a duplicate or stale report: nothing changed
            self.evidence.ignored_report(u, cid)
            return
        self.reports += 1
        if u.exchange_timestamp is not None:  # its history row: the time Kite gave it
            _stamp(ev.get("updates"), cid, int(u.exchange_timestamp.timestamp() * 1e9))
        self.absorb(ev)
        self.dispatch()

    # ---------------------------------------------------------------- commands out
    def dispatch(self) -> None:
        """Starts every command the kernel queued (in order per order), after
        moving the kernel to the clock's time."""
        if self.clock is not None:
            self._advance_clock(force=self.live.pending_commands > 0)
        for cmd in self.live.take_commands():
            local = int(cmd["order_id"])
            before = self._chains.get(local)
            task = asyncio.get_running_loop().create_task(self._execute(cmd, before))
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

    async def _execute(self, cmd: dict[str, Any], before: asyncio.Task[None] | None) -> None:
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
            if req.client_order_id.endswith(":ENTRY"):
                await self._plan_on_record()
            broker_id = await self._place_through_rate_limit(req)
        except OrderFinishedError as exc:
            # This very order reached the broker before and is over (a duplicate):
            # the kernel hears the broker's report of it, never a working order.
            order_log(log, req.client_order_id).warning("%s", exc)
            self._map(local, req.client_order_id, exc.order.order_id)
            self.on_update(exc.order)
            return
        except Exception as exc:  # every failure is judged below
            order_log(log, req.client_order_id).warning("placement failed: %s", exc)
            if not _certainly_not_placed(exc) and await self._found(local, req):
                return
            if isinstance(exc, EntryRefusedError):  # said why, as a refusal up front
                self._entry_refused(req, str(exc))
            # The kernel hears REJECTED; should the order turn up after all, its
            # reports are handled as an orphan's (see _orphan), never dropped.
            self.orphans.mark_absent(req)
            self._answer(self.live.on_place_failed(local, self.now_ns(), str(exc)))
            return
        if broker_id.startswith(LOCAL_REJECT_PREFIX):
            return  # the REJECTED report (with Kite's reason) is on the stream
        self._map(local, req.client_order_id, broker_id)

    async def _place_through_rate_limit(self, req: OrderRequest) -> str:
        """A protective order refused for the rate (429, certainly not placed) is
        sent again after a short wait: a lost stop would make the kernel exit a
        healthy position at market. An entry is given up at once (the kernel's
        plan is cancelled; the next signal may trade)."""
        protective = not req.client_order_id.endswith(":ENTRY")
        delay = self.rate_limited_backoff_s
        for attempt in range(1, self.rate_limited_attempts + 1):
            try:
                return await self.journal.place_order(req)
            except BrokerError as exc:
                if exc.code != 429 or not protective or attempt == self.rate_limited_attempts:
                    raise
                order_log(log, req.client_order_id).warning(
                    "rate limited (429), attempt %d: placing again in %.2f s", attempt, delay
                )
                await asyncio.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")  # the loop returns or raises

    def _entry_refused(self, req: OrderRequest, reason: str) -> None:
        """The journal could not record an entry (the database went away before the
        writer noticed): nothing was placed. A DB_UNAVAILABLE risk event says why
        (through the writer's retained queue); the bracket then ends CANCELLED and
        the engine gets the plan's risk back."""
        plan_id, _ = parse_order_client_id(req.client_order_id)
        details = {"plan_id": plan_id, "error": reason}
        self.shell_risk_events += 1
        self.metrics.risk_blocks.labels(reason="DB_UNAVAILABLE").inc()
        self.writer.submit(
            RiskEventRow(
                ts=utc(self.now_ns()),
                reason="DB_UNAVAILABLE",
                session_id=self.persister.session_id,
                details=details,
            )
        )
        self.bus.publish("risk", {"reason": "DB_UNAVAILABLE", **details})

    async def _plan_on_record(self) -> None:
        """An entry waits until its plan (decision, signal) is written: a process
        killed after the entry reached Kite but before the writer's batch leaves a
        position no restart can adopt (no decision row), unprotected by any OCO.
        Stops and exits never wait for this."""
        try:
            async with asyncio.timeout(self.plan_record_timeout_s):
                await self.writer.flush()
        except TimeoutError:
            raise EntryRefusedError(
                "database unavailable: the plan is not on record, entry not placed"
            ) from None

    async def _found(self, local: int, req: OrderRequest) -> bool:
        """Whether a placement whose outcome is unknown is at the broker after all:
        looked up by tag, a bounded number of times (Kite's order book can lag its
        answer). Found, it is the kernel's order: mapped, journalled, reported."""
        olog = order_log(log, req.client_order_id, tag=req.tag)
        for attempt in range(self.lookup_attempts):
            if local in self.broker_ids:
                return True  # its report came on the stream meanwhile
            if attempt:
                await asyncio.sleep(self.lookup_delay_s)
            try:
                found = await self.journal.find_by_tag(req.tag)
            except Exception as exc:  # a failed look-up is one attempt
                olog.warning("look-up %d of the tag failed: %s", attempt + 1, exc)
                continue
            if found is not None:
                olog.warning("outcome unknown, but at the broker as %s", found.order_id)
                self.writer.submit(
                    OrderAck(
                        client_order_id=req.client_order_id,
                        broker_order_id=found.order_id,
                        ts=datetime.now(UTC),
                    )
                )
                self._map(local, req.client_order_id, found.order_id)
                self.on_update(found)
                return True
        return local in self.broker_ids

    def _map(self, local: int, client_order_id: str, broker_id: str) -> None:
        self.broker_ids.setdefault(local, broker_id)
        self._cid_of_broker.setdefault(broker_id, client_order_id)

    async def _broker_id(self, local: int, client_order_id: str) -> str | None:
        """The broker's id of a kernel order; an adopted order the database never
        saw acknowledged (a crash between Kite's answer and the journal) is looked
        up by its tag once rather than left working unseen."""
        known = self.broker_ids.get(local)
        if known is not None or client_order_id in self.orphans.absent:
            return known
        try:
            found = await self.journal.find_by_tag(broker_tag(client_order_id))
        except Exception as exc:  # the caller answers the kernel as for an unknown id
            order_log(log, client_order_id).warning("look-up of the tag failed: %s", exc)
            return None
        if found is None or found.order_id.startswith(LOCAL_REJECT_PREFIX):
            return None
        self._map(local, client_order_id, found.order_id)
        return found.order_id

    async def _modify(self, cmd: dict[str, Any]) -> None:
        local = int(cmd["order_id"])
        broker_id = await self._broker_id(local, cmd["client_order_id"])
        if broker_id is None:
            self._answer(self.live.on_modify_answer(local, self.now_ns(), "order not placed"))
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
            # A lost answer is not a refusal: the order book says what happened.
            unknown = exc.retryable and exc.code != 429
            if not (unknown and await self._modified(broker_id, cmd)):
                self._answer(self.live.on_modify_answer(local, self.now_ns(), str(exc)))
                return
            order_log(log, cmd["client_order_id"]).warning(
                "modify %s: %s, but the order book shows it applied", broker_id, exc
            )
        self._answer(self.live.on_modify_answer(local, self.now_ns(), None))

    async def _modified(self, broker_id: str, cmd: dict[str, Any]) -> bool:
        """Whether the broker's order now has every field the modification set."""
        tick = self.instruments[int(cmd["token"])].tick_size * 100
        for attempt in range(self.lookup_attempts):
            if attempt:
                await asyncio.sleep(self.lookup_delay_s)
            try:
                book = await self.journal.orders()
            except Exception:  # a failed look-up is one attempt
                continue
            o = next((u for u in book if u.order_id == broker_id), None)
            if o is None:
                continue

            def same(paise: int | None, rupees: float | None) -> bool:
                return paise is None or (rupees is not None and abs(rupees * 100 - paise) < tick)

            return (
                (cmd["qty"] is None or o.quantity == int(cmd["qty"]))
                and same(cmd["price"], o.price)
                and same(cmd["trigger"], o.trigger_price)
                and (not cmd["order_type"] or o.order_type.value == cmd["order_type"])
            )
        return False

    async def _cancel(self, cmd: dict[str, Any]) -> None:
        local = int(cmd["order_id"])
        broker_id = await self._broker_id(local, cmd["client_order_id"])
        if broker_id is None:
            return  # never placed: the kernel heard the placement fail
        for attempt in range(self.cancel_retry.attempts):
            try:
                await self.journal.cancel_order(broker_id)
                return
            except BrokerError as exc:
                if local in self._done:
                    return  # its final report came meanwhile: nothing left to cancel
                if exc.retryable and attempt + 1 < self.cancel_retry.attempts:
                    # Unknown outcome or rate limited: a stop left working after its
                    # position is flat opens a position of its own. Send it again.
                    order_log(log, cmd["client_order_id"]).warning(
                        "cancel %s: %s; sending it again", broker_id, exc
                    )
                    await asyncio.sleep(self.cancel_retry.backoff_s * 2**attempt)
                    continue
                self._answer(self.live.on_cancel_refused(local, self.now_ns(), str(exc)))
                return

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    def _critical(self, cid: str, code: str, message: str) -> None:
        plan_id = cid.partition(":")[0]
        self._on_alert(
            {"ts_ns": self.now_ns(), "plan_id": plan_id, "severity": "CRITICAL", "code": code,
             "reason": message}
        )  # fmt: skip

    def _answer(self, ev: EventBatch | None) -> None:
        self.absorb(ev)
        self.dispatch()

    # ---------------------------------------------------------------- adoption
    async def load_earlier_orders(self, pool: Pool, day: date) -> None:
        """The day's orders earlier processes placed (broker id -> client id): their
        reports are ours, not an unknown order's, even when no machine adopted them
        (an adopted bracket's filled entry, a cancelled child)."""
        rows = await pool.fetch(
            "SELECT o.broker_order_id, o.client_order_id FROM orders o "
            "JOIN sessions s ON s.id = o.session_id "
            "WHERE s.trading_date = $1 AND o.broker_order_id IS NOT NULL",
            day,
        )
        self._earlier_orders = {str(r["broker_order_id"]): r["client_order_id"] for r in rows}

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
            decision_id=plan.decision_id,
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
        broker ids; what is missing (a stop, a target) is placed (a lost stop
        under a new client id, STOP1, STOP2, ...).

        Every key of ``order_ids`` must be a client order id of this plan:
        another plan's order is refused (ValueError naming it), before
        anything is adopted; it would otherwise be attached to this bracket."""
        _check_order_ids(spec.plan_id, order_ids)
        ids, ev = self.live.adopt(
            self.now_ns(),
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


def _check_order_ids(plan_id: str, order_ids: Mapping[str, str]) -> None:
    for cid in order_ids:
        try:
            owner, _ = parse_order_client_id(cid)
        except (AitrappError, ValueError) as exc:
            raise ValueError(f"order_ids: key {cid!r} is not a client order id: {exc}") from None
        if owner != plan_id:
            raise ValueError(
                f"order_ids: key {cid!r} (broker order {order_ids[cid]}) belongs to plan "
                f"{owner}, not {plan_id}: adoption refused"
            )


__all__ = ["LiveKernelDriver"]
