"""The LIVE kernel shell without the runtime: ``LiveKernel`` with its
:class:`~aitrapp.kernel.live.LiveKernelDriver`, executing through the
write-ahead :class:`~aitrapp.brokers.journal.JournaledBroker` into a broker
(the fake Kite's ``KiteBroker`` on loopback, or the in-memory ``FakeBroker``),
persisting into a real database.

Brackets are opened the way a restarted process finds them: an earlier
process placed (and journalled) the entry, the stop and the target, the entry
filled, and the driver adopts the bracket with the broker's ids. Every event
batch the kernel reports is kept (``events``) so a test reads trades,
transitions, alerts and order commands as the kernel gave them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as datetime_time
from typing import Any
from uuid import UUID, uuid4

from aitrapp import broker_tag, order_client_id
from aitrapp._core import AdoptedOrder, BracketSpec, Instrument, LiveKernel, Price
from aitrapp.brokers.base import Broker, OrderRequest, OrderType
from aitrapp.brokers.journal import JournaledBroker
from aitrapp.bus import InProcessBus
from aitrapp.calendar import ist_ns
from aitrapp.config import EngineConfig
from aitrapp.db import repo
from aitrapp.db.pool import Pool
from aitrapp.db.repo import SessionRow
from aitrapp.db.writer import DbWriter
from aitrapp.kernel.events import EventBatch, rows
from aitrapp.kernel.live import LiveKernelDriver
from aitrapp.metrics import Metrics
from aitrapp.recovery.engine_restore import AdoptedPlan

DAY = date(2026, 1, 1)
T0 = ist_ns(DAY, datetime_time(10, 30))
SEC = 1_000_000_000
# Long 10 @ 2500.00, stop 2480.00, target 2540.00 (on the 0.05 and the 0.10 grid).
ENTRY, STOP, TP = "2500.00", "2480.00", "2540.00"


def plan(n: int) -> str:
    return f"{n:02x}" * 12


def cid(n: int, tag: str) -> str:
    return order_client_id(tag, plan(n))


class RecordingDriver(LiveKernelDriver):
    """The production driver; every event batch is also kept for the test."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.events: list[EventBatch] = []

    def absorb(self, ev: EventBatch | None) -> None:
        if ev:
            self.events.append(ev)
        super().absorb(ev)

    def rows(self, table: str) -> list[dict[str, Any]]:
        return [r for ev in self.events for r in rows(ev, table)]


@dataclass
class LiveRig:
    live: RecordingDriver
    journal: JournaledBroker
    # The journal of the process that ran before this one (its own session).
    earlier: JournaledBroker
    writer: DbWriter
    pool: Pool
    session_id: UUID
    instruments: dict[int, Instrument]
    adopted: list[str] = field(default_factory=list)

    async def settle(self, quiet_s: float = 0.05, within_s: float = 10.0) -> None:
        """Until the kernel's commands are done and the broker's reports stop
        coming (``quiet_s`` without one; bounded by ``within_s``)."""
        async with asyncio.timeout(within_s):
            while True:
                await self.live.drain(within_s)
                before = self.live.reports + self.live.reports_ignored
                await asyncio.sleep(quiet_s)
                quiet = self.live.reports + self.live.reports_ignored == before
                if quiet and not self.live.commands_in_flight:
                    return

    def codes(self) -> list[str]:
        return [a["code"] for a in self.live.rows("alerts")]

    def trades(self) -> list[dict[str, Any]]:
        return self.live.rows("trades")

    def commands(self, action: str | None = None) -> list[dict[str, Any]]:
        return [o for o in self.live.rows("orders") if action is None or o["action"] == action]

    async def close(self) -> None:
        await self.live.stop()
        await self.live.drain()
        await self.writer.close(grace_s=5)


async def live_rig(
    broker: Broker,
    pool: Pool,
    instruments: dict[int, Instrument],
    *,
    start_ns: int = T0,
    consume: bool = True,
    venue: dict[str, Any] | None = None,
    fill_scope: str = "test:live",
) -> LiveRig:
    """A started driver over ``broker``; ``consume``: it reads the broker's
    stream (otherwise the test hands it reports with ``live.on_update``)."""
    earlier = SessionRow(trading_date=DAY, mode="LIVE", feed="kite", started_at=datetime.now(UTC))
    session = SessionRow(trading_date=DAY, mode="LIVE", feed="kite", started_at=datetime.now(UTC))
    for s in (earlier, session):
        assert await repo.create_session(pool, s)
    writer = DbWriter(pool)
    await writer.start()
    journal = JournaledBroker(broker, pool=pool, writer=writer, session_id=session.id)
    earlier_journal = JournaledBroker(broker, pool=pool, writer=writer, session_id=earlier.id)
    kernel = LiveKernel(
        EngineConfig().to_core_json(),
        list(instruments.values()),
        json.dumps({"command_latency_ns": 50_000_000, **(venue or {})}),
    )
    kernel.advance_time(start_ns)
    live = RecordingDriver(
        kernel,
        journal=journal,
        start_ns=start_ns,
        clock=None,
        writer=writer,
        bus=InProcessBus(),
        metrics=Metrics(),
        session_id=session.id,
        instruments=instruments,
        fill_scope=fill_scope,
    )
    if consume:
        live.start()
    return LiveRig(live, journal, earlier_journal, writer, pool, session.id, instruments)


