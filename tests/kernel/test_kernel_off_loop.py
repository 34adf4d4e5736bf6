"""A replay batch on the kernel's own thread (``KernelDriver.run_batch_off_loop``)
gives what the same batch run on the event loop gives: the same rows in the
same writes, the same read-outs. A kernel call from the loop while the batch is
still out (the API's /state, the kill switch, the database's health) waits for
it and absorbs its events first, so the session's event log stays in order and
nothing is absorbed twice; an error of the kernel reaches the feed; a cancelled
feed still absorbs the batch the kernel ran. (SYNTHETIC gappy data from
aitrapp.research.protection_check, seeded.)"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pytest

from aitrapp._core import Instrument, Kernel
from aitrapp.bus import InProcessBus
from aitrapp.config import EngineConfig
from aitrapp.feeds.base import TickBatch
from aitrapp.kernel.driver import KernelDriver
from aitrapp.kernel.events import EventBatch
from aitrapp.metrics import Metrics
from aitrapp.research.protection_check import GappyParams, gappy_days, gappy_instruments

BATCH = 700
SESSION = UUID(int=12)


class _Writer:
    """Keeps the parts of every bulk write, in the order submitted."""

    def __init__(self) -> None:
        self.parts: list[dict[str, list[Any]]] = []

    def submit_batch(self, bulk: Any) -> bool:
        self.parts.append(bulk.parts)
        return True


@dataclass
class _Session:
    driver: KernelDriver
    writer: _Writer
    absorbed: list[EventBatch]

    def read_outs(self) -> tuple[Any, ...]:
        d = self.driver
        return (
            d.open_positions(), d.working_orders(), d.trades, d.wins, d.net_pnl_today,
            d.commands, d.kernel.counters(), d.latency.count,
        )  # fmt: skip


def _day() -> tuple[list[Instrument], TickBatch]:
    instruments = gappy_instruments(3)
    _, ticks = next(iter(gappy_days(GappyParams(days=1, symbols=3, seed=5))))
    return instruments, ticks


def _session(instruments: list[Instrument]) -> _Session:
    kernel = Kernel(EngineConfig().to_core_json(), instruments, json.dumps({}), json.dumps({}))
    writer = _Writer()
    driver = KernelDriver(
        kernel,
        writer=writer,  # type: ignore[arg-type]
        bus=InProcessBus(),
        metrics=Metrics(),
        session_id=SESSION,
        instruments={i.instrument_token: i for i in instruments},
        fill_scope="paper:test",
    )
    absorbed: list[EventBatch] = []
    absorb = driver.absorb

    def spy(ev: EventBatch | None) -> None:
        if ev:
            absorbed.append(ev)
        absorb(ev)

    driver.absorb = spy  # type: ignore[method-assign]
    return _Session(driver, writer, absorbed)


def _batches(ticks: TickBatch) -> list[TickBatch]:
    return [ticks.slice(lo, min(lo + BATCH, len(ticks))) for lo in range(0, len(ticks), BATCH)]


def test_off_loop_batches_write_what_loop_batches_write() -> None:
    instruments, ticks = _day()
    on_loop, off_loop = _session(instruments), _session(instruments)
    for b in _batches(ticks):
        on_loop.driver.run_batch(b)

    async def feed() -> None:
        for b in _batches(ticks):
            await off_loop.driver.run_batch_off_loop(b)

    asyncio.run(feed())
    assert on_loop.driver.trades > 0  # the day traded: the comparison is not empty
    assert off_loop.writer.parts == on_loop.writer.parts
    assert off_loop.read_outs() == on_loop.read_outs()
    assert len(off_loop.absorbed) == len(on_loop.absorbed)


def _cut_with_open_bracket(instruments: list[Instrument], batches: list[TickBatch]) -> int:
    """The first batch after which a bracket is open (a flatten then has work)."""
    probe = _session(instruments)
    for i, b in enumerate(batches):
        probe.driver.run_batch(b)
        if probe.driver.kernel.open_brackets:
            return i
    raise AssertionError("the synthetic day never held a bracket open")


def test_a_kernel_call_while_a_batch_is_out_absorbs_it_first() -> None:
    instruments, ticks = _day()
    batches = _batches(ticks)
    cut = _cut_with_open_bracket(instruments, batches)
    flatten_at = int(batches[cut].ts_ns[-1])

    reference = _session(instruments)
    for b in batches[: cut + 1]:
        reference.driver.run_batch(b)
    reference.driver.flatten(flatten_at)
    for b in batches[cut + 1 :]:
        reference.driver.run_batch(b)

    session = _session(instruments)
    driver = session.driver

    async def feed() -> None:
        for b in batches[:cut]:
            await driver.run_batch_off_loop(b)
        out = asyncio.create_task(driver.run_batch_off_loop(batches[cut]))
        await asyncio.sleep(0)  # the batch is handed to the kernel's thread
        absorbed = len(session.absorbed)
        driver.flatten(flatten_at)  # e.g. the kill switch, before the feed resumes
        # The batch's events were absorbed before the flatten's: in order.
        assert len(session.absorbed) == absorbed + 2
        await out  # the feed resumes: its batch is not absorbed a second time
        assert len(session.absorbed) == absorbed + 2
        for b in batches[cut + 1 :]:
            await driver.run_batch_off_loop(b)

    asyncio.run(feed())
    assert reference.driver.commands.market_exits > 0  # the flatten sent exits
    assert session.writer.parts == reference.writer.parts
    assert session.read_outs() == reference.read_outs()


def test_a_read_while_a_batch_is_out_sees_its_events() -> None:
    instruments, ticks = _day()
    batches = _batches(ticks)
    session = _session(instruments)

    async def feed() -> None:
        out = asyncio.create_task(session.driver.run_batch_off_loop(batches[0]))
        await asyncio.sleep(0)
        assert session.driver.kernel.counters()["ticks"] == len(batches[0])
        assert session.driver.latency.count == len(batches[0])  # absorbed with it
        await out

    asyncio.run(feed())
    assert session.driver.latency.count == len(batches[0])


def test_an_error_of_the_kernel_reaches_the_feed() -> None:
    instruments, ticks = _day()
    session = _session(instruments)
    bad = ticks.slice(0, 10)

    class _Short:  # a column one row short: the kernel refuses the batch, naming it
        def __init__(self, b: TickBatch) -> None:
            self.token, self.ts_ns, self.last_price = b.token, b.ts_ns[:-1], b.last_price
            self.last_qty, self.volume, self.bid, self.ask = b.last_qty, b.volume, b.bid, b.ask
            self.oi = b.oi

        def __len__(self) -> int:
            return len(self.token)

    with pytest.raises(ValueError, match="ts_ns"):
        asyncio.run(session.driver.run_batch_off_loop(_Short(bad)))  # type: ignore[arg-type]
    assert session.absorbed == []
    assert session.driver.kernel.counters()["ticks"] == 0  # and the kernel is free again


def test_a_cancelled_feed_still_absorbs_the_batch_the_kernel_ran() -> None:
    instruments, ticks = _day()
    batches = _batches(ticks)
    session = _session(instruments)

    async def feed() -> None:
        out = asyncio.create_task(session.driver.run_batch_off_loop(batches[0]))
        await asyncio.sleep(0)
        out.cancel()
        with pytest.raises(asyncio.CancelledError):
            await out
        assert session.driver.latency.count == len(batches[0])
        assert len(session.absorbed) == 1

    asyncio.run(feed())
