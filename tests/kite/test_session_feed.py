"""A PAPER session on the live Kite feed, against the fake Kite on loopback.

The runtime is the real one (embedded PostgreSQL, writer, engine, paper
broker); only Kite is fake. Ticks go out through the fake ticker websocket
and must come back as processed ticks and a session row whose feed is
'kite', the only kind the LIVE gate counts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import asyncpg
import pytest
from typer.testing import CliRunner

from aitrapp.brokers.kite import KiteBroker
from aitrapp.calendar import ist_ns
from aitrapp.cli import app
from aitrapp.control import ModeRefusedError
from aitrapp.exceptions import ConfigError
from aitrapp.kite.auth import IST, KiteSession, Secret, TokenStore
from aitrapp.kite.session import (
    ClosingFeed,
    KiteAccess,
    kite_access_from_env,
    kite_feed_factory,
    kite_universe,
    session_end,
)
from aitrapp.kite.ticker_codec import Mode, TickPacket
from aitrapp.report import live_gate
from aitrapp.runtime import Runtime, RuntimeOptions, start_runtime
from aitrapp.settings import AppSettings, load_settings
from aitrapp.universe import load_universe

from .conftest import eventually
from .fake_kite import FakeKite

pytestmark = pytest.mark.integration

DAY = date(2026, 3, 4)  # a Wednesday, an NSE trading day
RELIANCE, SBIN = 738561, 779521
T10 = ist_ns(DAY, time(10, 0)) // 1_000_000_000  # 10:00 IST, epoch s


class FakeClock:
    """Wall time the test moves by hand (the feed's end is read from it)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def kite_env(fake: FakeKite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The environment `aitrapp kite login` leaves behind, pointed at the fake."""
    token_file = tmp_path / "kite_token.json"
    TokenStore(token_file).save(
        KiteSession(
            api_key=fake.api_key,
            user_id="AB1234",
            access_token=Secret(fake.access_token),
            login_time=datetime.now(UTC),
        )
    )
    monkeypatch.setenv("KITE_API_KEY", fake.api_key)
    monkeypatch.setenv("KITE_API_SECRET", fake.api_secret)
    monkeypatch.setenv("KITE_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("KITE_API_ROOT", fake.rest_root)
    monkeypatch.setenv("KITE_WS_ROOT", fake.ws_root)
    monkeypatch.delenv("REDIS_URL", raising=False)
    yield token_file


def settings(db_url: str, tmp_path: Path) -> AppSettings:
    return load_settings(database_url=db_url, data_dir=tmp_path / "var")


def full(token: int, ltp: float, ts: int, volume: int) -> TickPacket:
    return TickPacket(token, Mode.FULL, ltp, last_quantity=5, average_price=ltp, volume=volume,
                      open=ltp, high=ltp, low=ltp, close=ltp, exchange_timestamp=ts)  # fmt: skip


async def test_paper_session_on_the_kite_feed(
    fake: FakeKite, kite_env: Path, db_url: str, tmp_path: Path
) -> None:
    clock = FakeClock(datetime.now(UTC))
    access = kite_access_from_env(now=clock())
    factory = kite_feed_factory(
        access, mode=Mode.FULL, duration_s=600, clock=clock, backoff_initial=0.02
    )
    options = RuntimeOptions(
        feed="kite", day=DAY, symbols=("RELIANCE", "SBIN"), feed_factory=factory
    )
    rt = await start_runtime(settings(db_url, tmp_path), options)
    try:
        assert rt.kernel is not None and rt.live is None  # the paper venue, in the kernel
        assert isinstance(rt.feed, ClosingFeed) and rt.feed.kind == "kite"
        await eventually(
            lambda: (
                bool(fake.ws_clients)
                and fake.ws_clients[0].modes == {RELIANCE: "full", SBIN: "full"}
            )
        )
        packets = [
            full(RELIANCE, 1450.0, T10, 1000),
            full(SBIN, 980.0, T10, 5000),
            full(RELIANCE, 1450.5, T10 + 1, 1100),
            full(SBIN, 980.25, T10 + 2, 5200),
        ]
        assert await fake.broadcast_ticks(packets) == 1
        await eventually(lambda: rt.state()["counters"]["ticks"] == 4)
        state = rt.state()
        assert state["last_tick_at"] == datetime.fromtimestamp(T10 + 2, UTC).isoformat()
        assert state["session"]["feed"]["kind"] == "kite"
        assert not state["session"]["feed_done"]
        engine = rt.kernel.kernel
        assert engine.last_price(RELIANCE) == 1450.5 and engine.last_price(SBIN) == 980.25

        # The session's end time passes: the feed stops by itself and the session
        # ends COMPLETED (an aborted one would not count as a burn-in).
        clock.now += timedelta(seconds=601)
        await eventually(rt.feed_done.is_set, within=10.0)
        await rt.wait_feed()
        assert rt.feed.closed_on_time and rt.feed.progress() == 1.0
        await rt.stop_trading()
        row = await rt.pool.fetchrow(
            "SELECT mode, feed, status, trading_date, summary FROM sessions WHERE id = $1",
            rt.session_id,
        )
        assert row is not None
        assert (row["mode"], row["feed"], row["status"]) == ("PAPER", "kite", "COMPLETED")
        assert row["trading_date"] == DAY
    finally:
        await rt.stop()


async def _refused(db_url: str, tmp_path: Path, options: RuntimeOptions) -> str:
    with pytest.raises(ConfigError) as err:
        rt: Runtime = await start_runtime(settings(db_url, tmp_path), options)
        await rt.stop()  # pragma: no cover - only reached when the test fails
    return str(err.value)


async def test_a_synthetic_token_symbol_is_refused(
    kite_env: Path, db_url: str, tmp_path: Path
) -> None:
    options = RuntimeOptions(feed="kite", day=DAY, symbols=("RELIANCE", "NIFTY"))
    message = await _refused(db_url, tmp_path, options)
    assert "NIFTY26MARFUT" in message and "synthetic instrument_token" in message


async def test_runtime_without_credentials_names_the_missing_key(
    kite_env: Path, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KITE_API_SECRET")
    options = RuntimeOptions(feed="kite", day=DAY, symbols=("RELIANCE",))
    assert "KITE_API_SECRET is not set" in await _refused(db_url, tmp_path, options)


def test_default_kite_universe_drops_the_synthetic_tokens() -> None:
    universe = load_universe(on=DAY)
    chosen = kite_universe(universe)
    assert len(chosen) > 0
    assert all(e.token_source == "kite" for e in chosen)
    assert set(chosen.symbols) == {
        e.symbol for e in universe.defaults() if e.token_source == "kite"
    }
    assert "NIFTY26MARFUT" in universe.defaults().symbols  # the filter did drop something
    assert kite_universe(universe, ["sbin", "RELIANCE"]).symbols == ["SBIN", "RELIANCE"]


def test_access_needs_a_valid_token(kite_env: Path) -> None:
    env = dict(os.environ)
    now = datetime.now(UTC)
    access = kite_access_from_env(env, now=now)
    assert isinstance(access, KiteAccess) and access.user_id == "AB1234"
    assert access.ws_root == env["KITE_WS_ROOT"] and access.api_root == env["KITE_API_ROOT"]
    with pytest.raises(ConfigError, match="KITE_API_KEY is not set"):
        kite_access_from_env({}, now=now)
    with pytest.raises(ConfigError, match="expired"):
        kite_access_from_env(env, now=now + timedelta(days=2))
    kite_env.unlink()
    with pytest.raises(ConfigError, match="aitrapp kite login"):
        kite_access_from_env(env, now=now)


def test_session_end() -> None:
    close = datetime(2026, 3, 4, 15, 30, tzinfo=IST)
    morning = datetime(2026, 3, 4, 10, 0, tzinfo=IST)
    assert session_end(DAY, now=morning) == close
    assert session_end(DAY, now=morning, duration_s=60) == morning + timedelta(seconds=60)
    assert session_end(DAY, now=close - timedelta(minutes=1), duration_s=3600) == close
    evening = datetime(2026, 3, 4, 18, 0, tzinfo=IST)
    with pytest.raises(ConfigError, match="closed at 15:30 IST"):
        session_end(DAY, now=evening)
    assert session_end(DAY, now=evening, duration_s=5) == evening + timedelta(seconds=5)
    with pytest.raises(ConfigError, match="not an NSE trading day"):
        session_end(date(2026, 3, 7), now=datetime(2026, 3, 7, 10, 0, tzinfo=IST))
    with pytest.raises(ConfigError, match="duration"):
        session_end(DAY, now=morning, duration_s=0)


def test_cli_without_credentials_exits_2_with_the_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("KITE_API_KEY", "KITE_API_SECRET", "DATABASE_URL", "REDIS_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AITRAPP_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("AITRAPP_LOGS_DIR", str(tmp_path / "logs"))
    result = CliRunner().invoke(app, ["paper", "--feed", "kite", "--no-serve"])
    assert result.exit_code == 2, result.output
    assert "KITE_API_KEY is not set" in result.output
    assert "Traceback" not in result.output


def test_cli_refuses_a_synthetic_symbol(
    kite_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AITRAPP_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("AITRAPP_LOGS_DIR", str(tmp_path / "logs"))
    result = CliRunner().invoke(
        app, ["paper", "--feed", "kite", "--symbols", "BANKNIFTY", "--duration", "5"]
    )
    assert result.exit_code == 2, result.output
    assert "BANKNIFTY" in result.output and "synthetic instrument_token" in result.output


async def test_live_is_refused_without_passing_burn_ins(
    fake: FakeKite, kite_env: Path, db_url: str, tmp_path: Path
) -> None:
    options = RuntimeOptions(feed="kite", mode="LIVE", day=DAY, symbols=("RELIANCE",))
    with pytest.raises(ModeRefusedError) as err:
        rt = await start_runtime(settings(db_url, tmp_path), options)
        await rt.stop()  # pragma: no cover - only reached when the test fails
    assert any("burn-in" in r for r in err.value.reasons), err.value.reasons
    conn = await asyncpg.connect(db_url)
    try:
        audits = await conn.fetch("SELECT actor, action, result FROM audit_log")
        sessions = await conn.fetchval("SELECT count(*) FROM sessions")
    finally:
        await conn.close()
    assert [(a["actor"], a["action"]) for a in audits] == [("runtime:start", "live_gate")]
    assert json.loads(audits[0]["result"])["allowed"] is False
    assert sessions == 0  # refused before any session row
    assert fake.placed() == [] and not fake.ws_clients  # Kite never saw an order or a feed


async def test_live_session_trades_through_the_kite_broker(
    fake: FakeKite,
    kite_env: Path,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gate_calls: list[str] = []

    async def gate_allows(_conn: object, _settings: object, *, actor: str, **_kw: object) -> None:
        gate_calls.append(actor)

    monkeypatch.setattr(live_gate, "enforce_live_gate", gate_allows)
    clock = FakeClock(datetime.now(UTC))
    factory = kite_feed_factory(
        kite_access_from_env(now=clock()), duration_s=600, clock=clock, backoff_initial=0.02
    )
    options = RuntimeOptions(
        feed="kite",
        mode="LIVE",
        day=DAY,
        symbols=("RELIANCE",),
        feed_factory=factory,
    )
    rt = await start_runtime(settings(db_url, tmp_path), options)
    try:
        assert gate_calls == ["runtime:start"]
        assert rt.mode == "LIVE" and isinstance(rt.broker, KiteBroker)
        assert rt.journal is not None and rt.journal.inner is rt.broker
        assert rt.live is not None and rt.live is rt.kernel
        await eventually(lambda: isinstance(rt.broker, KiteBroker) and rt.broker.stream_connected)
        await eventually(lambda: any(c.modes for c in fake.ws_clients))
        await fake.broadcast_ticks([full(RELIANCE, 1450.0, T10, 1000)])
        await eventually(lambda: rt.state()["counters"]["ticks"] == 1)
        clock.now += timedelta(seconds=601)
        await eventually(rt.feed_done.is_set, within=10.0)
        await rt.stop_trading()
        row = await rt.pool.fetchrow(
            "SELECT mode, feed, status FROM sessions WHERE id = $1", rt.session_id
        )
        assert row is not None and tuple(row) == ("LIVE", "kite", "COMPLETED")
        assert not rt.broker.stream_connected  # the runtime stopped the broker it built
    finally:
        await rt.stop()
