"""GET /health: liveness plus each component's status (a failed background task shows here)."""

from __future__ import annotations

import time

from fastapi import APIRouter

from aitrapp import __version__
from aitrapp.api.deps import ApiStateDep, RuntimeDep
from aitrapp.api.schemas import ComponentOut, HealthOut

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthOut, summary="Liveness and component status")
async def health(runtime: RuntimeDep, api: ApiStateDep) -> HealthOut:
    """Always 200 while the process serves: `ok` is false when any component is not."""
    components = {
        name: ComponentOut(ok=c.ok, detail=c.detail) for name, c in runtime.health().items()
    }
    components["api"] = ComponentOut(
        ok=not api.stopping.is_set(),
        detail=f"event_streams={api.open_streams}/{api.max_event_streams}"
        + (" stopping" if api.stopping.is_set() else ""),
    )
    return HealthOut(
        ok=all(c.ok for c in components.values()),
        version=__version__,
        uptime_s=round(time.time() - api.started_at, 3),
        mode=runtime.mode,
        trading_state=runtime.trading_state,
        components=components,
    )
