"""Notifications as the runtime holds them: the notifier, fed from the bus.

:func:`start_notifications` builds them from ``AITRAPP_NOTIFY_URLS`` (no URL:
a disabled instance whose methods do nothing, so callers never branch). Once
started, a task reads the bus topics ``risk`` (OCO alerts) and ``mode``
(kill switch, mode changes, LIVE-gate decisions, pause/resume) and turns
what matters into notices. The runtime adds the start-up reconciliation
findings and the closing summary, the session runner the burn-in verdict.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Protocol
from uuid import UUID

import asyncpg

from aitrapp.bus import BusEvent, EventBus, Subscription, Topic
from aitrapp.metrics import Metrics
from aitrapp.notify import compose
from aitrapp.notify.notice import Notice
from aitrapp.notify.notifier import Notifier, Sender
from aitrapp.settings import AppSettings

log = logging.getLogger(__name__)

WATCHED: tuple[Topic, ...] = ("risk", "mode")
# Risk blocks share the topic with alerts: a deep queue, read as fast as it fills.
WATCH_QUEUE_MAX = 10_000


class ReconcileFindings(Protocol):
    """What :class:`aitrapp.recovery.startup_reconcile.StartupReconcile` offers."""

    def summary(self) -> dict[str, Any]: ...

    def lines(self) -> list[str]: ...


class Notifications:
    def __init__(self, notifier: Notifier | None = None) -> None:
        self.notifier = notifier
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def disabled(cls) -> Notifications:
        return cls(None)

    @property
    def enabled(self) -> bool:
        return self.notifier is not None

    def submit(self, notice: Notice | None) -> None:
        if notice is not None and self.notifier is not None:
            self.notifier.submit(notice)

    # ------------------------------------------------------------------ sources
    async def watch(self, bus: EventBus) -> None:
        """Start reading the bus (call once, after the bus started)."""
        if self.notifier is None:
            return
        if self._task is not None:
            raise RuntimeError("Notifications already watch a bus")
        self._sub = await bus.subscribe(WATCHED, maxsize=WATCH_QUEUE_MAX)
        self._task = asyncio.create_task(self._read(self._sub), name="notify-bus")

    async def _read(self, sub: Subscription) -> None:
        async for event in sub:
            self._on_event(event)

    def _on_event(self, event: BusEvent) -> None:
        try:
            self.submit(compose.from_bus_event(event.topic, event.data))
        except Exception as exc:  # one odd payload must not end the watch
            log.warning("notify: event on %s not understood: %r", event.topic, exc)

    def reconcile(self, findings: ReconcileFindings, *, paused: bool) -> None:
        if self.notifier is None:
            return
        self.submit(compose.reconcile(findings.summary(), findings.lines(), paused=paused))

    def burnin(self, verdict: Mapping[str, Any]) -> None:
        if self.notifier is not None:
            self.submit(compose.burnin(verdict))

    async def session_closed(
        self, pool: Any, session_id: UUID | None, summary: Mapping[str, Any]
    ) -> None:
        """The closing summary of the session (trades read back from the database)."""
        if self.notifier is None or session_id is None:
            return
        try:
            day = await load_day_summary(pool, session_id, summary)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            log.warning("notify: closing summary without the database: %s", exc)
            self.submit(
                Notice(
                    level="WARN",
                    key=f"summary:{session_id}",
                    title=f"Session {session_id} closed (figures unavailable)",
                    body=f"trades {summary.get('trades', '?')}, net {summary.get('net_pnl', '?')}; "
                    f"the database could not be read: {exc}",
                )
            )
            return
        self.submit(compose.daily_summary(day))

    # ------------------------------------------------------------------ stop
    async def close(self, grace_s: float = 5.0) -> None:
        """Stop reading the bus (what it already delivered is still read), then
        send what waits within ``grace_s``."""
        if self._sub is not None:
            await self._sub.close()  # the reader ends once it has read what was queued
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, 1.0)
            except TimeoutError:
                pass  # wait_for cancelled it
            except Exception as exc:
                log.warning("notify: bus reader failed: %r", exc)
            self._task = None
        if self.notifier is not None:
            with contextlib.suppress(Exception):
                await self.notifier.close(grace_s)


async def load_day_summary(
    pool: Any, session_id: UUID, summary: Mapping[str, Any]
) -> compose.DaySummary:
    """Trades, P&L, charges and the worst loss against its planned risk, from the journal."""
    session = await pool.fetchrow(
        "SELECT trading_date, mode, feed FROM sessions WHERE id = $1", session_id
    )
    rows = await pool.fetch(
        "SELECT t.net_pnl, t.gross_pnl, t.charges, d.risk_rupees FROM trades t "
        "LEFT JOIN decisions d ON d.id = t.decision_id WHERE t.session_id = $1",
        session_id,
    )
    worst: tuple[Decimal, Decimal | None] | None = None
    worst_key = Decimal(0)
    for r in rows:
        net: Decimal = r["net_pnl"]
        if net >= 0:
            continue
        risk: Decimal | None = r["risk_rupees"]
        # The loss relative to its plan decides; without a plan, the rupees do.
        key = -net / risk if risk else -net
        if worst is None or key > worst_key:
            worst, worst_key = (net, risk), key
    latency = summary.get("tick_to_decision")
    lat: Mapping[str, Any] = latency if isinstance(latency, Mapping) else {}
    return compose.DaySummary(
        trading_date=str(session["trading_date"]) if session else "?",
        session_id=str(session_id),
        mode=str(session["mode"]) if session else "?",
        feed=str(session["feed"]) if session else "?",
        trades=len(rows),
        wins=sum(1 for r in rows if r["net_pnl"] > 0),
        gross_pnl=sum((r["gross_pnl"] for r in rows), Decimal(0)),
        charges=sum((r["charges"] for r in rows), Decimal(0)),
        net_pnl=sum((r["net_pnl"] for r in rows), Decimal(0)),
        worst_loss=worst[0] if worst else None,
        worst_loss_risk=worst[1] if worst else None,
        slo_ms=_float(lat.get("slo_ms")),
        slo_compliance=_float(lat.get("slo_compliance")),
        p99_ms=_float(lat.get("p99_ms")),
    )


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


async def start_notifications(
    settings: AppSettings,
    bus: EventBus,
    metrics: Metrics | None = None,
    *,
    sender: Sender | None = None,
    **notifier_options: Any,
) -> Notifications:
    """Notifications for ``settings.notify_urls`` (disabled when there is none),
    watching ``bus``. ``sender`` replaces Apprise (tests)."""
    if sender is None:
        if not settings.notify_urls:
            return Notifications.disabled()
        from aitrapp.notify.apprise_sender import AppriseSender

        sender = AppriseSender([u.get_secret_value() for u in settings.notify_urls])
    notifier = Notifier(sender, metrics=metrics, **notifier_options)
    await notifier.start()
    notes = Notifications(notifier)
    try:
        await notes.watch(bus)
    except BaseException:
        await notifier.close(0)
        raise
    return notes


async def send_notices(
    settings: AppSettings, notices: list[Notice], *, grace_s: float = 10.0
) -> None:
    """Send a few notices from a short-lived command (e.g. ``aitrapp burnin check``)
    and return once they are out (or ``grace_s`` has passed). No URL: nothing."""
    if not settings.notify_urls or not notices:
        return
    from aitrapp.notify.apprise_sender import AppriseSender

    sender = AppriseSender([u.get_secret_value() for u in settings.notify_urls])
    notifier = Notifier(sender, coalesce_s=0.0, repeat_window_s=0.0)
    for notice in notices:
        notifier.submit(notice)
    await notifier.start()
    await notifier.close(grace_s)
