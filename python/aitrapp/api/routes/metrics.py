"""GET /metrics: the runtime's Prometheus registry in the text exposition format."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse

from aitrapp.api.auth import require_reader
from aitrapp.api.deps import RuntimeDep

router = APIRouter(tags=["metrics"], dependencies=[Depends(require_reader)])


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    summary="Prometheus metrics (trader_*)",
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(runtime: RuntimeDep) -> PlainTextResponse:
    m = runtime.metrics
    return PlainTextResponse(content=m.render(), media_type=m.content_type)
