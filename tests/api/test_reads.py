"""The journal reads: filters by IST day, session and status; pagination; bad input is 422."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest

from aitrapp.api import schemas
from aitrapp.db import repo
from aitrapp.db.pool import Pool

from .conftest import Api, MakeApi
from .fake_runtime import FakeRuntime

IST_OFFSET = timedelta(hours=5, minutes=30)
DAY1, DAY2 = date(2026, 1, 5), date(2026, 1, 6)


def ist(day: date, hh: int, mm: int = 0) -> datetime:
    """An IST wall time as an aware UTC datetime."""
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=UTC) - IST_OFFSET


@dataclass
class Journal:
    current: UUID  # the running (fake) session, DAY1
    other: UUID  # an earlier session, DAY2 in the data below


async def _order(
    pool: Pool, session: UUID, plan: str, role: str, status: str, at: datetime
) -> None:
    row = repo.OrderRow(
        session_id=session,
        client_order_id=f"{plan}:{role}",
        plan_id=plan,
        tag=f"{plan[:16]}{role[:2]}",
        role=role,
        exchange="NSE",
        tradingsymbol="RELIANCE",
        instrument_token=738561,
        side="BUY" if role == "ENTRY" else "SELL",
        order_type="LIMIT" if role != "STOP" else "SL-M",
        product="MIS",
        qty=10,
        price=Decimal("2500.05") if role != "STOP" else None,
        trigger_price=Decimal("2480.00") if role == "STOP" else None,
        created_at=at,
        updated_at=at,
    )
    await repo.insert_order_new(pool, row)
    if status != "NEW":
        filled = 10 if status == "COMPLETE" else 0
        await repo.update_order_status(
            pool,
            repo.OrderStatusUpdate(
                client_order_id=row.client_order_id,
                status=status,
                filled_qty=filled,
                avg_price=Decimal("2500.05") if filled else None,
                broker_order_id=f"B{plan}{role}",
                status_message=None,
                ts=at,
            ),
        )


async def _bracket(pool: Pool, session: UUID, n: int, at: datetime, *, closed: bool) -> None:
    plan = f"{n:024x}"
    sig = repo.SignalRow(
        session_id=session, ts=at, instrument_token=738561, tradingsymbol="RELIANCE",
        strategy="ORB" if n % 2 else "EmaCross", side="BUY", entry=Decimal("2500.05"),
        stop=Decimal("2480"), tp=Decimal("2536.15"), reason="breakout",
        features={"atr": "3.2"},
    )  # fmt: skip
    dec = repo.DecisionRow(
        session_id=session, signal_id=sig.id, plan_id=plan, ts=at, tradingsymbol="RELIANCE",
        strategy=sig.strategy, side="BUY", qty=10, entry=sig.entry, stop=sig.stop, tp=sig.tp,
        risk_rupees=Decimal("200.50"), heat_after_pct=Decimal("0.2"), config_sha="c1",
        tick_to_decision_ms=0.004,
    )  # fmt: skip
    await repo.execute(pool, sig)
    await repo.execute(pool, dec)
    await _order(pool, session, plan, "ENTRY", "COMPLETE", at)
    await _order(pool, session, plan, "STOP", "CANCELLED" if closed else "TRIGGER PENDING", at)
    await _order(pool, session, plan, "TP", "COMPLETE" if closed else "OPEN", at)
    pos = repo.PositionRow(
        session_id=session, plan_id=plan, instrument_token=738561, exchange="NSE",
        tradingsymbol="RELIANCE", side="BUY", qty=10, avg_entry=Decimal("2500.05"),
        opened_at=at, updated_at=at,
        closed_at=at + timedelta(minutes=5) if closed else None,
        exit_price=Decimal("2536.15") if closed else None,
        status="CLOSED" if closed else "OPEN",
    )  # fmt: skip
    await repo.execute(pool, pos)
    if closed:
        await repo.execute(
            pool,
            repo.TradeRow(
                session_id=session,
                decision_id=dec.id,
                plan_id=plan,
                strategy=sig.strategy,
                exchange="NSE",
                tradingsymbol="RELIANCE",
                side="BUY",
                qty=10,
                entry_price=Decimal("2500.05"),
                exit_price=Decimal("2536.15"),
                gross_pnl=Decimal("361.00"),
                charges=Decimal("41.25"),
                net_pnl=Decimal("319.75"),
                exit_reason="TP",
                opened_at=at,
                closed_at=at + timedelta(minutes=5),
            ),
        )
    await repo.execute(
        pool,
        repo.RiskEventRow(
            session_id=session,
            ts=at,
            reason="PORTFOLIO_HEAT" if n % 2 else "COOLDOWN",
            details={"heat_pct": "2.1"},
        ),
    )


@pytest.fixture
async def journal(api: Api) -> Journal:
    pool = api.runtime.pool
    other = uuid4()
    await repo.create_session(
        pool,
        repo.SessionRow(
            id=other, trading_date=DAY2, mode="PAPER", feed="replay", started_at=ist(DAY2, 9)
        ),
    )
    cur = api.runtime.session_id
    assert cur is not None
    # DAY1: three closed brackets and two open; one at 23:30 IST (still DAY1 in IST,
    # 18:00 UTC); DAY2: one closed bracket at 00:30 IST (DAY1 in UTC) and one at 10:00.
    for n, at, closed in [
        (1, ist(DAY1, 9, 20), True),
        (2, ist(DAY1, 10), True),
        (3, ist(DAY1, 11), False),
        (4, ist(DAY1, 12), False),
        (5, ist(DAY1, 23, 30), True),
    ]:
        await _bracket(pool, cur, n, at, closed=closed)
    await _bracket(pool, other, 6, ist(DAY2, 0, 30), closed=True)
    await _bracket(pool, other, 7, ist(DAY2, 10), closed=True)
    return Journal(current=cur, other=other)


async def get(api: Api, path: str, **params: Any) -> dict[str, Any]:
    r = await api.client.get(path, params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def plans(page: dict[str, Any]) -> list[int]:
    return [int(item["plan_id"], 16) for item in page["items"]]


async def test_trades_by_ist_day(api: Api, journal: Journal) -> None:
    assert plans(await get(api, "/trades")) == [1, 2, 5, 6, 7]
    assert plans(await get(api, "/trades", date="2026-01-05")) == [1, 2, 5]
    assert plans(await get(api, "/trades", date="2026-01-06")) == [6, 7]
    assert plans(await get(api, "/trades", date_from="2026-01-05", date_to="2026-01-06")) == [
        1, 2, 5, 6, 7,
    ]  # fmt: skip
    assert plans(await get(api, "/trades", date_from="2026-01-06")) == [6, 7]
    assert plans(await get(api, "/trades", date_to="2026-01-05")) == [1, 2, 5]
    assert plans(await get(api, "/trades", date="2026-01-07")) == []
    t = (await get(api, "/trades", date="2026-01-05"))["items"][0]
    assert t["net_pnl"] == "319.7500" and t["gross_pnl"] == "361.0000"
    assert t["exit_reason"] == "TP"
    assert plans(await get(api, "/trades", strategy="ORB")) == [1, 5, 7]
    assert plans(await get(api, "/trades", symbol="INFY")) == []


async def test_session_filter(api: Api, journal: Journal) -> None:
    assert plans(await get(api, "/trades", session_id="current")) == [1, 2, 5]
    assert plans(await get(api, "/trades", session_id=str(journal.other))) == [6, 7]
    assert plans(await get(api, "/positions", session_id=str(uuid4()))) == []


async def test_orders_by_status(api: Api, journal: Journal) -> None:
    working = await get(api, "/orders", status="WORKING", limit=50)
    assert {(int(o["plan_id"], 16), o["role"], o["status"]) for o in working["items"]} == {
        (3, "STOP", "TRIGGER PENDING"), (3, "TP", "OPEN"),
        (4, "STOP", "TRIGGER PENDING"), (4, "TP", "OPEN"),
    }  # fmt: skip
    r = await api.client.get("/orders", params=[("status", "CANCELLED"), ("status", "OPEN")])
    assert {o["status"] for o in r.json()["items"]} == {"CANCELLED", "OPEN"}
    assert len(r.json()["items"]) == 5 + 2
    one = await get(api, "/orders", plan_id=f"{3:024x}")
    assert [o["role"] for o in one["items"]] == ["ENTRY", "STOP", "TP"]
    stop = one["items"][1]
    assert stop["trigger_price"] == "2480.0000" and stop["price"] is None
    assert stop["order_type"] == "SL-M"
    assert plans(await get(api, "/orders", status="TRIGGER PENDING", date="2026-01-05")) == [3, 4]


async def test_positions_by_status_and_day(api: Api, journal: Journal) -> None:
    assert plans(await get(api, "/positions", status="OPEN")) == [3, 4]
    assert plans(await get(api, "/positions", status="CLOSED", date="2026-01-05")) == [1, 2, 5]
    assert plans(await get(api, "/positions", date="2026-01-06")) == [6, 7]
    assert plans(await get(api, "/positions", date_from="2026-01-06", status="OPEN")) == []
    p = (await get(api, "/positions", status="OPEN"))["items"][0]
    assert p["avg_entry"] == "2500.0500" and p["closed_at"] is None


async def test_signals_decisions_risk_events(api: Api, journal: Journal) -> None:
    sig = await get(api, "/signals", date="2026-01-05", strategy="EmaCross")
    assert [s["features"] for s in sig["items"]] == [{"atr": "3.2"}] * 2
    dec = await get(api, "/decisions", date="2026-01-06")
    assert plans(dec) == [6, 7]
    assert dec["items"][0]["tick_to_decision_ms"] == 0.004
    assert dec["items"][0]["risk_rupees"] == "200.5000"
    risk = await get(api, "/risk-events", reason="COOLDOWN")
    assert len(risk["items"]) == 3  # brackets 2, 4, 6
    assert risk["items"][0]["details"] == {"heat_pct": "2.1"}
    assert (await get(api, "/risk-events", date="2026-01-06", reason="PORTFOLIO_HEAT"))["items"][0][
        "session_id"
    ] == str(journal.other)


async def test_pagination(api: Api, journal: Journal) -> None:
    first = await get(api, "/orders", limit=8)
    assert len(first["items"]) == 8 and first["next_offset"] == 8
    second = await get(api, "/orders", limit=8, offset=first["next_offset"])
    third = await get(api, "/orders", limit=8, offset=second["next_offset"])
    assert len(third["items"]) == 21 - 16 and third["next_offset"] is None
    ids = [o["client_order_id"] for p in (first, second, third) for o in p["items"]]
    assert len(ids) == len(set(ids)) == 21
    assert (await get(api, "/orders", offset=1000))["items"] == []


BAD_QUERIES = [
    ("/trades", {"date": "2026-1-5"}, "query.date"),
    ("/trades", {"date": "05-01-2026"}, "query.date"),
    ("/trades", {"date": "2026-02-30"}, "query.date"),
    ("/trades", {"date": "1767225600"}, "query.date"),
    ("/trades", {"date": "2026-01-05T00:00:00"}, "query.date"),
    ("/trades", {"date": "0001-01-01"}, "query.date"),
    ("/trades", {"date_to": "9999-12-31"}, "query.date_to"),
    ("/orders", {"date_from": "yesterday"}, "query.date_from"),
    ("/orders", {"date_from": "2026-01-06", "date_to": "2026-01-05"}, "query.date_to"),
    ("/orders", {"limit": "0"}, "query.limit"),
    ("/orders", {"limit": "1001"}, "query.limit"),
    ("/orders", {"limit": "ten"}, "query.limit"),
    ("/orders", {"offset": "-1"}, "query.offset"),
    ("/orders", {"offset": str(2**70)}, "query.offset"),
    ("/orders", {"status": "FILLED"}, "query.status"),
    ("/positions", {"status": "open"}, "query.status"),
    ("/signals", {"session_id": "not-a-uuid"}, "query.session_id"),
    ("/signals", {"strategy": "OR\x00B"}, "query.strategy"),
    ("/risk-events", {"reason": "x" * 65}, "query.reason"),
    ("/orders", {"plan_id": ""}, "query.plan_id"),
]


@pytest.mark.parametrize(("path", "params", "field"), BAD_QUERIES)
async def test_bad_queries_are_422_naming_the_field(
    api: Api, path: str, params: dict[str, str], field: str
) -> None:
    r = await api.client.get(path, params=params)
    assert r.status_code == 422, r.text
    assert r.json()["message"].startswith(field), r.json()


async def test_current_session_when_none_is_running(make_api: MakeApi, db_pool: Pool) -> None:
    rt = FakeRuntime(db_pool)
    rt._session_id = None  # type: ignore[assignment]
    api = await make_api(runtime=rt)
    r = await api.client.get("/orders", params={"session_id": "current"})
    assert r.status_code == 404
    assert r.json() == {"detail": "no session is running"}


@pytest.mark.parametrize(
    ("model", "row"),
    [
        (schemas.OrderOut, repo.OrderRow),
        (schemas.PositionOut, repo.PositionRow),
        (schemas.TradeOut, repo.TradeRow),
        (schemas.SignalOut, repo.SignalRow),
        (schemas.DecisionOut, repo.DecisionRow),
        (schemas.RiskEventOut, repo.RiskEventRow),
    ],
)
def test_schemas_mirror_the_tables(model: type[Any], row: type[Any]) -> None:
    assert set(model.model_fields) == {f.name for f in fields(row)}


async def test_database_down_is_503_not_500(make_api: MakeApi, db_url: str) -> None:
    from aitrapp.db.pool import create_pool

    pool = await create_pool(db_url, min_size=1, max_size=1)
    rt = await FakeRuntime.start(pool)
    api = await make_api(runtime=rt)
    await pool.close()
    r = await api.client.get("/orders")
    assert r.status_code == 503
    assert r.json() == {"detail": "database unavailable", "error": "InterfaceError"}
