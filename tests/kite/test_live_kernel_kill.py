"""LIVE on the trading kernel: the process is killed (SIGKILL) mid-bracket.

A child process runs a LIVE kernel session against the strict fake Kite on
loopback (this process serves Kite; the child trades through it and writes
to the test's PostgreSQL). Once its bracket is open at Kite, the child is
killed with SIGKILL: no flatten, no drain, no session end. A new session
must adopt the bracket from the database and Kite's order book: no second
entry, the stop still protecting the position, and the OCO still working.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import asyncpg
import pytest

from .conftest import eventually
from .fake_kite import FakeKite
from .test_live_kernel import V_PRICES, _live, _tags
from .test_session_feed import RELIANCE, T10, full, kite_env

pytestmark = pytest.mark.integration
__all__ = ["kite_env"]  # the fixture, used by name

REPO = Path(__file__).resolve().parents[2]

# The child: the same session as test_live_kernel's (EmaCross config, MARKET
# entries), started, then left running until it is killed.
CHILD = """
import asyncio, sys
from datetime import UTC, datetime
from aitrapp.kite.session import kite_access_from_env, kite_feed_factory
from aitrapp.kite.ticker_codec import Mode
from aitrapp.kernel.options import BracketOptions
from aitrapp.report import live_gate
from aitrapp.runtime import RuntimeOptions, start_runtime
from tests.kite.test_live_kernel import CROSS
from tests.kite.test_session_feed import DAY, FakeClock, settings

async def allow(*_a, **_kw):
    return None

live_gate.enforce_live_gate = allow

async def main(db_url, data):
    clock = FakeClock(datetime.now(UTC))
    factory = kite_feed_factory(kite_access_from_env(now=clock()), mode=Mode.FULL,
                                duration_s=600, clock=clock, backoff_initial=0.02)
    options = RuntimeOptions(feed="kite", mode="LIVE", day=DAY, symbols=("RELIANCE",),
                             feed_factory=factory, engine=CROSS,
                             bracket=BracketOptions(entry_type="MARKET"))
    rt = await start_runtime(settings(db_url, data), options)
    print("READY", flush=True)
    await asyncio.Event().wait()

