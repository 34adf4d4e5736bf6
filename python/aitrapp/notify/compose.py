"""Notices from what the trader reports: bus events, start-up reconciliation,
the burn-in verdict and the session's closing figures.

Pure functions: they read JSON-ready payloads (what the bus carries, what
``StartupReconcile.summary()`` and ``Verdict.to_json()`` return) and never
raise on a missing field; an event that is not worth a message gives None.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aitrapp.notify.notice import Level, Notice

# OCO alert severities worth a message, and the level they are sent at.
ALERT_LEVELS: dict[str, Level] = {"CRITICAL": "CRITICAL", "ERROR": "WARN", "WARNING": "WARN"}
# Flatten drills are part of every paper session; only a failed one is news.
DRILL_ACTOR = "drill"


def from_bus_event(topic: str, data: Mapping[str, Any]) -> Notice | None:
    """The notice for one bus event, or None (risk blocks, fills, ...)."""
    if topic == "risk":
        alert = data.get("alert")
        return oco_alert(alert) if isinstance(alert, Mapping) else None
    if topic == "mode":
        action = data.get("action")
        if action == "flatten":
            return kill_switch(data)
        if action == "mode":
            return mode_change(data)
        if action == "live_gate":
            return live_gate(data)
        if action in ("pause", "resume"):
            return trading_state(data)
    return None


def oco_alert(alert: Mapping[str, Any]) -> Notice | None:
    severity = str(alert.get("severity", ""))
    level = ALERT_LEVELS.get(severity)
    if level is None:
        return None
    code = str(alert.get("code", "ALERT"))
    plan = str(alert.get("plan_id", ""))
    return Notice(
        level=level,
        key=f"oco:{severity}:{code}",
        title=f"OCO {severity} {code}",
        body=f"{alert.get('message', '')}\nplan {plan or '-'} at {alert.get('ts', '-')}",
        subject=plan,
    )


def kill_switch(data: Mapping[str, Any]) -> Notice | None:
    actor = str(data.get("actor", "?"))
    ok = data.get("ok") is True
    if actor == DRILL_ACTOR and ok:
        return None
    who = "flatten drill" if actor == DRILL_ACTOR else f"kill switch by {actor}"
    if ok:
        title = f"Flat: {who}"
        flat_ms = data.get("flat_after_ms")
        if not isinstance(flat_ms, int | float):  # older runtimes report the total only
            flat_ms = data.get("elapsed_ms")
        result = (
            f"flat in {_num(flat_ms)} ms, nothing working after {_num(data.get('elapsed_ms'))} ms"
        )
    else:
        title = f"FLATTEN FAILED: {who}"
        result = (
            f"NOT flat after {_num(data.get('elapsed_ms'))} ms: "
            f"{data.get('open_positions_after', '?')} positions and "
            f"{data.get('working_orders_after', '?')} working orders remain"
        )
        if data.get("error"):
            result += f" ({data['error']})"
    lines = [
        f"who: {actor}",
        f"when: {_now()} (session time {data.get('session_time', '-')})",
        f"result: {result}",
        f"exits sent: {data.get('exit_orders', '?')}, orders cancelled: "
        f"{data.get('cancelled_orders', '?')}; trading is HALTED until resumed",
    ]
    return Notice(
        level="WARN" if ok else "CRITICAL",
        key=f"flatten:{'ok' if ok else 'failed'}",
        title=title,
        body="\n".join(lines),
        subject=actor,
    )


def _requested_mode(data: Mapping[str, Any]) -> str:
    params = data.get("params")
    mode = params.get("mode") if isinstance(params, Mapping) else None
    return str(mode) if mode else "LIVE"


def mode_change(data: Mapping[str, Any]) -> Notice | None:
    if data.get("unchanged") is True:
        return None
    actor = str(data.get("actor", "?"))
    mode = _requested_mode(data)
    reasons = _reasons(data)
    if data.get("ok") is True:
        return Notice(
            level="WARN",
            key=f"mode:{mode}",
            title=f"Mode is now {mode}",
            body=f"switched to {mode} by {actor} at {_now()}",
            subject=actor,
        )
    return Notice(
        level="WARN",
        key=f"mode-refused:{mode}",
        title=f"{mode} refused (requested by {actor})",
        body="\n".join(["The LIVE gate refused:", *(f"- {r}" for r in reasons)]),
        subject=actor,
    )


def live_gate(data: Mapping[str, Any]) -> Notice:
    actor = str(data.get("actor", "?"))
    if data.get("ok") is True:
        return Notice(
            level="WARN",
            key="live-gate:passed",
            title="LIVE gate passed: trading LIVE",
            body=f"the LIVE gate let {actor} start a LIVE session at {_now()}",
            subject=actor,
        )
    return Notice(
        level="WARN",
        key="live-gate:refused",
        title=f"LIVE gate refused ({actor})",
        body="\n".join(["No LIVE session:", *(f"- {r}" for r in _reasons(data))]),
        subject=actor,
    )


def trading_state(data: Mapping[str, Any]) -> Notice | None:
    actor = str(data.get("actor", "?"))
    if actor == DRILL_ACTOR:
        return None
    state = str(data.get("state", "?"))
    return Notice(
        level="INFO",
        key=f"state:{state}",
        title=f"Trading {state}",
        body=f"{data.get('action')} by {actor} at {_now()}: trading is {state}",
        subject=actor,
    )


def reconcile(summary: Mapping[str, Any], lines: Sequence[str], *, paused: bool) -> Notice | None:
    """Start-up findings (None when broker and database agreed)."""
    if summary.get("in_agreement") is True:
        return None
    after = summary.get("after_repair")
    repaired = isinstance(after, Mapping) and after.get("in_agreement") is True
    if paused:
        verdict = "trading starts PAUSED (no entries) until an operator resumes"
    elif summary.get("accepted") is True:
        verdict = "the operator accepted the disagreement: trading starts"
    else:
        verdict = "trading starts"
    shown = list(lines[:12])
    if len(lines) > len(shown):
        shown.append(f"... and {len(lines) - len(shown)} more (see logs/aitrapp.log)")
    return Notice(
        level="CRITICAL" if paused else "WARN",
        key="reconcile",
        title="Broker and database disagreed at start-up",
        body="\n".join(
            [
                f"{verdict}; {'in agreement after repairs' if repaired else 'still disagreeing'}",
                *shown,
            ]
        ),
    )


def burnin(verdict: Mapping[str, Any]) -> Notice:
    passed = verdict.get("passed") is True
    day = verdict.get("trading_date", "?")
    criteria = [c for c in verdict.get("criteria", ()) if isinstance(c, Mapping)]
    failed = [c for c in criteria if c.get("passed") is not True]
    lines = [
        f"session {verdict.get('session_id', '?')} ({verdict.get('mode', '?')}, "
        f"feed {verdict.get('feed', '?')}{', synthetic' if verdict.get('synthetic') else ''}, "
        f"{verdict.get('status', '?')})",
        f"{len(criteria) - len(failed)} of {len(criteria)} criteria passed",
    ]
    lines += [f"FAIL {c.get('name')}: {c.get('detail', '')}" for c in failed]
    return Notice(
        level="OK" if passed else "WARN",
        key=f"burnin:{verdict.get('session_id', '?')}",
        title=f"Burn-in {'PASS' if passed else 'FAIL'} {day}",
        body="\n".join(lines),
    )


@dataclass(frozen=True, slots=True)
class DaySummary:
    """A session's closing figures (see :func:`aitrapp.notify.service.load_day_summary`)."""

    trading_date: str
    session_id: str
    mode: str
    feed: str
    trades: int
    wins: int
    gross_pnl: Decimal
    charges: Decimal
    net_pnl: Decimal
    worst_loss: Decimal | None  # the trade that lost most against its plan (net, rupees)
    worst_loss_risk: Decimal | None  # that trade's planned risk, rupees
    slo_ms: float | None
    slo_compliance: float | None  # share of ticks within the SLO (0..1)
    p99_ms: float | None

    @property
    def worst_ratio(self) -> float | None:
        if self.worst_loss is None or not self.worst_loss_risk:
            return None
        return float(-self.worst_loss / self.worst_loss_risk)


