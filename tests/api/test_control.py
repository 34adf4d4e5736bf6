"""POST /mode, /pause, /resume, /flatten against a stand-in runtime on a real database."""

from __future__ import annotations

from aitrapp.db import repo

from .conftest import AUTH, TOKEN, Api, MakeApi


async def test_pause_and_resume_pass_the_caller_as_actor(api: Api) -> None:
    r = await api.client.post("/pause")
    assert r.status_code == 200
    assert r.json() == {"trading_state": "PAUSED"}
    assert api.runtime.trading_state == "PAUSED"
    r = await api.client.post("/resume")
    assert r.json() == {"trading_state": "ACTIVE"}
    assert [(c.action, c.actor) for c in api.runtime.calls] == [
        ("pause", "api:127.0.0.1"),
        ("resume", "api:127.0.0.1"),
    ]


async def test_flatten_returns_the_result_and_halts(api: Api) -> None:
    r = await api.client.post("/flatten")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body == {
        "ok": True,
        "flat": True,
        "clean": True,
        "elapsed_ms": 12.5,
        "flat_after_ms": 4.25,
        "clean_after_ms": 12.5,
        "cancelled_orders": 2,
        "converted_stops": 2,
        "exit_orders": 2,
        "open_positions_after": 0,
        "working_orders_after": 0,
        "state": "HALTED",
    }
    assert api.runtime.calls[-1].args == {"timeout_s": 10.0}
    state = (await api.client.get("/state")).json()
    assert state["trading_state"] == "HALTED"
    assert state["positions"] == [] and state["working_orders"] == []


async def test_flatten_takes_a_timeout(api: Api) -> None:
    r = await api.client.post("/flatten", json={"timeout_s": 1.5})
    assert r.status_code == 200
    assert api.runtime.calls[-1].args == {"timeout_s": 1.5}


async def test_flatten_not_flat_is_504_with_the_counts(api: Api) -> None:
    api.runtime.flatten_leaves = (1, 2)
    r = await api.client.post("/flatten")
    assert r.status_code == 504
    assert r.json()["ok"] is False
    assert r.json()["open_positions_after"] == 1
    assert r.json()["working_orders_after"] == 2
    assert (r.json()["flat"], r.json()["clean"]) == (False, False)
    assert (r.json()["flat_after_ms"], r.json()["clean_after_ms"]) == (None, None)


async def test_flatten_flat_but_not_clean_says_so(api: Api) -> None:
    api.runtime.flatten_leaves = (0, 1)
    r = await api.client.post("/flatten")
    assert r.status_code == 504
    body = r.json()
    assert (body["ok"], body["flat"], body["clean"]) == (False, True, False)
    assert (body["flat_after_ms"], body["clean_after_ms"]) == (4.25, None)


async def test_flatten_timeout_error_is_504(api: Api) -> None:
    api.runtime.flatten_raises = True
    r = await api.client.post("/flatten", json={"timeout_s": 0.5})
    assert r.status_code == 504
    assert "not terminal after 0.5 s" in r.json()["detail"]
    assert r.json()["error"] == "FlattenTimeoutError"


async def test_flatten_bad_timeout_names_the_field(api: Api) -> None:
    for bad in ({"timeout_s": 0}, {"timeout_s": 61}, {"timeout_s": "soon"}, {"timeout": 1}):
        r = await api.client.post("/flatten", json=bad)
        assert r.status_code == 422, bad
        key = next(iter(bad))
        assert f"body.{key}" in r.json()["message"], r.json()
    assert api.runtime.calls == []


async def test_mode_paper(api: Api) -> None:
    r = await api.client.post("/mode", json={"mode": "PAPER"})
    assert r.status_code == 200
    assert r.json() == {"previous": "PAPER", "mode": "PAPER", "reasons": []}


async def test_mode_live_without_token_is_refused_and_audited(api: Api) -> None:
    r = await api.client.post("/mode", json={"mode": "LIVE"})
    assert r.status_code == 409
    assert "AITRAPP_API_TOKEN" in r.json()["reasons"][0]
    assert api.runtime.calls == []  # never reached the runtime
    assert api.runtime.mode == "PAPER"
    rows = await repo.list_audit(api.runtime.pool, action="mode")
    assert len(rows) == 1
    assert rows[0].actor == "api:127.0.0.1"
    assert rows[0].params == {"mode": "LIVE"}
    assert rows[0].result["ok"] is False
    assert rows[0].session_id == api.runtime.session_id


async def test_mode_live_refused_by_the_gate_gives_its_reasons(secured: Api) -> None:
    secured.runtime.live_refusals = ["burn-in: 2 of 5 sessions passed", "broker: not verified"]
    r = await secured.client.post("/mode", json={"mode": "LIVE"}, headers=AUTH)
    assert r.status_code == 409
    assert r.json()["reasons"] == secured.runtime.live_refusals
    assert secured.runtime.mode == "PAPER"
    assert secured.runtime.calls[-1].actor == "api:127.0.0.1+token"


async def test_mode_live_with_token_and_gate_passed(make_api: MakeApi) -> None:
    api = await make_api(api_token=TOKEN)
    r = await api.client.post("/mode", json={"mode": "LIVE"}, headers=AUTH)
    assert r.status_code == 200
    assert r.json() == {"previous": "PAPER", "mode": "LIVE", "reasons": []}
    assert (await api.client.get("/state")).json()["mode"] == "LIVE"


async def test_mode_bad_bodies_are_422_naming_the_field(api: Api) -> None:
    cases = [
        ({"mode": "live"}, "body.mode"),
        ({"mode": None}, "body.mode"),
        ({}, "body.mode"),
        ({"mode": "PAPER", "force": True}, "body.force"),
        ([], "body"),
    ]
    for body, field in cases:
        r = await api.client.post("/mode", json=body)
        assert r.status_code == 422, body
        assert field in r.json()["message"], (body, r.json())
        assert all("loc" in e and "msg" in e for e in r.json()["detail"])
    for raw in (b"{not json", b"", b"\xff\xfe"):
        r = await api.client.post(
            "/mode", content=raw, headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 422, raw
    assert api.runtime.calls == []
