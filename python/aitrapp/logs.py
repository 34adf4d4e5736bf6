"""Logging: JSON lines in ``<logs_dir>/aitrapp.log`` (rotated) plus a readable console.

Handlers run on a background thread (``QueueHandler``/``QueueListener``), so
a log call on the event loop never waits for the disk. Fields passed with
``extra=`` become top-level JSON keys. Order-related code logs through
:func:`order_log`, which stamps ``client_order_id`` on every line::

    olog = order_log(log, "3f2a...:ENTRY", plan_id="3f2a...")
    olog.info("placed", extra={"broker_order_id": oid})

    jq 'select(.client_order_id == "3f2a...:ENTRY")' logs/aitrapp.log
"""

from __future__ import annotations

import atexit
import copy
import json
import logging
import logging.handlers
import queue
import sys
from collections.abc import MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

LOG_FILE = "aitrapp.log"
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "taskName"}
)


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS}


def _ts(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (UTC), level, logger, msg, extras, exc."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": _ts(record),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in _extras(record).items():
            doc.setdefault(key, value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            doc["exc"] = record.exc_text
        return json.dumps(doc, default=str, ensure_ascii=False)


class ConsoleFormatter(logging.Formatter):
    """``12:01:02.345 INFO  aitrapp.execution: placed  client_order_id=... qty=24``."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created).strftime("%H:%M:%S.%f")[:-3]
        line = f"{stamp} {record.levelname:<7} {record.name}: {record.getMessage()}"
        extras = _extras(record)
        if extras:
            line += "  " + " ".join(f"{k}={v}" for k, v in extras.items())
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line += "\n" + record.exc_text
        return line


class _QueueHandler(logging.handlers.QueueHandler):
    """Keeps extras and renders the traceback before the record crosses threads."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        record = copy.copy(record)
        record.msg = record.getMessage()
        record.args = None
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        return record


@dataclass
class LoggingHandle:
    """What :func:`setup_logging` installed; ``stop()`` flushes and removes it."""

    path: Path
    listener: logging.handlers.QueueListener
    handler: logging.Handler

    def stop(self) -> None:
        root = logging.getLogger()
        if self.handler in root.handlers:
            root.removeHandler(self.handler)
        if self.listener._thread is not None:
            self.listener.stop()
        for h in self.listener.handlers:
            h.close()


_active: LoggingHandle | None = None


def setup_logging(
    logs_dir: Path | str,
    level: str | int = "INFO",
    *,
    console: bool = True,
    console_stream: TextIO | None = None,
    max_bytes: int = 50 * 1024 * 1024,
    backup_count: int = 10,
) -> LoggingHandle:
    """Install the JSON file and console handlers on the root logger.

    Calling it again replaces the previous setup (tests, reconfiguration).
    """
    global _active  # noqa: PLW0603 - one logging setup per process
    if isinstance(level, str):
        resolved = logging.getLevelNamesMapping().get(level.upper())
        if resolved is None:
            raise ValueError(f"log level: unknown {level!r} (DEBUG, INFO, WARNING, ERROR)")
        level = resolved
    if _active is not None:
        _active.stop()
    path = Path(logs_dir) / LOG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    file_handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8"
    )
    file_handler.setFormatter(JsonFormatter())
    handlers: list[logging.Handler] = [file_handler]
    if console:
        console_handler = logging.StreamHandler(console_stream or sys.stderr)
        console_handler.setFormatter(ConsoleFormatter())
        handlers.append(console_handler)
    q: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = logging.handlers.QueueListener(q, *handlers, respect_handler_level=True)
    handler = _QueueHandler(q)
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    listener.start()
    _active = LoggingHandle(path=path, listener=listener, handler=handler)
    return _active


@atexit.register
def _stop_active() -> None:
    if _active is not None:
        _active.stop()


class OrderLog(logging.LoggerAdapter[logging.Logger]):
    """A logger bound to one order: every line carries ``client_order_id``."""

    def __init__(self, logger: logging.Logger, client_order_id: str, **fields: Any) -> None:
        super().__init__(logger, {"client_order_id": client_order_id, **fields})

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs["extra"] = {**(self.extra or {}), **(kwargs.get("extra") or {})}
        return msg, kwargs


def order_log(logger: logging.Logger, client_order_id: str, **fields: Any) -> OrderLog:
    if not client_order_id:
        raise ValueError("client_order_id: required for order-related log lines")
    return OrderLog(logger, client_order_id, **fields)
