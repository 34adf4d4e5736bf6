"""A CRITICAL OCO alert in a PAPER session reaches a webhook, once.

The paper broker here refuses every STOP child (as Kite refuses a stop whose
trigger is on the wrong side of the price), so the bracket's OCO machine
raises CRITICAL STOP_LOST and exits at market. The runtime's notifier,
configured with ``AITRAPP_NOTIFY_URLS=json://127.0.0.1:<port>/...``, must
deliver it to the fake webhook exactly once; the session's closing summary
follows when the runtime stops.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aitrapp import Instrument
from aitrapp.brokers.base import OrderRequest
from aitrapp.brokers.paper import PaperBroker
from aitrapp.bus import BusEvent
from aitrapp.runtime import default_paper_config, start_runtime
from aitrapp.settings import load_settings
from test_notify_support import FakeWebhook
from ui.paper_session import paper_options

pytestmark = pytest.mark.integration


class StopRefusingPaper(PaperBroker):
    """The paper broker, except that every STOP child is rejected on arrival."""

    def submit(self, req: OrderRequest) -> str:
        if req.client_order_id.endswith(":STOP"):
            req = dataclasses.replace(req, quantity=0)  # "Invalid `quantity`": REJECTED
        return super().submit(req)


def stop_refusing(instruments: list[Instrument]) -> PaperBroker:
    return StopRefusingPaper(instruments, default_paper_config())


@pytest.fixture
def webhook() -> Iterator[FakeWebhook]:
    with FakeWebhook() as hook:
        yield hook  # type: ignore[misc]


async def test_a_critical_alert_reaches_the_webhook_once(
    webhook: FakeWebhook, db_url: str, tmp_path: Path
) -> None:
    settings = load_settings(
        database_url=db_url,
        redis_url=None,
        data_dir=tmp_path / "var",
        logs_dir=tmp_path / "logs",
        notify_urls=webhook.url("aitrapp"),
    )
    options = paper_options(
        tmp_path, symbols=("INFY",), start_feed=False, broker_factory=stop_refusing
    )
    rt = await start_runtime(settings, options)
    alert_seen: list[float] = []
    try:
        sub = await rt.bus.subscribe(["risk"])

        async def watch() -> None:
            event: BusEvent
            async for event in sub:
                if "alert" in event.data and event.data["alert"]["severity"] == "CRITICAL":
                    alert_seen.append(time.monotonic())

        watcher = asyncio.create_task(watch())
        rt.start_feed()
        for _ in range(1000):  # a bound on the wait, not a speed target
            if any("STOP_LOST" in r.body.get("title", "") for r in webhook.received):
                break
            await asyncio.sleep(0.01)
        await rt.wait_feed()
        await asyncio.sleep(1.0)  # anything else the alert might have caused would be out now
        await sub.close()
        await watcher
    finally:
        await rt.stop()

    stop_lost = [r for r in webhook.received if "STOP_LOST" in r.body.get("title", "")]
    assert len(stop_lost) == 1, [r.body for r in webhook.received]
    msg = stop_lost[0]
    assert msg.path == "/aitrapp"
    assert msg.body["title"] == "AITRAPP CRITICAL: OCO CRITICAL STOP_LOST"
    assert msg.body["type"] == "failure"
    assert len(alert_seen) == 1
    print(f"\nCRITICAL alert to webhook: {(msg.at - alert_seen[0]) * 1000:.0f} ms")

    # The session's closing summary: the one trade, exited unprotected at market.
    summaries = [r.body for r in webhook.received if "Daily summary" in r.body["title"]]
    assert len(summaries) == 1, [r.body["title"] for r in webhook.received]
    assert "trades: 1 " in summaries[0]["message"]
    assert "tick-to-decision SLO:" in summaries[0]["message"]
    assert rt.notify.notifier is not None and rt.notify.notifier.stats.failed == 0
