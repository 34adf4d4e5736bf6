"""Typed dependency aliases for the routes (``RuntimeDep``, ``PoolDep``, ...).

The app keeps one :class:`ApiState` on ``app.state.api``; routes never reach
for globals.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, cast

from fastapi import Depends, FastAPI, HTTPException, Request, status

from aitrapp.api.auth import Caller, require_reader, require_writer
from aitrapp.control import RuntimeHandle
from aitrapp.db.pool import Pool
from aitrapp.settings import AppSettings

RuntimeFactory = Callable[[AppSettings], Awaitable[RuntimeHandle]]


@dataclass(eq=False)
class ApiState:
    """What the routes share, held on ``app.state.api`` for the app's lifetime."""

    settings: AppSettings
    runtime_factory: RuntimeFactory
    sse_heartbeat_s: float
    max_event_streams: int
    event_queue_max: int
    runtime: RuntimeHandle | None = None
    started_at: float = field(default_factory=time.time)
    # Set when the server begins shutting down: event streams end on it.
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    open_streams: int = 0
    streams_idle: asyncio.Event = field(default_factory=asyncio.Event)

    def stream_opened(self) -> None:
        self.open_streams += 1
        self.streams_idle.clear()

    def stream_closed(self) -> None:
        self.open_streams -= 1
        if self.open_streams == 0:
            self.streams_idle.set()


def api_state(app: FastAPI) -> ApiState:
    state = getattr(app.state, "api", None)
    if not isinstance(state, ApiState):
        raise RuntimeError("app.state.api is missing: build the app with create_app()")
    return state


def get_api_state(request: Request) -> ApiState:
    return api_state(request.app)


def get_settings(request: Request) -> AppSettings:
    return api_state(request.app).settings


def get_runtime(request: Request) -> RuntimeHandle:
    runtime = api_state(request.app).runtime
    if runtime is None:
        # Only between lifespan stages (starting, stopping): say so rather than crash.
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "trading runtime is not running")
    return runtime


def get_pool(runtime: Annotated[RuntimeHandle, Depends(get_runtime)]) -> Pool:
    return cast("Pool", runtime.pool)


ApiStateDep = Annotated[ApiState, Depends(get_api_state)]
SettingsDep = Annotated[AppSettings, Depends(get_settings)]
RuntimeDep = Annotated[RuntimeHandle, Depends(get_runtime)]
PoolDep = Annotated[Pool, Depends(get_pool)]
WriterDep = Annotated[Caller, Depends(require_writer)]
ReaderDep = Annotated[Caller, Depends(require_reader)]
