"""Nothing answers 500 to bad input: hostile queries, bodies and headers on every route."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

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
