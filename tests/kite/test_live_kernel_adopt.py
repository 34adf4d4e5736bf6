"""The LIVE kernel adopts an earlier process's bracket and runs it like its own.

The shell is the production one (``LiveKernelDriver`` executing through the
write-ahead journal into a real database); the broker is the in-memory
``FakeBroker`` (Kite's habits: cumulative snapshots, REJECTED as an update,
a modify to MARKET fills at the last price), the fake the OCO manager's
adoption tests ran against, so each promise is checked on the same broker.

Promises of the OCO manager's adoption tests, now checked on the kernel
(``old_file::old_test -> new test``):

- tests/test_oco_adopt.py::test_adopted_bracket_is_open_with_both_children
  -> test_adopted_bracket_is_open_with_both_children
- tests/test_oco_adopt.py::test_tp_fill_cancels_the_stop_and_closes_with_pnl
  -> test_tp_fill_cancels_the_stop_and_closes_with_pnl
- tests/test_oco_adopt.py::test_stop_fill_cancels_the_tp -> test_stop_fill_cancels_the_tp
- tests/test_oco_adopt.py::test_partial_tp_fill_resizes_the_stop
  -> test_partial_tp_fill_resizes_the_stop
- tests/test_oco_adopt.py::test_flatten_cancels_both_and_exits_at_market
  -> test_flatten_cancels_both_and_exits_at_market (the old test turned the
  conversion off; the kernel always tries it, so the broker refuses it here)
- tests/test_oco_adopt.py::test_flatten_turns_the_adopted_stop_into_the_exit
  -> test_flatten_turns_the_adopted_stop_into_the_exit
- tests/test_oco_adopt.py::test_updates_route_by_broker_order_id_alone
  -> test_updates_route_by_broker_order_id_alone
- tests/test_oco_adopt.py::test_missing_stop_is_placed_exactly_once
  -> test_missing_stop_is_placed_exactly_once
- tests/test_oco_adopt.py::test_adopt_refuses_duplicates_and_foreign_ids
  -> test_adopt_refuses_duplicates_and_bad_adoptions_naming_the_field, and
  test_adopt_refuses_an_order_id_of_another_plan (refused naming it, before
  anything is adopted) and test_a_foreign_order_id_is_never_attached
- tests/test_oco_adopt.py::test_open_positions_are_adopted_from_the_database
  -> test_open_positions_are_adopted_from_the_database
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from aitrapp import AitrappError, Instrument, broker_tag, order_client_id
from aitrapp.brokers.base import OrderRequest, OrderStatus, OrderType
from aitrapp.calendar import IST
from aitrapp.db import repo
from aitrapp.db.pool import Conn, Pool
from aitrapp.db.repo import (
    DecisionRow,
    OrderRow,
    OrderStatusUpdate,
    PositionRow,
    SessionRow,
    SignalRow,
)
from aitrapp.recovery.engine_restore import adopt_open_brackets
from aitrapp.universe import load_universe
from fakes import FakeBroker

from .live_rig import SEC, T0, LiveRig, adopt, cid, earlier_process, live_rig, plan, spec

pytestmark = pytest.mark.integration

TOKEN = 738561
RELIANCE = Instrument(
    exchange="NSE",
    tradingsymbol="RELIANCE",
    instrument_token=TOKEN,
    segment="EQ",
    tick_size="0.05",
    lot_size=1,
    freeze_qty=100_000,
)


@dataclasses.dataclass
class Env:
    broker: FakeBroker
    rig: LiveRig

    async def settle(self) -> None:
        await self.broker.settled()
        await self.rig.settle()


async def _restarted(db_pool: Pool, *, lose_stop: bool = False) -> Env:
    """An earlier process opened bracket 1 (entry filled at 2500.00) and died;
    this one adopts it with the children the broker still works."""
    broker = FakeBroker(clock=lambda: T0)
    broker.set_price(TOKEN, 250_000)
    rig = await live_rig(broker, db_pool, {TOKEN: RELIANCE})
    ids = await earlier_process(rig.earlier, RELIANCE, 1)
    await broker.settled()
    assert broker.order(cid(1, "ENTRY")).filled == 10
    if lose_stop:
        broker.cancel_externally(cid(1, "STOP"))  # lost while no process watched
        await broker.settled()
    working = tuple(t for t in ("STOP", "TP") if broker.order(cid(1, t)).is_live)
    await adopt(rig, RELIANCE, 1, ids, working=working)
    env = Env(broker, rig)
    await env.settle()
    return env


@pytest.fixture
async def restarted(db_pool: Pool) -> AsyncIterator[Env]:
    env = await _restarted(db_pool)
    try:
        yield env
    finally:
        await env.rig.close()


def _trades(env: Env) -> list[tuple[str, int]]:
    return [(t["exit_reason"], t["gross_paise"]) for t in env.rig.trades()]


async def test_adopted_bracket_is_open_with_both_children(restarted: Env) -> None:
    b, live = restarted.broker, restarted.rig.live
    assert (live.live.open_brackets, live.live.working_orders) == (1, 2)
    assert live.positions[plan(1)]["qty"] == 10
    # The kernel knows the children by the broker's ids.
    stop_local = live.live.order_id_of(cid(1, "STOP"))
    tp_local = live.live.order_id_of(cid(1, "TP"))
    assert stop_local is not None and tp_local is not None
    assert {live.broker_ids[stop_local], live.broker_ids[tp_local]} == {
        b.order(cid(1, "STOP")).order_id,
        b.order(cid(1, "TP")).order_id,
    }
    # Nothing was placed again: the adopted orders are the broker's.
    assert b.placements(cid(1, "STOP")) == b.placements(cid(1, "TP")) == 1
    assert restarted.rig.commands() == []
    assert live.rows("transitions")[0]["event"] == "ADOPTED"


async def test_tp_fill_cancels_the_stop_and_closes_with_pnl(restarted: Env) -> None:
    b = restarted.broker
    b.fill(cid(1, "TP"))
    await restarted.settle()
    assert b.order(cid(1, "STOP")).status is OrderStatus.CANCELLED
    assert b.live_orders() == []
    assert b.net_position(TOKEN) == 0
    assert _trades(restarted) == [("TP", 40_000)]
    assert restarted.rig.live.live.open_brackets == 0


async def test_stop_fill_cancels_the_tp(restarted: Env) -> None:
    b = restarted.broker
    b.fill(cid(1, "STOP"), price_paise=247_900)
    await restarted.settle()
    assert b.order(cid(1, "TP")).status is OrderStatus.CANCELLED
    assert b.live_orders() == []
    assert _trades(restarted) == [("STOP", -21_000)]


async def test_partial_tp_fill_resizes_the_stop(restarted: Env) -> None:
    b, live = restarted.broker, restarted.rig.live
    b.fill(cid(1, "TP"), qty=4)
    await restarted.settle()
    assert b.order(cid(1, "STOP")).quantity == 6
    assert live.positions[plan(1)]["qty"] == 6
    # A stale snapshot of the TP (before the fill) and a duplicate change nothing.
    tp = b.order(cid(1, "TP")).snapshot()
    stale = dataclasses.replace(tp, filled_quantity=0, average_price=0.0)
    transitions, reports, calls = len(live.rows("transitions")), live.reports, len(b.calls)
    live.on_update(stale)
    live.on_update(tp)
    await restarted.settle()
    assert (len(live.rows("transitions")), live.reports, len(b.calls)) == (
        transitions,
        reports,
        calls,
    )


async def test_flatten_cancels_both_and_exits_at_market(restarted: Env) -> None:
    b = restarted.broker
    # The stop is not turned into the exit (the kernel has no switch for that,
    # as the OCO manager's convert_stops=False was: the broker refuses the
    # modification), so the flatten cancels both and exits at market.
    b.reject_modify_when(lambda o: True, "modification refused")
    restarted.rig.live.flatten(T0 + SEC)
    await restarted.settle()
    assert b.order(cid(1, "STOP")).status is OrderStatus.CANCELLED
    assert b.order(cid(1, "TP")).status is OrderStatus.CANCELLED
    exit_order = b.order(cid(1, "EXIT"))
    assert (exit_order.req.side, exit_order.filled) == ("SELL", 10)
    assert b.net_position(TOKEN) == 0
    assert [t["exit_reason"] for t in restarted.rig.trades()] == ["FLATTEN"]


async def test_flatten_turns_the_adopted_stop_into_the_exit(restarted: Env) -> None:
    b = restarted.broker
    restarted.rig.live.flatten(T0 + SEC)
    await restarted.settle()
    stop = b.order(cid(1, "STOP"))
    assert (stop.status, stop.req.order_type, stop.filled) == (
        OrderStatus.COMPLETE,
        OrderType.MARKET,
        10,
    )
    assert b.order(cid(1, "TP")).status is OrderStatus.CANCELLED
    assert b.placements(cid(1, "EXIT")) == 0
    assert b.net_position(TOKEN) == 0
    assert [t["exit_reason"] for t in restarted.rig.trades()] == ["FLATTEN"]


async def test_updates_route_by_broker_order_id_alone(restarted: Env) -> None:
    b = restarted.broker
    stop = b.order(cid(1, "STOP"))
    anonymous = dataclasses.replace(
        stop.snapshot(), client_order_id=None, tag=None, status=OrderStatus.CANCELLED
    )
    reports = restarted.rig.live.reports
    restarted.rig.live.on_update(anonymous)
    assert restarted.rig.live.reports == reports + 1  # taken, by the broker's id alone
    await restarted.settle()
    # The stop is gone (cancelled at the exchange): exit at market, TP cancelled.
    assert b.order(cid(1, "EXIT")).filled == 10
    assert b.order(cid(1, "TP")).status is OrderStatus.CANCELLED
    assert "STOP_LOST" in restarted.rig.codes()


async def test_missing_stop_is_placed_exactly_once(db_pool: Pool) -> None:
    env = await _restarted(db_pool, lose_stop=True)
    broker, live = env.broker, env.rig.live
    try:
        assert env.rig.adopted == [plan(1)]
        live.advance_time(T0 + 2 * SEC)
        await env.settle()
        # The lost one and its replacement, under the next stop id (the journal holds
        # STOP for the dead order; the broker's tag look-up would return it).
        assert (broker.placements(cid(1, "STOP")), broker.placements(cid(1, "STOP1"))) == (1, 1)
        assert broker.order(cid(1, "STOP")).status is OrderStatus.CANCELLED
        stop = broker.order(cid(1, "STOP1"))
        assert (stop.is_live, stop.quantity, stop.trigger_paise) == (True, 10, 248_000)
        assert stop.req.tag == broker_tag(cid(1, "STOP1")) != broker_tag(cid(1, "STOP"))
        assert "STOP_REPLACED" in env.rig.codes() and "STOP_LOST" not in env.rig.codes()
        broker.fill(cid(1, "TP"))
        await env.settle()
        assert broker.live_orders() == []
        assert [t["gross_paise"] for t in env.rig.trades()] == [40_000]
    finally:
        await env.rig.close()


async def test_a_replacement_found_dead_at_the_broker_is_never_taken_for_a_stop(
    db_pool: Pool,
) -> None:
    """An earlier adopting process placed STOP1 and died; STOP1 was cancelled too, and
    this adoption is told of neither dead stop, so the kernel asks for STOP1 again.
    The journal finds the cancelled STOP1 under its tag: nothing is placed, and the
    kernel hears that it is CANCELLED (the stop is lost: exit at market, STOP_LOST)
    instead of taking the dead order for a working stop."""
    broker = FakeBroker(clock=lambda: T0)
    broker.set_price(TOKEN, 250_000)
    rig = await live_rig(broker, db_pool, {TOKEN: RELIANCE})
    try:
        ids = await earlier_process(rig.earlier, RELIANCE, 1)
        broker.cancel_externally(cid(1, "STOP"))
        c = cid(1, "STOP1")
        stop1 = OrderRequest(
            client_order_id=c, tag=broker_tag(c), exchange="NSE", tradingsymbol="RELIANCE",
            instrument_token=TOKEN, side="SELL", quantity=10, order_type=OrderType.SLM,
            trigger_paise=248_000, market_protection=-1,
        )  # fmt: skip
        await rig.earlier.place_order(stop1)
        await broker.settled()
        broker.cancel_externally(c)
        await broker.settled()
        await adopt(rig, RELIANCE, 1, ids, working=("TP",))
        env = Env(broker, rig)
        await env.settle()
        assert broker.placements(c) == 1  # the earlier process's, not a second
        assert "STOP_LOST" in rig.codes()
        assert broker.order(cid(1, "EXIT")).filled == 10
        assert broker.order(cid(1, "TP")).status is OrderStatus.CANCELLED
        assert broker.live_orders() == [] and broker.net_position(TOKEN) == 0
        assert rig.live.live.open_brackets == 0
    finally:
        await rig.close()


async def test_a_target_lost_before_the_restart_is_placed_again_under_a_new_id(
    db_pool: Pool,
) -> None:
    """The TP was cancelled at the broker while no process watched. The adoption is
    told of it (dead): the kernel places the target again as TARGET1, its own tag,
    for the open quantity at the planned price, never as TP (the journal would hand
    back the dead TP, TAKE_PROFIT_LOST, and the position would ride on its stop with
    no target). TARGET1 then closes the bracket like the TP."""
    broker = FakeBroker(clock=lambda: T0)
    broker.set_price(TOKEN, 250_000)
    rig = await live_rig(broker, db_pool, {TOKEN: RELIANCE})
    try:
        ids = await earlier_process(rig.earlier, RELIANCE, 1)
        await broker.settled()
        broker.cancel_externally(cid(1, "TP"))  # lost while no process watched
        await broker.settled()
        await adopt(rig, RELIANCE, 1, ids, working=("STOP",), dead=("TP",))
        env = Env(broker, rig)
        await env.settle()
        rig.live.advance_time(T0 + 2 * SEC)
        await env.settle()
        c = cid(1, "TARGET1")
        assert (broker.placements(cid(1, "TP")), broker.placements(c)) == (1, 1)
        target = broker.order(c)
        assert (target.is_live, target.quantity, target.price_paise) == (True, 10, 254_000)
        assert target.req.tag == broker_tag(c) != broker_tag(cid(1, "TP"))
        assert "TARGET_REPLACED" in rig.codes() and "TAKE_PROFIT_LOST" not in rig.codes()
        broker.fill(c)
        await env.settle()
        assert broker.live_orders() == [] and broker.net_position(TOKEN) == 0
        assert broker.order(cid(1, "STOP")).status is OrderStatus.CANCELLED
        assert _trades(env) == [("TP", 40_000)]
    finally:
        await rig.close()


async def test_adopt_refuses_duplicates_and_bad_adoptions_naming_the_field(
    restarted: Env,
) -> None:
    live = restarted.rig.live
    with pytest.raises(AitrappError, match=plan(1)):
        await live.adopt_bracket(
            spec(RELIANCE), entry_filled=10, entry_avg=spec(RELIANCE).entry_price,
            children=[], order_ids={},
        )  # fmt: skip
    with pytest.raises(AitrappError, match="entry_filled"):
        await live.adopt_bracket(
            spec(RELIANCE, 2), entry_filled=11, entry_avg=spec(RELIANCE).entry_price,
            children=[], order_ids={},
        )  # fmt: skip
    from aitrapp._core import AdoptedOrder

    with pytest.raises(AitrappError, match=r"children\.tag"):
        await live.adopt_bracket(
            spec(RELIANCE, 2), entry_filled=10, entry_avg=spec(RELIANCE).entry_price,
            children=[AdoptedOrder("TP1", 10)], order_ids={},
        )  # fmt: skip
    assert live.live.open_brackets == 1
    assert restarted.broker.placements(cid(2, "STOP")) == 0


async def test_adopt_refuses_an_order_id_of_another_plan(restarted: Env) -> None:
    live = restarted.rig.live
    calls = len(restarted.broker.calls)
    with pytest.raises(ValueError, match=rf"order_ids.*{cid(1, 'STOP')}.*X1"):
        await live.adopt_bracket(
            spec(RELIANCE, 2), entry_filled=10, entry_avg=spec(RELIANCE).entry_price,
            children=[], order_ids={cid(1, "STOP"): "X1"},
        )  # fmt: skip
    with pytest.raises(ValueError, match=r"order_ids.*not a client order id"):
        await live.adopt_bracket(
            spec(RELIANCE, 2), entry_filled=10, entry_avg=spec(RELIANCE).entry_price,
            children=[], order_ids={"X": "X2"},
        )  # fmt: skip
    await restarted.settle()
    # Refused before anything was adopted: no bracket, no order, nothing attached.
    assert live.live.open_brackets == 1
    assert live.live.order_id_of(cid(2, "STOP1")) is None
    assert len(restarted.broker.calls) == calls
    assert "X1" not in live.broker_ids.values()


async def test_a_foreign_order_id_is_never_attached(restarted: Env) -> None:
    live = restarted.rig.live
    own = dict(live.broker_ids)
    try:
        await live.adopt_bracket(
            spec(RELIANCE, 2), entry_filled=10, entry_avg=spec(RELIANCE).entry_price,
            children=[], order_ids={cid(1, "STOP"): "X1"},
        )  # fmt: skip
    except ValueError:
        return  # refused outright: nothing attached either
    await restarted.settle()
    assert "X1" not in live.broker_ids.values()
    assert {k: v for k, v in live.broker_ids.items() if k in own} == own


# ---------------------------------------------------------------- from the database

TEST_DAY = date(2026, 3, 4)


def at(hh: int, mm: int) -> datetime:
    return datetime.combine(TEST_DAY, time(hh, mm), tzinfo=IST).astimezone(UTC)


def by_symbol() -> dict[str, Instrument]:
    u = load_universe(on=TEST_DAY).select(["RELIANCE", "SBIN", "INFY"])
    return {i.tradingsymbol: i for i in u.instruments}


async def write_plan(
    conn: Conn, session: UUID, inst: Instrument, n: int, decided: datetime, *, entry: Decimal
) -> str:
    """One plan of an earlier session: its signal, decision and entry (10 filled at
    entry + 0.50), and its OPEN position."""
    pid = plan(n)
    stop, tp = entry - 5, entry + 10
    sig = SignalRow(
        session_id=session, ts=decided, instrument_token=inst.instrument_token,
        tradingsymbol=inst.tradingsymbol, strategy="EmaCross", side="BUY", entry=entry,
        stop=stop, tp=tp,
    )  # fmt: skip
    decision = DecisionRow(
        session_id=session, signal_id=sig.id, plan_id=pid, ts=decided,
        tradingsymbol=inst.tradingsymbol, strategy="EmaCross", side="BUY", qty=10,
        entry=entry, stop=stop, tp=tp, risk_rupees=Decimal(50),
        heat_after_pct=Decimal("0.005"), config_sha="c0",
    )  # fmt: skip
    c = order_client_id("ENTRY", pid)
    order = OrderRow(
        session_id=session, client_order_id=c, plan_id=pid, tag=broker_tag(c), role="ENTRY",
        exchange=inst.exchange, tradingsymbol=inst.tradingsymbol,
        instrument_token=inst.instrument_token, side="BUY", order_type="LIMIT", product="MIS",
        qty=10, price=entry, created_at=decided, updated_at=decided,
    )  # fmt: skip
    for row in (sig, decision):
        assert await repo.execute(conn, row)
    assert await repo.insert_order_new(conn, order)
    filled = OrderStatusUpdate(
        client_order_id=c, status="COMPLETE", filled_qty=10, avg_price=entry + Decimal("0.5"),
        broker_order_id=f"b{n}", status_message=None, ts=decided + timedelta(seconds=1),
    )  # fmt: skip
    assert await repo.update_order_status(conn, filled)
    position = PositionRow(
        session_id=session, plan_id=pid, instrument_token=inst.instrument_token,
        exchange=inst.exchange, tradingsymbol=inst.tradingsymbol, side="BUY", qty=10,
        avg_entry=entry + Decimal("0.5"), opened_at=decided, updated_at=decided,
    )  # fmt: skip
    assert await repo.execute(conn, position)
    return pid


async def child_row(
    conn: Conn, session: UUID, inst: Instrument, pid: str, tag: str, status: str, **kw: Any
) -> None:
    c = order_client_id(tag, pid)
    stop = tag == "STOP"
    row = OrderRow(
        session_id=session,
        client_order_id=c,
        plan_id=pid,
        tag=broker_tag(c),
        role=tag,
        exchange=inst.exchange,
        tradingsymbol=inst.tradingsymbol,
        instrument_token=inst.instrument_token,
        side=kw.get("side", "SELL"),
        order_type="SL-M" if stop else "LIMIT",
        product="MIS",
        qty=kw.get("qty", 10),
        price=None if stop else Decimal(1460),
        trigger_price=Decimal(1445) if stop else None,
        created_at=at(10, 2),
        updated_at=at(10, 2),
    )
    assert await repo.insert_order_new(conn, row)
    filled = kw.get("filled", 0)
    update = OrderStatusUpdate(
        client_order_id=c,
        status=status,
        filled_qty=filled,
        avg_price=Decimal(1460) if filled else None,
        broker_order_id=f"B-{tag}-{pid[:4]}",
        status_message=None,
        ts=at(10, 3),
    )
    assert await repo.update_order_status(conn, update)


@dataclasses.dataclass
class DbAdoption:
    rig: LiveRig
    broker: FakeBroker
    plans: tuple[str, str, str]
    adopted: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]


@pytest.fixture
async def from_database(db_pool: Pool) -> AsyncIterator[DbAdoption]:
    """An earlier session's rows: three open positions; a new process adopts them."""
    s = by_symbol()
    session = SessionRow(trading_date=TEST_DAY, mode="PAPER", feed="kite", started_at=at(9, 15))
    assert await repo.create_session(db_pool, session)
    sid = session.id
    # 1: both children working, TP partly filled (4 of 10): adopted as is.
    p1 = await write_plan(db_pool, sid, s["RELIANCE"], 1, at(10, 1), entry=Decimal(1450))
    await child_row(db_pool, sid, s["RELIANCE"], p1, "STOP", "TRIGGER PENDING", qty=6)
    await child_row(db_pool, sid, s["RELIANCE"], p1, "TP", "OPEN", filled=4)
    # 2: its stop was cancelled while no process watched: placed again.
    p2 = await write_plan(db_pool, sid, s["SBIN"], 2, at(10, 1), entry=Decimal(800))
    await child_row(db_pool, sid, s["SBIN"], p2, "STOP", "CANCELLED")
    await child_row(db_pool, sid, s["SBIN"], p2, "TP", "OPEN")
    # 3: an overfill buy-back is in its history: left to the operator.
    p3 = await write_plan(db_pool, sid, s["INFY"], 3, at(10, 1), entry=Decimal(1500))
    await child_row(db_pool, sid, s["INFY"], p3, "EXIT", "COMPLETE", side="BUY", filled=0)

    t_day = int(at(10, 30).timestamp()) * 1_000_000_000
    broker = FakeBroker(clock=lambda: t_day)
    instruments = {i.instrument_token: i for i in s.values()}
    rig = await live_rig(broker, db_pool, instruments, start_ns=t_day)
    try:
        await rig.live.load_transitions(db_pool)
        adopted, skipped = await adopt_open_brackets(
            rig.live, db_pool, instruments, {"entry_type": "LIMIT", "stop_type": "SL-M"},
            book=rig.live.book_adopted,
        )  # fmt: skip
        await broker.settled()
        await rig.settle()
        yield DbAdoption(rig, broker, (p1, p2, p3), adopted, skipped)
    finally:
        await rig.close()


