"""Login flow, the 0600 token file, and secrets that never show."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import stat
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aitrapp.exceptions import ConfigError
from aitrapp.kite.auth import (
    IST,
    KiteCredentials,
    KiteSession,
    RedactingFilter,
    Secret,
    TokenStore,
    credentials_from_env,
    exchange_request_token,
    expires_at,
    login_url,
    parse_request_token,
    redact,
)
from aitrapp.kite.errors import KiteTokenError
from cli_inprocess import run_aitrapp

from .fake_kite import FakeKite

NOW = datetime(2026, 1, 5, 8, 30, tzinfo=IST)


def session(token: str = "accesstoken-abcdef-123456", login: datetime = NOW) -> KiteSession:
    return KiteSession("fakeapikey", "AB1234", Secret(token), login, "Fake Trader")


def test_secret_never_shows_itself() -> None:
    s = Secret("s3cr3t-value-xyz")
    assert "s3cr3t" not in repr(s)
    assert "s3cr3t" not in str(s)
    assert "s3cr3t" not in f"{s} {s!r} {s:>30}"
    assert "s3cr3t" not in repr(session("s3cr3t-value-xyz"))
    assert s.reveal() == "s3cr3t-value-xyz"
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(s)


def test_redact_masks_registered_secrets_and_credential_fields() -> None:
    Secret("registered-token-987654")
    text = (
        "GET wss://ws.kite.trade?api_key=k&access_token=registered-token-987654 "
        "api_secret=whatever123 checksum=abcdef0123 Authorization: token k:zzzzzzzz99"
    )
    out = redact(text)
    assert "registered-token-987654" not in out
    assert "whatever123" not in out
    assert "abcdef0123" not in out
    assert "zzzzzzzz99" not in out
    assert "api_key=k" in out  # the api key is not a secret


def test_log_records_and_tracebacks_are_redacted() -> None:
    Secret("tok-in-a-log-line-5555")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("test.kite.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("connecting with %s", "tok-in-a-log-line-5555")
        try:
            raise RuntimeError("failed: access_token=tok-in-a-log-line-5555")
        except RuntimeError:
            logger.exception("boom")
    finally:
        logger.removeHandler(handler)
    assert "tok-in-a-log-line-5555" not in stream.getvalue()
    assert stream.getvalue().count("***") >= 2


def test_login_url_and_request_token_parsing() -> None:
    assert login_url("abc123") == "https://kite.zerodha.com/connect/login?api_key=abc123&v=3"
    with pytest.raises(ConfigError, match="KITE_API_KEY"):
        login_url("bad key")
    assert parse_request_token(" Tok123456 ") == "Tok123456"
    url = "https://example.com/cb?action=login&type=login&status=success&request_token=Abc987654"
    assert parse_request_token(url) == "Abc987654"
    with pytest.raises(ConfigError, match="status='cancelled'"):
        parse_request_token("https://x/cb?status=cancelled&request_token=Abc987654")
    with pytest.raises(ConfigError, match="request_token"):
        parse_request_token("not a token!")


@pytest.mark.parametrize(
    ("login", "expiry"),
    [
        (datetime(2026, 1, 5, 8, 30, tzinfo=IST), datetime(2026, 1, 6, 6, 0, tzinfo=IST)),
        (datetime(2026, 1, 5, 5, 59, tzinfo=IST), datetime(2026, 1, 5, 6, 0, tzinfo=IST)),
        (datetime(2026, 1, 5, 6, 0, tzinfo=IST), datetime(2026, 1, 6, 6, 0, tzinfo=IST)),
        # 22:00 IST given in UTC
        (datetime(2026, 1, 4, 16, 30, tzinfo=UTC), datetime(2026, 1, 5, 6, 0, tzinfo=IST)),
    ],
)  # fmt: skip
def test_token_expires_at_six_ist(login: datetime, expiry: datetime) -> None:
    assert expires_at(login) == expiry


def test_credentials_from_env_name_the_missing_variable() -> None:
    with pytest.raises(ConfigError, match="KITE_API_KEY"):
        credentials_from_env({})
    with pytest.raises(ConfigError, match="KITE_API_SECRET"):
        credentials_from_env({"KITE_API_KEY": "k"})
    creds = credentials_from_env({"KITE_API_KEY": "k", "KITE_API_SECRET": "sec-abcdef"})
    assert creds.api_key == "k" and "sec-abcdef" not in repr(creds)


def test_token_file_is_0600_and_round_trips(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "sub" / "kite_token.json")
    store.save(session())
    mode = stat.S_IMODE(store.path.stat().st_mode)
    assert mode == 0o600
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700
    loaded = store.load()
    assert loaded is not None
    assert loaded.access_token.reveal() == "accesstoken-abcdef-123456"
    assert loaded.login_time == NOW and loaded.user_id == "AB1234"
    assert "accesstoken-abcdef" not in repr(store)
    store.save(session("second-token-0000000"))  # replaced atomically, still 0600
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert not list(store.path.parent.glob(".*tmp"))


def test_token_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "t.json")
    store.save(session())
    os.chmod(store.path, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        store.load()


def test_token_file_problems_name_the_key(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "t.json")
    assert store.load() is None
    with pytest.raises(ConfigError, match="aitrapp kite login"):
        store.load_valid(api_key="fakeapikey", now=NOW)
    fd = os.open(store.path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b'{"api_key": "fakeapikey", "user_id": "", "access_token": "x"}')
    os.close(fd)
    with pytest.raises(ConfigError, match="'user_id'"):
        store.load()


def test_load_valid_checks_api_key_and_expiry(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "t.json")
    store.save(session())
    assert store.load_valid(api_key="fakeapikey", now=NOW).user_id == "AB1234"
    with pytest.raises(ConfigError, match="belongs to api_key"):
        store.load_valid(api_key="other", now=NOW)
    with pytest.raises(ConfigError, match="expired at 2026-01-06 06:00"):
        store.load_valid(api_key="fakeapikey", now=datetime(2026, 1, 6, 6, 0, tzinfo=IST))


async def test_request_token_exchange_against_fake_kite(fake: FakeKite) -> None:
    creds = KiteCredentials(fake.api_key, Secret(fake.api_secret))
    s = await exchange_request_token(creds, fake.request_token, root=fake.rest_root, now=NOW)
    assert s.user_id == "AB1234"
    assert s.access_token.reveal() == fake.access_token
    assert s.login_time.tzinfo is not None
    # the checksum, not the secret, went over the wire
    (_, path, form) = fake.requests[-1]
    assert path == "/session/token" and "api_secret" not in form and len(form["checksum"]) == 64


async def test_wrong_secret_is_a_token_error(fake: FakeKite) -> None:
    creds = KiteCredentials(fake.api_key, Secret("wrong-secret-000000"))
    with pytest.raises(KiteTokenError, match="Invalid checksum"):
        await exchange_request_token(creds, fake.request_token, root=fake.rest_root, now=NOW)


async def run_process(env: dict[str, str], *args: str, stdin: str = "") -> tuple[int, str, str]:
    """``python -m aitrapp kite ARGS`` as a real subprocess."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aitrapp", "kite", *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), 60)
    return proc.returncode or 0, out.decode(), err.decode()


