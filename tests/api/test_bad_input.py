"""Nothing answers 500 to bad input: hostile queries, bodies and headers on every route."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import pytest
import uvicorn

from aitrapp.db.embedded import free_port

from .conftest import AUTH, Api, MakeApi

GETS = ["/health", "/state", "/metrics", "/orders", "/positions", "/trades", "/signals",
        "/decisions", "/risk-events"]  # fmt: skip
POSTS = ["/mode", "/pause", "/resume", "/flatten"]
PARAMS = ["date", "date_from", "date_to", "session_id", "limit", "offset", "status", "strategy",
          "symbol", "reason", "plan_id", "topics", "x"]  # fmt: skip
NASTY = ["", " ", "-1", "0", "1e309", "NaN", "2**64", str(2**63), str(-(2**63) - 1), "null",
         "[]", "{}", "\x00", "\u202e", "é" * 70, "'; DROP TABLE orders; --", "%00", "../../",
         "2026-01-05", "2026-13-45", "9999-12-31", "0001-01-01", "current", "WORKING",
         "OPEN", "00000000-0000-0000-0000-000000000000", "a" * 5000]  # fmt: skip
BODIES: list[Any] = [None, 0, 1.5, "LIVE", [], [{}], {}, {"mode": None}, {"mode": ["LIVE"]},
    {"mode": {"LIVE": 1}}, {"mode": "PAPER", "timeout_s": 1}, {"timeout_s": -1},
    {"timeout_s": 1e308}, {"timeout_s": "NaN"}, {"timeout_s": None}, {"timeout_s": True},
    {"mode": "PAPER" * 1000}, {"a": {"b": {"c": [1] * 100}}}]  # fmt: skip


async def test_hostile_queries_on_reads(api: Api) -> None:
    rng = random.Random(20260105)
    for _ in range(400):
        path = rng.choice(GETS)
        params = [(rng.choice(PARAMS), rng.choice(NASTY)) for _ in range(rng.randint(1, 3))]
        r = await api.client.get(path, params=params)
        assert r.status_code < 500, (path, params, r.text)
        if r.status_code == 422:
            assert r.json()["message"], (path, params)


@pytest.mark.parametrize("path", POSTS)
async def test_hostile_bodies_on_mutations(make_api: MakeApi, path: str) -> None:
    api = await make_api()
    for body in BODIES:
        r = await api.client.post(path, content=json.dumps(body).encode(), headers=AUTH)
        assert r.status_code < 500, (path, body, r.text)
    for raw, ctype in [
        (b"\x00\x01\x02", "application/json"),
        (b'{"mode": "PAPER"', "application/json"),
        (b"mode=PAPER", "application/x-www-form-urlencoded"),
        (b'{"mode": "PAPER"}', "text/plain"),
        (b"\xef\xbb\xbf{}", "application/json; charset=utf-8"),
        (b"[" * 10_000 + b"]" * 10_000, "application/json"),
    ]:
        r = await api.client.post(path, content=raw, headers={"Content-Type": ctype})
        assert r.status_code < 500, (path, raw[:40], ctype, r.text)


async def test_hostile_paths_and_methods(api: Api) -> None:
    for method, path in [
        ("GET", "/orders/1"), ("GET", "/../etc/passwd"), ("DELETE", "/orders"),
        ("PUT", "/mode"), ("PATCH", "/state"), ("GET", "/%00"), ("OPTIONS", "/flatten"),
        ("GET", "/" + "a" * 10_000),
    ]:  # fmt: skip
        r = await api.client.request(method, path)
        assert r.status_code in (404, 405), (method, path, r.status_code)
    assert api.runtime.calls == []


FINITE = "is not a JSON number (send a finite number)"
NON_FINITE = [
    (b'{"timeout_s": NaN}', f"body.timeout_s: NaN {FINITE}"),
    (b'{"timeout_s": Infinity}', f"body.timeout_s: Infinity {FINITE}"),
    (b'{"timeout_s": -Infinity}', f"body.timeout_s: -Infinity {FINITE}"),
    (b'{"timeout_s": 1e999}', "body.timeout_s: out of range: not a finite number"),
    (b'{"mode": "PAPER", "x": [1, {"y": NaN}]}', f"body.x.1.y: NaN {FINITE}"),
    (b"NaN", f"body: NaN {FINITE}"),
]


@pytest.mark.parametrize("path", ["/mode", "/flatten"])
async def test_nan_infinity_and_invalid_json_are_422_naming_the_field(
    make_api: MakeApi, path: str
) -> None:
    api = await make_api()
    json_ct = {"Content-Type": "application/json", **AUTH}
    for raw, message in NON_FINITE:
        r = await api.client.post(path, content=raw, headers=json_ct)
        assert r.status_code == 422, (raw, r.text)
        assert r.json()["message"] == message
        assert r.json()["detail"][0]["type"] == "finite_number"
    r = await api.client.post(path, content=b'{"mode": "PAPER"', headers=json_ct)
    assert r.status_code == 422
    assert r.json()["message"] == "body: invalid JSON: Expecting ',' delimiter at line 1 column 17"
    assert r.json()["detail"][0]["type"] == "json_invalid"
    assert api.runtime.calls == []  # nothing reached the runtime


async def test_nan_on_a_route_without_a_body_is_ignored(make_api: MakeApi) -> None:
    api = await make_api()
    r = await api.client.post(
        "/pause",
        content=b'{"timeout_s": NaN}',
        headers={"Content-Type": "application/json", **AUTH},
    )
    assert r.status_code == 200, r.text


async def test_keep_alive_survives_bad_bodies(make_api: MakeApi) -> None:
    """On a real server: a NaN body, invalid JSON, then a good request, on one connection."""
    api = await make_api()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(api.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag only
                await asyncio.sleep(0.01)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for body, want in [
                (b'{"timeout_s": NaN}', 422),
                (b'{"timeout_s": 1', 422),
                (b'{"timeout_s": Infinity, "x": 1}', 422),
                (b'{"timeout_s": 5}', 200),
            ]:
                writer.write(
                    b"POST /flatten HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                    + f"Authorization: {AUTH['Authorization']}\r\n".encode()
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
                async with asyncio.timeout(10):
                    status_line = await reader.readline()
                    headers = {}
                    while (line := await reader.readline()) not in (b"\r\n", b""):
                        k, _, v = line.decode().partition(":")
                        headers[k.strip().lower()] = v.strip()
                    await reader.readexactly(int(headers["content-length"]))
                assert status_line.split()[1] == str(want).encode(), (body, status_line)
                assert headers.get("connection") != "close", (body, headers)
        finally:
            writer.close()
    finally:
        server.should_exit = True
        await task
