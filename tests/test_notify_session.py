"""A CRITICAL OCO alert in a PAPER session reaches a webhook, once.

The session runs on the trading kernel (the default for PAPER) and replays a
day written here (synthetic data, labelled so) on which INFY's bracket loses
the race the issue describes: its target fills, and 20 ms later, before the
cancel of its stop can reach the paper venue, the price falls through the
stop, which fills too. Both sides filled, so the bracket's OCO machine raises
CRITICAL DOUBLE_FILL and buys the overfill back at market. The runtime's
notifier, configured with ``AITRAPP_NOTIFY_URLS=json://127.0.0.1:<port>/...``,
must deliver it to the fake webhook exactly once; the session's closing
summary follows when the runtime stops.

(The pipeline version forced a CRITICAL STOP_LOST with a paper broker that
refused every stop. On the kernel no market move can: the paper venue checks a
stop's trigger side when it is sent, and the bracket, which sees every price
before the venue's answers, exits a gapped stop at market with a WARNING
STOP_GAPPED instead of sending it. DOUBLE_FILL is the CRITICAL OCO alert this
market produces organically; the promise checked is the notifier's.)
"""

from __future__ import annotations

import asyncio
import csv
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from aitrapp.brokers.paper_config import PaperConfig
from aitrapp.bus import BusEvent
from aitrapp.config import EngineConfig
from aitrapp.runtime import start_runtime
from aitrapp.settings import load_settings
from test_notify_support import FakeWebhook
from ui.paper_session import DAY, paper_options

pytestmark = pytest.mark.integration

# EmaCross alone; stop and target 20 ticks (1.00) from the entry; limits opened.
ENGINE = EngineConfig.parse(
    {
        "risk": {
            "per_trade_risk_pct": 0.05,
            "max_portfolio_heat_pct": 50.0,
            "cooldown_seconds": 0,
            "min_stop_distance_bps": 0.0,
            "min_stop_spread_multiple": 0.0,
            "max_position_notional_pct": 10_000.0,
            "max_gross_exposure_pct": 10_000.0,
        },
        "strategies": {
            "orb": {"enabled": False},
            "trend_pullback": {"enabled": False},
            "vwap_reversion": {"enabled": False},
            "ema_cross": {"enabled": True, "fast_period": 2, "slow_period": 4,
                          "stop_ticks": 20, "tp_ticks": 20},
        },
    }
)  # fmt: skip


# The paper venue's timing, pinned: an order (or its acknowledgement) takes
# effect LATENCY after it is sent; once acknowledged it fills on the next tick.
LATENCY = timedelta(milliseconds=50)
PAPER = PaperConfig(ack_latency_ns=LATENCY // timedelta(microseconds=1) * 1000)


def write_gap_day(path: Path) -> Path:
    """Synthetic INFY ticks (tick 0.05, about 500.00), one a second: flat, one dip,
    a rise (the cross: the entry LIMIT goes out at the ask, 500.25), the same
    quote once the entry is acknowledged (it fills; stop 499.25 and target
    501.25 go out), a jump to 502.00 once they are acknowledged (the target
    fills), and 20 ms later, before the stop's cancel can arrive, a fall to
    497.00 (the stop triggers and fills too). It stays there."""
    start = datetime.combine(DAY, datetime.min.time(), tzinfo=ZoneInfo("Asia/Kolkata"))
    start = start.replace(hour=10)
    steps = [0] * 8 + [-2] + [4]  # in ticks of 0.05 from 500.00
    ticks = [(start + timedelta(seconds=k), 50_000 + 5 * off) for k, off in enumerate(steps)]
    fill_at = ticks[-1][0] + 2 * LATENCY  # after the entry's acknowledgement
    ticks.append((fill_at, ticks[-1][1]))
    target_at = fill_at + 2 * LATENCY  # after the children's acknowledgements
    ticks.append((target_at, 50_200))
    fall_at = target_at + timedelta(milliseconds=20)
    assert fall_at < target_at + LATENCY  # before the stop's cancel arrives
    ticks += [(fall_at + timedelta(seconds=k), 49_700) for k in range(6)]
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["timestamp", "tradingsymbol", "last_price", "last_qty", "volume", "bid", "ask"])
        for n, (ts, paise) in enumerate(ticks, start=1):
            w.writerow(
                [ts.isoformat(), "INFY", f"{paise / 100:.2f}", 1, n * 10,
                 f"{(paise - 5) / 100:.2f}", f"{(paise + 5) / 100:.2f}"]
            )  # fmt: skip
    return path


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
        tmp_path,
        symbols=("INFY",),
        start_feed=False,
        engine=ENGINE,
        paper=PAPER,
        replay_paths=(write_gap_day(tmp_path / "synthetic-gap-day.csv"),),
    )
    rt = await start_runtime(settings, options)
    assert rt.kernel is not None  # PAPER runs on the trading kernel
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
            if any("DOUBLE_FILL" in r.body.get("title", "") for r in webhook.received):
                break
            await asyncio.sleep(0.01)
        await rt.wait_feed()
        await asyncio.sleep(1.0)  # anything else the alert might have caused would be out now
        await sub.close()
        await watcher
    finally:
        await rt.stop()

    double_fill = [r for r in webhook.received if "DOUBLE_FILL" in r.body.get("title", "")]
    assert len(double_fill) == 1, [r.body for r in webhook.received]
    msg = double_fill[0]
    assert msg.path == "/aitrapp"
    assert msg.body["title"] == "AITRAPP CRITICAL: OCO CRITICAL DOUBLE_FILL"
    assert msg.body["type"] == "failure"
    assert len(alert_seen) == 1
    print(f"\nCRITICAL alert to webhook: {(msg.at - alert_seen[0]) * 1000:.0f} ms")

    # The session's closing summary: the one trade (its overfill bought back).
    summaries = [r.body for r in webhook.received if "Daily summary" in r.body["title"]]
    assert len(summaries) == 1, [r.body["title"] for r in webhook.received]
    assert "trades: 1 " in summaries[0]["message"]
    assert "tick-to-decision SLO:" in summaries[0]["message"]
    assert rt.notify.notifier is not None and rt.notify.notifier.stats.failed == 0
