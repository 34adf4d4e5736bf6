"""The operator console in a real browser (Debian's chromium, headless, 1280x800),
during a short PAPER session on the real runtime, served on loopback.

Each test starts its own session, with the feed held back until the page is
open, so what the page shows arrives live (event stream, then a fragment
refresh). Waits are bounded polls (Playwright's expect), never timings.
"""

from __future__ import annotations

import asyncio
import re

import pytest
from playwright.async_api import expect

from .conftest import TOKEN, MakeConsole, update_docs_screenshot

pytestmark = pytest.mark.integration

POSITIONS = 20  # one bracket per instrument of the default selection
WAIT_MS = 30_000  # an upper bound on a loaded machine, not a speed target


async def test_positions_appear_live_without_console_errors(console: MakeConsole) -> None:
    c = await console()
    await c.open("/")
    page = c.page
    await expect(page.locator("#trading-state")).to_have_text("ACTIVE", timeout=WAIT_MS)
    await expect(page.locator("#conn")).to_have_text("live", timeout=WAIT_MS)
    await expect(page.locator("#positions tbody tr.empty")).to_have_text("No open positions")

    c.runtime.start_feed()
    rows = page.locator("#positions tbody tr[data-plan]")
    await expect(rows).to_have_count(POSITIONS, timeout=WAIT_MS)
    await expect(page.locator("#positions-count")).to_have_text(str(POSITIONS))
    await expect(page.locator("#orders tbody tr")).to_have_count(2 * POSITIONS, timeout=WAIT_MS)
    # Unrealized P&L is signed and coloured; numbers are right-aligned tabular figures.
    cell = rows.first.locator("td").nth(5)
    await expect(cell).to_have_class(re.compile(r"\b(up|down|flat)\b"))
    await expect(cell).to_have_css("text-align", "right")
    await expect(cell).to_have_css("font-variant-numeric", "tabular-nums")
    await expect(page.locator("#brackets tbody tr")).to_have_count(POSITIONS)
    assert await page.locator(".bcount.b-open").inner_text() == f"OPEN {POSITIONS}"
    await expect(page.locator("#latency tbody tr").first).to_contain_text("tick → decision")
    # The page fits 1280 wide: nothing scrolls sideways.
    assert await page.evaluate("document.documentElement.scrollWidth") <= 1280
    update_docs_screenshot(await c.screenshot("dashboard-live"))

    await c.open("/ui/history")
    await expect(page.locator("#sessions-table tbody tr.this-session")).to_have_count(1)
    await expect(page.locator("#gate-conditions li")).to_have_count(3)
    await expect(page.locator("#equity svg")).to_be_visible()
    await c.screenshot("dashboard-history")
    assert c.errors == []


async def test_pause_and_resume_change_the_state_shown(console: MakeConsole) -> None:
    c = await console()
    await c.open("/")
    state = c.page.locator("#trading-state")
    await expect(state).to_have_text("ACTIVE", timeout=WAIT_MS)

    await c.page.click("#btn-pause")
    await expect(state).to_have_text("PAUSED", timeout=WAIT_MS)
    assert c.runtime.trading_state == "PAUSED"
    await expect(c.page.locator("#btn-pause")).to_be_disabled()
    await c.screenshot("paused")

    await c.page.click("#btn-resume")
    await expect(state).to_have_text("ACTIVE", timeout=WAIT_MS)
    assert c.runtime.trading_state == "ACTIVE"
    assert c.errors == []