def daily_summary(s: DaySummary) -> Notice:
    ratio = s.worst_ratio
    if s.worst_loss is None:
        worst = "no losing trade"
    elif ratio is None:
        worst = f"{rupees(s.worst_loss)} (planned risk unknown)"
    else:
        worst = (
            f"{rupees(s.worst_loss)} = {ratio:.2f}x its planned risk {rupees(s.worst_loss_risk)}"
        )
    if s.slo_compliance is None:
        slo = "no ticks measured"
    else:
        slo = (
            f"{s.slo_compliance * 100:.2f}% of ticks within {_num(s.slo_ms)} ms "
            f"(p99 {_num(s.p99_ms)} ms)"
        )
    lines = [
        f"{s.mode} session {s.session_id} (feed {s.feed})",
        f"trades: {s.trades} ({s.wins} won)",
        f"net P&L: {rupees(s.net_pnl)} (gross {rupees(s.gross_pnl)}, charges {rupees(s.charges)})",
        f"worst loss: {worst}",
        f"tick-to-decision SLO: {slo}",
    ]
    return Notice(
        level="WARN" if ratio is not None and ratio > 1.0 else "INFO",
        key=f"summary:{s.session_id}",
        title=f"Daily summary {s.trading_date}: net {rupees(s.net_pnl)}",
        body="\n".join(lines),
    )


def rupees(value: Decimal | None) -> str:
    if value is None:
        return "-"
    sign = "-" if value < 0 else ""
    return f"{sign}₹{abs(value):,.2f}"


def _reasons(data: Mapping[str, Any]) -> list[str]:
    raw = data.get("reasons")
    if isinstance(raw, list | tuple):
        return [str(r) for r in raw] or ["(no reason given)"]
    return ["(no reason given)"]


def _num(value: object) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:,.1f}" if isinstance(value, float) else f"{value:,}"
    return "?"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
