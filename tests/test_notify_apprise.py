"""Apprise for real, against services on loopback: a generic JSON webhook
(``json://``) and a fake Telegram Bot API (``tgram://``).

Apprise's Telegram plugin always calls ``https://api.telegram.org``: the URL
has no host part to change. The test points the plugin's class attribute
``notify_url`` at the fake server instead, so the plugin's own request code
(token in the path, chat id, text, parse mode) is what the fake receives.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from apprise.plugins.telegram import NotifyTelegram

from aitrapp.bus import InProcessBus
from aitrapp.metrics import Metrics
from aitrapp.notify import Notice, compose, start_notifications
from aitrapp.notify.apprise_sender import AppriseSender
from aitrapp.notify.service import send_notices
from aitrapp.settings import load_settings
from test_notify_support import FakeTelegram, FakeWebhook

BOT = "123456789:AAHfakeTokenForTests_abcdefghij"
CHAT = "-1001234567890"


@pytest.fixture
def webhook() -> Iterator[FakeWebhook]:
    with FakeWebhook() as hook:
        yield hook  # type: ignore[misc]


@pytest.fixture
def telegram(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTelegram]:
    with FakeTelegram(BOT) as fake:
        monkeypatch.setattr(NotifyTelegram, "notify_url", f"http://127.0.0.1:{fake.port}/bot")
        yield fake  # type: ignore[misc]


async def test_json_webhook_gets_title_body_and_type(webhook: FakeWebhook) -> None:
    sender = AppriseSender([webhook.url("alerts")])
    outcome = await sender.send(
        "AITRAPP CRITICAL: OCO CRITICAL STOP_LOST", "stop rejected", "CRITICAL"
    )
    assert outcome.failed == ()
    (got,) = webhook.wait_for(1)
    assert got.path == "/alerts"
    assert got.body["title"] == "AITRAPP CRITICAL: OCO CRITICAL STOP_LOST"
    assert got.body["message"] == "stop rejected"
    assert got.body["type"] == "failure"
    assert got.headers["Content-Type"] == "application/json"


async def test_telegram_gets_the_message_in_the_chat(telegram: FakeTelegram) -> None:
    sender = AppriseSender([f"tgram://{BOT}/{CHAT}"])
    outcome = await sender.send("AITRAPP WARN: Flat: kill switch by api", "who: api", "WARN")
    assert outcome.failed == ()
    (msg,) = telegram.messages
    assert str(msg["chat_id"]) == CHAT
    assert "Flat: kill switch by api" in msg["text"] and "who: api" in msg["text"]
    assert telegram.received[0].path == f"/bot{BOT}/sendMessage"


async def test_a_refusing_service_is_a_named_failure(
    webhook: FakeWebhook, telegram: FakeTelegram
) -> None:
    webhook.set_status(500)
    wrong_bot = "987654321:AAHanotherTokenNotKnownToTheFake"
    sender = AppriseSender([webhook.url(), f"tgram://{wrong_bot}/{CHAT}"])
    outcome = await sender.send("t", "b", "INFO")
    assert outcome.failed == (
        f"JSON json://127.0.0.1:{webhook.port}/hook",
        f"Telegram tgram://9...e/{CHAT}/",  # the token masked by Apprise
    )
    assert wrong_bot not in " ".join(outcome.failed)  # privacy-masked URLs only


async def test_bus_alerts_reach_both_services_through_the_notifier(
    webhook: FakeWebhook, telegram: FakeTelegram
) -> None:
    settings = load_settings(notify_urls=f"{webhook.url()} tgram://{BOT}/{CHAT}")
    bus = InProcessBus()
    metrics = Metrics()
    notes = await start_notifications(settings, bus, metrics, coalesce_s=0.05)
    try:
        alert = {"ts": "2026-01-05T04:30:00+00:00", "plan_id": "abc", "severity": "CRITICAL",
                 "code": "DOUBLE_FILL", "message": "both exits filled"}  # fmt: skip
        bus.publish("risk", {"alert": alert})
        bus.publish("risk", {"reason": "PORTFOLIO_HEAT"})  # a block: no message
        await asyncio.to_thread(webhook.wait_for, 1)
        await asyncio.to_thread(telegram.wait_for, 1)
    finally:
        await notes.close()
    assert [r.body["title"] for r in webhook.received] == [
        "AITRAPP CRITICAL: OCO CRITICAL DOUBLE_FILL"
    ]
    assert "both exits filled" in telegram.messages[0]["text"]
    assert metrics.notify_sent._value.get() == 1


async def test_disabled_without_urls_and_a_closed_notifier_drops(webhook: FakeWebhook) -> None:
    bus = InProcessBus()
    off = await start_notifications(load_settings(notify_urls=""), bus)
    assert not off.enabled
    off.submit(Notice(level="CRITICAL", key="k", title="t", body="b"))  # a no-op
    await off.close()
    on = await start_notifications(load_settings(notify_urls=webhook.url()), bus)
    await on.close()
    assert on.notifier is not None
    on.submit(Notice(level="CRITICAL", key="k", title="t", body="b"))
    assert on.notifier.stats.dropped == 1 and webhook.received == []


async def test_a_short_command_sends_its_notices_before_it_returns(webhook: FakeWebhook) -> None:
    """``aitrapp burnin check`` stores a verdict, sends it, then exits."""
    verdict = {"passed": True, "session_id": "s1", "trading_date": "2026-01-05",
               "criteria": [{"name": "signals", "passed": True}]}  # fmt: skip
    settings = load_settings(notify_urls=webhook.url())
    await send_notices(settings, [compose.burnin(verdict)])
    assert [r.body["title"] for r in webhook.received] == ["AITRAPP OK: Burn-in PASS 2026-01-05"]
    assert webhook.received[0].body["type"] == "success"
    await send_notices(load_settings(notify_urls=""), [compose.burnin(verdict)])  # no URL: no-op
    assert len(webhook.received) == 1