async def test_flatten_asks_first_then_ends_halted_and_flat(console: MakeConsole) -> None:
    c = await console()
    await c.open("/")
    page = c.page
    c.runtime.start_feed()
    await expect(page.locator("#positions tbody tr[data-plan]")).to_have_count(
        POSITIONS, timeout=WAIT_MS
    )
    await expect(page.locator("#orders tbody tr")).to_have_count(2 * POSITIONS, timeout=WAIT_MS)

    # The confirmation names what will be closed; cancelling changes nothing.
    await page.click("#btn-flatten")
    dialog = page.locator("#dlg-flatten")
    await expect(dialog).to_be_visible()
    await expect(page.locator("#flatten-text")).to_have_text(
        f"Close {POSITIONS} open positions at market and {2 * POSITIONS} working orders, "
        "then HALT trading?"
    )
    await c.screenshot("flatten-confirm")
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(dialog).to_be_hidden()
    assert c.runtime.trading_state == "ACTIVE"
    assert len(c.runtime.state()["positions"]) == POSITIONS

    await page.click("#btn-flatten")
    await expect(page.locator("#flatten-confirm")).to_have_text(
        f"Flatten {POSITIONS} positions, {2 * POSITIONS} orders"
    )
    await page.click("#flatten-confirm")
    await expect(page.locator("#trading-state")).to_have_text("HALTED", timeout=WAIT_MS)
    await expect(page.locator("#positions tbody tr.empty")).to_have_text(
        "No open positions", timeout=WAIT_MS
    )
    await expect(page.locator("#orders tbody tr.empty")).to_have_text("No working orders")
    await expect(page.locator(".toast.ok")).to_contain_text("Trading is HALTED until resumed")
    state = c.runtime.state()
    assert state["trading_state"] == "HALTED"
    assert state["positions"] == [] and state["working_orders"] == []
    await c.screenshot("flattened")

    # The exits are the day's trades, with their reason, on the history page
    # (once the database writer has stored them: it works in the background).
    for _ in range(3000):
        if await c.runtime.pool.fetchval("SELECT count(*) FROM trades") == POSITIONS:
            break
        await asyncio.sleep(0.01)
    await c.open("/ui/history")
    trades = page.locator("#trades-table tbody tr")
    await expect(trades).to_have_count(POSITIONS, timeout=WAIT_MS)
    await expect(trades.first.locator("td").nth(9)).to_have_text("FLATTEN")
    await expect(page.locator("#equity svg path.line")).to_have_count(1)
    await c.screenshot("history-after-flatten")
    assert c.errors == []


async def test_a_wrong_token_gets_a_clear_message(console: MakeConsole) -> None:
    c = await console()
    await c.open("/", token="not-the-token-" + "0" * 20)
    message = c.page.locator("#auth-message")
    await expect(c.page.locator("#locked")).to_be_visible(timeout=WAIT_MS)
    await expect(message).to_contain_text("refused this token (401 Unauthorized)")
    await expect(c.page.locator("#main")).to_be_hidden()
    await expect(c.page.locator("#btn-flatten")).to_be_disabled()
    await c.screenshot("wrong-token")

    # The right token, typed once, unlocks the console.
    await c.page.fill("#token-inline", TOKEN)
    await c.page.click("#token-form-inline button[type=submit]")
    await expect(c.page.locator("#trading-state")).to_have_text("ACTIVE", timeout=WAIT_MS)
    stored = await c.page.evaluate("sessionStorage.getItem('aitrapp.apiToken')")
    assert stored == TOKEN


async def test_no_token_at_all_asks_for_it(console: MakeConsole) -> None:
    c = await console()
    await c.open("/", token=None)
    await expect(c.page.locator("#auth-message")).to_contain_text(
        "needs the API token", timeout=WAIT_MS
    )
    await expect(c.page.locator("#main")).to_be_hidden()
    assert c.errors == []  # a first visit without a token is not an error


async def test_request_live_shows_the_gate_refusal(console: MakeConsole) -> None:
    c = await console()
    await c.open("/")
    await expect(c.page.locator("#trading-state")).to_have_text("ACTIVE", timeout=WAIT_MS)
    await c.page.click("#btn-live")
    dialog = c.page.locator("#dlg-live")
    await expect(dialog).to_be_visible(timeout=WAIT_MS)
    await expect(c.page.locator("#live-title")).to_have_text("LIVE refused")
    reasons = c.page.locator("#live-reasons li")
    await expect(reasons.first).to_be_visible()
    texts = await reasons.all_inner_texts()
    assert any(t.startswith("burn-in: 0 of 3") for t in texts), texts
    assert any("credentials" in t for t in texts), texts
    assert c.runtime.mode == "PAPER"
    await c.screenshot("live-refused")
    await dialog.get_by_role("button", name="Close").click()

    # The history page shows the same refusal beside the three conditions.
    await c.open("/ui/history")
    await expect(c.page.locator("#gate-reasons li").first).to_contain_text(
        "burn-in", timeout=WAIT_MS
    )
    # Chromium logs the refused request (409) itself; nothing else may appear.
    assert c.errors == ["Failed to load resource: the server responded with a status of 409 "
                        "(Conflict)"]  # fmt: skip


async def test_without_a_configured_token_the_console_just_works(console: MakeConsole) -> None:
    """Loopback without AITRAPP_API_TOKEN: no prompt, and the controls act."""
    c = await console(token=None)
    await c.open("/", token=None)
    state = c.page.locator("#trading-state")
    await expect(state).to_have_text("ACTIVE", timeout=WAIT_MS)
    await expect(c.page.locator("#locked")).to_be_hidden()
    await c.page.click("#btn-pause")
    await expect(state).to_have_text("PAUSED", timeout=WAIT_MS)
    assert c.runtime.trading_state == "PAUSED"
    assert c.errors == []
