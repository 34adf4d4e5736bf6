"""The lifespan starts the runtime once and stops it on shutdown; failures refuse to start."""

from __future__ import annotations

import httpx
import pytest

from aitrapp.api import create_app
from aitrapp.db.pool import Pool
from aitrapp.settings import AppSettings, load_settings

from .fake_runtime import FakeRuntime


async def test_runtime_starts_with_the_lifespan_and_stops_after(db_pool: Pool) -> None:
    made: list[FakeRuntime] = []

    async def factory(settings: AppSettings) -> FakeRuntime:
        assert settings.api_port == 9999
        made.append(await FakeRuntime.start(db_pool))
        return made[-1]

    app = create_app(load_settings(api_port=9999), runtime_factory=factory)
    assert made == []  # building the app starts nothing
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.get("/health")
        assert r.status_code == 503  # before the lifespan: a clear answer, not a crash
        assert r.json() == {"detail": "trading runtime is not running"}
        async with app.router.lifespan_context(app):
            assert len(made) == 1
            assert (await client.get("/health")).status_code == 200
        assert made[0].stopped
        assert (await client.post("/pause")).status_code == 503
    assert made[0].calls == []


async def test_a_runtime_that_fails_to_start_stops_the_app() -> None:
    async def factory(_: AppSettings) -> FakeRuntime:
        raise OSError("embedded PostgreSQL did not start")

    app = create_app(load_settings(), runtime_factory=factory)
    with pytest.raises(OSError, match="did not start"):
        async with app.router.lifespan_context(app):
            pass


async def test_a_failing_stop_still_propagates(db_pool: Pool) -> None:
    rt = await FakeRuntime.start(db_pool)

    async def stop() -> None:
        raise RuntimeError("writer did not drain")

    rt.stop = stop  # type: ignore[method-assign]

    async def factory(_: AppSettings) -> FakeRuntime:
        return rt

    app = create_app(load_settings(), runtime_factory=factory)
    with pytest.raises(RuntimeError, match="did not drain"):
        async with app.router.lifespan_context(app):
            pass


def test_create_app_checks_its_arguments() -> None:
    for kwargs in ({"sse_heartbeat_s": 0}, {"max_event_streams": 0}, {"event_queue_max": 0}):
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            create_app(load_settings(), **kwargs)  # type: ignore[arg-type]
