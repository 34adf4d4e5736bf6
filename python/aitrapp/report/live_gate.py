"""The LIVE gate: may this installation switch to LIVE trading?

Three conditions, all evaluated every time so a refusal lists every reason:

1. burn-in: at least ``required_sessions`` (default 3, ``AITRAPP_LIVE_GATE_
   REQUIRED_SESSIONS``) passing burn-in verdicts of PAPER sessions on the live
   feed (``feed = 'kite'``), COMPLETED, on distinct trading dates. Replays and
   synthetic sessions do not count, nor verdicts judged with thresholds weaker
   than the configured ``AITRAPP_BURNIN_*`` ones (a `--min-signals 1` check
   cannot unlock LIVE);
2. broker credentials verified now, through the injected ``verify_credentials``
   (True: verified; False or a message: not verified; an exception or a
   timeout: not verified);
3. the control API is protected: ``AITRAPP_API_TOKEN`` is set.

Every decision is written to ``audit_log`` (action ``live_gate``) before it is
returned. If that write fails the gate raises: a caller must treat any
exception as a refusal.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from aitrapp.control import ModeRefusedError
from aitrapp.db import repo
from aitrapp.db.pool import Conn
from aitrapp.exceptions import AitrappError, ConfigError
from aitrapp.kite.auth import redact
from aitrapp.report import summary
from aitrapp.report.burnin import VERDICT_VERSION, BurninCriteria, load_criteria, stored_thresholds
from aitrapp.settings import AppSettings

log = logging.getLogger(__name__)

ENV_PREFIX = "AITRAPP_LIVE_GATE_"
AUDIT_ACTION = "live_gate"
LIVE_FEED = "kite"

VerifyCredentials = Callable[[], Awaitable[bool | str]]


class LiveGateConfig(BaseSettings):
    """Read from ``AITRAPP_LIVE_GATE_<NAME>``; construct via :func:`load_gate_config`."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    required_sessions: int = Field(3, ge=1)
    verify_timeout_s: float = Field(10.0, gt=0)