def spec(inst: Instrument, n: int = 1, *, stop_type: str = "SL-M", qty: int = 10) -> BracketSpec:
    return BracketSpec(
        plan_id=plan(n),
        instrument=inst,
        side="BUY",
        qty=qty,
        entry_price=ENTRY,
        stop=STOP,
        take_profit=TP,
        stop_type=stop_type,
        stop_limit_buffer_ticks=1 if stop_type == "SL" else 0,
    )


def _req(inst: Instrument, n: int, role: str, **kw: Any) -> OrderRequest:
    c = cid(n, role)
    return OrderRequest(
        client_order_id=c,
        tag=broker_tag(c),
        exchange=inst.exchange,
        tradingsymbol=inst.tradingsymbol,
        instrument_token=inst.instrument_token,
        **kw,
    )


async def earlier_process(
    journal: JournaledBroker,
    inst: Instrument,
    n: int = 1,
    *,
    qty: int = 10,
    stop_type: str = "SL-M",
    fill_entry: Callable[[str], Any] | None = None,
) -> dict[str, str]:
    """What an earlier process did before it died: entry (MARKET; it fills at
    the broker's last price, or by ``fill_entry(broker_id)``), stop and target,
    each journalled before the broker heard of it. Returns tag -> broker id."""
    entry = _req(inst, n, "ENTRY", side="BUY", quantity=qty, order_type=OrderType.MARKET,
                 market_protection=-1)  # fmt: skip
    ids = {"ENTRY": await journal.place_order(entry)}
    if fill_entry is not None:
        await fill_entry(ids["ENTRY"])
    stop_paise = Price.from_rupees(STOP).paise
    if stop_type == "SL-M":
        stop = _req(inst, n, "STOP", side="SELL", quantity=qty, order_type=OrderType.SLM,
                    trigger_paise=stop_paise, market_protection=-1)  # fmt: skip
    else:  # a stop-limit: limit one tick under the trigger, no market protection
        stop = _req(inst, n, "STOP", side="SELL", quantity=qty, order_type=OrderType.SL,
                    trigger_paise=stop_paise, price_paise=stop_paise - inst.tick_paise)  # fmt: skip
    ids["STOP"] = await journal.place_order(stop)
    tp = _req(inst, n, "TP", side="SELL", quantity=qty, order_type=OrderType.LIMIT,
              price_paise=Price.from_rupees(TP).paise)  # fmt: skip
    ids["TP"] = await journal.place_order(tp)
    return ids


async def adopt(
    rig: LiveRig,
    inst: Instrument,
    n: int,
    ids: dict[str, str],
    *,
    stop_type: str = "SL-M",
    qty: int = 10,
    working: tuple[str, ...] = ("STOP", "TP"),
    dead: tuple[str, ...] = (),
) -> None:
    """The driver takes the bracket over: entry filled ``qty`` at 2500.00, the
    ``working`` children as the broker has them (by their broker ids), and the
    ``dead`` ones (over at the broker unfilled) as the database names them."""
    children = [AdoptedOrder(tag, qty, working=False, client_order_id=cid(n, tag)) for tag in dead]
    for tag in working:
        children.append(
            AdoptedOrder(
                tag,
                qty,
                working=True,
                client_order_id=cid(n, tag),
                price=TP if tag == "TP" else None,
                trigger=STOP if tag == "STOP" else None,
            )
        )
    order_ids = {cid(n, t): ids[t] for t in (*working, *dead)}
    rig.live.book_adopted(
        AdoptedPlan(
            plan_id=plan(n),
            decision_id=uuid4(),
            instrument=inst,
            side="BUY",
            strategy="EmaCross",
            entry_filled=qty,
            entry_avg=float(ENTRY),
            exited=0,
            opened_at=datetime.now(UTC),
        )
    )
    await rig.live.adopt_bracket(
        spec(inst, n, stop_type=stop_type, qty=qty),
        entry_filled=qty,
        entry_avg=Price.from_rupees(ENTRY),
        children=children,
        order_ids=order_ids,
    )
    rig.adopted.append(plan(n))


__all__ = [
    "DAY",
    "SEC",
    "T0",
    "LiveRig",
    "RecordingDriver",
    "adopt",
    "cid",
    "earlier_process",
    "live_rig",
    "plan",
    "spec",
]
