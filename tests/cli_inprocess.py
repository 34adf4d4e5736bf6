"""`python -m aitrapp ARGS` inside the test process (no tests of its own).

Each real subprocess pays the interpreter start and every import (about 2 s on
a quiet 2-core machine, far more under load). Option parsing, error messages
and exit codes are the same in this process, so the tests that check them run
the command here; each command keeps one real subprocess test that proves the
wiring (``python -m aitrapp``, its environment, its exit code).

What a subprocess would see is reproduced: exactly the environment given (not
one variable more or less), the working directory, separate stdout/stderr,
the exit code, and an unexpected exception printed as Python prints it
(``Traceback (most recent call last): ...``), so "no traceback" checks keep
their meaning. The process's environment, directory and signal handlers are
restored afterwards. Call it from a thread (``asyncio.to_thread``) when the
command runs its own event loop.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import traceback
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from typer.testing import CliRunner

from aitrapp.cli import app

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def _signal_handlers_kept() -> Iterator[None]:
    """A command may install handlers (``aitrapp paper`` turns SIGTERM into Ctrl-C)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # handlers can only be installed from the main thread: none will be
        return
    saved = {sig: signal.getsignal(sig) for sig in _SIGNALS}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def run_aitrapp(
    args: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``aitrapp ARGS`` here as ``subprocess.run([python, -m, aitrapp, *ARGS], env=env,
    cwd=cwd, capture_output=True, text=True)`` would run it there."""
    overrides: dict[str, str | None] = {}
    if env is not None:
        overrides = {k: None for k in os.environ if k not in env}
        overrides.update({k: v for k, v in env.items() if os.environ.get(k) != v})
    with _signal_handlers_kept(), contextlib.chdir(cwd or Path.cwd()):
        result = CliRunner().invoke(app, list(args), env=overrides, catch_exceptions=True)
    stderr = result.stderr
    exc = result.exception
    if exc is not None and not isinstance(exc, SystemExit):
        stderr += "".join(traceback.format_exception(exc))
    return subprocess.CompletedProcess(["aitrapp", *args], result.exit_code, result.stdout, stderr)