async def test_open_positions_are_adopted_from_the_database(from_database: DbAdoption) -> None:
    live, (p1, p2, p3) = from_database.rig.live, from_database.plans
    # Both opened at the same minute: their order is the row ids' (random uuids).
    assert sorted(from_database.adopted) == sorted((p1, p2))
    assert [(p, "corrective" in why) for p, why in from_database.skipped] == [(p3, True)]
    assert live.live.open_brackets == 2
    # 1: entry 10 at 1450.50 (the plan's fill), 6 still open after the TP's 4: its
    # stop (6) and target (10, 4 filled) fit that exactly, so nothing is resized
    # (a machine holding 10 would grow the stop to 10 at once).
    assert live.positions[p1]["entry_value"] / live.positions[p1]["qty"] == 1450.5
    assert not [c for c in from_database.rig.commands() if c["plan_id"] == p1]
    local = [live.live.order_id_of(order_client_id(t, p1)) for t in ("STOP", "TP")]
    assert [live.broker_ids.get(i) if i is not None else None for i in local] == [
        f"B-STOP-{p1[:4]}",
        f"B-TP-{p1[:4]}",
    ]
    # Nothing of 1 was placed again.
    assert not [r for r in from_database.broker.requests if r.client_order_id.startswith(p1)]


async def test_a_stop_lost_before_the_restart_is_placed_again(from_database: DbAdoption) -> None:
    p2 = from_database.plans[1]
    # Only the lost stop was placed (under the next stop id: STOP is the dead order's),
    # for the whole position, at the plan's trigger; it works.
    assert [
        (r.client_order_id, r.quantity, r.trigger_paise) for r in from_database.broker.requests
    ] == [(order_client_id("STOP1", p2), 10, 79_500)]
    assert from_database.broker.order(order_client_id("STOP1", p2)).is_live
    assert from_database.rig.live.live.open_brackets == 2
    assert "STOP_LOST" not in from_database.rig.codes()


