"""Process-level faults for the chaos tests: hang a server (SIGSTOP), kill a process.

Only processes a test started (or the embedded PostgreSQL of its own data
directory) are touched: they are found by pid, never by name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc: the postmaster's backends and workers)."""
    out: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after the last ')'.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            out.append(int(entry.name))
    return out


def postgres_pids(pgdata: Path) -> list[int]:
    """The postmaster of ``pgdata`` and every process it forked."""
    postmaster = int((pgdata / "postmaster.pid").read_text().splitlines()[0])
    return [postmaster, *_children(postmaster)]


def freeze(pgdata: Path) -> list[int]:
    """SIGSTOP every PostgreSQL process of ``pgdata``; returns the pids stopped.

    Nothing can fork while the postmaster is stopped, so one sweep is enough.
    """
    stopped: list[int] = []
    for pid in postgres_pids(pgdata):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGSTOP)
            stopped.append(pid)
    return stopped


def thaw(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


@contextlib.contextmanager
def hung(pgdata: Path) -> Iterator[list[int]]:
    """Every PostgreSQL process of ``pgdata`` stopped until the block ends."""
    pids = freeze(pgdata)
    try:
        yield pids
    finally:
        thaw(pids)


def wait_exit(pid: int, timeout_s: float) -> bool:
    """True once ``pid`` (our child or not) is gone; False after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                return True
        except ChildProcessError:  # not our child: poll its existence
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
        time.sleep(0.05)
    return False
