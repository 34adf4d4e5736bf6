"""The LIVE gate: each refusal reason, the pass case, and an audit row every time."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest

from aitrapp.control import ModeRefusedError
from aitrapp.db import repo
from aitrapp.db.pool import Pool
from aitrapp.exceptions import ConfigError
from aitrapp.report.burnin import BurninCriteria, check_session
from aitrapp.report.live_gate import (
    AUDIT_ACTION,
    BurninEvidence,
    GateDecision,
    LiveGateConfig,
    enforce_live_gate,
    evaluate_live_gate,
    load_gate_config,
)
from aitrapp.settings import AppSettings
from test_burnin_support import TRADES, passing_session

pytestmark = pytest.mark.integration

NOW = datetime(2026, 1, 9, 4, 0, tzinfo=UTC)
TOKEN = "t" * 32
DAYS = (date(2026, 1, 5), date(2026, 1, 6), date(2026, 1, 7))
FAST = LiveGateConfig(required_sessions=3, verify_timeout_s=0.5)


def settings(token: str | None = TOKEN) -> AppSettings:
    return AppSettings(api_token=token)


async def verified() -> bool | str:
    return True


async def judged_session(
    pool: Pool,
    day: date,
    *,
    criteria: BurninCriteria | None = None,
    summary: dict[str, Any] | None = None,
    **kw: Any,
) -> UUID:
    """A passing session on ``day``, judged and stored."""
    s, _ = await passing_session(pool, day=day, trades=TRADES[:3], end=False, **kw)
    await s.end(**(summary or {}))
    await check_session(pool, s.id, now=NOW, criteria=criteria or BurninCriteria())
    return s.id


async def gate(
    pool: Pool,
    *,
    verify: Any = verified,
    token: str | None = TOKEN,
    config: LiveGateConfig = FAST,
    **kw: Any,
) -> GateDecision:
    return await evaluate_live_gate(
        pool,
        settings=settings(token),
        verify_credentials=verify,
        actor="test",
        now=NOW,
        config=config,
        criteria=BurninCriteria(),
        **kw,
    )


async def audits(pool: Pool) -> list[repo.AuditRow]:
    return list(reversed(await repo.list_audit(pool, action=AUDIT_ACTION)))


async def test_allowed_with_three_live_feed_paper_sessions(db_pool: Pool) -> None:
    ids = [await judged_session(db_pool, d) for d in DAYS]
    calls = 0

    async def verify() -> bool | str:
        nonlocal calls
        calls += 1
        return True

    d = await gate(db_pool, verify=verify, params={"via": "test"})
    assert d.allowed and d.reasons == ()
    assert calls == 1
    assert d.burnin.days == tuple(reversed(DAYS))
    assert set(d.burnin.counted) == set(ids)
    assert d.credentials_verified and d.api_token_set
    (row,) = await audits(db_pool)
    assert row.id == d.audit_id and row.actor == "test" and row.ts == NOW
    assert row.params["requested_mode"] == "LIVE" and row.params["via"] == "test"
    assert row.params["required_sessions"] == 3
    assert row.result["allowed"] is True and row.result["reasons"] == []
    assert row.result["burnin"]["counted_days"] == [x.isoformat() for x in reversed(DAYS)]


async def test_refused_without_enough_sessions(db_pool: Pool) -> None:
    for d in DAYS[:2]:
        await judged_session(db_pool, d)
    d = await gate(db_pool)
    assert not d.allowed
    assert d.reasons == (
        "burn-in: 2 of 3 required passing PAPER sessions on the live feed (kite), "
        "on distinct trading dates",
    )
    (row,) = await audits(db_pool)
    assert row.result["allowed"] is False and row.result["reasons"] == list(d.reasons)


async def test_no_sessions_at_all(db_pool: Pool) -> None:
    d = await gate(db_pool)
    assert not d.allowed and d.reasons[0].startswith("burn-in: 0 of 3")


@pytest.mark.parametrize(
    ("kw", "why"),
    [
        ({"feed": "replay"}, "1 replay feed, not the live feed"),
        ({"feed": "synthetic"}, "1 synthetic feed, not the live feed"),
        # Labelled synthetic by the runner although recorded on the kite feed.
        (
            {"summary": {"feed": {"kind": "kite", "label": "x", "synthetic": True}}},
            "1 synthetic feed, not the live feed",
        ),
        ({"mode": "LIVE"}, "1 LIVE session, not PAPER"),
    ],
)
async def test_replay_synthetic_and_live_sessions_do_not_count(
    db_pool: Pool, kw: dict[str, Any], why: str
) -> None:
    for d in DAYS[:2]:
        await judged_session(db_pool, d)
    await judged_session(db_pool, DAYS[2], **kw)
    d = await gate(db_pool)
    assert not d.allowed
    assert len(d.burnin.days) == 2
    assert why in d.reasons[0]


async def test_failed_verdicts_do_not_count(db_pool: Pool) -> None:
    await judged_session(db_pool, DAYS[0])
    s, _ = await passing_session(db_pool, day=DAYS[1], trades=TRADES[:3], signals=10)
    await check_session(db_pool, s.id, now=NOW, criteria=BurninCriteria())  # fails: signals
    d = await gate(db_pool)
    assert d.burnin.excluded == {"burn-in failed": 1}


async def test_sessions_on_the_same_day_count_once(db_pool: Pool) -> None:
    await judged_session(db_pool, DAYS[0])
    await judged_session(db_pool, DAYS[0])
    await judged_session(db_pool, DAYS[1])
    d = await gate(db_pool)
    assert len(d.burnin.days) == 2
    assert d.burnin.excluded == {"another passing session on the same trading date": 1}


async def test_verdicts_judged_with_weaker_thresholds_do_not_count(db_pool: Pool) -> None:
    for d in DAYS[:2]:
        await judged_session(db_pool, d)
    await judged_session(db_pool, DAYS[2], criteria=BurninCriteria(min_signals=10))
    d = await gate(db_pool)
    assert not d.allowed
    assert "1 judged with weaker thresholds than configured" in d.reasons[0]
    # Stricter ones count.
    await judged_session(db_pool, date(2026, 1, 8), criteria=BurninCriteria(min_signals=55))
    assert (await gate(db_pool)).allowed


async def test_a_tampered_verdict_does_not_count(db_pool: Pool) -> None:
    ids = [await judged_session(db_pool, d) for d in DAYS]
    row = await repo.get_session(db_pool, ids[0])
    assert row is not None and row.burnin_verdict is not None
    doc = dict(row.burnin_verdict)
    doc["criteria"] = [{**c, "passed": c["name"] != "flatten"} for c in doc["criteria"]]
    await repo.execute(db_pool, repo.BurninVerdict(session_id=ids[0], verdict=doc))
    other = dict(doc, criteria=row.burnin_verdict["criteria"], session_id=str(uuid4()))
    await repo.execute(db_pool, repo.BurninVerdict(session_id=ids[1], verdict=other))
    d = await gate(db_pool)
    assert d.burnin.excluded == {"burn-in failed": 1, "verdict belongs to another session": 1}


async def _boom() -> bool | str:
    raise ConnectionError("connection refused by api.kite.trade")


async def _slow() -> bool | str:
    await asyncio.sleep(5)
    return True


async def _false() -> bool | str:
    return False


async def _message() -> bool | str:
    return "the Kite token in var/kite_token.json expired"


@pytest.mark.parametrize(
    ("verify", "want"),
    [
        (_false, "broker credentials not verified: the broker did not accept them"),
        (_message, "broker credentials not verified: the Kite token in var/kite_token.json"),
        (_boom, "broker credentials not verified: ConnectionError: connection refused"),
        (_slow, "broker credentials not verified: no answer from the broker within 0.5 s"),
    ],
)
async def test_refused_when_credentials_are_not_verified(
    db_pool: Pool, verify: Any, want: str
) -> None:
    for d in DAYS:
        await judged_session(db_pool, d)
    d = await gate(db_pool, verify=verify)
    assert not d.allowed and not d.credentials_verified
    (reason,) = d.reasons
    assert reason.startswith(want), reason
    (row,) = await audits(db_pool)
    assert row.result["credentials"]["verified"] is False


async def test_refused_without_an_api_token(db_pool: Pool) -> None:
    for d in DAYS:
        await judged_session(db_pool, d)
    d = await gate(db_pool, token=None)
    assert not d.allowed and not d.api_token_set
    assert d.reasons == (
        "the API token is not set: set AITRAPP_API_TOKEN to protect the control API",
    )


async def test_every_reason_at_once_and_every_decision_audited(db_pool: Pool) -> None:
    d1 = await gate(db_pool, verify=_false, token=None)
    assert [r.split(":")[0] for r in d1.reasons] == [
        "burn-in",
        "broker credentials not verified",
        "the API token is not set",
    ]
    d2 = await gate(db_pool)
    rows = await audits(db_pool)
    # Both decisions are stamped with the same fixed `now`: compare as a set.
    assert len(rows) == 2
    assert {r.id for r in rows} == {d1.audit_id, d2.audit_id}
    assert all(r.action == "live_gate" and r.result["allowed"] is False for r in rows)


async def test_required_sessions_is_configurable(
    db_pool: Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    await judged_session(db_pool, DAYS[0])
    assert not (await gate(db_pool)).allowed
    monkeypatch.setenv("AITRAPP_LIVE_GATE_REQUIRED_SESSIONS", "1")
    d = await evaluate_live_gate(
        db_pool, settings=settings(), verify_credentials=verified, actor="test", now=NOW
    )
    assert d.allowed and d.burnin.required == 1
    monkeypatch.setenv("AITRAPP_LIVE_GATE_REQUIRED_SESSIONS", "0")
    with pytest.raises(ConfigError, match="AITRAPP_LIVE_GATE_REQUIRED_SESSIONS"):
        load_gate_config()


async def test_an_unaudited_decision_never_escapes(db_pool: Pool) -> None:
    for d in DAYS:
        await judged_session(db_pool, d)
    # An unknown session id violates audit_log's foreign key: the write fails.
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await gate(db_pool, session_id=uuid4())
    assert await audits(db_pool) == []
    with pytest.raises(ModeRefusedError, match="could not be evaluated and audited"):
        await enforce_live_gate(
            db_pool, settings=settings(), verify_credentials=verified, actor="api",
            session_id=uuid4(),
        )  # fmt: skip


async def test_enforce_raises_the_reasons_or_returns_the_decision(
    db_pool: Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AITRAPP_LIVE_GATE_VERIFY_TIMEOUT_S", "1")
    with pytest.raises(ModeRefusedError) as err:
        await enforce_live_gate(
            db_pool, settings=settings(None), verify_credentials=verified, actor="api"
        )
    assert len(err.value.reasons) == 2 and err.value.reasons[0].startswith("burn-in: 0 of 3")
    for d in DAYS:
        await judged_session(db_pool, d)
    decision = await enforce_live_gate(
        db_pool, settings=settings(), verify_credentials=verified, actor="api"
    )
    assert decision.allowed
    assert len(await audits(db_pool)) == 2


async def test_actor_is_required(db_pool: Pool) -> None:
    with pytest.raises(ValueError, match="actor"):
        await evaluate_live_gate(
            db_pool, settings=settings(), verify_credentials=verified, actor=" ", now=NOW
        )


def test_decision_json() -> None:
    d = GateDecision(
        allowed=False,
        reasons=("x",),
        burnin=BurninEvidence(required=3, counted=(), days=(), excluded={"burn-in failed": 2}),
        credentials_verified=False,
        credentials_detail="no",
        api_token_set=True,
        decided_at=NOW,
        audit_id=uuid4(),
    )
    doc = d.to_json()
    assert doc["burnin"]["excluded"] == {"burn-in failed": 2}
    assert doc["decided_at"] == NOW.isoformat()


async def test_default_verifier_reads_the_kite_environment(
    db_pool: Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runtime calls evaluate_live_gate(pool, settings, actor=...): Kite from the env."""
    monkeypatch.delenv("KITE_API_KEY", raising=False)
    d = await evaluate_live_gate(db_pool, settings(), actor="api:127.0.0.1+token", now=NOW)
    assert d.reasons[1] == (
        "broker credentials not verified: KITE_API_KEY is not set: export your Kite Connect api_key"
    )
    (row,) = await audits(db_pool)
    assert row.actor == "api:127.0.0.1+token"
