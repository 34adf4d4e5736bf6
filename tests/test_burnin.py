"""The burn-in check against a real database: a passing session, then one failing
variant per criterion, each of which must fail that criterion and only that one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest

from aitrapp.db import repo
from aitrapp.db.pool import Pool
from aitrapp.exceptions import ConfigError
from aitrapp.report import ReportError
from aitrapp.report.burnin import (
    BurninCriteria,
    Verdict,
    check_session,
    evaluate_session,
    load_criteria,
    recent_verdicts,
    stored_thresholds,
)
from test_burnin_support import TRADES, Bracket, SessionBuilder, ist, passing_session

pytestmark = pytest.mark.integration

NOW = datetime(2026, 1, 5, 10, 30, tzinfo=UTC)
ALL = {
    "signals",
    "decisions",
    "oco_lifecycle",
    "flatten",
    "unique_client_ids",
    "no_orphan_siblings",
    "trade_chain",
    "fills_match",
    "session_completed",
    "protection",
}


def failed(v: Verdict) -> set[str]:
    return {c.name for c in v.failed}


def crit(v: Verdict, name: str) -> Any:
    return next(c for c in v.criteria if c.name == name)


async def judge(pool: Pool, s: SessionBuilder, **kw: Any) -> Verdict:
    return await evaluate_session(pool, s.id, now=NOW, criteria=BurninCriteria(**kw))


async def test_passing_session_passes_every_criterion(db_pool: Pool) -> None:
    s, _ = await passing_session(db_pool)
    v = await judge(db_pool, s)
    assert {c.name for c in v.criteria} == ALL
    assert v.passed, [c.detail for c in v.failed]
    measured = {c.name: c.measured for c in v.criteria}
    assert measured == {
        "signals": 60,  # 55 + one per decision
        "decisions": 5,
        "oco_lifecycle": 5,
        "flatten": 150,
        "unique_client_ids": 0,
        "no_orphan_siblings": 0,
        "trade_chain": 0,
        "fills_match": 0,
        "session_completed": None,
        "protection": 0,  # double exits outside recorded races
    }
    assert crit(v, "flatten").detail == "150 ms (audit_log)"
    assert (v.mode, v.feed, v.synthetic, v.status) == ("PAPER", "kite", False, "COMPLETED")


async def test_check_session_stores_the_verdict(db_pool: Pool) -> None:
    s, _ = await passing_session(db_pool)
    v = await check_session(db_pool, s.id, now=NOW, criteria=BurninCriteria())
    row = await repo.get_session(db_pool, s.id)
    assert row is not None and row.burnin_verdict is not None
    doc = row.burnin_verdict
    assert doc["passed"] is True and doc["session_id"] == str(s.id)
    assert doc["evaluated_at"] == NOW.isoformat()
    assert [c["name"] for c in doc["criteria"]] == [c.name for c in v.criteria]
    assert stored_thresholds(doc) == BurninCriteria()
    assert [r.id for r in await recent_verdicts(db_pool, 10)] == [s.id]


async def test_too_few_signals(db_pool: Pool) -> None:
    s, _ = await passing_session(db_pool, signals=44)  # 44 + 5 = 49
    v = await judge(db_pool, s)
    assert failed(v) == {"signals"}
    assert crit(v, "signals").measured == 49
    assert crit(v, "signals").threshold == ">= 50"


async def test_too_few_decisions(db_pool: Pool) -> None:
    s, _ = await passing_session(db_pool, trades=TRADES[:2])
    v = await judge(db_pool, s)
    assert failed(v) == {"decisions"}
    assert crit(v, "decisions").measured == 2


async def test_no_full_oco_lifecycle(db_pool: Pool) -> None:
    """Three brackets all closed by a flatten EXIT (both legs cancelled): no leg ever filled."""
    s = await SessionBuilder.start(db_pool)
    await s.signals(55)
    for spec in TRADES[:3]:
        at = ist(spec.closed_hour - 1)
        _, dec = await s.decision(
            symbol=spec.symbol, side=spec.side, qty=spec.qty, entry=spec.entry, ts=at
        )
        out = "SELL" if spec.side == "BUY" else "BUY"
        await s.order(dec.plan_id, "ENTRY", side=spec.side, qty=spec.qty, at=at,
                      status="COMPLETE", filled=spec.qty, price=spec.entry)  # fmt: skip
        for leg in ("STOP", "TP"):
            await s.order(dec.plan_id, leg, side=out, qty=spec.qty, at=at, status="CANCELLED")
        await s.order(dec.plan_id, "EXIT", side=out, qty=spec.qty, at=at,
                      status="COMPLETE", filled=spec.qty, price=spec.exit)  # fmt: skip
    await s.flatten()
    await s.end()
    v = await judge(db_pool, s)
    assert failed(v) == {"oco_lifecycle"}
    assert crit(v, "oco_lifecycle").measured == 0


async def test_rejected_leg_is_not_a_full_lifecycle(db_pool: Pool) -> None:
    s, _ = await passing_session(db_pool, trades=TRADES[:3], end=False)
    await s.end()
    base = await judge(db_pool, s)
    assert crit(base, "oco_lifecycle").measured == 3
    s2 = await SessionBuilder.start(db_pool)
    await s2.signals(60)
    for spec in TRADES[:3]:
        await s2.bracket(spec, sibling_status="REJECTED")
    await s2.flatten()
    await s2.end()
    v = await judge(db_pool, s2)
    assert failed(v) == {"oco_lifecycle"}


@pytest.mark.parametrize(
    "kind", ["placed_twice", "shared_tag", "shared_broker_id", "two_entries"]
)  # fmt: skip
async def test_duplicate_client_ids(db_pool: Pool, kind: str) -> None:
    s, brackets = await passing_session(db_pool, end=False)
    first = brackets[0]
    plan = s.plan_id()
    at = ist(12, 30)
    if kind == "placed_twice":
        # One client id, two broker orders: the same order placed twice at the broker.
        await s.order(plan, "ENTRY", side="BUY", qty=1, at=at, status="CANCELLED",
                      broker_ids=("260105900001", "260105900002"))  # fmt: skip
        want = "placed as broker orders 260105900001, 260105900002"
    elif kind == "shared_tag":
        await s.order(plan, "ENTRY", side="BUY", qty=1, at=at, status="CANCELLED",
                      tag=first.orders["ENTRY"].tag)  # fmt: skip
        want = f"broker tag {first.orders['ENTRY'].tag} shared by"
    elif kind == "shared_broker_id":
        bid = first.orders["TP"].broker_order_id
        assert bid is not None
        await s.order(plan, "ENTRY", side="BUY", qty=1, at=at, status="CANCELLED",
                      broker_ids=(bid,))  # fmt: skip
        want = f"broker order id {bid} shared by"
    else:
        # A second ENTRY order for a plan that already has one, under another client id.
        await s.order(first.plan_id, "ENTRY", side="BUY", qty=1, at=at, status="CANCELLED",
                      client_order_id=f"{first.plan_id}:EXIT9")  # fmt: skip
        want = f"plan {first.plan_id} has 2 ENTRY orders"
    await s.end()
    v = await judge(db_pool, s)
    assert failed(v) == {"unique_client_ids"}, [c.detail for c in v.failed]
    c = crit(v, "unique_client_ids")
    assert c.measured == 1
    assert want in c.detail


@pytest.mark.parametrize("left", ["TRIGGER PENDING", "OPEN", "NEW"])
async def test_sibling_left_working_after_tp(db_pool: Pool, left: str) -> None:
    s, _ = await passing_session(db_pool, end=False)
    await s.bracket(TRADES[0], sibling_status=left)  # TP filled, STOP still working
    await s.end()
    v = await judge(db_pool, s)
    assert failed(v) == {"no_orphan_siblings"}
    c = crit(v, "no_orphan_siblings")
    assert c.measured == 1
    assert f"still {left} after TP closed the position" in c.detail
    assert crit(v, "oco_lifecycle").measured == 5  # the faulty bracket does not count


async def test_sibling_filled_after_the_bracket_closed(db_pool: Pool) -> None:
    s, _ = await passing_session(db_pool, end=False)
    await s.bracket(TRADES[1], sibling_status="COMPLETE")  # STOP filled, then TP too
    await s.end()
    v = await judge(db_pool, s)
    # The second exit's fill also leaves the account 20 the other way round, and
    # no race was recorded for this double exit.
    assert failed(v) == {"no_orphan_siblings", "fills_match", "protection"}
    assert crit(v, "protection").measured == 1
    assert "exits filled 40 > entry filled 20" in crit(v, "no_orphan_siblings").detail
    assert "CLOSED (flat), its fills leave -20" in crit(v, "fills_match").detail


async def test_trade_without_orders(db_pool: Pool) -> None:
    s, _ = await passing_session(db_pool, end=False)
    spec = TRADES[2]
    sig, dec = await s.decision(
        symbol=spec.symbol, side=spec.side, qty=spec.qty, entry=spec.entry, ts=ist(14, 30)
    )
    await s.trade(Bracket(dec.plan_id, sig, dec), spec, opened=ist(14, 30), closed=ist(14, 45))
    await s.end()
    v = await judge(db_pool, s)
    assert failed(v) == {"trade_chain"}
    c = crit(v, "trade_chain")
    assert c.measured == 1
    assert f"no orders for plan {dec.plan_id}" in c.detail


async def test_trade_pointing_at_another_plans_decision(db_pool: Pool) -> None:
    s, brackets = await passing_session(db_pool, end=False)
    b = brackets[0]
    assert b.trade is not None
    # A second trade on bracket 1's orders, but attributed to bracket 2's decision.
    await s.trade(b, TRADES[0], opened=ist(9, 30), closed=ist(9, 40),
                  decision_id=brackets[1].decision.id)  # fmt: skip
    await s.end()
    v = await judge(db_pool, s)
    assert failed(v) == {"trade_chain"}
    c = crit(v, "trade_chain")
    assert f"but its decision is {brackets[1].plan_id}" in c.detail
    # Both trades of that plan now cover 20 while its entry filled 10.
    assert "cover 20, its entry filled 10" in c.detail


async def test_trade_without_a_filled_exit(db_pool: Pool) -> None:
    s, _ = await passing_session(db_pool, end=False)
    spec = TRADES[0]
    at = ist(14, 30)
    sig, dec = await s.decision(
        symbol=spec.symbol, side=spec.side, qty=spec.qty, entry=spec.entry, ts=at
    )
    await s.order(dec.plan_id, "ENTRY", side="BUY", qty=spec.qty, at=at, status="COMPLETE",
                  filled=spec.qty, price=spec.entry)  # fmt: skip
    await s.trade(Bracket(dec.plan_id, sig, dec), spec, opened=at, closed=ist(14, 45))
    await s.end()
    v = await judge(db_pool, s)
    # Its entry's fill is open with no position to hold it, as the fills check says.
    assert failed(v) == {"trade_chain", "fills_match"}
    assert "no filled exit order" in crit(v, "trade_chain").detail
    assert f"plan {dec.plan_id}: fills leave 10 open" in crit(v, "fills_match").detail


async def test_slow_flatten(db_pool: Pool) -> None:
    s, _ = await passing_session(db_pool, flatten_ms=2500)
    v = await judge(db_pool, s)
    assert failed(v) == {"flatten"}
    c = crit(v, "flatten")
    assert c.measured == 2500
    assert "took 2500 ms > 2000 ms" in c.detail


async def test_flatten_at_exactly_the_limit_passes(db_pool: Pool) -> None:
    s, _ = await passing_session(db_pool, flatten_ms=2000)
    assert (await judge(db_pool, s)).passed


async def test_no_flatten_drill(db_pool: Pool) -> None:
    s = await SessionBuilder.start(db_pool)
    await s.signals(55)
    for spec in TRADES:
        await s.bracket(spec)
    await s.end()
    v = await judge(db_pool, s)
    assert failed(v) == {"flatten"}
    c = crit(v, "flatten")
    assert c.measured is None
    assert "no flatten drill recorded" in c.detail


async def test_any_slow_flatten_fails_even_if_a_later_one_was_fast(db_pool: Pool) -> None:
    s, _ = await passing_session(db_pool, flatten_ms=2600, end=False)
    await s.flatten(120)
    await s.end()
    c = crit(await judge(db_pool, s), "flatten")
    assert not c.passed and c.measured == 2600


@pytest.mark.parametrize(
    ("elapsed", "ok", "want"),
    [
        (150, False, "ok is False, not true"),
        (150, None, "ok is None, not true"),
        ("fast", True, "elapsed_ms missing or not a number ('fast')"),
        (None, True, "elapsed_ms missing or not a number (None)"),
    ],
)
async def test_flatten_malformed_or_not_ok(
    db_pool: Pool, elapsed: object, ok: object, want: str
) -> None:
    s = await SessionBuilder.start(db_pool)
    await s.signals(55)
    for spec in TRADES:
        await s.bracket(spec)
    await s.flatten(elapsed, ok)
    await s.end()
    v = await judge(db_pool, s)
    assert failed(v) == {"flatten"}
    assert want in crit(v, "flatten").detail


async def test_flatten_from_the_summary_when_not_audited(db_pool: Pool) -> None:
    s = await SessionBuilder.start(db_pool)
    await s.signals(55)
    for spec in TRADES:
        await s.bracket(spec)
    drill = {"started_at": "x", "elapsed_ms": 180.5, "ok": True,
             "open_positions_after": 0, "working_orders_after": 0}  # fmt: skip
    await s.end(flatten_drill=drill)
    v = await judge(db_pool, s)
    assert v.passed
    assert crit(v, "flatten").detail == "180.5 ms (summary.flatten_drill)"


async def test_flatten_leaving_positions_open_fails(db_pool: Pool) -> None:
    s, _ = await passing_session(
        db_pool, flatten_drill={"elapsed_ms": 100, "ok": True, "open_positions_after": 1}
    )
    v = await judge(db_pool, s)
    assert failed(v) == {"flatten"}
    assert "summary.flatten_drill.open_positions_after = 1" in crit(v, "flatten").detail


async def test_unaudited_flatten_of_the_session_window_counts(db_pool: Pool) -> None:
    """An audit row without session_id (an operator /flatten) inside the session's window."""
    s = await SessionBuilder.start(db_pool)
    await s.signals(55)
    for spec in TRADES:
        await s.bracket(spec)
    await repo.execute(
        db_pool,
        repo.AuditRow(ts=ist(15, 0), actor="api", action="flatten",
                      result={"elapsed_ms": 3000, "ok": True}),
    )  # fmt: skip
    # ... and one outside it, which must be ignored.
    await repo.execute(
        db_pool,
        repo.AuditRow(ts=ist(15, 0) + timedelta(days=1), actor="api", action="flatten",
                      result={"elapsed_ms": 10, "ok": True}),
    )  # fmt: skip
    await s.end()
    c = crit(await judge(db_pool, s), "flatten")
    assert not c.passed and c.measured == 3000


