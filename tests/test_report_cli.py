"""`aitrapp report`, `aitrapp burnin check|report` and `aitrapp live` against a fresh
database (and a stand-in control API for `live`). Each command runs once as a real
subprocess (its wiring); the other checks run it in this process, with the same
environment and working directory (``cli_inprocess``)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from aitrapp.db import repo
from aitrapp.db.embedded import free_port
from aitrapp.db.pool import Pool
from cli_inprocess import run_aitrapp
from test_burnin_support import passing_session

pytestmark = pytest.mark.integration

TOKEN = "k" * 32


def _full_env(env: dict[str, str]) -> dict[str, str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("AITRAPP_", "KITE_"))}
    full.update(env)
    return {**full, "COLUMNS": "200", "TERM": "dumb"}


async def run_process(
    *args: str, env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    """``python -m aitrapp ARGS`` as a real subprocess."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "aitrapp", *args],
        capture_output=True,
        text=True,
        check=False,
        env=_full_env(env),
        cwd=cwd,
        timeout=120,
    )


async def run(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The same command in this process (a thread: the command runs its own event loop)."""
    return await asyncio.to_thread(run_aitrapp, args, env=_full_env(env), cwd=cwd)


def db_env(db_url: str, **extra: str) -> dict[str, str]:
    # The API port points at nothing unless a test serves it.
    return {"DATABASE_URL": db_url, "AITRAPP_API_PORT": str(free_port()), **extra}


async def test_report_writes_tables_and_html(db_url: str, db_pool: Pool, tmp_path: Path) -> None:
    s, _ = await passing_session(db_pool)
    out = await run_process("report", "--date", "2026-01-05", env=db_env(db_url), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    for figure in ("200.75", "-0.75", "60.0 %", "425.00", "COOLDOWN", str(s.id)):
        assert figure in out.stdout, figure
    html = tmp_path / "reports" / "2026-01-05" / "report.html"
    assert f"HTML report: {html.relative_to(tmp_path)}" in out.stdout
    for name in ("report.html", "equity.png", "latency.png"):
        assert (html.parent / name).stat().st_size > 0
    custom = await run("report", "--session", str(s.id), "--out", "x", "--no-html",
                       env=db_env(db_url), cwd=tmp_path)  # fmt: skip
    assert custom.returncode == 0 and not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("--date", "2026-13-01"), 2, "expected YYYY-MM-DD, got '2026-13-01'"),
        (("--session", "nope"), 2, "not a session id (UUID): 'nope'"),
        (("--mode", "demo"), 2, "PAPER or LIVE, got 'demo'"),
        (("--date", "2026-01-07"), 1, "error: date: no sessions recorded for 2026-01-07"),
    ],
)
async def test_report_bad_input_is_a_clear_error(
    db_url: str, tmp_path: Path, args: tuple[str, ...], code: int, message: str
) -> None:
    out = await run("report", *args, env=db_env(db_url), cwd=tmp_path)
    assert out.returncode == code
    assert message in " ".join((out.stderr + out.stdout).split()), out.stderr
    assert "Traceback" not in out.stderr


async def test_burnin_check_pass_fail_and_stored(
    db_url: str, db_pool: Pool, tmp_path: Path
) -> None:
    good, _ = await passing_session(db_pool)
    out = await run_process(
        "burnin", "check", "--date", "2026-01-05", env=db_env(db_url), cwd=tmp_path
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "PASS" in out.stdout and "burn-in: 1 of 1 judged sessions passed" in out.stdout
    row = await repo.get_session(db_pool, good.id)
    assert row is not None and row.burnin_verdict is not None
    assert row.burnin_verdict["passed"] is True

    # Both sessions start at 09:00: name the slow one (which is "latest" is a tie).
    slow, _ = await passing_session(db_pool, flatten_ms=2500)
    out = await run(
        "burnin", "check", "--date", "2026-01-05", "--session", str(slow.id),
        env=db_env(db_url), cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 1
    assert "FAIL" in out.stdout and "took 2500 ms > 2000 ms" in out.stdout
    out = await run("burnin", "check", "--date", "2026-01-05", "--all", "--no-store",
                    env=db_env(db_url), cwd=tmp_path)  # fmt: skip
    assert out.returncode == 1 and "1 of 2 judged sessions passed (not stored)" in out.stdout
    # A looser threshold from the command line passes it (and the gate would not count it).
    out = await run("burnin", "check", "--session", str(slow.id), "--max-flatten-ms", "3000",
                    env=db_env(db_url), cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stdout

    out = await run("burnin", "report", "--last", "5", env=db_env(db_url), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert str(good.id) in out.stdout and str(slow.id) in out.stdout
    assert "yes" in out.stdout and "judged with weaker thresholds" in out.stdout


async def test_burnin_check_bad_env_threshold(db_url: str, tmp_path: Path) -> None:
    out = await run("burnin", "check", env=db_env(db_url, AITRAPP_BURNIN_MIN_SIGNALS="-1"),
                    cwd=tmp_path)  # fmt: skip
    assert out.returncode == 2
    assert "AITRAPP_BURNIN_MIN_SIGNALS" in out.stderr and "Traceback" not in out.stderr


async def test_live_without_api_evaluates_the_gate_and_audits(
    db_url: str, db_pool: Pool, tmp_path: Path
) -> None:
    out = await run_process("live", env=db_env(db_url), cwd=tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    text = " ".join(out.stdout.split())
    assert "no API at http://127.0.0.1:" in text
    assert "burn-in: 0 of 3 required" in text
    assert "KITE_API_KEY is not set" in text
    assert "the API token is not set" in text
    (row,) = await repo.list_audit(db_pool, action="live_gate")
    assert row.actor.startswith("cli:") and row.result["allowed"] is False
    assert row.params["via"] == "aitrapp live"


class _FakeApi(BaseHTTPRequestHandler):
    status: ClassVar[int] = 409
    body: ClassVar[dict[str, Any]] = {}
    seen: ClassVar[list[tuple[str, str | None, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        _FakeApi.seen.append(
            (self.path, self.headers.get("Authorization"), json.loads(self.rfile.read(length)))
        )
        data = json.dumps(_FakeApi.body).encode()
        self.send_response(_FakeApi.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_api() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeApi)
    _FakeApi.seen.clear()
    # shutdown() waits for the loop to look again: every 50 ms, not the default 0.5 s.
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.mark.parametrize(
    ("status", "body", "code", "want"),
    [
        (409, {"detail": "refused", "reasons": ["burn-in: 1 of 3", "no token"]}, 1,
         "LIVE refused by the running trader"),
        (200, {"previous": "PAPER", "mode": "LIVE", "reasons": []}, 0, "LIVE: mode PAPER -> LIVE"),
        (401, {"detail": "bad token"}, 1, "did not accept our token (401)"),
    ],
)  # fmt: skip
async def test_live_posts_mode_to_a_running_api(
    db_url: str,
    tmp_path: Path,
    fake_api: int,
    status: int,
    body: dict[str, Any],
    code: int,
    want: str,
) -> None:
    _FakeApi.status, _FakeApi.body = status, body
    env = db_env(db_url, AITRAPP_API_PORT=str(fake_api), AITRAPP_API_TOKEN=TOKEN)
    out = await run("live", env=env, cwd=tmp_path)
    assert out.returncode == code, out.stdout + out.stderr
    assert want in out.stdout
    if status == 409:
        assert "  - burn-in: 1 of 3" in out.stdout and "  - no token" in out.stdout
    assert _FakeApi.seen == [("/mode", f"Bearer {TOKEN}", {"mode": "LIVE"})]
