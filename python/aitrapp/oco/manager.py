"""OCOManager: runs one Rust `OcoBracket` machine per plan against a `Broker`.

Per bracket, everything is single flight (one ``asyncio.Lock``): an input
(broker update, timer, price, flatten) is fed to the machine, the transition
is published (``on_transition`` first: persisting it is the write-ahead log
of the orders it commands), its commands are executed in order through the
broker, and what the broker answers (modify acks, refused cancels, failed
placements, looked-up orders) is fed back until the machine is quiet.

The manager does not consume ``broker.updates()`` itself (the order watcher
owns that stream): hand it every update with ``on_order_update`` or let
``pump`` do it. Duplicated, reordered and stale updates are fine: the
machine compares cumulative fills and ignores what it already knows.

Hooks must not call ``flatten`` (it would wait on the bracket they run in).
``flatten`` sends exits first and cleans up after (``aitrapp.oco.flatten``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

from aitrapp._core import (
    AdoptedOrder,
    BracketSpec,
    IdError,
    Instrument,
    OcoBracket,
    OcoCommand,
    OcoError,
    OcoTransition,
    Price,
    broker_tag,
    parse_order_client_id,
)
from aitrapp.brokers.base import Broker, OrderUpdate, Product
from aitrapp.oco.errors import BracketExistsError, FlattenTimeoutError, OcoHaltedError
from aitrapp.oco.execution import (
    CancelRefusedFilled,
    CommandExecutor,
    Feedback,
    ModifyAnswer,
    PlacementFailed,
)
from aitrapp.oco.flatten import FlattenReport, split_flatten
from aitrapp.oco.records import (
    BracketResult,
    BracketSnapshot,
    EntryFill,
    ExitFill,
    Hook,
    OcoAlert,
    TransitionRecord,
    WorkingOrder,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

_TERMINAL = ("CLOSED", "CANCELLED")
_LOG_LEVEL = {
    "INFO": logging.INFO,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "CRITICAL": logging.CRITICAL,
}


@dataclass(frozen=True, slots=True)
class _Update:
    tag: str
    update: OrderUpdate


@dataclass(frozen=True, slots=True)
class _Flatten:
    pass


@dataclass(frozen=True, slots=True)
class _Time:
    now_ns: int


@dataclass(frozen=True, slots=True)
class _PriceTick:
    ltp: float | Price
    atr: float | Price | None


_Input = (
    _Update | ModifyAnswer | CancelRefusedFilled | PlacementFailed | _Flatten | _Time | _PriceTick
)


@dataclass(slots=True)
class _Slot:
    machine: OcoBracket
    instrument: Instrument
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    order_ids: dict[str, str] = field(default_factory=dict)  # client_order_id -> broker id
    seq: int = 0
    # flatten: stops turned into market exits (client id -> loop time), and the
    # cancels the machine asked for them, sent only if the market order hangs
    converted: dict[str, float] = field(default_factory=dict)
    held_cancels: dict[str, OcoCommand] = field(default_factory=dict)


class OCOManager:
    def __init__(
        self,
        broker: Broker,
        *,
        clock: Callable[[], int] = time.time_ns,
        product: Product = Product.MIS,
        market_protection: float = -1.0,
        on_transition: Hook[TransitionRecord] | None = None,
        on_entry_fill: Hook[EntryFill] | None = None,
        on_exit_fill: Hook[ExitFill] | None = None,
        on_terminal: Hook[BracketResult] | None = None,
        on_alert: Hook[OcoAlert] | None = None,
        attempts: int = 3,
        retry_delay_s: float = 0.2,
    ) -> None:
        self._clock = clock
        self._exec = CommandExecutor(
            broker,
            product=product,
            market_protection=market_protection,
            attempts=attempts,
            retry_delay_s=retry_delay_s,
        )
        self._on_transition = on_transition
        self._on_entry_fill = on_entry_fill
        self._on_exit_fill = on_exit_fill
        self._on_terminal = on_terminal
        self._on_alert = on_alert
        self._slots: dict[str, _Slot] = {}
        self._cid_by_tag: dict[str, str] = {}
        self._cid_by_order_id: dict[str, str] = {}
        self._halted = False
        self._progress = asyncio.Event()
        self._moved = asyncio.Event()  # replaced on every transition (wakes every waiter)
        self.commands_run: Counter[str] = Counter()  # broker commands by kind, TO_MARKET too
        self.last_flatten: FlattenReport | None = None

    # ---------------------------------------------------------------- inputs

    @property
    def halted(self) -> bool:
        """True from ``flatten`` until ``resume``: no new brackets."""
        return self._halted

    async def open_bracket(self, spec: BracketSpec) -> str:
        """Starts a bracket (places its ENTRY); returns the bracket id (the plan id)."""
        # Checked and registered before the first await: a flatten that has
        # started is never raced, and one that starts later sees this bracket.
        if self._halted:
            raise OcoHaltedError(
                f"flatten in progress or done: bracket {spec.plan_id} refused until resume()"
            )
        plan_id = spec.plan_id
        if plan_id in self._slots:
            raise BracketExistsError(f"bracket {plan_id} is already managed")
        now = self._clock()
        machine, commands = OcoBracket.open(spec, now)
        slot = _Slot(machine, spec.instrument)
        self._slots[plan_id] = slot
        async with slot.lock:
            record = TransitionRecord(
                plan_id, 0, now, "NEW", machine.state, "OPEN", repr(spec), tuple(commands), ()
            )
            await self._call(self._on_transition, record)
            await self._alerts(slot, commands, now)
            await self._drain(slot, await self._execute(slot, commands))
        return plan_id

    async def adopt_bracket(
        self,
        spec: BracketSpec,
        *,
        entry_filled: int,
        entry_avg: float | Price,
        children: list[AdoptedOrder],
        order_ids: dict[str, str],
    ) -> str:
        """Takes over an open bracket of an earlier process (after a restart).

        ``entry_filled`` units were bought (sold) at ``entry_avg``; ``children``
        are its stop / take-profit orders as the broker has them and
        ``order_ids`` maps their client order ids to broker order ids, so
        later updates route here. Whatever the bracket lacks (a missing stop)
        is placed at once. Allowed during a flatten (the position exists
        either way): the adopted bracket is flattened too.
        """
        plan_id = spec.plan_id
        if plan_id in self._slots:
            raise BracketExistsError(f"bracket {plan_id} is already managed")
        for cid in order_ids:
            try:
                owner, _ = parse_order_client_id(cid)
            except IdError as e:
                raise ValueError(f"order_ids: key {cid!r} is not a client order id: {e}") from e
            if owner != plan_id:
                raise ValueError(f"order_ids: key {cid!r} belongs to plan {owner}, not {plan_id}")
        now = self._clock()
        machine, commands = OcoBracket.adopt(spec, now, entry_filled, entry_avg, children)
        slot = _Slot(machine, spec.instrument)
        self._slots[plan_id] = slot
        for o in machine.orders():
            self._cid_by_tag[broker_tag(o.client_order_id)] = o.client_order_id
        for cid, order_id in order_ids.items():
            slot.order_ids[cid] = order_id
            self._cid_by_order_id[order_id] = cid
        async with slot.lock:
            detail = (
                f"{spec!r} entry_filled={entry_filled} entry_avg={entry_avg} children={children!r}"
            )
            record = TransitionRecord(
                plan_id, 0, now, "NEW", machine.state, "ADOPT", detail, tuple(commands), ()
            )
            await self._call(self._on_transition, record)
            await self._alerts(slot, commands, now)
            await self._drain(slot, await self._execute(slot, commands))
            if self._halted:
                await self._drain(slot, [_Flatten()])
        log.info("adopted bracket %s: %s net=%d", plan_id, machine.state, machine.net_qty)
        return plan_id

    async def on_order_update(self, update: OrderUpdate) -> bool:
        """Feeds one broker order update; False if it is not a bracket order."""
        cid = (
            update.client_order_id
            or self._cid_by_tag.get(update.tag or "")
            or self._cid_by_order_id.get(update.order_id)
        )
        if cid is None:
            return False
        try:
            plan_id, tag = parse_order_client_id(cid)
        except IdError:
            return False
        slot = self._slots.get(plan_id)
        if slot is None:
            return False
        # Recorded before waiting for the lock: a placement whose call failed
        # learns from this that the broker has the order.
        slot.order_ids.setdefault(cid, update.order_id)
        self._cid_by_order_id[update.order_id] = cid
        async with slot.lock:
            await self._drain(slot, [_Update(tag, update)])
        return True

    async def pump(self, updates: AsyncIterator[OrderUpdate]) -> None:
        """Feeds every update of a stream (e.g. ``broker.updates()``) until it ends."""
        async for update in updates:
            await self.on_order_update(update)

    async def advance_time(self, now_ns: int | None = None) -> None:
        """Timers of every open bracket: entry timeout, time stop, EOD, exit retries."""
        now = self._clock() if now_ns is None else now_ns
        for slot in self._open_slots():
            await self._submit(slot, _Time(now))

    async def on_price(
        self, instrument_token: int, price: float | Price, atr: float | Price | None = None
    ) -> None:
        """Last price (and ATR) of an instrument, for trailing stops."""
        for slot in self._open_slots():
            if slot.instrument.instrument_token == instrument_token:
                await self._submit(slot, _PriceTick(price, atr))

    async def flatten(
        self,
        *,
        timeout_s: float = 30.0,
        tick_s: float = 1.0,
        convert_stops: bool = True,
        convert_grace_s: float = 2.0,
    ) -> FlattenReport:
        """Squares every bracket: exits first, then clean-up; returns once every
        bracket is terminal. New brackets are refused from the first moment
        until ``resume()``.

        First wave: each working stop becomes a market exit with one modify
        (``convert_stops``; a refused one is cancelled and exited as the machine
        plans), uncovered quantity exits at market, working entries are
        cancelled. Second wave, once every first-wave request is answered: the
        take-profit cancels. A converted stop still unfilled after
        ``convert_grace_s`` is cancelled (the machine then exits at market).

        Raises ``FlattenTimeoutError`` (naming what is still open) after
        ``timeout_s``; ``last_flatten`` holds the report either way. Timers are
        advanced every ``tick_s`` while waiting, so exits backing off after
        rejections are retried.
        """
        self._halted = True
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        deadline = t0 + timeout_s
        counts = self.commands_run.copy()
        slots = self._open_slots()
        flat = asyncio.ensure_future(self._until_flat(slots))
        try:
            later = await asyncio.gather(*(self._flatten_exits(s, convert_stops) for s in slots))
            await asyncio.gather(
                *(
                    self._flatten_cleanup(s, c, convert_grace_s)
                    for s, c in zip(slots, later, strict=True)
                )
            )
            while True:
                self._progress.clear()
                if not self._open_slots():
                    break
                remaining = deadline - loop.time()
                if remaining <= 0:
                    self.last_flatten = self._flatten_report(slots, counts, t0, flat, None)
                    raise FlattenTimeoutError(
                        f"flatten timed out after {timeout_s}s; still open: {self._describe_open()}"
                    )
                await self._cancel_hanging_conversions(convert_grace_s)
                try:
                    await asyncio.wait_for(self._progress.wait(), min(tick_s, remaining))
                except TimeoutError:
                    await self.advance_time()
            report = self._flatten_report(slots, counts, t0, flat, loop.time() - t0)
            self.last_flatten = report
            return report
        finally:
            flat.cancel()

    async def _until_flat(self, slots: list[_Slot]) -> float:
        """The loop time at which every one of ``slots`` has a net position of zero."""
        while any(s.machine.net_qty != 0 for s in slots):
            await self._moved.wait()
        return asyncio.get_running_loop().time()

    def _flatten_report(
        self,
        slots: list[_Slot],
        counts: Counter[str],
        t0: float,
        flat: asyncio.Future[float],
        clean_after_s: float | None,
    ) -> FlattenReport:
        done = self.commands_run - counts
        if flat.done() and not flat.cancelled():
            flat_after_s: float | None = flat.result() - t0
        elif all(s.machine.net_qty == 0 for s in slots):
            flat_after_s = asyncio.get_running_loop().time() - t0
        else:
            flat_after_s = None
        return FlattenReport(
            brackets=len(slots),
            converted_stops=done["TO_MARKET"],
            market_exits=done["EXIT_AT_MARKET"],
            cancels=done["CANCEL"],
            flat_after_s=flat_after_s,
            clean_after_s=clean_after_s,
        )

    async def _flatten_exits(self, slot: _Slot, convert_stops: bool) -> list[OcoCommand]:
        """The machine's Flatten, first wave: exits now; returns the clean-up for later."""
        async with slot.lock:
            now = self._clock()
            try:
                t = slot.machine.flatten(now_ns=now)
            except OcoError as e:
                await self._machine_error(slot, _Flatten(), e, now)
                return []
            if not t.changed:
                return []
            split = split_flatten(t.commands, slot.machine, convert_stops=convert_stops)
            await self._publish(slot, t, note=split.note())
            feedback: list[_Input] = []
            for cmd in split.to_market:
                feedback += await self._to_market(slot, cmd)
            feedback += await self._execute(slot, split.now)
            await self._drain(slot, feedback)
            return list(split.later)

    async def _to_market(self, slot: _Slot, cmd: OcoCommand) -> list[_Input]:
        cid, tag = cmd.client_order_id or "", cmd.tag or ""
        outcome, answers = await self._exec.to_market(cmd, slot.order_ids.get(cid))
        feedback: list[_Input] = [
            _Update(tag, f) if isinstance(f, OrderUpdate) else f for f in answers
        ]
        if outcome == "converted":
            self.commands_run["TO_MARKET"] += 1
            slot.converted[cid] = asyncio.get_running_loop().time()
            slot.held_cancels[cid] = cmd
        elif outcome == "refused":  # the machine's own plan: cancel, exit once confirmed
            feedback += await self._execute(slot, [cmd])
        return feedback

    async def _flatten_cleanup(
        self, slot: _Slot, commands: list[OcoCommand], wait_flat_s: float
    ) -> None:
        """Second wave. The bracket's exit fill is let in first (for at most
        ``wait_flat_s``): a cancel waiting for its turn at the broker holds the
        bracket's lock, and every update behind it in the stream would wait too."""
        if not commands:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait_flat_s):
                while slot.machine.net_qty != 0:
                    await self._moved.wait()
        async with slot.lock:
            await self._drain(slot, await self._execute(slot, commands))

    async def _cancel_hanging_conversions(self, grace_s: float) -> None:
        """A stop turned MARKET that has not filled (outside its protection band):
        send the cancel the machine asked for, so it exits at market itself."""
        now = asyncio.get_running_loop().time()
        for slot in self._open_slots():
            due = [c for c, at in slot.converted.items() if now - at >= grace_s]
            for cid in due:
                cmd = slot.held_cancels.pop(cid, None)
                live = any(o.client_order_id == cid for o in slot.machine.working_orders())
                if cmd is not None and live:
                    log.warning(
                        "%s turned MARKET but unfilled after %.1fs: cancelling", cid, grace_s
                    )
                    async with slot.lock:
                        await self._drain(slot, await self._execute(slot, [cmd]))

    def resume(self) -> None:
        """Accept new brackets again after a flatten."""
        self._halted = False

    # ---------------------------------------------------------------- read side

    def brackets(self) -> list[BracketSnapshot]:
        return [self._snapshot(pid, s) for pid, s in self._slots.items()]

    def bracket(self, bracket_id: str) -> BracketSnapshot:
        return self._snapshot(bracket_id, self._slots[bracket_id])

    def working_orders(self) -> list[WorkingOrder]:
        return [o for pid, s in self._slots.items() for o in self._working(pid, s)]

    # ---------------------------------------------------------------- the loop

    def _open_slots(self) -> list[_Slot]:
        return [s for s in self._slots.values() if not s.machine.is_terminal]

    async def _submit(self, slot: _Slot, item: _Input) -> None:
        async with slot.lock:
            await self._drain(slot, [item])

    async def _drain(self, slot: _Slot, inputs: Iterable[_Input]) -> None:
        """Feed, publish, execute, feed back: until the machine is quiet."""
        queue: deque[_Input] = deque(inputs)
        while queue:
            item = queue.popleft()
            now = item.now_ns if isinstance(item, _Time) else self._clock()
            try:
                t = self._feed(slot.machine, item, now)
            except OcoError as e:
                await self._machine_error(slot, item, e, now)
                continue
            if not t.changed:
                continue
            await self._publish(slot, t)
            queue.extend(await self._execute(slot, t.commands))

    async def _machine_error(self, slot: _Slot, item: _Input, e: OcoError, now: int) -> None:
        # An impossible input must not stop the bracket: say so loudly.
        log.error("bracket %s refused %r: %s", slot.machine.plan_id, item, e)
        await self._call(
            self._on_alert,
            OcoAlert(slot.machine.plan_id, "ERROR", "MACHINE_ERROR", str(e), now),
        )

    @staticmethod
    def _feed(m: OcoBracket, item: _Input, now: int) -> OcoTransition:
        match item:
            case _Update(tag, u):
                return m.on_order(
                    tag,
                    u.status.value,
                    u.filled_quantity,
                    u.average_price,
                    now_ns=now,
                    reason=u.status_message,
                )
            case ModifyAnswer(tag, seq, True, _):
                return m.on_modify_ack(tag, seq, now_ns=now)
            case ModifyAnswer(tag, seq, False, reason):
                return m.on_modify_rejected(tag, seq, reason, now_ns=now)
            case CancelRefusedFilled(tag):
                return m.on_cancel_rejected_filled(tag, now_ns=now)
            case PlacementFailed(tag, reason):
                return m.on_order(tag, "REJECTED", 0, 0, now_ns=now, reason=reason)
            case _Flatten():
                return m.flatten(now_ns=now)
            case _Time(at):
                return m.advance_time(at)
            case _PriceTick(ltp, atr):
                return m.on_price(ltp, now_ns=now, atr=atr)
        raise TypeError(f"unknown OCO input {item!r}")  # pragma: no cover

    async def _execute(self, slot: _Slot, commands: Iterable[OcoCommand]) -> list[_Input]:
        out: list[_Input] = []
        for cmd in commands:
            if cmd.kind == "ALERT":
                continue
            cid, tag = cmd.client_order_id or "", cmd.tag or ""
            try:
                feedback = await self._run_command(slot, cmd, cid)
            except Exception as e:  # a bug below must not leave the machine misinformed
                log.exception("executing %r failed", cmd)
                alert = OcoAlert(
                    slot.machine.plan_id,
                    "CRITICAL",
                    "EXECUTION_ERROR",
                    f"{cmd!r}: {e}",
                    self._clock(),
                )
                await self._call(self._on_alert, alert)
                feedback = self._failed(cmd, str(e))
            for f in feedback:
                out.append(_Update(tag, f) if isinstance(f, OrderUpdate) else f)
        return out

    async def _run_command(self, slot: _Slot, cmd: OcoCommand, cid: str) -> list[Feedback]:
        self.commands_run[cmd.kind] += 1
        if cmd.kind in ("PLACE_ORDER", "EXIT_AT_MARKET"):
            self._cid_by_tag[broker_tag(cid)] = cid
            order_id, feedback = await self._exec.place(
                cmd, slot.instrument, partial(slot.order_ids.get, cid)
            )
            if order_id is not None:
                slot.order_ids[cid] = order_id
                self._cid_by_order_id[order_id] = cid
            return feedback
        if cmd.kind == "MODIFY":
            return await self._exec.modify(cmd, slot.order_ids.get(cid))
        if cmd.kind == "CANCEL":
            return await self._exec.cancel(cmd, slot.order_ids.get(cid))
        raise ValueError(f"unknown command kind {cmd.kind!r}")

    @staticmethod
    def _failed(cmd: OcoCommand, reason: str) -> list[Feedback]:
        tag = cmd.tag or ""
        if cmd.kind in ("PLACE_ORDER", "EXIT_AT_MARKET"):
            return [PlacementFailed(tag, reason)]
        if cmd.kind == "MODIFY":
            return [ModifyAnswer(tag, cmd.seq or 0, False, reason)]
        return []

    # ---------------------------------------------------------------- reporting

    async def _publish(self, slot: _Slot, t: OcoTransition, *, note: str = "") -> None:
        m = slot.machine
        slot.seq += 1
        self._progress.set()
        self._moved.set()
        self._moved = asyncio.Event()
        record = TransitionRecord(
            m.plan_id,
            slot.seq,
            t.now_ns,
            t.from_state,
            t.to_state,
            t.event,
            t.event_detail + note,
            tuple(t.commands),
            tuple(t.fills),
        )
        await self._call(self._on_transition, record)
        for f in t.fills:
            price = f.notional_paise / f.qty / 100
            if f.role == "ENTRY":
                fill = EntryFill(
                    bracket_id=m.plan_id,
                    client_order_id=f.client_order_id,
                    qty=f.qty,
                    price=price,
                    cum_qty=f.cum_filled,
                    avg_price=f.avg_price.rupees,
                    now_ns=t.now_ns,
                )
                await self._call(self._on_entry_fill, fill)
            else:
                # A stop the flatten turned into a market exit fills for the flatten.
                reason = "FLATTEN" if f.client_order_id in slot.converted else f.exit_reason
                exit_fill = ExitFill(
                    bracket_id=m.plan_id,
                    client_order_id=f.client_order_id,
                    tag=f.tag,
                    role=f.role,
                    reason=reason or "",
                    side=f.side,
                    qty=f.qty,
                    price=price,
                    cum_qty=f.cum_filled,
                    avg_price=f.avg_price.rupees,
                    now_ns=t.now_ns,
                )
                await self._call(self._on_exit_fill, exit_fill)
        await self._alerts(slot, t.commands, t.now_ns)
        if t.to_state in _TERMINAL and t.from_state not in _TERMINAL:
            result = BracketResult(
                m.plan_id,
                t.to_state,
                m.entry_filled,
                m.entry_avg_price.rupees,
                m.exited_qty,
                m.closing_reason,
                m.realized_pnl_paise,
                t.now_ns,
            )
            await self._call(self._on_terminal, result)

    async def _alerts(self, slot: _Slot, commands: Iterable[OcoCommand], now: int) -> None:
        for c in commands:
            if c.kind != "ALERT":
                continue
            severity, code, message = c.severity or "ERROR", c.alert_code or "", c.message or ""
            log.log(
                _LOG_LEVEL.get(severity, logging.ERROR), "OCO %s %s: %s", severity, code, message
            )
            alert = OcoAlert(slot.machine.plan_id, severity, code, message, now)
            await self._call(self._on_alert, alert)

    @staticmethod
    async def _call(hook: Hook[T] | None, value: T) -> None:
        if hook is None:
            return
        try:
            await hook(value)
        except Exception:
            # A failing listener (e.g. the database) must not stop protecting
            # the position: log it and carry on.
            log.exception("OCO hook %r failed", hook)

    def _working(self, bracket_id: str, slot: _Slot) -> list[WorkingOrder]:
        return [
            WorkingOrder(
                bracket_id=bracket_id,
                client_order_id=o.client_order_id,
                broker_order_id=slot.order_ids.get(o.client_order_id),
                tag=o.tag,
                role=o.role,
                side=o.side,
                order_type=o.order_type,
                status=o.status,
                qty=o.wanted_qty,
                filled=o.filled,
                price=o.price.rupees if o.price is not None else None,
                trigger=o.trigger.rupees if o.trigger is not None else None,
            )
            for o in slot.machine.working_orders()
        ]

    def _snapshot(self, bracket_id: str, slot: _Slot) -> BracketSnapshot:
        m = slot.machine
        return BracketSnapshot(
            bracket_id=bracket_id,
            tradingsymbol=slot.instrument.tradingsymbol,
            instrument_token=slot.instrument.instrument_token,
            side=m.spec.side,
            state=m.state,
            planned_qty=m.spec.qty,
            entry_filled=m.entry_filled,
            entry_avg_price=m.entry_avg_price.rupees,
            exited_qty=m.exited_qty,
            net_qty=m.net_qty,
            stop_trigger=m.stop_target.rupees,
            closing_reason=m.closing_reason,
            realized_pnl_paise=m.realized_pnl_paise,
            working_orders=tuple(self._working(bracket_id, slot)),
        )

    def _describe_open(self) -> str:
        parts = []
        for s in self._open_slots():
            m = s.machine
            orders = ", ".join(o.client_order_id for o in m.working_orders()) or "none"
            parts.append(f"{m.plan_id} {m.state} net={m.net_qty} working=[{orders}]")
        return "; ".join(parts)
