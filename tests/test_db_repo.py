"""repo.py against a real, migrated PostgreSQL: rows, idempotent writes, guarded updates, lists."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import UUID, uuid4

import asyncpg
import pytest

from aitrapp.db import repo
from aitrapp.db.pool import Pool
from aitrapp.db.repo import (
    AuditRow,
    DecisionRow,
    FillRow,
    InstrumentRow,
    OrderEventRow,
    OrderRow,
    OrderStatusUpdate,
    PositionClose,
    PositionRow,
    PositionUpdate,
    RiskEventRow,
    SessionEnd,
    SessionRow,
    SignalRow,
    TradeRow,
)

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 5, 4, 0, tzinfo=UTC)  # 09:30 IST


def session_row(**kw: object) -> SessionRow:
    fields: dict[str, object] = {
        "trading_date": date(2026, 1, 5),
        "mode": "PAPER",
        "feed": "replay",
        "started_at": T0,
        "config_sha": "c1",
    }
    fields.update(kw)
    return SessionRow(**fields)  # type: ignore[arg-type]


def signal_row(session_id: UUID, ts: datetime = T0, **kw: object) -> SignalRow:
    fields: dict[str, object] = {
        "session_id": session_id,
        "ts": ts,
        "instrument_token": 738561,
        "tradingsymbol": "RELIANCE",
        "strategy": "ORB",
        "side": "BUY",
        "entry": Decimal("2500.05"),
        "stop": Decimal("2480.00"),
        "tp": Decimal("2536.15"),
        "reason": "opening range breakout",
    }
    fields.update(kw)
    return SignalRow(**fields)  # type: ignore[arg-type]


def decision_row(sig: SignalRow, plan_id: str, **kw: object) -> DecisionRow:
    fields: dict[str, object] = {
        "session_id": sig.session_id,
        "signal_id": sig.id,
        "plan_id": plan_id,
        "ts": sig.ts + timedelta(microseconds=40),
        "tradingsymbol": sig.tradingsymbol,
        "strategy": sig.strategy,
        "side": sig.side,
        "qty": 24,
        "entry": sig.entry,
        "stop": sig.stop,
        "tp": sig.tp,
        "risk_rupees": Decimal("481.20"),
        "heat_after_pct": Decimal("0.48"),
        "config_sha": "c1",
        "tick_to_decision_ms": 0.04,
    }
    fields.update(kw)
    return DecisionRow(**fields)  # type: ignore[arg-type]


def order_row(session_id: UUID, plan_id: str, role: str = "ENTRY", **kw: object) -> OrderRow:
    fields: dict[str, object] = {
        "session_id": session_id,
        "client_order_id": f"{plan_id}:{role}",
        "plan_id": plan_id,
        "tag": f"{plan_id[:16]}{role[:2]}",
        "role": role,
        "exchange": "NSE",
        "tradingsymbol": "RELIANCE",
        "instrument_token": 738561,
        "side": "BUY",
        "order_type": "LIMIT",
        "product": "MIS",
        "qty": 24,
        "price": Decimal("2500.05"),
        "created_at": T0,
        "updated_at": T0,
    }
    fields.update(kw)
    return OrderRow(**fields)  # type: ignore[arg-type]


async def seed_session(pool: Pool, **kw: object) -> SessionRow:
    s = session_row(**kw)
    assert await repo.create_session(pool, s)
    return s


async def test_session_roundtrip_and_end_is_idempotent(db_pool: Pool) -> None:
    s = await seed_session(db_pool)
    assert not await repo.create_session(db_pool, s)  # same id: no second row
    got = await repo.get_session(db_pool, s.id)
    assert got == s
    end = SessionEnd(
        session_id=s.id,
        ended_at=T0 + timedelta(hours=6),
        status="COMPLETED",
        summary={"net": Decimal("12.50")},
    )
    assert await repo.end_session(db_pool, end)
    assert not await repo.end_session(db_pool, end)  # already ended: unchanged
    got = await repo.get_session(db_pool, s.id)
    assert got is not None
    assert got.status == "COMPLETED"
    assert got.summary == {"net": "12.50"}  # Decimals are stored exactly, as strings


async def test_list_sessions_filters_and_pages(db_pool: Pool) -> None:
    for i in range(5):
        await seed_session(
            db_pool,
            trading_date=date(2026, 1, 5) + timedelta(days=i),
            started_at=T0 + timedelta(days=i),
            mode="LIVE" if i == 4 else "PAPER",
        )
    paper = await repo.list_sessions(db_pool, mode="PAPER")
    assert [s.trading_date.day for s in paper] == [8, 7, 6, 5]  # newest first
    window = await repo.list_sessions(db_pool, date_from=date(2026, 1, 6), date_to=date(2026, 1, 7))
    assert [s.trading_date.day for s in window] == [7, 6]
    page2 = await repo.list_sessions(db_pool, limit=2, offset=2)
    assert [s.trading_date.day for s in page2] == [7, 6]
    with pytest.raises(ValueError, match="limit"):
        await repo.list_sessions(db_pool, limit=0)
    with pytest.raises(ValueError, match="offset"):
        await repo.list_sessions(db_pool, offset=-1)


async def test_new_order_is_written_once(db_pool: Pool) -> None:
    s = await seed_session(db_pool)
    o = order_row(s.id, "a" * 24)
    assert await repo.insert_order_new(db_pool, o) is True
    # A retry of the same plan (same client_order_id) must not create a second order.
    again = order_row(s.id, "a" * 24, qty=50)
    assert await repo.insert_order_new(db_pool, again) is False
    got = await repo.get_order(db_pool, o.client_order_id)
    assert got is not None
    assert got.qty == 24
    assert got.id is not None
    assert got.status == "NEW"
    with pytest.raises(ValueError, match="NEW"):
        await repo.insert_order_new(db_pool, order_row(s.id, "b" * 24, status="OPEN"))


async def test_order_status_updates_are_monotonic(db_pool: Pool) -> None:
    s = await seed_session(db_pool)
    o = order_row(s.id, "c" * 24)
    await repo.insert_order_new(db_pool, o)

    def upd(status: str, filled: int, minute: int) -> OrderStatusUpdate:
        return OrderStatusUpdate(
            client_order_id=o.client_order_id,
            status=status,
            filled_qty=filled,
            avg_price=Decimal("2500.05") if filled else None,
            broker_order_id="B1",
            status_message=None,
            ts=T0 + timedelta(minutes=minute),
        )

    assert await repo.update_order_status(db_pool, upd("OPEN", 10, 1))
    # A stale update (less filled) arriving late changes nothing.
    assert not await repo.update_order_status(db_pool, upd("OPEN", 0, 2))
    assert await repo.update_order_status(db_pool, upd("COMPLETE", 24, 3))
    # Terminal is final, even for a reordered OPEN with the same fill.
    assert not await repo.update_order_status(db_pool, upd("OPEN", 24, 4))
    got = await repo.get_order(db_pool, o.client_order_id)
    assert got is not None
    assert (got.status, got.filled_qty, got.broker_order_id) == ("COMPLETE", 24, "B1")
    assert got.updated_at == T0 + timedelta(minutes=3)
    by_broker = await repo.get_order_by_broker_id(db_pool, "B1")
    assert by_broker is not None
    assert by_broker.client_order_id == o.client_order_id
    with pytest.raises(ValueError, match="status"):
        upd("FILLED", 1, 5)


async def test_fills_dedupe_on_broker_fill_key(db_pool: Pool) -> None:
    s = await seed_session(db_pool)
    o = order_row(s.id, "d" * 24)
    await repo.insert_order_new(db_pool, o)
    f = FillRow(
        fill_scope="kite:AB1234",
        client_order_id=o.client_order_id,
        broker_fill_key="T-1001",
        qty=10,
        price=Decimal("2500.05"),
        ts=T0,
    )
    assert await repo.insert_fill(db_pool, f)
    dup = FillRow(
        fill_scope="kite:AB1234",
        client_order_id=o.client_order_id,
        broker_fill_key="T-1001",
        qty=10,
        price=Decimal("2500.05"),
        ts=T0,
    )
    assert not await repo.insert_fill(db_pool, dup)  # new id, same broker fill: ignored
    assert len(await repo.list_fills(db_pool, client_order_id=o.client_order_id)) == 1
    assert len(await repo.list_fills(db_pool, session_id=s.id)) == 1


async def test_fill_keys_are_unique_per_account_and_conflicts_are_refused(db_pool: Pool) -> None:
    """Paper order ids restart with every process: two sessions' fills with the same
    key both land (each session is its own account); within one account a different
    fill under a taken key is an error, not a silent skip."""
    s1, s2 = await seed_session(db_pool), await seed_session(db_pool)
    o1, o2 = order_row(s1.id, "e1" * 12), order_row(s2.id, "e2" * 12)
    for o in (o1, o2):
        await repo.insert_order_new(db_pool, o)

    def fill(scope: str, o: repo.OrderRow, qty: int = 10) -> FillRow:
        return FillRow(
            fill_scope=scope,
            client_order_id=o.client_order_id,
            broker_order_id="1",  # both processes' first paper order
            broker_fill_key="1:10",
            qty=qty,
            price=Decimal("100.5"),
            ts=T0,
        )

    assert await repo.insert_fill(db_pool, fill(f"paper:{s1.id}", o1))
    assert await repo.insert_fill(db_pool, fill(f"paper:{s2.id}", o2))
    with pytest.raises(asyncpg.UniqueViolationError) as err:
        await repo.insert_fill(db_pool, fill(f"paper:{s1.id}", o2))  # another order's fill
    assert repo.is_fill_conflict(err.value)
    assert "conflicting fill 1:10" in str(err.value)
    with pytest.raises(asyncpg.UniqueViolationError) as err:
        await repo.insert_fill(db_pool, fill(f"paper:{s1.id}", o1, qty=9))  # other quantity
    assert repo.is_fill_conflict(err.value)
    assert len(await repo.list_fills(db_pool)) == 2


async def test_order_events_are_append_only(db_pool: Pool) -> None:
    s = await seed_session(db_pool)
    o = order_row(s.id, "e" * 24)
    await repo.insert_order_new(db_pool, o)
    ev = OrderEventRow(
        client_order_id=o.client_order_id,
        broker_order_id="B9",
        ts=T0,
        status="OPEN",
        pending_qty=24,
        payload={"raw_status": "OPEN PENDING"},
    )
    assert await repo.execute(db_pool, ev)
    assert not await repo.execute(db_pool, ev)  # replay of the same event
    events = await repo.list_order_events(db_pool, o.client_order_id)
    assert [(e.status, e.payload) for e in events] == [("OPEN", {"raw_status": "OPEN PENDING"})]
    with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
        await db_pool.execute("UPDATE order_events SET status = 'COMPLETE'")
    with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
        await db_pool.execute("DELETE FROM order_events")
    audit = AuditRow(ts=T0, actor="api", action="pause", params={}, result={"ok": True})
    assert await repo.execute(db_pool, audit)
    with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
        await db_pool.execute("DELETE FROM audit_log")


async def test_positions_open_update_close(db_pool: Pool) -> None:
    s = await seed_session(db_pool)
    p = PositionRow(
        session_id=s.id,
        plan_id="p" * 24,
        instrument_token=738561,
        exchange="NSE",
        tradingsymbol="RELIANCE",
        side="BUY",
        qty=10,
        avg_entry=Decimal("2500.05"),
        opened_at=T0,
        updated_at=T0,
    )
    assert await repo.execute(db_pool, p)
    assert await repo.execute(
        db_pool,
        PositionUpdate(plan_id=p.plan_id, qty=24, avg_entry=Decimal("2500.10"), ts=T0),
    )
    # A second open position for the same plan is refused by the database.
    with pytest.raises(asyncpg.UniqueViolationError):
        await repo.execute(db_pool, PositionRow(**{**_fields(p), "id": uuid4()}))
    opened = await repo.list_positions(db_pool, session_id=s.id, status="OPEN")
    assert [(x.qty, x.avg_entry) for x in opened] == [(24, Decimal("2500.10"))]
    close = PositionClose(
        plan_id=p.plan_id, closed_at=T0 + timedelta(hours=1), exit_price=Decimal("2536.15")
    )
    assert await repo.execute(db_pool, close)
    assert not await repo.execute(db_pool, close)
    assert await repo.get_open_position(db_pool, p.plan_id) is None
    closed = await repo.list_positions(db_pool, status="CLOSED")
    assert closed[0].exit_price == Decimal("2536.15")


def _fields(row: object) -> dict[str, object]:
    import dataclasses

    return {f.name: getattr(row, f.name) for f in dataclasses.fields(row)}  # type: ignore[arg-type]


async def test_trade_chain_joins_signal_decision_orders(db_pool: Pool) -> None:
    s = await seed_session(db_pool)
    sig = signal_row(s.id)
    plan = "f" * 24
    dec = decision_row(sig, plan)
    for w in (sig, dec):
        assert await repo.execute(db_pool, w)
    for role in ("ENTRY", "STOP", "TP"):
        await repo.insert_order_new(db_pool, order_row(s.id, plan, role))
    trade = TradeRow(
        session_id=s.id,
        decision_id=dec.id,
        plan_id=plan,
        strategy="ORB",
        exchange="NSE",
        tradingsymbol="RELIANCE",
        side="BUY",
        qty=24,
        entry_price=Decimal("2500.05"),
        exit_price=Decimal("2536.15"),
        gross_pnl=Decimal("866.40"),
        charges=Decimal("41.18"),
        net_pnl=Decimal("825.22"),
        exit_reason="TP",
        opened_at=T0,
        closed_at=T0 + timedelta(minutes=42),
    )
    assert await repo.execute(db_pool, trade)
    chain = await repo.trade_chain(db_pool, trade.id)
    assert chain is not None
    assert chain["signal_id"] == sig.id
    assert chain["decision_id"] == dec.id
    assert chain["signal_reason"] == "opening range breakout"
    assert chain["risk_rupees"] == Decimal("481.2000")
    assert sorted(o.role for o in chain["orders"]) == ["ENTRY", "STOP", "TP"]
    assert await repo.trade_chain(db_pool, uuid4()) is None

    stats = await repo.trade_stats(db_pool, session_id=s.id)
    assert (stats.trades, stats.wins, stats.losses) == (1, 1, 0)
    assert stats.net_pnl == Decimal("825.22")
    # 04:42 UTC is 10:12 IST on 2026-01-05.
    assert len(await repo.list_trades(db_pool, day=date(2026, 1, 5))) == 1
    assert await repo.list_trades(db_pool, day=date(2026, 1, 6)) == []
    assert (await repo.trade_stats(db_pool, day=date(2026, 1, 6))).trades == 0
    assert await repo.get_decision(db_pool, plan) == dec


async def test_ist_day_filter_uses_india_midnight(db_pool: Pool) -> None:
    s = await seed_session(db_pool)
    # 18:29 UTC on the 4th is 23:59 IST on the 4th; 18:31 UTC is 00:01 IST on the 5th.
    late = signal_row(s.id, ts=datetime(2026, 1, 4, 18, 29, tzinfo=UTC))
    early = signal_row(s.id, ts=datetime(2026, 1, 4, 18, 31, tzinfo=UTC))
    for w in (late, early):
        await repo.execute(db_pool, w)
    on_5th = await repo.list_signals(db_pool, day=date(2026, 1, 5))
    assert [x.id for x in on_5th] == [early.id]
    with pytest.raises(ValueError, match="since"):
        await repo.list_signals(db_pool, since=datetime(2026, 1, 1))


async def test_lists_filter_by_status_and_session(db_pool: Pool) -> None:
    s1 = await seed_session(db_pool)
    s2 = await seed_session(db_pool)
    for i in range(3):
        await repo.insert_order_new(
            db_pool, order_row(s1.id, f"{i:024d}", created_at=T0 + timedelta(seconds=i))
        )
    await repo.insert_order_new(db_pool, order_row(s2.id, "9" * 24))
    await repo.update_order_status(
        db_pool,
        OrderStatusUpdate(
            client_order_id=f"{0:024d}:ENTRY",
            status="REJECTED",
            filled_qty=0,
            avg_price=None,
            broker_order_id=None,
            status_message="margin",
            ts=T0,
        ),
    )
    assert len(await repo.list_orders(db_pool, session_id=s1.id)) == 3
    assert len(await repo.list_orders(db_pool, status="NEW")) == 3
    assert len(await repo.list_orders(db_pool, status=["NEW", "REJECTED"])) == 4
    live = await repo.list_live_orders(db_pool, session_id=s1.id)
    assert [o.plan_id for o in live] == [f"{1:024d}", f"{2:024d}"]
    page = await repo.list_orders(db_pool, session_id=s1.id, limit=1, offset=1)
    assert [o.plan_id for o in page] == [f"{1:024d}"]

    ev = RiskEventRow(ts=T0, reason="db_unavailable", session_id=s1.id, details={"queued": 3})
    await repo.execute(db_pool, ev)
    await repo.execute(db_pool, RiskEventRow(ts=T0, reason="heat", session_id=s1.id))
    events = await repo.list_risk_events(db_pool, session_id=s1.id, reason="db_unavailable")
    assert [e.details for e in events] == [{"queued": 3}]
    assert await repo.count_risk_events_by_reason(db_pool, s1.id) == {
        "db_unavailable": 1,
        "heat": 1,
    }


async def test_instruments_upsert(db_pool: Pool) -> None:
    row = InstrumentRow(
        instrument_token=256265,
        exchange="NSE",
        tradingsymbol="NIFTY 50",
        segment="INDICES",
        tick_size=Decimal("0.05"),
        lot_size=1,
        updated_at=T0,
    )
    await repo.upsert_instruments(db_pool, [row])
    await repo.upsert_instruments(db_pool, [InstrumentRow(**{**_fields(row), "lot_size": 65})])
    got = await repo.get_instrument(db_pool, 256265)
    assert got is not None
    assert got.lot_size == 65


def test_rows_refuse_bad_values_naming_the_field() -> None:
    sid = uuid4()
    with pytest.raises(ValueError, match=r"SignalRow\.ts: datetime must be timezone-aware"):
        signal_row(sid, ts=datetime(2026, 1, 5, 9, 30))
    with pytest.raises(TypeError, match=r"SignalRow\.entry: use Decimal"):
        signal_row(sid, entry=2500.05)
    with pytest.raises(ValueError, match=r"SignalRow\.side"):
        signal_row(sid, side="LONG")
    with pytest.raises(ValueError, match=r"OrderRow\.tag"):
        order_row(sid, "x" * 24, tag="x" * 21)
    with pytest.raises(ValueError, match=r"OrderRow\.qty"):
        order_row(sid, "x" * 24, qty=0)
    with pytest.raises(ValueError, match=r"TradeRow\.net_pnl"):
        TradeRow(
            session_id=sid,
            decision_id=sid,
            plan_id="p",
            strategy="S",
            exchange="NSE",
            tradingsymbol="X",
            side="SELL",
            qty=1,
            entry_price=Decimal(10),
            exit_price=Decimal(9),
            gross_pnl=Decimal(1),
            charges=Decimal("0.5"),
            net_pnl=Decimal(1),
            exit_reason="TP",
            opened_at=T0,
            closed_at=T0,
        )
    with pytest.raises(ValueError, match="client_order_id or broker_order_id"):
        FillRow(fill_scope="paper:x", broker_fill_key="k", qty=1, price=Decimal(1), ts=T0)
    assert repo.rupees(250005) == Decimal("2500.05")
