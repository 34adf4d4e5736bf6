"""The docs cannot rot: the site builds with --strict, and every shell block marked
``<!-- runnable -->`` (in docs/ and README.md) runs against a real paper session.

One session for the module: ``aitrapp paper --keep-serving`` on three synthetic
names, in its own folder (embedded PostgreSQL, logs, reports), on a free port.
Once the day has closed and the API keeps serving, each marked block runs in
page order under ``bash -euo pipefail`` from that folder (``.venv`` links to
the repository's), with ``:8000`` pointed at the session's port. A block that
exits non-zero, or prints ``null`` (a field the docs name is gone), fails.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from aitrapp.config import EngineConfig

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
MARKER = "<!-- runnable -->"
SESSION = ["--symbols", "RELIANCE,SBIN,INFY", "--date", "2026-11-25", "--keep-serving"]
SERVING = re.compile(r"API still\s+serving")
START_TIMEOUT_S = 180  # a loaded 2-core machine; usually 10-25 s
# The seed's runbook commands, each in a runnable block (so each is known to work).
SEED_COMMANDS = (
    "curl -s localhost:8000/state | jq",
    "curl -s localhost:8000/metrics | grep '^trader_'",
    "curl -s -X POST localhost:8000/flatten",
    "logs/aitrapp.log | jq",
)


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    code: str

    def __str__(self) -> str:
        return f"{self.page}:{self.line}"


def pages() -> list[Path]:
    return [*sorted(DOCS.rglob("*.md")), ROOT / "README.md"]


def runnable_blocks(path: Path) -> list[Block]:
    """The fenced bash blocks right after a marker line (indented ones too)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks = []
    for i, line in enumerate(lines):
        if line.strip() != MARKER:
            continue
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        opening = lines[j] if j < len(lines) else ""
        name = path.relative_to(ROOT)
        assert opening.strip() in ("```bash", "```sh"), (
            f"{name}:{i + 1}: {MARKER} must precede a ```bash block"
        )
        indent = opening[: len(opening) - len(opening.lstrip())]
        body = []
        for k in range(j + 1, len(lines)):
            if lines[k].strip() == "```":
                break
            body.append(lines[k].removeprefix(indent))
        else:
            raise AssertionError(f"{name}:{j + 1}: unclosed block")
        blocks.append(Block(str(name), j + 1, textwrap.dedent("\n".join(body))))
    return blocks


def all_blocks() -> list[Block]:
    return [b for p in pages() for b in runnable_blocks(p)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Session:
    folder: Path
    port: int
    env: dict[str, str]


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    folder = tmp_path_factory.mktemp("docs-session")
    (folder / ".venv").symlink_to(ROOT / ".venv")
    port = free_port()
    env = {
        **os.environ,
        "AITRAPP_DATA_DIR": str(folder / "var"),
        "AITRAPP_LOGS_DIR": str(folder / "logs"),
        "AITRAPP_API_PORT": str(port),
        "COLUMNS": "200",
    }
    for key in ("DATABASE_URL", "REDIS_URL", "AITRAPP_API_TOKEN", "AITRAPP_API_HOST"):
        env.pop(key, None)
    out = (folder / "session.out").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "aitrapp", "paper", *SESSION],
        cwd=folder,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not SERVING.search((folder / "session.out").read_text()):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    "the paper session did not reach --keep-serving:\n"
                    + (folder / "session.out").read_text()[-4000:]
                )
            time.sleep(0.25)
        yield Session(folder, port, env)
    finally:
        proc.send_signal(signal.SIGINT)  # flattens, stops the runtime and the database
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        out.close()


def test_the_site_builds_with_no_warnings(tmp_path: Path) -> None:
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent))
    assert mkdocs, "mkdocs is missing: it is in the `docs` extra (make develop installs it)"
    out = subprocess.run(
        [mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "WARNING" not in out.stderr, out.stderr
    assert (tmp_path / "site" / "runbook" / "index.html").exists()


def test_marked_blocks_exist_and_cover_the_seed_runbook() -> None:
    blocks = all_blocks()
    assert len(blocks) >= 8, [str(b) for b in blocks]
    runbook = "\n".join(b.code for b in blocks if b.page == "docs/runbook.md")
    for command in SEED_COMMANDS:
        assert command in runbook, f"no runnable block in the runbook runs {command!r}"


def test_every_runnable_block_works_against_a_paper_session(session: Session) -> None:
    failures = []
    for block in all_blocks():
        code = block.code.replace(":8000", f":{session.port}")
        out = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", code],
            cwd=session.folder,
            env=session.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        printed = out.stdout + out.stderr
        if out.returncode != 0:
            failures.append(f"{block}: exit {out.returncode}\n{block.code}\n{printed[-2000:]}")
        elif not out.stdout.strip():
            failures.append(f"{block}: printed nothing\n{block.code}")
        elif re.search(r"^null$", out.stdout, re.M):
            failures.append(f"{block}: printed null\n{block.code}\n{out.stdout[-2000:]}")
    assert not failures, "\n\n".join(failures)


def test_the_session_exports_what_the_alerts_read(session: Session) -> None:
    """The near-stop alert compares P&L with the stop gauge, and the no-tick alert
    counts ticks: a replayed day (in columns) must count them too."""
    api = f"http://127.0.0.1:{session.port}"
    text = httpx.get(f"{api}/metrics", timeout=10).text
    risk = EngineConfig().risk  # the paper session runs the default config
    stop = risk.capital_rupees * risk.daily_loss_stop_pct / 100
    assert f"\ntrader_daily_loss_stop_rupees {stop}\n" in text
    ticks = httpx.get(f"{api}/state", timeout=10).json()["counters"]["ticks"]
    assert ticks > 0
    assert f"\ntrader_ticks_total {float(ticks)}\n" in text
