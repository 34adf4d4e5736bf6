"""Logs: JSON lines on disk (rotated), a readable console, client_order_id on order lines."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from aitrapp.logs import LOG_FILE, order_log, setup_logging


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    root.setLevel(level)
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)


def read_lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_json_file_and_console(tmp_path: Path, restore_root: None) -> None:
    console = io.StringIO()
    handle = setup_logging(tmp_path / "logs", "DEBUG", console_stream=console)
    log = logging.getLogger("aitrapp.execution")
    olog = order_log(log, "abc123:ENTRY", plan_id="abc123")
    olog.info("placed %s", "LIMIT", extra={"broker_order_id": "B1", "qty": 24})
    log.debug("not about an order", extra={"queue": 3})
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        olog.exception("cancel failed")
    handle.stop()

    lines = read_lines(tmp_path / "logs" / LOG_FILE)
    assert [entry["msg"] for entry in lines] == [
        "placed LIMIT",
        "not about an order",
        "cancel failed",
    ]
    placed = lines[0]
    assert placed["client_order_id"] == "abc123:ENTRY"
    assert placed["plan_id"] == "abc123"
    assert placed["broker_order_id"] == "B1"
    assert placed["qty"] == 24
    assert placed["level"] == "INFO"
    assert placed["logger"] == "aitrapp.execution"
    assert str(placed["ts"]).endswith("+00:00")
    assert "client_order_id" not in lines[1]
    assert lines[2]["client_order_id"] == "abc123:ENTRY"
    assert "RuntimeError: boom" in str(lines[2]["exc"])

    text = console.getvalue()
    assert "INFO    aitrapp.execution: placed LIMIT" in text
    assert "client_order_id=abc123:ENTRY" in text
    assert "RuntimeError: boom" in text


def test_level_and_rotation(tmp_path: Path, restore_root: None) -> None:
    handle = setup_logging(tmp_path, "WARNING", console=False, max_bytes=2_000, backup_count=2)
    log = logging.getLogger("aitrapp.test")
    log.info("filtered out")
    for i in range(100):
        log.warning("line %d", i, extra={"pad": "x" * 50})
    handle.stop()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == [LOG_FILE, f"{LOG_FILE}.1", f"{LOG_FILE}.2"]
    newest = read_lines(tmp_path / LOG_FILE)
    assert newest[-1]["msg"] == "line 99"
    assert all(entry["level"] == "WARNING" for entry in newest)


def test_setup_twice_replaces_handlers(tmp_path: Path, restore_root: None) -> None:
    first = setup_logging(tmp_path / "a", console=False)
    second = setup_logging(tmp_path / "b", console=False)
    logging.getLogger("aitrapp").warning("once")
    second.stop()
    assert first.handler not in logging.getLogger().handlers
    assert (tmp_path / "a" / LOG_FILE).read_text() == ""
    assert len(read_lines(tmp_path / "b" / LOG_FILE)) == 1


def test_bad_input_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="log level"):
        setup_logging(tmp_path, "LOUD")
    with pytest.raises(ValueError, match="client_order_id"):
        order_log(logging.getLogger("x"), "")
