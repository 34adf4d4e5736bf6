"""GET /state: what the trader is doing right now."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from aitrapp.api.auth import require_reader
from aitrapp.api.deps import RuntimeDep
from aitrapp.api.schemas import StateOut

router = APIRouter(tags=["state"], dependencies=[Depends(require_reader)])


@router.get("/state", response_model=StateOut, summary="Live snapshot of the trader")
async def state(runtime: RuntimeDep) -> StateOut:
    """Mode, trading state, session, open positions with unrealized PnL, working
    orders, daily PnL, portfolio heat, counters, time of the last tick and the
    tick-to-decision latency (p50/p99 and the share of ticks within the SLO)."""
    snapshot = dict(runtime.state())
    # The properties are authoritative even if the snapshot lags a transition.
    snapshot["mode"] = runtime.mode
    snapshot["trading_state"] = runtime.trading_state
    return StateOut.model_validate(snapshot)
