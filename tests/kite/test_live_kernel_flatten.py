"""The kill switch on the LIVE kernel against the strict fake Kite on loopback.

The shell is the production one (``LiveKernelDriver`` executing through the
write-ahead journal and ``KiteBroker`` with its rate limiter, into a real
database); brackets are adopted from an earlier process, entries filled at
2500.00, stop 2480.00 (SL-M unless said), target 2540.00. The fake Kite
counts every request in arrival order, answers 429 over 10 order requests a
second, fills MARKET orders (and stops modified to MARKET) at its last price.

Promises of the OCO manager's flatten tests, checked on the kernel
(``old_file::old_test -> new test``):

- tests/test_oco_flatten.py::test_every_stop_becomes_the_exit_before_any_target_is_cancelled
  -> test_every_stop_becomes_the_exit_by_one_modify_before_any_target_is_cancelled
  and test_flatten_exits_every_bracket_and_no_stop_is_cancelled_before_its_exit
  (flat, clean, every exit FLATTEN, no 429; SL-M: each stop is its bracket's
  only exit; SL: no exit sent before its stop's cancel was answered); the
  pending entry the old test cancelled:
  core-rs/aitrapp-core/src/oco/tests.rs::flatten_from_pending_cancels_the_entry
  and src/oco/tests/flatten.rs (an ENTERING bracket)
- tests/test_oco_flatten.py::test_without_conversion_the_stop_is_cancelled_then_exited
  -> test_flatten_exits_every_bracket_and_no_stop_is_cancelled_before_its_exit[SL]
  (stop-limits are never converted) and test_a_stop_kite_will_not_modify_is_cancelled_and_exited
- tests/test_oco_flatten.py::test_a_refused_conversion_falls_back_to_cancel_and_exit
  -> test_a_stop_kite_will_not_modify_is_cancelled_and_exited
- tests/test_oco_flatten.py::test_a_stop_limit_without_protection_is_cancelled_and_exited
  -> test_a_stop_limit_is_cancelled_and_exited
- tests/test_oco_flatten.py::test_a_converted_stop_that_hangs_is_cancelled_and_exited
  -> test_a_converted_stop_that_hangs_is_cancelled_and_exited (the bounded wait
  is the bracket's stop_fill_timeout, on the kernel's clock)
- tests/test_oco_flatten.py::test_split_keeps_exits_first_and_targets_last
  -> test_every_stop_becomes_the_exit_by_one_modify_before_any_target_is_cancelled
  (the order on the wire) and, for what the machine emits on Flatten,
  core-rs/aitrapp-core/src/oco/tests/flatten.rs and
  core-rs/aitrapp-core/tests/oco_adopt.rs::flatten_turns_the_adopted_stop_into_the_exit
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from aitrapp import Instrument
from aitrapp.brokers.kite import KiteBroker
from aitrapp.db.pool import Pool

from .conftest import RELIANCE, eventually
from .fake_kite import FakeKite
from .live_rig import SEC, T0, LiveRig, adopt, earlier_process, live_rig, plan
from .test_pacing import max_in_window

pytestmark = pytest.mark.integration

BRACKETS = 6  # 18 order requests for a cancel-and-exit flatten: over Kite's 10 a second
STOP_FILL_TIMEOUT_NS = 5 * SEC  # the bracket template's default stop_fill_timeout_s


def _tag(n: int, role: str) -> str:
    return plan(n)[:16] + {"ENTRY": "EN", "STOP": "SL", "TP": "TP", "EXIT": "EX"}[role]


def _order(fake: FakeKite, n: int, role: str) -> dict[str, Any]:
    (o,) = fake.by_tag(_tag(n, role))
    return o


def _net(fake: FakeKite) -> int:
    rows = [r for r in fake._position_rows() if r["instrument_token"] == RELIANCE]
    return sum(int(r["quantity"]) for r in rows)


def _working(fake: FakeKite) -> list[dict[str, Any]]:
    return [o for o in fake.orders.values() if o["status"] in ("OPEN", "TRIGGER PENDING")]


Opener = Callable[..., Awaitable[LiveRig]]


@pytest.fixture
async def open_brackets(
    fake: FakeKite,
    make_broker: Callable[..., Awaitable[KiteBroker]],
    instruments: dict[int, Instrument],
    db_pool: Pool,
) -> AsyncIterator[Opener]:
    rigs: list[LiveRig] = []

    async def opener(n: int = BRACKETS, *, stop_type: str = "SL-M") -> LiveRig:
        fake.set_ltp(RELIANCE, "2500.00")  # the entries fill at once
        rig = await live_rig(await make_broker(), db_pool, instruments)
        rigs.append(rig)
        inst = instruments[RELIANCE]
        for i in range(1, n + 1):
            ids = await earlier_process(rig.earlier, inst, i, stop_type=stop_type)
            await adopt(rig, inst, i, ids, stop_type=stop_type)
        await rig.settle()
        assert rig.live.live.open_brackets == n and len(_working(fake)) == 2 * n
        assert rig.commands() == []  # adopted as they are
        return rig

    yield opener
    for rig in rigs:
        await rig.close()


def _wire(fake: FakeKite, since: int) -> list[tuple[str, str, dict[str, str]]]:
    """Order requests (place, modify, cancel) that reached Kite, in arrival order."""
    return [r for r in fake.requests[since:] if r[0] in ("POST", "PUT", "DELETE")]


async def _flatten(rig: LiveRig, fake: FakeKite) -> list[tuple[str, str, dict[str, str]]]:
    before = len(fake.requests)
    rig.live.flatten(T0 + SEC)
    await rig.settle(within_s=20)
    return _wire(fake, before)


@pytest.mark.parametrize("stop_type", ["SL-M", "SL"])
async def test_flatten_exits_every_bracket_and_no_stop_is_cancelled_before_its_exit(
    fake: FakeKite, open_brackets: Opener, stop_type: str
) -> None:
    rig = await open_brackets(stop_type=stop_type)
    wire = await _flatten(rig, fake)
    assert fake.too_many == []
    for n in range(1, BRACKETS + 1):
        stop, tp = _order(fake, n, "STOP"), _order(fake, n, "TP")
        assert tp["status"] == "CANCELLED"
        if stop_type == "SL-M":
            # The stop itself became the exit (one modify): it was never
            # cancelled, and no second exit was placed for the position.
            assert (stop["order_type"], stop["status"], stop["filled_quantity"]) == (
                "MARKET",
                "COMPLETE",
                10,
            )
            assert fake.by_tag(_tag(n, "EXIT")) == []
            continue
        exit_ = _order(fake, n, "EXIT")
        assert stop["status"] == "CANCELLED"
        assert (exit_["order_type"], exit_["transaction_type"], exit_["status"]) == (
            "MARKET",
            "SELL",
            "COMPLETE",
        )
        assert exit_["filled_quantity"] == 10
        # The stop covered the position until Kite confirmed its cancel: the
        # exit left only after that answer (never two exits for one position).
        cancel = next(
            i for i, r in enumerate(wire) if r[0] == "DELETE" and stop["order_id"] in r[1]
        )
        exit_tag = _tag(n, "EXIT")
        place = next(
            i for i, r in enumerate(wire) if r[0] == "POST" and r[2].get("tag") == exit_tag
        )
        assert cancel < place
    assert _net(fake) == 0 and _working(fake) == []
    posts = 0 if stop_type == "SL-M" else BRACKETS  # a stop-limit is exited by a market order
    assert [m for m, _, _ in wire].count("POST") == posts
    assert rig.live.live.open_brackets == 0 and rig.live.live.working_orders == 0
    assert [t["exit_reason"] for t in rig.trades()] == ["FLATTEN"] * BRACKETS
    assert sorted(t["plan_id"] for t in rig.trades()) == sorted(rig.adopted)


async def test_every_stop_becomes_the_exit_by_one_modify_before_any_target_is_cancelled(
    fake: FakeKite, open_brackets: Opener
) -> None:
    rig = await open_brackets()
    wire = await _flatten(rig, fake)
    stops = {_order(fake, n, "STOP")["order_id"] for n in range(1, BRACKETS + 1)}
    tps = {_order(fake, n, "TP")["order_id"] for n in range(1, BRACKETS + 1)}
    modified = [
        i for i, (m, p, f) in enumerate(wire) if m == "PUT" and p.rsplit("/", 1)[1] in stops
    ]
    tp_cancels = [
        i for i, (m, p, _) in enumerate(wire) if m == "DELETE" and p.rsplit("/", 1)[1] in tps
    ]
    assert len(modified) == BRACKETS and len(tp_cancels) == BRACKETS
    assert all(wire[i][2].get("order_type") == "MARKET" for i in modified)
    assert max(modified) < min(tp_cancels)  # every exit is out before the clean-up starts
    assert not any(m == "POST" for m, _, _ in wire)  # no market order needed
    for n in range(1, BRACKETS + 1):
        stop = _order(fake, n, "STOP")
        assert (stop["order_type"], stop["status"], stop["filled_quantity"]) == (
            "MARKET",
            "COMPLETE",
            10,
        )
        assert fake.modifications[stop["order_id"]] == 1
    assert _net(fake) == 0 and _working(fake) == []
    assert [t["exit_reason"] for t in rig.trades()] == ["FLATTEN"] * BRACKETS


async def test_a_stop_kite_will_not_modify_is_cancelled_and_exited(
    fake: FakeKite, open_brackets: Opener
) -> None:
    rig = await open_brackets(2)
    refused = _order(fake, 1, "STOP")["order_id"]
    fake.modifications[refused] = fake.max_modifications  # Kite refuses the next modify
    await _flatten(rig, fake)
    assert _order(fake, 1, "STOP")["status"] == "CANCELLED"
    assert _order(fake, 1, "EXIT")["filled_quantity"] == 10
    assert _net(fake) == 0 and _working(fake) == []
    assert [t["exit_reason"] for t in rig.trades()] == ["FLATTEN"] * 2


async def test_a_stop_limit_is_cancelled_and_exited(fake: FakeKite, open_brackets: Opener) -> None:
    rig = await open_brackets(1, stop_type="SL")
    assert _order(fake, 1, "STOP")["order_type"] == "SL"
    wire = await _flatten(rig, fake)
    assert not any(m == "PUT" for m, _, _ in wire)  # a stop-limit is never made MARKET
    assert _order(fake, 1, "STOP")["status"] == "CANCELLED"
    assert _order(fake, 1, "EXIT")["filled_quantity"] == 10
    assert _net(fake) == 0 and _working(fake) == []


async def test_a_converted_stop_that_hangs_is_cancelled_and_exited(
    fake: FakeKite, open_brackets: Opener
) -> None:
    rig = await open_brackets(1)
    del fake.ltp[RELIANCE]  # market orders now rest until the test fills them
    rig.live.flatten(T0 + SEC)
    await eventually(lambda: _order(fake, 1, "STOP")["order_type"] == "MARKET", within=10)
    await rig.settle()
    assert fake.by_tag(_tag(1, "EXIT")) == []  # the converted stop is the exit, for now
    # The kernel's time runs (the session clock does this in production): the
    # stop-fill timeout after the conversion, the hanging stop is cancelled.
    rig.live.advance_time(T0 + SEC + STOP_FILL_TIMEOUT_NS)
    await eventually(lambda: bool(fake.by_tag(_tag(1, "EXIT"))), within=10)
    stop = _order(fake, 1, "STOP")
    assert (stop["order_type"], stop["status"]) == ("MARKET", "CANCELLED")
    await fake.fill(_order(fake, 1, "EXIT")["order_id"], price="2499.90")
    await rig.settle()
    assert _net(fake) == 0 and _working(fake) == []


async def test_a_flatten_over_a_jittered_network_draws_no_429_and_exits_first(
    fake: FakeKite, open_brackets: Opener
) -> None:
    """(tests/kite/test_pacing.py's flatten of 5 brackets through the OCO manager, on
    the kernel) Kite's arrivals jittered by up to 80 ms (seeded): no request is
    refused for the rate, at most 10 order requests reach Kite in any second, and
    every stop becomes its exit before any target is cancelled."""
    rig = await open_brackets(5)
    jitter = random.Random(5)
    fake.ingress_delay = lambda method, path: jitter.uniform(0.0, 0.08)
    wire = await _flatten(rig, fake)
    assert fake.too_many == []
    assert max_in_window(fake.order_arrivals()) <= 10
    changes = [m for m, _, _ in wire]
    puts = [i for i, m in enumerate(changes) if m == "PUT"]
    deletes = [i for i, m in enumerate(changes) if m == "DELETE"]
    assert len(puts) == 5 and len(deletes) == 5 and "POST" not in changes
    assert max(puts) < min(deletes)
    for n in range(1, 6):
        stop = _order(fake, n, "STOP")
        assert (stop["order_type"], stop["status"], stop["filled_quantity"]) == (
            "MARKET",
            "COMPLETE",
            10,
        )
        assert _order(fake, n, "TP")["status"] == "CANCELLED"
    assert _net(fake) == 0
