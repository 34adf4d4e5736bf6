"""Notifications to people (Telegram, Slack, Discord, e-mail, webhooks) through Apprise.

Configured by ``AITRAPP_NOTIFY_URLS``; see ``docs/console.md``.
"""

from aitrapp.notify.notice import Level, Notice
from aitrapp.notify.notifier import Notifier, NotifierStats, Sender, SendOutcome
from aitrapp.notify.service import Notifications, start_notifications

__all__ = [
    "Level",
    "Notice",
    "Notifications",
    "Notifier",
    "NotifierStats",
    "SendOutcome",
    "Sender",
    "start_notifications",
]