@pytest.mark.parametrize("status", ["RUNNING", "ABORTED", "FAILED"])
async def test_session_not_completed(db_pool: Pool, status: str) -> None:
    s, _ = await passing_session(db_pool, end=False)
    if status != "RUNNING":
        await s.end(status)  # type: ignore[arg-type]
    v = await judge(db_pool, s)
    assert failed(v) == {"session_completed"}
    assert crit(v, "session_completed").detail == f"status {status}"


async def test_thresholds_are_configurable(db_pool: Pool, monkeypatch: pytest.MonkeyPatch) -> None:
    s, _ = await passing_session(db_pool)
    strict = await judge(db_pool, s, min_signals=61, min_decisions=6, min_oco_lifecycles=6,
                         max_flatten_ms=100)  # fmt: skip
    assert failed(strict) == {"signals", "decisions", "oco_lifecycle", "flatten"}
    monkeypatch.setenv("AITRAPP_BURNIN_MIN_SIGNALS", "61")
    assert load_criteria().min_signals == 61
    v = await evaluate_session(db_pool, s.id, now=NOW)  # criteria from the environment
    assert failed(v) == {"signals"}
    assert load_criteria(min_signals=10).min_signals == 10  # an explicit override wins


def test_bad_thresholds_name_the_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AITRAPP_BURNIN_MAX_FLATTEN_MS", "-5")
    with pytest.raises(ConfigError, match="AITRAPP_BURNIN_MAX_FLATTEN_MS"):
        load_criteria()
    monkeypatch.delenv("AITRAPP_BURNIN_MAX_FLATTEN_MS")
    with pytest.raises(ConfigError, match="AITRAPP_BURNIN_MIN_SIGNALS"):
        load_criteria(min_signals="many")


