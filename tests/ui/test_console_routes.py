"""The console's pages and fragments over HTTP (no browser): who may see what,
what the fragments show, and that none of it enters the OpenAPI contract.

Runs the app around the API tests' in-memory runtime on a real database.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from importlib import resources
from typing import Any

import httpx
import pytest

from aitrapp.api import create_app
from aitrapp.api.openapi import build_openapi
from aitrapp.db import repo
from aitrapp.db.pool import Pool
from aitrapp.settings import AppSettings, load_settings
from api.fake_runtime import FakeRuntime
from test_notify_support import journal_trade

TOKEN = "console-" + "k" * 24
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FRAGMENTS = ("/ui/fragments/live", "/ui/fragments/trades", "/ui/fragments/sessions",
             "/ui/fragments/gate")  # fmt: skip

Client = Callable[..., Awaitable[tuple[httpx.AsyncClient, FakeRuntime]]]


@pytest.fixture
async def client(db_pool: Pool) -> AsyncIterator[Client]:
    async with contextlib.AsyncExitStack() as stack:

        async def make(**overrides: Any) -> tuple[httpx.AsyncClient, FakeRuntime]:
            rt = await FakeRuntime.start(db_pool)

            async def factory(_: AppSettings) -> FakeRuntime:
                return rt

            app = create_app(load_settings(**overrides), runtime_factory=factory)
            await stack.enter_async_context(app.router.lifespan_context(app))
            c = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000"
            )
            await stack.enter_async_context(c)
            return c, rt

        yield make


async def test_pages_are_shells_without_data(client: Client) -> None:
    c, rt = await client(api_token=TOKEN)
    for path in ("/", "/ui", "/ui/", "/ui/history"):
        r = await c.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith("text/html")
        assert r.headers["cache-control"] == "no-store"
        assert "script-src 'self';" in r.headers["content-security-policy"]
        assert "console.js" in r.text and 'id="locked"' in r.text
        # No trading data in the shell: no symbol, no session id.
        assert "RELIANCE" not in r.text and str(rt.session_id) not in r.text, path
    for asset in ("console.js", "console.css", "favicon.svg"):
        r = await c.get(f"/ui/static/{asset}")
        assert r.status_code == 200 and len(r.content) > 100, asset


async def test_fragments_need_the_token_when_one_is_configured(client: Client) -> None:
    c, _ = await client(api_token=TOKEN)  # loopback bind: JSON reads are open, the console is not
    assert (await c.get("/state")).status_code == 200
    for path in FRAGMENTS:
        assert (await c.get(path)).status_code == 401, path
        wrong = {"Authorization": "Bearer " + "x" * 32}
        assert (await c.get(path, headers=wrong)).status_code == 401, path
        r = await c.get(path, headers=AUTH)
        assert r.status_code == 200, (path, r.text)
        assert r.headers["cache-control"] == "no-store"


async def test_auth_check_tells_missing_from_wrong(client: Client) -> None:
    c, _ = await client(api_token=TOKEN)
    first = await c.get("/ui/auth")
    assert first.json() == {"token_required": True, "authenticated": False}
    assert (await c.get("/ui/auth", headers=AUTH)).json() == {
        "token_required": True,
        "authenticated": True,
    }
    wrong = await c.get("/ui/auth", headers={"Authorization": "Bearer nope-nope-nope-nope"})
    assert wrong.status_code == 401 and wrong.json()["detail"] == "missing or invalid bearer token"


async def test_without_a_token_the_console_is_open_on_loopback(client: Client) -> None:
    c, _ = await client()
    assert (await c.get("/ui/auth")).json() == {"token_required": False, "authenticated": False}
    for path in FRAGMENTS:
        assert (await c.get(path)).status_code == 200, path


async def test_live_fragment_shows_the_book(client: Client) -> None:
    c, rt = await client()
    rt.metrics.risk_blocks.labels(reason="PORTFOLIO_HEAT").inc(3)
    rt.metrics.risk_blocks.labels(reason="COOLDOWN").inc()
    html = (await c.get("/ui/fragments/live")).text
    status = re.search(r'<div class="status" id="status"([^>]*)>', html)
    assert status is not None
    attrs = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', status.group(1)))
    assert attrs == {
        "mode": "PAPER", "state": "ACTIVE", "positions": "2", "orders": "4",
        "last-tick": "2026-01-05T04:00:00+00:00",
    }  # fmt: skip
    assert html.count("<tr data-plan=") == 2
    assert "+₹12.50" in html  # unrealized P&L, signed and coloured
    assert 'class="up">+₹12.50' in html
    assert "-₹120.75" in html  # realized net of charges
    assert "09:30:00" in html  # last tick in IST
    blocks = html[html.index('id="risk-blocks"') :]
    assert blocks.index("PORTFOLIO_HEAT") < blocks.index("COOLDOWN")  # most frequent first
    assert "tick → decision" in html and "decision → ack" in html
    # A key the runtime does not report (tick_to_order) is left out, not guessed.
    assert "tick → order" not in html

    rt.open_positions = rt.working_orders = 0
    rt._state = "HALTED"
    html = (await c.get("/ui/fragments/live")).text
    assert 'data-state="HALTED"' in html and "No open positions" in html


async def test_trades_fragment_draws_the_equity_curve(client: Client, db_pool: Pool) -> None:
    c, rt = await client()
    assert "No closed trades yet" in (await c.get("/ui/fragments/trades")).text
    assert rt.session_id is not None
    base = datetime(2026, 1, 5, 5, 10, tzinfo=UTC)
    await journal_trade(db_pool, rt.session_id, 1, base, Decimal("250.50"), exit_reason="TP")
    await journal_trade(
        db_pool, rt.session_id, 2, base.replace(minute=11), Decimal("-400.25"), exit_reason="STOP"
    )
    html = (await c.get("/ui/fragments/trades")).text
    assert "<svg" in html and 'class="line down"' in html  # ends below zero
    assert html.count('<tr class="this-session">') == 2
    assert ">TP<" in html and ">STOP<" in html
    assert "-₹149.75" in html  # net of the day
    assert "10:40:00" in html and "10:41:00" in html


async def test_gate_fragment_lists_the_three_conditions(client: Client) -> None:
    c, rt = await client()
    rt.live_refusals = ["burn-in: 0 of 3 required passing PAPER sessions"]
    assert (await c.post("/mode", json={"mode": "LIVE"})).status_code == 409
    html = (await c.get("/ui/fragments/gate")).text
    assert html.count("<li class=") >= 3
    assert "Burn-in" in html and "Broker credentials" in html and "API token" in html
    assert "AITRAPP_API_TOKEN is not set" in html
    # The refusal without a token is audited by the API itself: the console shows it.
    assert "refused" in html and "LIVE needs a token-protected API" in html


async def test_sessions_fragment_shows_verdicts(client: Client, db_pool: Pool) -> None:
    c, rt = await client()
    verdict = {"passed": False, "criteria": [
        {"name": "signals", "passed": True, "detail": "60 signals"},
        {"name": "flatten", "passed": False, "detail": "2400 ms > 2000 ms"},
    ]}  # fmt: skip
    await repo.execute(db_pool, repo.BurninVerdict(session_id=rt.session_id, verdict=verdict))
    html = (await c.get("/ui/fragments/sessions")).text
    assert "FAIL" in html and 'title="2400 ms &gt; 2000 ms">flatten<' in html
    assert 'class="this-session"' in html
    assert str(date(2026, 1, 5)) in html


def test_console_routes_stay_out_of_the_contract() -> None:
    paths = build_openapi()["paths"]
    assert not [p for p in paths if p == "/" or p.startswith("/ui")]


def test_templates_and_assets_ship_inside_the_package() -> None:
    """The wheel carries every file under python/aitrapp (maturin's python-source):
    the console must find its files through the package, not the repository."""
    root = resources.files("aitrapp.api.ui")
    for name in (
        "base.html",
        "live.html",
        "history.html",
        "fragments/live.html",
        "fragments/trades.html",
        "fragments/sessions.html",
        "fragments/gate.html",
    ):
        assert (root / "templates" / name).is_file(), name  # fmt: skip
    for name in ("console.js", "console.css", "favicon.svg"):
        assert (root / "static" / name).is_file(), name
