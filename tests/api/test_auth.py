"""Bearer token: mutations need it when configured; reads need it only beyond loopback."""

from __future__ import annotations

import pytest

from aitrapp.api import create_app
from aitrapp.exceptions import ConfigError
from aitrapp.settings import AppSettings

from .conftest import AUTH, TOKEN, Api, MakeApi

MUTATIONS = [
    ("/pause", None),
    ("/resume", None),
    ("/flatten", None),
    ("/mode", {"mode": "PAPER"}),
]


@pytest.mark.parametrize(("path", "body"), MUTATIONS)
async def test_without_a_token_configured_mutations_are_open(
    api: Api, path: str, body: dict[str, str] | None
) -> None:
    r = await api.client.post(path, json=body)
    assert r.status_code == 200, r.text
    assert api.runtime.calls[-1].actor == "api:127.0.0.1"


@pytest.mark.parametrize(("path", "body"), MUTATIONS)
async def test_with_a_token_every_mutation_needs_it(
    secured: Api, path: str, body: dict[str, str] | None
) -> None:
    bad_headers: list[dict[str, str | bytes]] = [
        {},
        {"Authorization": "Bearer wrong-token-wrong-token-wrong"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Bearer {TOKEN[:-1]}"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer \u00e9\u00e8".encode()},  # raw non-ASCII bytes
    ]
    for headers in bad_headers:
        r = await secured.client.post(path, json=body, headers=headers)
        assert r.status_code == 401, (headers, r.text)
        assert r.headers["www-authenticate"] == "Bearer"
        assert r.json() == {"detail": "missing or invalid bearer token"}
    assert secured.runtime.calls == []  # nothing reached the runtime
    r = await secured.client.post(path, json=body, headers=AUTH)
    assert r.status_code == 200, r.text
    assert secured.runtime.calls[-1].actor == "api:127.0.0.1+token"


async def test_scheme_is_case_insensitive(secured: Api) -> None:
    r = await secured.client.post("/pause", headers={"Authorization": f"bearer {TOKEN}"})
    assert r.status_code == 200


async def test_auth_is_checked_before_the_body(secured: Api) -> None:
    r = await secured.client.post("/mode", json={"mode": "nonsense"})
    assert r.status_code == 401  # the token is checked before the body is looked at
    assert secured.runtime.calls == []


async def test_reads_stay_open_on_loopback_with_a_token(secured: Api) -> None:
    for path in ("/health", "/state", "/metrics", "/orders", "/positions"):
        r = await secured.client.get(path)
        assert r.status_code == 200, path


async def test_reads_need_the_token_when_exposed(make_api: MakeApi) -> None:
    exposed = await make_api(api_host="0.0.0.0", api_token=TOKEN)
    for path in ("/state", "/metrics", "/orders", "/trades", "/events"):
        r = await exposed.client.get(path)
        assert r.status_code == 401, path
    assert (await exposed.client.get("/state", headers=AUTH)).status_code == 200
    assert (await exposed.client.get("/health")).status_code == 200  # liveness stays open


def test_create_app_refuses_a_non_loopback_bind_without_a_token() -> None:
    # model_construct skips the settings' own validator: create_app must still refuse.
    unsafe = AppSettings.model_construct(api_host="0.0.0.0", api_token=None)
    with pytest.raises(ConfigError, match=r"AITRAPP_API_HOST='0\.0\.0\.0'.*AITRAPP_API_TOKEN"):
        create_app(unsafe)


def test_create_app_refuses_a_short_token() -> None:
    from pydantic import SecretStr

    weak = AppSettings.model_construct(api_token=SecretStr("short"))
    with pytest.raises(ConfigError, match="AITRAPP_API_TOKEN is too short"):
        create_app(weak)


def test_create_app_from_the_environment_refuses_an_exposed_bind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AITRAPP_API_HOST", "10.0.0.5")
    monkeypatch.delenv("AITRAPP_API_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="AITRAPP_API_HOST"):
        create_app()
