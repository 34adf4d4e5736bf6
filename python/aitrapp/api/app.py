"""The FastAPI application: ``create_app()`` and its lifespan.

Nothing is created at import time. The lifespan starts the trading runtime
(``aitrapp.runtime.start_runtime``: database pool with the migrations check,
writer, bus, the trading kernel, feed) and,
on shutdown, first ends the event streams and then stops the runtime, which
tears its components down in reverse order.

    uvicorn --factory aitrapp.api.app:create_app     # or: aitrapp serve
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from aitrapp import __version__
from aitrapp.api.auth import check_bind
from aitrapp.api.deps import ApiState, RuntimeFactory, api_state
from aitrapp.api.errors import install_error_handlers
from aitrapp.api.routes import api_router
from aitrapp.api.ui import install_console
from aitrapp.control import RuntimeHandle
from aitrapp.settings import AppSettings, load_settings

log = logging.getLogger(__name__)

STREAMS_GRACE_S = 2.0

DESCRIPTION = """\
The operator's hands on a running AITRAPP trader: state, mode, pause/resume,
the kill switch (`/flatten`), the journal (orders, positions, trades, signals,
decisions, risk events), Prometheus metrics and a live event stream.

With `AITRAPP_API_TOKEN` set, every `POST` needs `Authorization: Bearer <token>`
(and reads too, when the API is bound beyond loopback).
"""


async def start_default_runtime(settings: AppSettings) -> RuntimeHandle:
    # Imported here: the runtime pulls in the whole trading stack, and the
    # app (OpenAPI generation, tests with a stand-in runtime) must not need it.
    from aitrapp.runtime import start_runtime

    return await start_runtime(settings)


def begin_shutdown(app: FastAPI) -> None:
    """Tell long-lived responses (``/events``) to finish; the server calls it first."""
    api_state(app).stopping.set()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    state = api_state(app)
    state.stopping = asyncio.Event()
    state.streams_idle = asyncio.Event()
    started = time.perf_counter()
    runtime = await state.runtime_factory(state.settings)
    state.runtime = runtime
    state.started_at = time.time()
    log.info(
        "api: runtime started",
        extra={
            "elapsed_ms": round((time.perf_counter() - started) * 1e3, 1),
            "mode": runtime.mode,
            "session_id": str(runtime.session_id),
        },
    )
    try:
        yield
    finally:
        state.stopping.set()
        # Streams hold bus subscriptions: let them end before the bus closes.
        if state.open_streams:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.streams_idle.wait(), STREAMS_GRACE_S)
        state.runtime = None
        await runtime.stop()
        log.info("api: runtime stopped")


def create_app(
    settings: AppSettings | None = None,
    *,
    runtime_factory: RuntimeFactory | None = None,
    sse_heartbeat_s: float = 15.0,
    max_event_streams: int = 16,
    event_queue_max: int = 1000,
) -> FastAPI:
    """Build the app; the runtime starts with the lifespan, not here.

    ``settings`` default to :func:`load_settings` (the environment). An
    unsafe bind (non-loopback without a token) raises ``ConfigError``.
    """
    if settings is None:
        settings = load_settings()
    check_bind(settings)
    if sse_heartbeat_s <= 0:
        raise ValueError(f"sse_heartbeat_s: must be > 0, got {sse_heartbeat_s}")
    if max_event_streams < 1:
        raise ValueError(f"max_event_streams: must be >= 1, got {max_event_streams}")
    if event_queue_max < 1:
        raise ValueError(f"event_queue_max: must be >= 1, got {event_queue_max}")
    app = FastAPI(
        title="AITRAPP control API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # Operation ids are the handler names (flatten, set_mode, ...) for client generators.
        generate_unique_id_function=lambda route: route.name,
    )
    app.state.settings = settings
    app.state.api = ApiState(
        settings=settings,
        runtime_factory=runtime_factory or start_default_runtime,
        sse_heartbeat_s=sse_heartbeat_s,
        max_event_streams=max_event_streams,
        event_queue_max=event_queue_max,
    )
    install_error_handlers(app)
    app.include_router(api_router)
    install_console(app)  # the dashboard at / and /ui/ (not in the OpenAPI contract)
    return app
