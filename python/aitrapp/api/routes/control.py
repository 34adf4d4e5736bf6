"""The mutating endpoints: POST /mode, /pause, /resume, /flatten.

Each needs the bearer token when one is configured, and passes the caller
as ``actor`` to the runtime, which writes the audit row (it knows the result).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Body, status
from fastapi.responses import JSONResponse

from aitrapp.api.auth import configured_token
from aitrapp.api.deps import PoolDep, RuntimeDep, SettingsDep, WriterDep
from aitrapp.api.schemas import (
    FLATTEN_TIMEOUT_S,
    VALIDATION_ERROR,
    ErrorOut,
    FlattenOut,
    FlattenRequest,
    ModeChangeOut,
    ModeRefusedOut,
    ModeRequest,
    TradingStateOut,
)
from aitrapp.control import ModeRefusedError
from aitrapp.db import repo
from aitrapp.settings import ENV_PREFIX

log = logging.getLogger(__name__)

router = APIRouter(tags=["control"])

_UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Token configured and missing or wrong"}
}
LIVE_NEEDS_TOKEN = f"{ENV_PREFIX}API_TOKEN is not set: LIVE needs a token-protected API"


@router.post(
    "/mode",
    response_model=ModeChangeOut,
    summary="Switch between PAPER and LIVE",
    responses={
        **_UNAUTHORIZED,
        **VALIDATION_ERROR,
        409: {"model": ModeRefusedOut, "description": "Refused"},
    },
)
async def set_mode(
    body: ModeRequest, runtime: RuntimeDep, caller: WriterDep, settings: SettingsDep, pool: PoolDep
) -> ModeChangeOut:
    """LIVE is refused (409 with the reasons) without an API token, and by the
    LIVE gate until the burn-in has passed and broker credentials are verified."""
    if body.mode == "LIVE" and configured_token(settings) is None:
        # Refused before the runtime is asked, so the audit row is ours to write.
        row = repo.AuditRow(
            ts=datetime.now(UTC),
            actor=caller.actor,
            action="mode",
            session_id=runtime.session_id,
            params={"mode": body.mode},
            result={"ok": False, "reasons": [LIVE_NEEDS_TOKEN]},
        )
        try:
            await repo.execute(pool, row)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            # The refusal stands either way; the log keeps the evidence.
            log.error("api: audit row for a refused LIVE switch not stored: %s", exc)
        event = {"action": "mode", "actor": caller.actor, "params": row.params, **row.result}
        runtime.bus.publish("mode", event)  # watchers (notifications) learn of the refusal
        raise ModeRefusedError([LIVE_NEEDS_TOKEN])
    change = await runtime.set_mode(body.mode, actor=caller.actor)
    return ModeChangeOut.model_validate(change)


@router.post(
    "/pause",
    response_model=TradingStateOut,
    summary="No new entries; open brackets keep being managed",
    responses=_UNAUTHORIZED,
)
async def pause(runtime: RuntimeDep, caller: WriterDep) -> TradingStateOut:
    return TradingStateOut(trading_state=await runtime.pause(actor=caller.actor))


@router.post(
    "/resume",
    response_model=TradingStateOut,
    summary="Allow new entries again (also after a flatten or a breached limit)",
    responses=_UNAUTHORIZED,
)
async def resume(runtime: RuntimeDep, caller: WriterDep) -> TradingStateOut:
    return TradingStateOut(trading_state=await runtime.resume(actor=caller.actor))


@router.post(
    "/flatten",
    response_model=FlattenOut,
    summary="Kill switch: HALT, exit every position, then cancel every working order",
    responses={
        **_UNAUTHORIZED,
        **VALIDATION_ERROR,
        504: {"model": FlattenOut, "description": "Not flat within timeout_s (or ErrorOut)"},
    },
)
async def flatten(
    runtime: RuntimeDep,
    caller: WriterDep,
    body: Annotated[FlattenRequest | None, Body()] = None,
) -> FlattenOut | JSONResponse:
    """Sets HALTED first (no new entry can race it), exits every open position at
    market first (a working stop becomes the exit with one modify where the broker
    allows), then cancels every order still working; returns once flat and clean,
    with the time to each. Answers 504 if orders or positions remain."""
    timeout_s = body.timeout_s if body is not None else FLATTEN_TIMEOUT_S
    result = await runtime.flatten(actor=caller.actor, timeout_s=timeout_s)
    out = FlattenOut(
        ok=result.ok,
        flat=result.flat,
        clean=result.clean,
        elapsed_ms=result.elapsed_ms,
        flat_after_ms=result.flat_after_ms,
        clean_after_ms=result.clean_after_ms,
        cancelled_orders=result.cancelled_orders,
        converted_stops=result.converted_stops,
        exit_orders=result.exit_orders,
        open_positions_after=result.open_positions_after,
        working_orders_after=result.working_orders_after,
        state=result.state,
    )
    log.warning("api: flatten by %s: ok=%s in %.1f ms", caller.actor, out.ok, out.elapsed_ms)
    if not out.ok:
        return JSONResponse(status_code=status.HTTP_504_GATEWAY_TIMEOUT, content=out.model_dump())
    return out