def load_gate_config(**overrides: Any) -> LiveGateConfig:
    try:
        return LiveGateConfig(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = [
            f"{ENV_PREFIX}{str(e['loc'][0]).upper() if e['loc'] else ''}: {e['msg']}"
            for e in exc.errors()
        ]
        raise ConfigError("invalid LIVE gate settings: " + "; ".join(problems)) from None


@dataclass(frozen=True, slots=True)
class BurninEvidence:
    required: int
    counted: tuple[UUID, ...]  # one qualifying session per counted trading date (the latest)
    days: tuple[date, ...]  # newest first
    excluded: dict[str, int] = field(default_factory=dict)  # why other verdicts do not count

    @property
    def satisfied(self) -> bool:
        return len(self.days) >= self.required

    def to_json(self) -> dict[str, Any]:
        return {
            "required": self.required,
            "counted_days": [d.isoformat() for d in self.days],
            "counted_sessions": [str(s) for s in self.counted],
            "excluded": dict(self.excluded),
        }


@dataclass(frozen=True, slots=True)
class GateDecision:
    allowed: bool
    reasons: tuple[str, ...]  # empty when allowed; one sentence per failed condition
    burnin: BurninEvidence
    credentials_verified: bool
    credentials_detail: str
    api_token_set: bool
    decided_at: datetime
    audit_id: UUID

    def to_json(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "reasons": list(self.reasons),
            "burnin": self.burnin.to_json(),
            "credentials": {"verified": self.credentials_verified,
                            "detail": self.credentials_detail},
            "api_token_set": self.api_token_set,
            "decided_at": self.decided_at.isoformat(),
            "audit_id": str(self.audit_id),
        }  # fmt: skip


async def evaluate_live_gate(
    conn: Conn,
    settings: AppSettings,
    *,
    actor: str,
    verify_credentials: VerifyCredentials | None = None,
    now: datetime | None = None,
    config: LiveGateConfig | None = None,
    criteria: BurninCriteria | None = None,
    session_id: UUID | None = None,
    params: Mapping[str, Any] | None = None,
) -> GateDecision:
    """Decide, audit, return. ``actor`` names who asked (``api``, ``cli``, a user).

    ``verify_credentials`` defaults to the Kite check from the environment
    (:func:`aitrapp.report.credentials.kite_verifier`).
    """
    if not actor.strip():
        raise ValueError("actor: must name who asked for LIVE")
    if verify_credentials is None:
        from aitrapp.report.credentials import kite_verifier  # imports the Kite client

        verify_credentials = kite_verifier()
    cfg = config if config is not None else load_gate_config()
    crit = criteria if criteria is not None else load_criteria()
    evidence = await burnin_evidence(conn, required=cfg.required_sessions, criteria=crit)
    verified, cred_detail = await _verify(verify_credentials, cfg.verify_timeout_s)
    token_set = settings.api_token is not None and bool(settings.api_token.get_secret_value())

    reasons: list[str] = []
    if not evidence.satisfied:
        reasons.append(_burnin_reason(evidence))
    if not verified:
        reasons.append(f"broker credentials not verified: {cred_detail}")
    if not token_set:
        reasons.append("the API token is not set: set AITRAPP_API_TOKEN to protect the control API")

    decided_at = now if now is not None else datetime.now(UTC)
    decision = GateDecision(
        allowed=not reasons,
        reasons=tuple(reasons),
        burnin=evidence,
        credentials_verified=verified,
        credentials_detail=cred_detail,
        api_token_set=token_set,
        decided_at=decided_at,
        audit_id=uuid4(),
    )
    audit = repo.AuditRow(
        id=decision.audit_id,
        ts=decided_at,
        actor=actor,
        action=AUDIT_ACTION,
        session_id=session_id,
        params={
            "requested_mode": "LIVE",
            "required_sessions": cfg.required_sessions,
            "thresholds": crit.model_dump(),
            **(params or {}),
        },
        result=decision.to_json(),
    )
    await repo.execute(conn, audit)  # raises on failure: no unaudited decision escapes
    return decision


async def burnin_evidence(conn: Conn, *, required: int, criteria: BurninCriteria) -> BurninEvidence:
    """Which stored verdicts count toward LIVE, and why the others do not."""
    rows = await conn.fetch(
        "SELECT id, trading_date, mode, feed, status, summary, burnin_verdict FROM sessions "
        "WHERE burnin_verdict IS NOT NULL ORDER BY trading_date DESC, started_at DESC, id"
    )
    excluded: Counter[str] = Counter()
    counted: dict[date, UUID] = {}
    for r in rows:
        why = exclusion_reason(dict(r), criteria)
        if why:
            excluded[why] += 1
        elif r["trading_date"] in counted:
            excluded["another passing session on the same trading date"] += 1
        else:
            counted[r["trading_date"]] = r["id"]
    return BurninEvidence(
        required=required,
        counted=tuple(counted.values()),
        days=tuple(counted),
        excluded=dict(excluded.most_common()),
    )


def exclusion_reason(row: Mapping[str, Any], criteria: BurninCriteria) -> str | None:
    """Why a session's verdict does not count toward LIVE (None: it counts)."""
    verdict = row["burnin_verdict"]
    doc: Mapping[str, Any] = row["summary"] if isinstance(row["summary"], Mapping) else {}
    if not isinstance(verdict, Mapping) or verdict.get("version") != VERDICT_VERSION:
        return "verdict unreadable or of another version"
    if verdict.get("session_id") != str(row["id"]):
        return "verdict belongs to another session"
    crits = verdict.get("criteria")
    all_passed = isinstance(crits, list) and bool(crits) and all(
        isinstance(c, Mapping) and c.get("passed") is True for c in crits
    )  # fmt: skip
    if verdict.get("passed") is not True or not all_passed:
        return "burn-in failed"
    if row["mode"] != "PAPER":
        return f"{row['mode']} session, not PAPER"
    if row["feed"] != LIVE_FEED or summary.is_synthetic(doc, row["feed"]):
        kind = "synthetic" if summary.is_synthetic(doc, row["feed"]) else row["feed"]
        return f"{kind} feed, not the live feed"
    if row["status"] != "COMPLETED":
        return f"session {row['status']}, not COMPLETED"
    judged = stored_thresholds(verdict)
    if judged is None or not judged.at_least_as_strict_as(criteria):
        return "judged with weaker thresholds than configured"
    return None


async def enforce_live_gate(
    conn: Conn,
    settings: AppSettings,
    *,
    actor: str,
    verify_credentials: VerifyCredentials | None = None,
    session_id: UUID | None = None,
    params: Mapping[str, Any] | None = None,
) -> GateDecision:
    """For ``TradingControl.set_mode``: the decision if allowed, else
    :class:`~aitrapp.control.ModeRefusedError` with the reasons. A gate that
    cannot be evaluated or audited (database down) refuses too."""
    try:
        decision = await evaluate_live_gate(
            conn,
            settings=settings,
            verify_credentials=verify_credentials,
            actor=actor,
            session_id=session_id,
            params=params,
        )
    except (AitrappError, OSError, TimeoutError, asyncpg.PostgresError,
            asyncpg.InterfaceError) as exc:  # fmt: skip
        log.error("LIVE gate could not decide (refusing): %s", exc)
        raise ModeRefusedError(
            [f"the LIVE gate could not be evaluated and audited: {type(exc).__name__}: {exc}"]
        ) from exc
    if not decision.allowed:
        raise ModeRefusedError(list(decision.reasons))
    return decision


async def _verify(verify: VerifyCredentials, timeout_s: float) -> tuple[bool, str]:
    try:
        async with asyncio.timeout(timeout_s):
            answer = await verify()
    except TimeoutError:
        return False, f"no answer from the broker within {timeout_s:g} s"
    except Exception as exc:  # any failure to verify is a refusal, never a crash
        return False, f"{type(exc).__name__}: {redact(str(exc))}"
    if answer is True:
        return True, "verified"
    if isinstance(answer, str) and answer.strip():
        return False, redact(answer.strip())
    if answer is False:
        return False, "the broker did not accept them"
    return False, f"the verifier answered {answer!r}"


def _burnin_reason(e: BurninEvidence) -> str:
    text = (
        f"burn-in: {len(e.days)} of {e.required} required passing PAPER sessions on the live "
        f"feed ({LIVE_FEED}), on distinct trading dates"
    )
    if e.excluded:
        text += "; not counted: " + ", ".join(f"{n} {why}" for why, n in e.excluded.items())
    return text
