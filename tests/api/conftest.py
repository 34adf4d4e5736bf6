"""Fixtures: the app with its lifespan running, on a real (embedded) database.

``make_api(**settings)`` builds the app around a :class:`FakeRuntime` on the
test's fresh database and returns an ``Api`` (an httpx client on the ASGI
app plus the runtime); everything is torn down after the test.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from aitrapp.api import create_app
from aitrapp.db.pool import Pool
from aitrapp.settings import AppSettings, load_settings

from .fake_runtime import FakeRuntime

TOKEN = "t0k3n-" + "x" * 26
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Api:
    client: httpx.AsyncClient
    runtime: FakeRuntime
    app: Any


MakeApi = Callable[..., Awaitable[Api]]


@pytest.fixture
async def make_api(db_pool: Pool) -> AsyncIterator[MakeApi]:
    async with contextlib.AsyncExitStack() as stack:

        async def make(runtime: FakeRuntime | None = None, **overrides: Any) -> Api:
            settings = load_settings(**overrides)
            rt = runtime or await FakeRuntime.start(db_pool)

            async def factory(_: AppSettings) -> FakeRuntime:
                return rt

            app = create_app(settings, runtime_factory=factory)
            await stack.enter_async_context(app.router.lifespan_context(app))
            client = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000"
            )
            await stack.enter_async_context(client)
            return Api(client=client, runtime=rt, app=app)

        yield make


@pytest.fixture
async def api(make_api: MakeApi) -> Api:
    """No token configured (the loopback default)."""
    return await make_api()


@pytest.fixture
async def secured(make_api: MakeApi) -> Api:
    """A token configured."""
    return await make_api(api_token=TOKEN)