async def test_a_target_lost_before_the_restart_is_placed_again_from_the_database(
    db_pool: Pool,
) -> None:
    """From the database: the TP row is CANCELLED (lost while no process watched), the
    stop works. The dead row is handed to the kernel (its id is taken), so only a
    TARGET1 is placed, for the open 10, at the plan's target (810.00, not the dead
    order's price)."""
    s = by_symbol()
    session = SessionRow(trading_date=TEST_DAY, mode="PAPER", feed="kite", started_at=at(9, 15))
    assert await repo.create_session(db_pool, session)
    inst = s["SBIN"]
    pid = await write_plan(db_pool, session.id, inst, 4, at(10, 1), entry=Decimal(800))
    await child_row(db_pool, session.id, inst, pid, "STOP", "TRIGGER PENDING")
    await child_row(db_pool, session.id, inst, pid, "TP", "CANCELLED")
    t_day = int(at(10, 30).timestamp()) * 1_000_000_000
    broker = FakeBroker(clock=lambda: t_day)
    instruments = {inst.instrument_token: inst}
    rig = await live_rig(broker, db_pool, instruments, start_ns=t_day)
    try:
        await rig.live.load_transitions(db_pool)
        adopted, skipped = await adopt_open_brackets(
            rig.live, db_pool, instruments, {"entry_type": "LIMIT", "stop_type": "SL-M"},
            book=rig.live.book_adopted,
        )  # fmt: skip
        await broker.settled()
        await rig.settle()
        assert (adopted, skipped) == ((pid,), ())
        assert [(r.client_order_id, r.quantity, r.price_paise) for r in broker.requests] == [
            (order_client_id("TARGET1", pid), 10, 81_000)
        ]
        assert broker.order(order_client_id("TARGET1", pid)).is_live
        assert "TARGET_REPLACED" in rig.codes() and "TAKE_PROFIT_LOST" not in rig.codes()
    finally:
        await rig.close()
