"""Notifications without a network: what is worth a message, and the notifier's
queue (coalescing, repeat window, rate limit, bounds, failures) against a
recording sender."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from aitrapp.bus import InProcessBus
from aitrapp.db import repo
from aitrapp.db.pool import Pool
from aitrapp.exceptions import ConfigError
from aitrapp.metrics import Metrics
from aitrapp.notify import Level, Notice, Notifier, SendOutcome, compose, start_notifications
from aitrapp.settings import load_settings, split_urls
from test_notify_support import journal_trade


# ---------------------------------------------------------------- compose
def alert(severity: str, code: str = "STOP_LOST", plan: str = "p1") -> dict[str, Any]:
    return {"alert": {"ts": "2026-01-05T04:30:00+00:00", "plan_id": plan,
                      "severity": severity, "code": code, "message": "stop rejected"}}  # fmt: skip


def test_oco_alerts_worth_a_message() -> None:
    crit = compose.from_bus_event("risk", alert("CRITICAL"))
    assert crit is not None and crit.level == "CRITICAL" and crit.subject == "p1"
    assert crit.title == "OCO CRITICAL STOP_LOST" and "stop rejected" in crit.body
    warn = compose.from_bus_event("risk", alert("WARNING", "CANCEL_REJECTED"))
    assert warn is not None and warn.level == "WARN"
    assert compose.from_bus_event("risk", alert("INFO")) is None
    # Risk blocks share the topic: they are not messages.
    assert compose.from_bus_event("risk", {"reason": "PORTFOLIO_HEAT"}) is None
    assert compose.from_bus_event("trades", {"net": "12"}) is None


def test_kill_switch_says_who_when_and_the_result() -> None:
    ok = {"action": "flatten", "actor": "api:127.0.0.1+token", "ok": True, "elapsed_ms": 41.5,
          "exit_orders": 3, "cancelled_orders": 6, "open_positions_after": 0,
          "working_orders_after": 0, "session_time": "2026-01-05T09:40:00+00:00"}  # fmt: skip
    n = compose.from_bus_event("mode", ok)
    assert n is not None and n.level == "WARN"
    assert "who: api:127.0.0.1+token" in n.body and "flat in 41.5 ms" in n.body
    split = compose.from_bus_event("mode", {**ok, "flat_after_ms": 12.0})
    assert split is not None and "flat in 12.0 ms, nothing working after 41.5 ms" in split.body
    assert "when: " in n.body and "2026-01-05T09:40:00" in n.body
    failed = {**ok, "ok": False, "open_positions_after": 2, "error": "timeout"}
    f = compose.from_bus_event("mode", failed)
    assert f is not None and f.level == "CRITICAL" and f.title.startswith("FLATTEN FAILED")
    assert "2 positions" in f.body and "timeout" in f.body
    # The burn-in's drills are routine unless they fail.
    assert compose.from_bus_event("mode", {**ok, "actor": "drill"}) is None
    drill = compose.from_bus_event("mode", {**failed, "actor": "drill"})
    assert drill is not None and drill.level == "CRITICAL"


def test_mode_changes_and_live_gate_decisions() -> None:
    reasons = ["burn-in: 1 of 3", "broker credentials not verified"]
    refused = {"action": "mode", "actor": "api:1.2.3.4+token", "params": {"mode": "LIVE"},
               "ok": False, "reasons": reasons}  # fmt: skip
    n = compose.from_bus_event("mode", refused)
    assert n is not None and n.title == "LIVE refused (requested by api:1.2.3.4+token)"
    assert "- burn-in: 1 of 3" in n.body and "- broker credentials not verified" in n.body
    switched = compose.from_bus_event("mode", {**refused, "ok": True, "reasons": []})
    assert switched is not None and switched.title == "Mode is now LIVE"
    assert compose.from_bus_event("mode", {**refused, "ok": True, "unchanged": True}) is None
    gate = compose.from_bus_event(
        "mode", {"action": "live_gate", "actor": "runtime:start", "ok": False, "reasons": ["x"]}
    )
    assert gate is not None and "refused" in gate.title and "- x" in gate.body
    paused = compose.from_bus_event(
        "mode", {"action": "pause", "actor": "api:h", "params": {}, "state": "PAUSED"}
    )
    assert paused is not None and paused.level == "INFO" and paused.title == "Trading PAUSED"
    assert compose.from_bus_event("mode", {"action": "resume", "actor": "drill"}) is None
    assert compose.from_bus_event("mode", {"action": "session_start"}) is None


def test_reconcile_findings() -> None:
    assert compose.reconcile({"in_agreement": True}, [], paused=False) is None
    lines = [f"db order c{i} (OPEN): missing at broker" for i in range(20)]
    n = compose.reconcile({"in_agreement": False, "accepted": False}, lines, paused=True)
    assert n is not None and n.level == "CRITICAL" and "starts PAUSED" in n.body
    assert "c11" in n.body and "c12" not in n.body and "and 8 more" in n.body


def test_burnin_verdict() -> None:
    verdict = {"passed": False, "session_id": "s1", "trading_date": "2026-01-05",
               "mode": "PAPER", "feed": "kite", "status": "COMPLETED", "criteria": [
                   {"name": "signals", "passed": True, "detail": "60"},
                   {"name": "flatten", "passed": False, "detail": "2400 ms > 2000 ms"},
               ]}  # fmt: skip
    n = compose.burnin(verdict)
    assert n.title == "Burn-in FAIL 2026-01-05" and n.level == "WARN"
    assert "1 of 2 criteria passed" in n.body and "FAIL flatten: 2400 ms > 2000 ms" in n.body
    ok = compose.burnin({**verdict, "passed": True, "criteria": verdict["criteria"][:1]})
    assert ok.title == "Burn-in PASS 2026-01-05" and ok.level == "OK"


def test_daily_summary_figures() -> None:
    s = compose.DaySummary(
        trading_date="2026-01-05", session_id="s1", mode="PAPER", feed="kite", trades=4, wins=2,
        gross_pnl=Decimal("1200.00"), charges=Decimal("95.40"), net_pnl=Decimal("1104.60"),
        worst_loss=Decimal("-230.00"), worst_loss_risk=Decimal("200.00"), slo_ms=1.0,
        slo_compliance=0.99925, p99_ms=0.42,
    )  # fmt: skip
    n = compose.daily_summary(s)
    assert n.title == "Daily summary 2026-01-05: net ₹1,104.60"
    assert "trades: 4 (2 won)" in n.body and "charges ₹95.40" in n.body
    assert "-₹230.00 = 1.15x its planned risk ₹200.00" in n.body
    assert "99.92% of ticks within 1.0 ms" in n.body
    assert n.level == "WARN"  # a loss beyond its planned risk is worth a look
    calm = compose.daily_summary(dataclasses.replace(s, worst_loss=None))
    assert "no losing trade" in calm.body and calm.level == "INFO"


# ---------------------------------------------------------------- the notifier
class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[str, str, Level]] = []
        self.fail = fail

    async def send(self, title: str, body: str, level: Level) -> SendOutcome:
        self.sent.append((title, body, level))
        if self.fail:
            return SendOutcome(failed=("Webhook json://127.0.0.1/...",))
        return SendOutcome()


class Raising:
    async def send(self, title: str, body: str, level: Level) -> SendOutcome:
        raise RuntimeError("sender broke")


def note(key: str = "k", level: Level = "WARN", subject: str = "", title: str = "t") -> Notice:
    return Notice(level=level, key=key, title=title, body="b", subject=subject)


async def until(cond: Any, what: str, limit_s: float = 10.0) -> None:
    for _ in range(int(limit_s / 0.01)):
        if cond():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never: {what}")


def sample(m: Metrics, reason: str) -> float:
    return m.notify_failures.labels(reason=reason)._value.get()


async def test_a_burst_of_one_alert_is_one_message_with_a_count() -> None:
    rec = Recorder()
    n = Notifier(rec, coalesce_s=0.2, repeat_window_s=30)
    await n.start()
    for i in range(10):
        n.submit(note("oco:CRITICAL:STOP_LOST", "CRITICAL", subject=f"plan{i}"))
    await until(lambda: rec.sent, "one message")
    await asyncio.sleep(0.3)
    await n.close(0)  # nothing more waits: closing sends nothing else
    assert len(rec.sent) == 1
    title, body, level = rec.sent[0]
    assert title == "AITRAPP CRITICAL: t (x10)" and level == "CRITICAL"
    assert "repeated 10 times since" in body
    assert "plan0, plan1" in body and "plan9" in body and "and 0 more" not in body
    assert n.stats.merged == 9 and n.stats.sent == 1


async def test_a_flapping_alert_is_one_message_then_one_with_the_count() -> None:
    rec = Recorder()
    n = Notifier(rec, coalesce_s=0.0, repeat_window_s=0.4)
    await n.start()
    n.submit(note("flap", "WARN"))
    await until(lambda: len(rec.sent) == 1, "first message")
    for _ in range(5):  # flaps within the window: held, counted
        n.submit(note("flap", "WARN"))
    await asyncio.sleep(0.1)
    assert len(rec.sent) == 1
    await until(lambda: len(rec.sent) == 2, "the follow-up at the window's end")
    assert rec.sent[1][0] == "AITRAPP WARN: t (x5)"
    await n.close()
    assert len(rec.sent) == 2


async def test_the_rate_limit_holds_messages_and_sends_the_most_urgent_first() -> None:
    rec = Recorder()
    n = Notifier(rec, coalesce_s=0.0, repeat_window_s=0.0, burst=2, rate_per_min=6)
    await n.start()
    n.submit(note("a", "INFO", title="a"))
    n.submit(note("b", "INFO", title="b"))
    await until(lambda: len(rec.sent) == 2, "the burst")
    n.submit(note("c", "INFO", title="c"))
    n.submit(note("d", "CRITICAL", title="d"))
    await asyncio.sleep(0.3)  # the next token is 10 s away
    assert len(rec.sent) == 2 and n.queue_depth == 2
    await n.close()  # shutdown sends what waits, most urgent first
    assert [t for t, _, _ in rec.sent] == [
        "AITRAPP INFO: a", "AITRAPP INFO: b", "AITRAPP CRITICAL: d", "AITRAPP INFO: c"
    ]  # fmt: skip


async def test_failures_are_counted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    m = Metrics()
    rec = Recorder(fail=True)
    n = Notifier(rec, metrics=m, coalesce_s=0.0)
    await n.start()
    n.submit(note("x", "CRITICAL"))
    await until(lambda: n.stats.failed == 1, "a failed send")
    assert sample(m, "send") == 1
    assert "notification not delivered to Webhook json://127.0.0.1/..." in caplog.text
    await n.close()

    broken = Notifier(Raising(), metrics=m, coalesce_s=0.0)
    await broken.start()
    broken.submit(note("y"))
    await until(lambda: broken.stats.failed == 1, "a raising sender")
    assert sample(m, "send") == 2
    broken.submit(note("z"))  # the task survived the exception
    await until(lambda: broken.stats.failed == 2, "the next one")
    await broken.close()
    assert "trader_notify_failures_total" in m.render()


async def test_a_full_queue_drops_the_least_urgent_and_says_so() -> None:
    m = Metrics()
    rec = Recorder()
    n = Notifier(rec, metrics=m, coalesce_s=60, repeat_window_s=60, queue_max=2)
    n.submit(note("info", "INFO"))
    n.submit(note("crit", "CRITICAL"))
    n.submit(note("warn", "WARN"))  # no room: the INFO one goes
    assert n.stats.dropped == 1 and sample(m, "dropped") == 1
    await n.start()
    await n.close()
    assert sorted(level for _, _, level in rec.sent) == ["CRITICAL", "WARN"]
    # After close nothing is accepted, and submitting still never raises.
    n.submit(note("late"))
    assert n.stats.dropped == 2


def test_submit_never_raises_on_a_bad_notice() -> None:
    n = Notifier(Recorder())
    n.submit(None)  # type: ignore[arg-type]
    assert n.stats.dropped == 1


def test_notices_and_notifier_refuse_bad_values() -> None:
    with pytest.raises(ValueError, match="level"):
        Notice(level="LOUD", key="k", title="t", body="b")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="key"):
        Notice(level="INFO", key="", title="t", body="b")
    with pytest.raises(ValueError, match="rate_per_min"):
        Notifier(Recorder(), rate_per_min=0)
    with pytest.raises(ValueError, match="repeat_window_s"):
        Notifier(Recorder(), coalesce_s=5, repeat_window_s=1)


# ---------------------------------------------------------------- settings
def test_notify_urls_setting() -> None:
    urls = "json://127.0.0.1:9/a  tgram://123456:abc_def/42,mailto://u:p@example.com?to=a@x.com,b@y.com"
    got = [u.get_secret_value() for u in load_settings(notify_urls=urls).notify_urls]
    assert got == ["json://127.0.0.1:9/a", "tgram://123456:abc_def/42",
                   "mailto://u:p@example.com?to=a@x.com,b@y.com"]  # fmt: skip
    assert split_urls('["json://h/a", " discord://1/2 "]') == ["json://h/a", "discord://1/2"]
    assert load_settings(notify_urls="").notify_urls == []
    secret = "tgram://999:SUPERSECRET/1"
    assert "SUPERSECRET" not in repr(load_settings(notify_urls=secret))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("nope://host/SECRET123", "AITRAPP_NOTIFY_URLS: entry 1: nope://... is not a URL Apprise"),
        ("json://h/a not-a-url", "AITRAPP_NOTIFY_URLS: entry 2 is not a URL like scheme://"),
        ('["json://h/a", 5]', "AITRAPP_NOTIFY_URLS: expected a JSON list of strings"),
        ("[json://h", "AITRAPP_NOTIFY_URLS: not a valid JSON list"),
    ],
)
def test_bad_notify_urls_name_the_setting(value: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(notify_urls=value)
    assert message in str(err.value)
    assert "SECRET123" not in str(err.value)


def test_notify_urls_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AITRAPP_NOTIFY_URLS", "json://127.0.0.1:9/a json://127.0.0.1:9/b")
    assert len(load_settings().notify_urls) == 2


# ---------------------------------------------------------------- the runtime's sources
class Findings:
    def summary(self) -> dict[str, Any]:
        return {"in_agreement": False, "accepted": False}

    def lines(self) -> list[str]:
        return ["broker position INFY 10 not in the database"]


async def test_reconcile_findings_and_the_closing_summary_are_sent(db_pool: Pool) -> None:
    rec = Recorder()
    notes = await start_notifications(
        load_settings(notify_urls=""), InProcessBus(), sender=rec, coalesce_s=0.0
    )
    session = repo.SessionRow(
        trading_date=date(2026, 1, 5), mode="PAPER", feed="kite",
        started_at=datetime(2026, 1, 5, 3, 45, tzinfo=UTC),
    )  # fmt: skip
    await repo.create_session(db_pool, session)
    at = datetime(2026, 1, 5, 5, 0, tzinfo=UTC)
    # Planned risk 200 each: -150 is 0.75R, -260 is 1.3R (the worst against its plan),
    # -300 on a 400 plan is 0.75R although it is the largest loss in rupees.
    for n, (net, risk) in enumerate(
        [(Decimal("500"), Decimal("200")), (Decimal("-150"), Decimal("200")),
         (Decimal("-260"), Decimal("200")), (Decimal("-300"), Decimal("400"))]
    ):  # fmt: skip
        await journal_trade(db_pool, session.id, n, at, net, risk=risk)
    notes.reconcile(Findings(), paused=True)
    summary = {"tick_to_decision": {"slo_ms": 1.0, "slo_compliance": 0.5, "p99_ms": 3.2}}
    await notes.session_closed(db_pool, session.id, summary)
    await notes.close()
    titles = [t for t, _, _ in rec.sent]
    assert titles == [
        "AITRAPP CRITICAL: Broker and database disagreed at start-up",
        "AITRAPP WARN: Daily summary 2026-01-05: net -₹210.00",
    ]
    body = rec.sent[1][1]
    assert "trades: 4 (1 won)" in body and "charges ₹80.00" in body
    assert "-₹260.00 = 1.30x its planned risk ₹200.00" in body
    assert "50.00% of ticks within 1.0 ms (p99 3.2 ms)" in body
    assert "broker position INFY 10 not in the database" in rec.sent[0][1]
