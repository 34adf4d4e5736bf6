"""LIVE on the trading kernel: the order paths where a trader loses money.

Each test drives a real runtime (embedded PostgreSQL, journal, Kite broker)
against the strict fake Kite on loopback and breaks one thing Kite's network
really breaks: an answer lost after the action happened, a request that lands
after the client gave up on it, a cancel that never arrived. The promise is
always the same: no order the kernel does not know about keeps working at
Kite, and no position is left without protection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aitrapp import parse_order_client_id
from aitrapp.brokers.base import OrderRequest
from aitrapp.kite import session as kite_session

from .conftest import eventually
from .fake_kite import FakeKite
from .test_live_kernel import _live, _open_bracket, _settled, _tags
from .test_session_feed import RELIANCE, T10, full, kite_env

pytestmark = pytest.mark.integration
__all__ = ["kite_env"]  # the fixture, used by name

# Synthetic prices (labelled as such): down 20 ticks of 0.50, then up; the
# EMA cross of test_live_kernel's config comes on the way up.
V_PRICES = [1450 - 0.5 * i for i in range(20)] + [1440.5 + 1.0 * i for i in range(20)]


@pytest.fixture
def quick_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    """The LIVE runtime's KiteBroker with short network waits (a test must stay
    in seconds): 0.4 s HTTP timeout, its own look-ups 50 ms apart, a poll every
    0.3 s. The rules it applies are the production ones."""
    real = kite_session.kite_broker

    def quick(access: Any, instruments: Any, **kw: Any) -> Any:
        kw = {"http_timeout": 0.4, "confirm_delay": 0.05, "retry_backoff": 0.02,
              "poll_interval": 0.3, "ws_backoff_initial": 0.02, **kw}  # fmt: skip
        return real(access, instruments, **kw)

    monkeypatch.setattr(kite_session, "kite_broker", quick)


def _late(first: str, path: str, delay: float) -> Callable[[str, str], float]:
    """Holds back the first ``first`` request on ``path`` by ``delay`` seconds."""
    pending = [delay]

    def delay_of(method: str, p: str) -> float:
        if method == first and p == path and pending:
            return pending.pop()
        return 0.0

    return delay_of


def _net_position(fake: FakeKite) -> int:
    rows = [r for r in fake._position_rows() if r["instrument_token"] == RELIANCE]
    return sum(int(r["quantity"]) for r in rows)


def _working(fake: FakeKite) -> list[dict[str, Any]]:
    return [o for o in fake.orders.values() if o["status"] in ("OPEN", "TRIGGER PENDING")]


async def test_a_lost_cancel_of_the_stop_is_sent_again_no_orphan_stop(
    fake: FakeKite,
    kite_env: Path,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    quick_broker: None,
) -> None:
    """The target fills; the stop's cancel is lost on the way (the connection
    drops before Kite acted). A stop left working at Kite after the position
    is flat opens a position of its own when it triggers."""
    rt = await _live(fake, db_url, tmp_path, monkeypatch)
    try:
        o = await _open_bracket(fake, rt)
        assert rt.live is not None
        await _settled(rt.live)
        fake.fail_next("DELETE", "/orders/regular/", drop=True)
        await fake.fill(o["tp"]["order_id"])
        await eventually(lambda: fake.order(o["stop"]["order_id"])["status"] == "CANCELLED")
        await eventually(lambda: rt.kernel is not None and rt.kernel.kernel.open_brackets == 0)
        assert _net_position(fake) == 0 and _working(fake) == []
        deletes = [r for r in fake.requests if r[0] == "DELETE"]
        assert len(deletes) >= 2  # the lost one, then the one that cancelled it
    finally:
        await rt.stop()


async def test_an_entry_whose_answer_is_lost_but_is_at_kite_is_protected(
    fake: FakeKite,
    kite_env: Path,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    quick_broker: None,
) -> None:
    """The entry's POST lands at Kite 1 s late, after the client timed out and
    its own look-ups found nothing. The order is there all the same and fills:
    the bracket must go on (stop and target placed), with one entry only."""
    rt = await _live(fake, db_url, tmp_path, monkeypatch)
    try:
        fake.ingress_delay = _late("POST", "/orders/regular", 1.0)
        o = await _open_bracket(fake, rt)
        assert len(_tags(fake, "EN")) == 1
        assert o["stop"]["quantity"] == o["entry"]["quantity"]
        assert rt.kernel is not None and rt.kernel.kernel.open_brackets == 1
        assert _net_position(fake) == o["entry"]["quantity"]
        # The journal row carries Kite's id (a restart adopts by it).
        for _ in range(300):
            bid = await rt.pool.fetchval("SELECT broker_order_id FROM orders WHERE role = 'ENTRY'")
            if bid:
                break
            await asyncio.sleep(0.01)
        assert bid == o["entry"]["order_id"]
    finally:
        await rt.stop()


async def test_an_entry_that_lands_after_the_lookups_gave_up_is_squared(
    fake: FakeKite,
    kite_env: Path,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    quick_broker: None,
) -> None:
    """The entry's POST lands 2.5 s late, after every bounded look-up: the
    kernel was told REJECTED. When the order does turn up filled, its position
    (which nothing protects) is exited at market, with a critical alert."""
    rt = await _live(fake, db_url, tmp_path, monkeypatch)
    try:
        live = rt.live
        assert live is not None
        live.lookup_attempts, live.lookup_delay_s = 3, 0.1
        fake.ingress_delay = _late("POST", "/orders/regular", 2.5)
        fake.set_ltp(RELIANCE, "1442.50")
        packets = [full(RELIANCE, p, T10 + i, 1000 + i) for i, p in enumerate(V_PRICES)]
        await fake.broadcast_ticks(packets)
        await eventually(lambda: len(_tags(fake, "EN")) == 1, within=8.0)

        def exits() -> list[dict[str, Any]]:
            return [o for o in fake.orders.values() if "EX" in o["tag"]]

        await eventually(lambda: any(o["status"] == "COMPLETE" for o in exits()))
        assert len(exits()) == 1 and exits()[0]["transaction_type"] == "SELL"
        assert _net_position(fake) == 0 and _working(fake) == []
        assert _tags(fake, "SL") == []  # the bracket was over; no stop for a closed plan
        assert any(
            a["severity"] == "CRITICAL" and a["code"] == "ORPHAN_FILL" for a in live.alerts
        ), live.alerts
        assert len(_tags(fake, "EN")) == 1
        # Both executions are on record (the account's fills add up): the entry
        # that lived unmanaged and the market order that squared it.
        (entry,) = _tags(fake, "EN")
        (square,) = exits()
        qty = int(entry["filled_quantity"])

        async def recorded() -> list[tuple[str, int]]:
            await rt.writer.flush()
            rows = await rt.pool.fetch("SELECT broker_order_id, qty FROM fills")
            return sorted((str(r["broker_order_id"]), int(r["qty"])) for r in rows)

        want = sorted([(str(entry["order_id"]), qty), (str(square["order_id"]), qty)])
        for _ in range(100):  # the square's report travels through the stream
            if await recorded() == want:
                break
            await asyncio.sleep(0.05)
        assert await recorded() == want
    finally:
        await rt.stop()


async def test_a_stop_resize_whose_answer_is_lost_is_known_applied(
    fake: FakeKite,
    kite_env: Path,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    quick_broker: None,
) -> None:
    """Part of the target fills: the stop is resized to what is left. Kite
    applies the modification but the answer is lost (HTTP 502 after the fact).
    Read as refused, the kernel would exit a protected position at market; the
    order book says the resize happened, so the bracket rides on."""
    rt = await _live(fake, db_url, tmp_path, monkeypatch)
    try:
        o = await _open_bracket(fake, rt)
        assert rt.live is not None
        await _settled(rt.live)
        qty = int(o["entry"]["quantity"])
        assert qty >= 2, "the plan's quantity must leave something to split"
        fake.fail_next("PUT", "/orders/regular/", status=502, error_type="NetworkException",
                       message="Bad gateway", accept=True)  # fmt: skip
        await fake.fill(o["tp"]["order_id"], quantity=1)
        await eventually(lambda: fake.order(o["stop"]["order_id"])["quantity"] == qty - 1)
        await _settled(rt.live)
        await asyncio.sleep(0.3)
        assert _tags(fake, "EX") == [], "a protected position was exited at market"
        assert fake.order(o["stop"]["order_id"])["status"] == "TRIGGER PENDING"
        assert rt.kernel is not None and rt.kernel.kernel.open_brackets == 1
    finally:
        await rt.stop()


async def test_an_entry_reaches_kite_only_once_its_plan_is_on_record(
    fake: FakeKite,
    kite_env: Path,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    quick_broker: None,
) -> None:
    """The decision row (what a restart adopts the bracket from) goes through the
    writer's batches; the entry's journal row is written at once. A process killed
    between the two leaves a position at Kite that no restart can adopt ("no
    decision row for the plan"). With a slow writer (0.3 s a batch), the entry's
    HTTP call must still find its decision in the database; stops never wait."""
    rt = await _live(fake, db_url, tmp_path, monkeypatch)
    try:
        writer = rt.writer
        write = writer._write_pending

        async def slow() -> None:
            await asyncio.sleep(0.3)
            await write()

        monkeypatch.setattr(writer, "_write_pending", slow)
        broker = rt.journal.inner if rt.journal is not None else None
        assert broker is not None
        place = broker.place_order
        seen: list[tuple[str, bool]] = []

        async def checked(req: OrderRequest) -> str:
            plan_id, role = parse_order_client_id(req.client_order_id)
            n = await rt.pool.fetchval("SELECT count(*) FROM decisions WHERE plan_id = $1", plan_id)
            seen.append((role, n == 1))
            return await place(req)

        monkeypatch.setattr(broker, "place_order", checked)
        await _open_bracket(fake, rt)
        assert seen and seen[0] == ("ENTRY", True), seen
    finally:
        await rt.stop()
