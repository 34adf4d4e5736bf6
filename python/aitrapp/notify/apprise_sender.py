"""Delivery through Apprise: one message to every URL of ``AITRAPP_NOTIFY_URLS``.

Apprise's ``notify()`` is synchronous (HTTP, SMTP): it runs in a worker
thread, one message at a time, so the event loop never waits on a slow
service. Apprise keeps nothing on disk here (memory storage mode).
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import apprise

from aitrapp.exceptions import ConfigError
from aitrapp.notify.notice import Level
from aitrapp.notify.notifier import SendOutcome

NOTIFY_TYPES: dict[Level, apprise.NotifyType] = {
    "CRITICAL": apprise.NotifyType.FAILURE,
    "WARN": apprise.NotifyType.WARNING,
    "INFO": apprise.NotifyType.INFO,
    "OK": apprise.NotifyType.SUCCESS,
}


@contextmanager
def _plugins_loading() -> Iterator[None]:
    """Apprise loads a plugin when its URL is first seen; the e-mail one imports
    ``imghdr``, deprecated since Python 3.11: not ours to fix, nor worth a warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*imghdr", category=DeprecationWarning)
        yield


def url_problem(url: str) -> str | None:
    """Why Apprise cannot use ``url`` (None: it can). Never repeats the URL's secrets."""
    with _plugins_loading():
        plugin = apprise.Apprise.instantiate(url, asset=_asset())
    if plugin is None:
        scheme = url.split("://", 1)[0]
        return f"{scheme}://... is not a URL Apprise accepts (unknown scheme or missing parts)"
    return None


def _asset() -> apprise.AppriseAsset:
    return apprise.AppriseAsset(
        app_id="AITRAPP",
        app_desc="AITRAPP trading notifications",
        storage_mode=apprise.PersistentStoreMode.MEMORY,
    )


class AppriseSender:
    def __init__(self, urls: Sequence[str], *, timeout_s: float = 15.0) -> None:
        if not urls:
            raise ConfigError("AITRAPP_NOTIFY_URLS: no URL to send to")
        self._apobj = apprise.Apprise(asset=_asset())
        for i, url in enumerate(urls, start=1):
            problem = url_problem(url)
            with _plugins_loading():
                added = problem is None and self._apobj.add(url)
            if not added:
                raise ConfigError(f"AITRAPP_NOTIFY_URLS: entry {i}: {problem or 'refused'}")
        self._timeout_s = timeout_s
        self.services = len(self._apobj)

    async def send(self, title: str, body: str, level: Level) -> SendOutcome:
        return await asyncio.to_thread(self._send, title, body, level)

    def _send(self, title: str, body: str, level: Level) -> SendOutcome:
        with self._apobj.notify(
            body=body,
            title=title,
            notify_type=NOTIFY_TYPES[level],
            body_format=apprise.NotifyFormat.TEXT,
            timeout=self._timeout_s,
        ) as result:
            # Privacy-masked URLs (Apprise hides tokens), without their option query.
            failed = tuple(f"{r.name} {r.url.split('?')[0]}" for r in result if not r)
            if not failed and not result:
                failed = (f"apprise: {result.status.name}",)
            return SendOutcome(failed=failed)
