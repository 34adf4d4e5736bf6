"""Schemathesis over every operation of the API contract, against a running server.

The server is uvicorn on loopback with a real trading runtime (paper broker, a
fresh database; the feed is not started, so the state does not move under the
test). Schemathesis generates valid and invalid inputs from api/openapi.json;
then every case is sent again with NaN and Infinity spliced into its JSON body
(Python's json accepts them, JSON does not). No response may be a 5xx. The
event stream (/events) never ends by design and is left out; its parameters
are tested in tests/api.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from aitrapp.api.app import create_app
from aitrapp.db.embedded import free_port
from aitrapp.runtime import start_runtime
from aitrapp.settings import AppSettings
from sessions.helpers import options, settings_for

from .conftest import CHAOS

pytestmark = pytest.mark.integration


async def _no_runtime(_: AppSettings) -> Any:
    raise RuntimeError("schema only")


# The contract, built from the app as api/openapi.json is (a test keeps the two equal).
schema = schemathesis.openapi.from_dict(
    create_app(AppSettings.model_construct(), runtime_factory=_no_runtime).openapi()
).exclude(path="/events")


class Server:
    """uvicorn in a thread with its own event loop, runtime and database connections."""

    def __init__(self, database_url: str, data_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._settings = settings_for(database_url, data_dir, api_port=self.port)
        self._server: uvicorn.Server | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="api-under-test", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported by start()
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        settings = self._settings

        async def factory(s: AppSettings) -> Any:
            return await start_runtime(s, options(start_feed=False))

        app = create_app(settings, runtime_factory=factory)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        serving = asyncio.create_task(self._server.serve())
        while not self._server.started and not serving.done():  # noqa: ASYNC110 - a flag only
            await asyncio.sleep(0.02)
        self._ready.set()
        await serving

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(120)
        if self._error is not None:
            raise self._error
        assert self._server is not None and self._server.started, "the API did not start"

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        self._thread.join(30)


@pytest.fixture(scope="module")
def server(
    pg_url: str, pg_template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    name = f"fuzz_{free_port()}"

    async def create() -> None:
        import asyncpg

        conn = await asyncpg.connect(pg_url)
        try:
            await conn.execute(f"CREATE DATABASE {name} TEMPLATE {pg_template}")
        finally:
            await conn.close()

    asyncio.run(create())
    srv = Server(pg_url.rsplit("/", 1)[0] + "/" + name, tmp_path_factory.mktemp("fuzz"))
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def _with_non_finite(body: object) -> list[bytes]:
    """The body with NaN, Infinity and -Infinity in place of each of its first fields."""
    if isinstance(body, dict) and body:
        variants = []
        for key in list(body)[:3]:
            for bad in (math.nan, math.inf, -math.inf):
                variants.append(json.dumps({**body, key: bad}).encode())
        return variants
    return [b"NaN", b"Infinity", b'{"timeout_s": NaN}', b'{"mode": -Infinity}']


@schema.parametrize()
@settings(
    max_examples=CHAOS.api_examples,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,  # reproducible: the same cases every run
)
def test_no_5xx_on_any_input(case: schemathesis.Case, server: Server) -> None:
    case.call_and_validate(base_url=server.url, checks=[not_a_server_error], timeout=30)
    if case.method.upper() in ("POST", "PUT", "PATCH"):
        for raw in _with_non_finite(case.body):
            r = requests.request(
                case.method,
                server.url + case.formatted_path,
                data=raw,
                headers={"Content-Type": "application/json"},
                timeout=30,
            )
            assert r.status_code < 500, (case.method, case.formatted_path, raw, r.text)