asyncio.run(main(sys.argv[1], __import__("pathlib").Path(sys.argv[2])))
"""


async def _journal_shows(db_url: str, want: dict[str, str]) -> None:
    """Until the orders table shows ``want`` (role -> status); bounded."""
    conn = await asyncpg.connect(db_url)
    try:
        got: dict[str, str] = {}
        for _ in range(1000):
            rows = await conn.fetch("SELECT role, status FROM orders")
            got = {r["role"]: r["status"] for r in rows}
            if got == want:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"the journal shows {got}, not {want}")
    finally:
        await conn.close()


async def test_a_killed_live_kernel_is_adopted_without_a_second_entry(
    fake: FakeKite,
    kite_env: Path,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, db_url, str(tmp_path / "first"),
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        async with asyncio.timeout(60):
            line = await child.stdout.readline()
        assert line.strip() == b"READY", line
        await eventually(lambda: any(c.modes for c in fake.ws_clients), within=10.0)
        fake.set_ltp(RELIANCE, "1442.50")
        packets = [full(RELIANCE, p, T10 + i, 1000 + i) for i, p in enumerate(V_PRICES)]
        await fake.broadcast_ticks(packets)
        await eventually(
            lambda: len(_tags(fake, "SL")) == 1 and len(_tags(fake, "TP")) == 1, within=10.0
        )
        # Mid-bracket: the stop and the target work at Kite and the child's journal
        # has caught up with them (its writer batches); then the process is gone.
        await _journal_shows(db_url, {"ENTRY": "COMPLETE", "STOP": "TRIGGER PENDING", "TP": "OPEN"})
        child.send_signal(signal.SIGKILL)
        assert await child.wait() == -signal.SIGKILL
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    (entry,) = _tags(fake, "EN")
    (stop,) = _tags(fake, "SL")
    (tp,) = _tags(fake, "TP")
    assert entry["status"] == "COMPLETE" and stop["status"] == "TRIGGER PENDING"
    placed = len(fake.placed())

    second = await _live(fake, db_url, tmp_path / "second", monkeypatch)
    try:
        assert second.reconcile is not None
        assert second.reconcile.may_trade(False), second.reconcile.lines()
        assert second.trading_state == "ACTIVE"
        assert second.aborted_sessions, "the killed session is not marked ABORTED"
        assert second.kernel is not None and second.kernel.kernel.open_brackets == 1
        assert second.live is not None
        await second.live.drain()
        await asyncio.sleep(0.3)  # Kite's replayed reports of the day come in
        await second.live.drain()
        assert len(fake.placed()) == placed  # no second entry, no second stop or target
        assert fake.order(stop["order_id"])["status"] == "TRIGGER PENDING"
        # The adopted machine runs the OCO: the stop fills, the target goes.
        await fake.trigger(stop["order_id"])
        await fake.fill(stop["order_id"], price="1439.50")
        await eventually(lambda: fake.order(tp["order_id"])["status"] == "CANCELLED")
        await eventually(
            lambda: second.kernel is not None and second.kernel.kernel.open_brackets == 0
        )
        assert len(_tags(fake, "EN")) == 1 and _tags(fake, "EX") == []
        # Booked as the first process's plan: the trade names its decision, the
        # position is closed, and the engine's restored bracket is released.
        await second.writer.flush()
        (decision,) = await second.pool.fetch("SELECT id, plan_id FROM decisions")
        trades = await second.pool.fetch("SELECT plan_id, exit_reason, decision_id FROM trades")
        assert [tuple(t) for t in trades] == [(decision["plan_id"], "STOP", decision["id"])]
        status = await second.pool.fetchval(
            "SELECT status FROM positions WHERE plan_id = $1", decision["plan_id"]
        )
        assert status == "CLOSED"
        p = second.book().portfolio
        assert p.open_positions == 0 and p.heat_rupees == 0
    finally:
        await second.stop()


async def test_a_live_kernel_killed_before_its_journal_caught_up(
    fake: FakeKite,
    kite_env: Path,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Killed while its third placement (the stop or the target, whichever went
    second) is on the wire: that request still lands at Kite, but its journal
    row stays NEW with no broker id (the answer and the writer died with the
    process). The restart must not trade on that database (PAUSED, no second
    entry, the working stop left alone); accepted by the operator, the bracket
    is brought in line with Kite and adopted, and its OCO works."""
    posts = [0]

    def third_post_late(method: str, path: str) -> float:
        if method == "POST" and path == "/orders/regular":
            posts[0] += 1
            return 1.0 if posts[0] == 3 else 0.0
        return 0.0

    fake.ingress_delay = third_post_late
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, db_url, str(tmp_path / "first"),
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        async with asyncio.timeout(60):
            line = await child.stdout.readline()
        assert line.strip() == b"READY", line
        await eventually(lambda: any(c.modes for c in fake.ws_clients), within=10.0)
        fake.set_ltp(RELIANCE, "1442.50")
        packets = [full(RELIANCE, p, T10 + i, 1000 + i) for i, p in enumerate(V_PRICES)]
        await fake.broadcast_ticks(packets)
        await eventually(lambda: posts[0] == 3 and len(fake.orders) == 2, within=10.0)
        child.send_signal(signal.SIGKILL)
        assert await child.wait() == -signal.SIGKILL
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    # The held request lands after the process is gone.
    await eventually(lambda: len(_tags(fake, "SL")) == 1 and len(_tags(fake, "TP")) == 1)
    (stop,) = _tags(fake, "SL")
    (tp,) = _tags(fake, "TP")
    placed = len(fake.placed())

    second = await _live(fake, db_url, tmp_path / "second", monkeypatch)
    try:
        assert second.reconcile is not None and not second.reconcile.may_trade(False)
        assert second.trading_state == "PAUSED"
        assert second.live is not None
        await second.live.drain()
        assert len(fake.placed()) == placed  # nothing placed on a disagreeing journal
        assert fake.order(stop["order_id"])["status"] == "TRIGGER PENDING"
    finally:
        await second.stop()
    third = await _live(fake, db_url, tmp_path / "third", monkeypatch, accept_reconcile=True)
    try:
        assert third.trading_state == "ACTIVE"
        assert third.kernel is not None and third.kernel.kernel.open_brackets == 1
        assert third.live is not None
        await third.live.drain()
        assert len(fake.placed()) == placed  # no second entry, no second stop or target
        # The adopted machine runs the OCO: the target fills, the stop goes.
        await fake.fill(tp["order_id"])
        await eventually(lambda: fake.order(stop["order_id"])["status"] == "CANCELLED")
        await eventually(
            lambda: third.kernel is not None and third.kernel.kernel.open_brackets == 0
        )
        assert len(_tags(fake, "EN")) == 1 and _tags(fake, "EX") == []
    finally:
        await third.stop()