def test_stored_thresholds_need_every_field() -> None:
    assert stored_thresholds({"thresholds": {"min_signals": 50}}) is None
    assert stored_thresholds({}) is None
    full = BurninCriteria().model_dump()
    assert stored_thresholds({"thresholds": full}) == BurninCriteria()
    assert stored_thresholds({"thresholds": {**full, "min_signals": -1}}) is None


async def test_unknown_session_is_a_clear_error(db_pool: Pool) -> None:
    missing = uuid4()
    with pytest.raises(ReportError, match=f"no session with id {missing}"):
        await evaluate_session(db_pool, missing, now=NOW)


async def test_fills_that_do_not_add_up(db_pool: Pool) -> None:
    """A fill lost (the old cross-session key collision) shows as an order whose fills
    fall short of its filled quantity, and a position its fills do not explain."""
    s, brackets = await passing_session(db_pool, end=False)
    b = brackets[0]
    entry = b.orders["ENTRY"]
    await db_pool.execute("DELETE FROM fills WHERE client_order_id = $1", entry.client_order_id)
    spec = TRADES[0]
    at = ist(14, 30)
    _, dec = await s.decision(symbol=spec.symbol, side=spec.side, qty=spec.qty, entry=spec.entry,
                              ts=at)  # fmt: skip
    await s.order(dec.plan_id, "ENTRY", side="BUY", qty=spec.qty, at=at, status="COMPLETE",
                  filled=spec.qty, price=spec.entry)  # fmt: skip
    await repo.execute(
        db_pool,
        repo.PositionRow(session_id=s.id, plan_id=dec.plan_id, instrument_token=1, exchange="NSE",
                         tradingsymbol=spec.symbol, side="BUY", qty=spec.qty - 4,
                         avg_entry=Decimal(spec.entry), opened_at=at, updated_at=at),
    )  # fmt: skip
    await s.end()
    v = await judge(db_pool, s)
    assert "fills_match" in failed(v)
    c = crit(v, "fills_match")
    assert c.measured == 3, c.detail
    assert f"order {entry.client_order_id}: filled {spec.qty}, its fills sum to 0" in c.detail
    assert f"position {b.plan_id}: CLOSED (flat), its fills leave -{spec.qty}" in c.detail
    assert f"position {dec.plan_id}: OPEN {spec.qty - 4}, its fills leave {spec.qty}" in c.detail
