"""`python -m aitrapp ARGS` inside the test process (no tests of its own).

Each real subprocess pays the interpreter start and every import (about 2 s on
a quiet 2-core machine, far more under load). Option parsing, error messages
and exit codes are the same in this process, so the tests that check them run
the command here; each command keeps one real subprocess test that proves the
wiring (``python -m aitrapp``, its environment, its exit code).

What a subprocess would see is reproduced: exactly the environment given (not
one variable more or less), the working directory, separate stdout/stderr,
the exit code, an unexpected exception printed as Python prints it
(``Traceback (most recent call last): ...``), so "no traceback" checks keep
their meaning, and log records of WARNING and above on stderr, as Python's
last-resort handler prints them in a process whose logging nobody set up (so
"no secret in the output" checks see the logs too). The process's environment,
directory, signal handlers and root logger are restored afterwards. Call it
from a thread (``asyncio.to_thread``) when the command runs its own event loop.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
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


class _LastResortOnStderr(logging.Handler):
    """What a process without logging set up prints: WARNING and above, the message
    only, on the stderr of the moment (the runner's while the command runs). Records
    of the test's own event loop (the main thread, while the command runs in a worker
    thread) are not the command's and stay out."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self._skip_main = threading.current_thread() is not threading.main_thread()

    def emit(self, record: logging.LogRecord) -> None:
        if self._skip_main and record.thread == threading.main_thread().ident:
            return
        sys.stderr.write(self.format(record) + "\n")


@contextlib.contextmanager
def _last_resort_logging() -> Iterator[None]:
    root = logging.getLogger()
    handler = _LastResortOnStderr()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)


def run_aitrapp(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``aitrapp ARGS`` here as ``subprocess.run([python, -m, aitrapp, *ARGS], env=env,
    cwd=cwd, input=input, capture_output=True, text=True)`` would run it there."""
    overrides: dict[str, str | None] = {}
    if env is not None:
        overrides = {k: None for k in os.environ if k not in env}
        overrides.update({k: v for k, v in env.items() if os.environ.get(k) != v})
    with _signal_handlers_kept(), _last_resort_logging(), contextlib.chdir(cwd or Path.cwd()):
        result = CliRunner().invoke(
            app, list(args), input=input, env=overrides, catch_exceptions=True
        )
    stderr = result.stderr
    exc = result.exception
    if exc is not None and not isinstance(exc, SystemExit):
        stderr += "".join(traceback.format_exception(exc))
    return subprocess.CompletedProcess(["aitrapp", *args], result.exit_code, result.stdout, stderr)
