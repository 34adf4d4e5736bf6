"""SIGINT and SIGTERM end a session cleanly, whatever it is doing.

``run_interruptible(main)`` runs ``main`` like ``asyncio.run`` with its own
handlers: the first signal cancels the main task, so its ``finally`` blocks
stop everything in order (API, feed, flatten, writer drained, database and
embedded PostgreSQL released), and then :class:`Interrupted` is raised. A
second signal exits at once (said on stderr: positions may then be open).

Why not the default: ``KeyboardInterrupt`` raised inside the event loop can
leave the main task unfinished, and AnyIO's worker threads (not daemons) stop
only when that task finishes: the interpreter then waits for them for ever at
exit. :func:`exit_guard` is the last line: threads that still hold the process
after the work is done are named, and the process exits anyway.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(Exception):  # noqa: N818 - it is what happened, not an error
    """The run was stopped by a signal (after a clean stop)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def run_interruptible(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``; a SIGINT or SIGTERM stops it cleanly and raises Interrupted."""
    received: list[int] = []

    async def guarded() -> T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None

        def on_signal(signum: int) -> None:
            received.append(signum)
            name = signal.Signals(signum).name
            if len(received) == 1:
                log.warning("%s: stopping (flatten, drain the writer, release the database)", name)
                task.cancel()
                return
            log.critical("second signal (%s): exiting now, without waiting", name)
            sys.stderr.write(f"\n{name} again: exiting now (positions may be left open)\n")
            sys.stderr.flush()
            os._exit(128 + signum)

        for sig in SIGNALS:
            loop.add_signal_handler(sig, on_signal, sig)
        try:
            return await main
        except asyncio.CancelledError:
            if received:
                raise Interrupted(received[0]) from None
            raise
        finally:
            for sig in SIGNALS:
                loop.remove_signal_handler(sig)

    return asyncio.run(guarded())


def exit_guard(code: int, grace_s: float = 3.0) -> None:
    """Exit with ``code`` even if non-daemon threads linger (named in the log)."""
    deadline = time.monotonic() + grace_s
    for t in threading.enumerate():
        if t is threading.main_thread() or t.daemon:
            continue
        t.join(max(0.0, deadline - time.monotonic()))
    left = [t.name for t in threading.enumerate() if t.is_alive() and not t.daemon]
    left = [n for n in left if n != threading.main_thread().name]
    if left:
        log.error("threads still running at exit, not waited for: %s", ", ".join(left))
        sys.stdout.flush()
        sys.stderr.flush()
        logging.shutdown()
        os._exit(code)


def sigterm_as_interrupt() -> None:
    """SIGTERM before the event loop runs: stop like Ctrl-C, not die on the spot."""

    def raise_interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, raise_interrupt)
