"""GET /events over a real socket (uvicorn): filtering, heartbeats, disconnects, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn

from aitrapp.api import create_app
from aitrapp.api.deps import api_state
from aitrapp.cli.serve import ApiServer
from aitrapp.db.embedded import free_port
from aitrapp.db.pool import Pool
from aitrapp.settings import AppSettings, load_settings

from .conftest import Api
from .fake_runtime import FakeRuntime


@dataclass
class Served:
    url: str
    server: ApiServer
    task: asyncio.Task[None]
    runtime: FakeRuntime
    app: Any


async def serve(db_pool: Pool, **app_kwargs: Any) -> Served:
    runtime = await FakeRuntime.start(db_pool)

    async def factory(_: AppSettings) -> FakeRuntime:
        return runtime

    app = create_app(load_settings(), runtime_factory=factory, **app_kwargs)
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, lifespan="on", log_config=None,
        timeout_graceful_shutdown=5,
    )  # fmt: skip
    server = ApiServer(config, app)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise AssertionError("server exited during start-up")
        await asyncio.sleep(0.01)
    return Served(f"http://127.0.0.1:{port}", server, task, runtime, app)


@pytest.fixture
async def served(db_pool: Pool) -> AsyncIterator[Served]:
    s = await serve(db_pool, sse_heartbeat_s=0.2, max_event_streams=2)
    try:
        yield s
    finally:
        s.server.should_exit = True
        await asyncio.wait_for(s.task, 30)


async def read_events(lines: AsyncIterator[str], n: int) -> list[dict[str, Any]]:
    """The next n SSE events (comments skipped) as {field: value} dicts."""
    out: list[dict[str, Any]] = []
    event: dict[str, Any] = {}
    async for line in lines:
        if line.startswith(":"):
            continue
        if line == "":
            if "data" in event:  # the subscribed/retry preamble has none
                out.append(event)
                if len(out) == n:
                    return out
            event = {}
            continue
        key, _, value = line.partition(": ")
        event[key] = json.loads(value) if key == "data" else value
    raise AssertionError(f"stream ended after {len(out)} of {n} events")


async def wait_for(predicate: Any, what: str) -> None:
    for _ in range(500):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def test_events_are_filtered_by_topic(served: Served) -> None:
    bus = served.runtime.bus
    async with (
        httpx.AsyncClient(base_url=served.url) as client,
        client.stream("GET", "/events", params={"topics": "orders,trades"}) as r,
    ):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = r.aiter_lines()
        assert await anext(lines) == ": subscribed"
        bus.publish("signals", {"n": 0})
        bus.publish("orders", {"n": 1, "price": "2500.05"})
        bus.publish("risk", {"n": 2})
        bus.publish("trades", {"n": 3})
        got = await read_events(lines, 2)
    assert [(e["event"], e["data"]["data"]["n"]) for e in got] == [("orders", 1), ("trades", 3)]
    assert got[0]["data"]["topic"] == "orders"
    assert got[0]["data"]["data"]["price"] == "2500.05"
    assert got[0]["data"]["ts"].endswith("+00:00")
    assert int(got[1]["id"]) > int(got[0]["id"])


async def test_repeated_topics_params_and_heartbeats(served: Served) -> None:
    async with (
        httpx.AsyncClient(base_url=served.url) as client,
        client.stream("GET", "/events?topics=mode&topics=risk") as r,
    ):
        lines = r.aiter_lines()
        seen: list[str] = []
        async for line in lines:
            seen.append(line)
            if seen.count(": heartbeat") == 2:
                break
        served.runtime.bus.publish("mode", {"mode": "PAPER"})
        served.runtime.bus.publish("risk", {"reason": "DAILY_LOSS"})
        got = await read_events(lines, 2)
    assert [e["event"] for e in got] == ["mode", "risk"]


async def test_a_gone_client_releases_its_subscription(served: Served) -> None:
    api = api_state(served.app)
    bus = served.runtime.bus
    async with httpx.AsyncClient(base_url=served.url) as client:
        async with client.stream("GET", "/events") as r:
            lines = r.aiter_lines()
            assert await anext(lines) == ": subscribed"
            assert api.open_streams == 1 and len(bus._subs) == 1
        # The response is closed: the server notices (at the latest on the next heartbeat).
        await wait_for(lambda: api.open_streams == 0 and not bus._subs, "stream release")


async def test_streams_are_capped(served: Served) -> None:
    async with contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(httpx.AsyncClient(base_url=served.url))
        readers = []  # keep them: a collected line iterator closes its response
        for _ in range(2):
            r = await stack.enter_async_context(client.stream("GET", "/events"))
            assert r.status_code == 200
            readers.append(r.aiter_lines())
            assert await anext(readers[-1]) == ": subscribed"
        assert api_state(served.app).open_streams == 2
        third = await asyncio.wait_for(client.get("/events"), 10)
        assert third.status_code == 503
        assert "too many event streams" in third.json()["detail"]


async def test_shutdown_ends_open_streams_then_stops_the_runtime(db_pool: Pool) -> None:
    s = await serve(db_pool, sse_heartbeat_s=60)  # no heartbeat would end the stream
    async with (
        httpx.AsyncClient(base_url=s.url) as client,
        client.stream("GET", "/events") as r,
    ):
        lines = r.aiter_lines()
        assert await anext(lines) == ": subscribed"
        s.server.should_exit = True
        rest = [line async for line in lines]  # ends: the server closed the stream
    assert all(line == "" or line.startswith((":", "retry:")) for line in rest), rest
    await asyncio.wait_for(s.task, 30)
    assert s.runtime.stopped


@pytest.mark.parametrize("topics", ["orders,bogus", "", ",", "ORDERS"])
async def test_bad_topics_are_422(api: Api, topics: str) -> None:
    r = await api.client.get("/events", params={"topics": topics})
    if topics == "":
        # An empty value means "no filter": every topic. Not streamed through ASGITransport.
        return
    assert r.status_code == 422, r.text
    assert r.json()["message"].startswith("query.topics")


class _Broken:
    """A subscription whose transport fails (e.g. Redis gone for good)."""

    closed = False

    def __aiter__(self) -> _Broken:
        return self

    async def __anext__(self) -> Any:
        raise ConnectionError("redis: connection refused")

    async def close(self) -> None:
        self.closed = True


async def test_a_failing_subscription_ends_the_stream_with_an_error_event(api: Api) -> None:
    broken = _Broken()

    async def subscribe(*_: Any, **__: Any) -> _Broken:
        return broken

    api.runtime.bus.subscribe = subscribe  # type: ignore[method-assign]
    r = await api.client.get("/events")  # the stream ends by itself: ASGITransport can read it
    assert r.status_code == 200
    assert "event: error" in r.text and "ConnectionError" in r.text
    assert broken.closed
    assert api_state(api.app).open_streams == 0
