"""The `aitrapp` entry point: its wiring as a real subprocess, the options in this process."""

from __future__ import annotations

import json
import subprocess
import sys

from aitrapp import __version__, plan_client_id
from cli_inprocess import run_aitrapp


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """``aitrapp ARGS`` in this process (what a subprocess would print and return)."""
    return run_aitrapp(args)


def test_version() -> None:
    """The real entry point: ``python -m aitrapp`` in its own process."""
    out = subprocess.run(
        [sys.executable, "-m", "aitrapp", "--version"], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0
    assert out.stdout.strip() == f"aitrapp {__version__}"


def test_ids_plan_json_matches_library() -> None:
    out = run(
        "ids", "plan", "--symbol", "RELIANCE", "--side", "buy", "--entry", "2500.05",
        "--stop", "2480", "--tp", "2536.15", "--qty", "24", "--strategy", "ORB",
        "--config-sha", "c1", "--signal-ts", "1767240000000000000", "--json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    want = plan_client_id(
        "RELIANCE", "BUY", "2500.05", "2480", "2536.15", 24, "ORB", "c1", 1767240000000000000
    )
    assert doc["plan_id"] == want
    assert doc["orders"]["STOP"] == f"{want}:STOP"
    assert len(set(doc["broker_tags"].values())) == 3


def test_ids_plan_bad_price_is_a_clear_error() -> None:
    out = run(
        "ids", "plan", "--symbol", "X", "--side", "BUY", "--entry", "1.234", "--stop", "1",
        "--tp", "2", "--qty", "1", "--strategy", "S", "--config-sha", "c", "--signal-ts", "1",
    )  # fmt: skip
    assert out.returncode == 2
    assert "two decimals" in out.stderr


def _plain(text: str) -> str:
    """The error as a reader sees it: rich's box and line wrapping removed."""
    return " ".join(text.replace("│", " ").replace("╭", " ").replace("╰", " ").split())


def test_every_date_option_names_itself_and_the_format() -> None:
    cases = [
        (["paper", "--date", "03/03/2025", "--no-serve"], "--date", "03/03/2025"),
        (["serve", "--date", "03/03/2025"], "--date", "03/03/2025"),
        (["report", "--date", "2025-3-3"], "--date", "2025-3-3"),
        (["burnin", "check", "--date", "20250303"], "--date", "20250303"),
        (["paper", "--date", "2025-02-30", "--no-serve"], "--date", "2025-02-30"),
    ]
    for args, option, value in cases:
        out = run(*args)
        assert out.returncode == 2, (args, out)
        said = _plain(out.stderr + out.stdout)
        assert f"'{option}'" in said or f"{option}:" in said, (args, said)
        assert f"expected YYYY-MM-DD, got '{value}'" in said, (args, said)
    # A real calendar day is not enough: it must exist (the reason is given).
    assert "day is out of range for month" in _plain(run(*cases[-1][0]).stderr)