async def run_cli(env: dict[str, str], *args: str, stdin: str = "") -> tuple[int, str, str]:
    """The same command in this process (a thread: the command runs its own event loop;
    the fake Kite answers from this test's loop meanwhile)."""
    out = await asyncio.to_thread(run_aitrapp, ["kite", *args], env=env, input=stdin)
    return out.returncode, out.stdout, out.stderr


def cli_env(fake: FakeKite, token_file: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KITE_")}
    env.update(
        KITE_API_KEY=fake.api_key,
        KITE_API_SECRET=fake.api_secret,
        KITE_API_ROOT=fake.rest_root,
        KITE_TOKEN_FILE=str(token_file),
        NO_COLOR="1",
    )
    return env


async def test_cli_login_status_and_instruments(fake: FakeKite, tmp_path: Path) -> None:
    token_file = tmp_path / "var" / "kite_token.json"
    env = cli_env(fake, token_file)
    redirect = f"https://127.0.0.1/cb?status=success&request_token={fake.request_token}"
    code, out, err = await run_process(env, "login", stdin=redirect + "\n")  # the wiring
    assert code == 0, err
    assert "https://kite.zerodha.com/connect/login?api_key=fakeapikey&v=3" in out
    assert "Logged in as AB1234" in out
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    for secret in (fake.access_token, fake.api_secret):
        assert secret not in out + err

    code, out, err = await run_cli(env, "status")
    assert code == 0, err
    assert "AB1234" in out and "valid" in out
    assert fake.access_token not in out + err

    cache = tmp_path / "cache"
    code, out, err = await run_cli(env, "instruments", "--cache-dir", str(cache))
    assert code == 0, err
    assert "NSE" in out and "NFO" in out
    assert len(list(cache.glob("instruments-NSE-*.csv"))) == 1
    assert fake.access_token not in out + err


async def test_cli_login_refused_token_is_a_clear_error(fake: FakeKite, tmp_path: Path) -> None:
    env = cli_env(fake, tmp_path / "t.json")
    code, out, err = await run_cli(env, "login", "--request-token", "wrongtoken123")
    assert code == 2
    assert "Kite refused the login" in err
    assert not (tmp_path / "t.json").exists()
    assert fake.api_secret not in out + err


async def test_cli_login_without_credentials_names_the_variable(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KITE_")}
    env["KITE_TOKEN_FILE"] = str(tmp_path / "t.json")
    code, _, err = await run_cli(env, "login", "--request-token", "abcdef123")
    assert code == 2 and "KITE_API_KEY is not set" in err
