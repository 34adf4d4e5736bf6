"""What each console fragment shows, gathered from the runtime and the journal.

The live view starts from ``runtime.state()`` (what ``GET /state`` returns)
and adds what an operator needs beside it: the risk limits of the engine
config, risk blocks by reason (from the metrics), and the open brackets with
their states and working orders. Everything the runtime does not offer is
left out rather than guessed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg

from aitrapp.config import EngineConfig
from aitrapp.control import RuntimeHandle
from aitrapp.db import repo
from aitrapp.exceptions import AitrappError
from aitrapp.settings import AppSettings

from .fmt import to_decimal
from .svg import equity_points, equity_svg

log = logging.getLogger(__name__)

DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)
BRACKET_STATES = ("PENDING", "ENTERING", "OPEN", "CLOSING")
MAX_TRADES_SHOWN = 500
SESSIONS_SHOWN = 12


@dataclass(frozen=True, slots=True)
class Gauge:
    """A value against its limit, for a bar: ``used`` is 0..1 (clamped)."""

    label: str
    value: str
    limit: str
    used: float
    level: str  # ok, warn, breach


def _gauge(label: str, value: float, limit: float, value_text: str, limit_text: str) -> Gauge:
    used = 0.0 if limit <= 0 else max(0.0, min(1.0, value / limit))
    level = "breach" if used >= 1.0 else "warn" if used >= 0.8 else "ok"
    return Gauge(label, value_text, limit_text, used, level)


def engine_config(runtime: RuntimeHandle) -> EngineConfig:
    """The engine config the runtime runs (its defaults when it does not say)."""
    options = getattr(runtime, "options", None)
    cfg = getattr(options, "engine", None)
    return cfg if isinstance(cfg, EngineConfig) else EngineConfig()


def risk_blocks_by_reason(runtime: RuntimeHandle) -> list[tuple[str, int]]:
    counter = getattr(getattr(runtime, "metrics", None), "risk_blocks", None)
    if counter is None:
        return []
    found: dict[str, int] = {}
    for family in counter.collect():
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.value:
                reason = sample.labels.get("reason", "?")
                found[reason] = found.get(reason, 0) + int(sample.value)
    return sorted(found.items(), key=lambda kv: (-kv[1], kv[0]))


def brackets(state: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Open brackets with their state, newest last: the positions of ``/state``
    (the kernel's O(open) read-outs), each with its working orders counted."""
    working: dict[str, int] = {}
    for o in state.get("working_orders", []):
        plan = o.get("plan_id")
        working[plan] = working.get(plan, 0) + 1
    return [
        {
            "plan_id": p.get("plan_id"),
            "tradingsymbol": p.get("tradingsymbol"),
            "side": p.get("side"),
            "state": p.get("state"),
            "planned_qty": None,
            "filled": p.get("qty"),
            "net_qty": p.get("qty"),
            "stop_trigger": p.get("stop_trigger"),
            "orders": working.get(p.get("plan_id"), 0),
        }
        for p in state.get("positions", [])
    ]


def live_view(runtime: RuntimeHandle) -> dict[str, Any]:
    state = dict(runtime.state())
    state["mode"] = runtime.mode
    state["trading_state"] = runtime.trading_state
    risk = engine_config(runtime).risk
    pnl = state.get("daily_pnl") or {}
    counters = state.get("counters") or {}
    loss_limit = risk.capital_rupees * risk.daily_loss_stop_pct / 100
    total = float(pnl.get("total_gross") or 0.0)
    heat = float(state.get("portfolio_heat_pct") or 0.0)
    positions = list(state.get("positions") or [])
    gauges = [
        _gauge(
            "Daily loss vs stop",
            max(0.0, -total),
            loss_limit,
            f"{max(0.0, -total):,.0f}",
            f"{loss_limit:,.0f} ₹",
        ),
        _gauge(
            "Portfolio heat",
            heat,
            risk.max_portfolio_heat_pct,
            f"{heat:.2f}%",
            f"{risk.max_portfolio_heat_pct:.2f}%",
        ),
        _gauge(
            "Open positions",
            len(positions),
            risk.max_open_positions,
            str(len(positions)),
            str(risk.max_open_positions),
        ),
        _gauge(
            "Trades today",
            float(counters.get("trades_today", 0)),
            risk.max_trades_per_day,
            str(counters.get("trades_today", 0)),
            str(risk.max_trades_per_day),
        ),
    ]
    live = brackets(state)
    by_state = {s: sum(1 for b in live if b["state"] == s) for s in BRACKET_STATES}
    unrealized = sum(
        (to_decimal(p.get("unrealized_pnl")) or Decimal(0) for p in positions), Decimal(0)
    )
    alerts = list(reversed(state.get("alerts") or []))
    return {
        "s": state,
        "positions": positions,
        "working": list(state.get("working_orders") or []),
        "brackets": live,
        "brackets_by_state": by_state,
        "gauges": gauges,
        "risk_blocks": risk_blocks_by_reason(runtime),
        "unrealized": unrealized,
        "alerts": alerts,
        "latencies": _latencies(state),
        "feed": (state.get("session") or {}).get("feed") or {},
    }


