"""GET /events: the event bus as server-sent events.

Each bus event is one SSE event: ``event:`` is the topic, ``id:`` the bus id,
``data:`` ``{"topic", "ts", "data"}`` as JSON. A ``: heartbeat`` comment
goes out when the bus is quiet, so proxies keep the connection and a gone
client is noticed. The subscription is bounded (a slow reader loses the
oldest events, counted in ``trader_bus_subscriber_drops_total``), the number
of concurrent streams is capped (503 beyond it) and every stream ends when
the server shuts down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.sse import EventSourceResponse, ServerSentEvent

from aitrapp.api.auth import require_reader
from aitrapp.api.deps import ApiState, ApiStateDep, RuntimeDep
from aitrapp.api.errors import invalid_field
from aitrapp.api.schemas import VALIDATION_ERROR, ErrorOut
from aitrapp.bus import TOPICS, BusEvent, Subscription, Topic

log = logging.getLogger(__name__)

router = APIRouter(tags=["events"], dependencies=[Depends(require_reader)])

RETRY_MS = 3000  # how long a browser's EventSource waits before reconnecting


def parse_topics(
    topics: Annotated[
        list[str] | None,
        Query(description=f"Comma-separated and/or repeated; any of {', '.join(TOPICS)}"),
    ] = None,
) -> tuple[Topic, ...]:
    if not topics:
        return TOPICS
    chosen: list[Topic] = []
    for part in (p.strip() for raw in topics for p in raw.split(",")):
        if not part:
            continue
        if part not in TOPICS:
            raise invalid_field(
                ("query", "topics"), f"unknown topic {part!r}; known: {', '.join(TOPICS)}", part
            )
        if part not in chosen:
            chosen.append(part)
    if not chosen:
        raise invalid_field(("query", "topics"), "no topic given", ",".join(topics))
    return tuple(chosen)


async def open_subscription(
    runtime: RuntimeDep,
    api: ApiStateDep,
    topics: Annotated[tuple[Topic, ...], Depends(parse_topics)],
) -> AsyncIterator[Subscription]:
    """Subscribes before the response starts, so refusals are proper status codes."""
    if api.stopping.is_set():
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "server is shutting down")
    if api.open_streams >= api.max_event_streams:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"too many event streams open ({api.max_event_streams}); try again later",
        )
    api.stream_opened()
    try:
        sub: Subscription = await runtime.bus.subscribe(topics, maxsize=api.event_queue_max)
        try:
            yield sub
        finally:
            await sub.close()
    finally:
        api.stream_closed()


def _event(ev: BusEvent) -> ServerSentEvent:
    return ServerSentEvent(
        event=ev.topic, id=ev.id, data={"topic": ev.topic, "ts": ev.ts, "data": ev.data}
    )


async def stream(sub: Subscription, api: ApiState) -> AsyncIterator[ServerSentEvent]:
    """Bus events, with heartbeats while quiet, until the bus or the server stops."""
    yield ServerSentEvent(comment="subscribed", retry=RETRY_MS)
    stop: asyncio.Future[Any] = asyncio.ensure_future(api.stopping.wait())
    nxt: asyncio.Future[Any] = asyncio.ensure_future(anext(sub))
    try:
        while True:
            done, _ = await asyncio.wait(
                {nxt, stop}, timeout=api.sse_heartbeat_s, return_when=asyncio.FIRST_COMPLETED
            )
            if stop in done:
                return
            if nxt not in done:
                yield ServerSentEvent(comment="heartbeat")
                continue
            try:
                event: BusEvent = nxt.result()
            except StopAsyncIteration:  # the bus closed the subscription
                return
            except Exception as exc:
                # Say so on the stream, then end it: the client reconnects (retry).
                log.warning("api: event subscription failed: %r", exc)
                yield ServerSentEvent(event="error", data={"detail": type(exc).__name__})
                return
            nxt = asyncio.ensure_future(anext(sub))
            yield _event(event)
    finally:
        # A cancelled read loses nothing: an event is only taken when it is returned.
        for fut in (nxt, stop):
            fut.cancel()
        # Collects outcomes (an error already reported included) without raising them.
        await asyncio.gather(nxt, stop, return_exceptions=True)


_SSE_EXAMPLE = 'event: orders\nid: 42\ndata: {"topic": "orders", "ts": "...", "data": {...}}\n\n'
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {"example": _SSE_EXAMPLE}}},
    503: {"model": ErrorOut, "description": "Too many streams, or shutting down"},
    **VALIDATION_ERROR,
}


@router.get(
    "/events",
    response_class=EventSourceResponse,
    summary="Live bus events (server-sent events)",
    responses=_RESPONSES,
)
async def events(
    api: ApiStateDep, sub: Annotated[Subscription, Depends(open_subscription)]
) -> AsyncIterator[ServerSentEvent]:
    async for item in stream(sub, api):
        yield item
