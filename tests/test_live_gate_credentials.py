"""The Kite-backed ``verify_credentials`` for the LIVE gate, against the fake Kite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aitrapp.kite.auth import IST, KiteSession, Secret, TokenStore
from aitrapp.report.credentials import kite_verifier
from kite.fake_kite import FakeKite

LOGIN = datetime(2026, 1, 9, 8, 30, tzinfo=IST)
LATER = LOGIN + timedelta(hours=2)


@pytest.fixture
async def fake() -> AsyncIterator[FakeKite]:
    async with FakeKite() as f:
        yield f


def env(fake: FakeKite) -> dict[str, str]:
    return {"KITE_API_KEY": fake.api_key, "KITE_API_SECRET": fake.api_secret}


def store(tmp_path: Path, fake: FakeKite, user: str = "AB1234", token: str = "") -> Path:
    path = tmp_path / "kite_token.json"
    TokenStore(path).save(
        KiteSession(
            api_key=fake.api_key,
            user_id=user,
            access_token=Secret(token or fake.access_token),
            login_time=LOGIN,
        )
    )
    return path


async def test_verified(fake: FakeKite, tmp_path: Path) -> None:
    verify = kite_verifier(env=env(fake), token_file=store(tmp_path, fake),
                           api_root=fake.rest_root, clock=lambda: LATER)  # fmt: skip
    assert await verify() is True
    assert any(path == "/user/profile" for _, path, _ in fake.requests)


async def test_missing_api_key(fake: FakeKite, tmp_path: Path) -> None:
    verify = kite_verifier(env={}, token_file=store(tmp_path, fake), api_root=fake.rest_root)
    assert await verify() == "KITE_API_KEY is not set: export your Kite Connect api_key"


async def test_no_token_file(fake: FakeKite, tmp_path: Path) -> None:
    verify = kite_verifier(env=env(fake), token_file=tmp_path / "none.json",
                           api_root=fake.rest_root)  # fmt: skip
    answer = await verify()
    assert isinstance(answer, str) and "run `aitrapp kite login`" in answer


async def test_expired_token(fake: FakeKite, tmp_path: Path) -> None:
    verify = kite_verifier(env=env(fake), token_file=store(tmp_path, fake),
                           api_root=fake.rest_root,
                           clock=lambda: LOGIN + timedelta(days=1))  # fmt: skip
    answer = await verify()
    assert isinstance(answer, str) and "expired at 2026-01-10 06:00" in answer


async def test_token_revoked_at_kite(fake: FakeKite, tmp_path: Path) -> None:
    verify = kite_verifier(env=env(fake), token_file=store(tmp_path, fake, token="revoked0123456"),
                           api_root=fake.rest_root, clock=lambda: LATER)  # fmt: skip
    answer = await verify()
    assert isinstance(answer, str) and answer.startswith("Kite rejected the access token")
    assert "revoked0123456" not in answer


async def test_token_of_another_user(fake: FakeKite, tmp_path: Path) -> None:
    verify = kite_verifier(env=env(fake), token_file=store(tmp_path, fake, user="ZZ9999"),
                           api_root=fake.rest_root, clock=lambda: LATER)  # fmt: skip
    assert await verify() == "Kite answered for user 'AB1234', the token file is for 'ZZ9999'"


def test_clock_default_is_aware() -> None:
    # The default clock must be timezone-aware (TokenStore compares aware datetimes).
    assert kite_verifier.__kwdefaults__ is not None
    now = kite_verifier.__kwdefaults__["clock"]()
    assert now.tzinfo is not None and abs(now - datetime.now(UTC)) < timedelta(minutes=1)