def _latencies(state: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Tick-to-decision against its SLO, then tick-to-order (when the runtime
    reports it) and decision-to-acknowledgement."""
    rows = []
    for key, label in (
        ("tick_to_decision", "tick → decision"),
        ("tick_to_order", "tick → order"),
        ("order_latency", "decision → ack"),
    ):
        lat = state.get(key)
        if not isinstance(lat, Mapping):
            continue
        slo = lat.get("slo_ms")
        p99 = lat.get("p99_ms")
        breach = slo is not None and p99 is not None and float(p99) > float(slo)
        rows.append({"label": label, **lat, "breach": breach})
    return rows


# ---------------------------------------------------------------- history
async def trades_view(pool: Any, day: date, session_id: UUID | None) -> dict[str, Any]:
    """The trading day's closed trades (every session of the day), with the equity curve."""
    rows = await repo.list_trades(pool, day=day, limit=MAX_TRADES_SHOWN)
    points = equity_points([(t.closed_at, t.net_pnl) for t in rows])
    totals = {
        "gross": sum((t.gross_pnl for t in rows), Decimal(0)),
        "charges": sum((t.charges for t in rows), Decimal(0)),
        "net": sum((t.net_pnl for t in rows), Decimal(0)),
        "wins": sum(1 for t in rows if t.net_pnl > 0),
    }
    reasons: dict[str, int] = {}
    for t in rows:
        reasons[t.exit_reason] = reasons.get(t.exit_reason, 0) + 1
    return {
        "day": day,
        "session_id": session_id,
        "trades": list(reversed(rows)),  # newest first
        "totals": totals,
        "exit_reasons": sorted(reasons.items(), key=lambda kv: -kv[1]),
        "equity_svg": equity_svg(points),
        "truncated": len(rows) >= MAX_TRADES_SHOWN,
    }


def _verdict(row: repo.SessionRow) -> dict[str, Any] | None:
    v = row.burnin_verdict
    if not isinstance(v, Mapping):
        return None
    criteria = [c for c in v.get("criteria", ()) if isinstance(c, Mapping)]
    return {
        "passed": v.get("passed") is True,
        "failed": [c for c in criteria if c.get("passed") is not True],
        "criteria": len(criteria),
    }


async def sessions_view(pool: Any, current: UUID | None) -> list[dict[str, Any]]:
    rows = await repo.list_sessions(pool, limit=SESSIONS_SHOWN)
    out = []
    for r in rows:
        summary = r.summary if isinstance(r.summary, Mapping) else {}
        raw = summary.get("feed")
        feed: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        out.append(
            {
                "id": r.id,
                "current": r.id == current,
                "trading_date": r.trading_date,
                "mode": r.mode,
                "feed": r.feed,
                "label": feed.get("label", ""),
                "synthetic": bool(feed.get("synthetic")),
                "status": r.status,
                "started_at": r.started_at,
                "trades": summary.get("trades"),
                "net_pnl": summary.get("net_pnl"),
                "verdict": _verdict(r),
            }
        )
    return out


async def gate_view(pool: Any, settings: AppSettings) -> dict[str, Any]:
    """The LIVE gate's three conditions as they stand, without asking the broker:
    credentials are verified only when LIVE is requested, so the last
    decision's answer is shown with its time."""
    from aitrapp.report.burnin import load_criteria
    from aitrapp.report.live_gate import AUDIT_ACTION, burnin_evidence, load_gate_config

    token_set = settings.api_token is not None and bool(settings.api_token.get_secret_value())
    out: dict[str, Any] = {"token_set": token_set, "error": None}
    try:
        cfg = load_gate_config()
        criteria = load_criteria()
    except AitrappError as exc:
        out["error"] = str(exc)
        return out
    async with pool.acquire() as conn:
        evidence = await burnin_evidence(conn, required=cfg.required_sessions, criteria=criteria)
        last_gate = await repo.list_audit(conn, action=AUDIT_ACTION, limit=1)
        last_modes = await repo.list_audit(conn, action="mode", limit=20)
    last_live = next((a for a in last_modes if a.params.get("mode") == "LIVE"), None)
    decision = last_gate[0] if last_gate else None
    raw = decision.result.get("credentials") if decision is not None else None
    creds: Mapping[str, Any] | None = raw if isinstance(raw, Mapping) else None
    out.update(
        {
            "evidence": evidence,
            "burnin_ok": evidence.satisfied,
            "credentials": creds,
            "last_decision": decision,
            "last_request": last_live,
            "ready": evidence.satisfied and token_set and bool(creds and creds.get("verified")),
        }
    )
    return out


def reasons_of(result: Mapping[str, Any]) -> Sequence[str]:
    raw = result.get("reasons")
    return [str(r) for r in raw] if isinstance(raw, list) else []
