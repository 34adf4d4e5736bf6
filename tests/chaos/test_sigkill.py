"""SIGKILL `aitrapp paper` at random moments and restart it as the runbook says.

After a kill the next start finds what the dead process left: its session still
RUNNING (marked ABORTED, at its last event), orders the fresh paper broker does
not know and positions it does not hold. Broker and database disagree, so the
restart runs PAUSED, says so with the command to accept, and exits 3; the
operator then runs that command (``--accept-reconcile``): the repairs are made,
the dead session's positions become trades, and it trades. That run may itself
be killed. The moments are drawn from a seeded generator (reproducible).

Then, over everything that ran: no order placed twice, nothing left working,
fills that add up to every order and position, no session RUNNING, no position
open and none closed without its trade, no write dropped, no fill refused.
"""

from __future__ import annotations

import asyncio
import random
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import ChaosSizes
from .paper_proc import SLOW, Run, invariants, log_problems, run_paper, stop_embedded

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

SEED = 20260304  # the kill moments (synthetic test schedule)
KILL_WINDOW_S = (0.5, 13.0)  # from the start: PostgreSQL start-up to the session's close


@pytest.fixture
def data_dir(pg_dir: Path) -> Iterator[Path]:
    try:
        yield pg_dir
    finally:
        stop_embedded(pg_dir)


def _accept_args(run: Run) -> list[str]:
    """The command the PAUSED run printed, minus the program: what the operator types."""
    match = re.search(r"To repair and trade:\n  (aitrapp paper .*--accept-reconcile)\n", run.output)
    assert match is not None, run.output[-3000:]
    argv = shlex.split(match.group(1))
    assert argv[:2] == ["aitrapp", "paper"]
    return argv[2:]


def test_sigkill_at_random_moments_then_restart(data_dir: Path, chaos: ChaosSizes) -> None:
    rng = random.Random(SEED)
    runs: list[Run] = []
    kills = 0
    args: list[str] = []  # the first run: as a user would start it
    while kills < chaos.kills and len(runs) < 4 * chaos.kills + 4:
        # Stratified: the k-th kill falls in the k-th slice of the window, so even
        # the short form hits start-up and mid-session alike.
        lo, hi = KILL_WINDOW_S
        step = (hi - lo) / chaos.kills
        at = rng.uniform(lo + kills * step, lo + (kills + 1) * step)
        run = run_paper(data_dir, *args, *SLOW, signal_at=at)
        runs.append(run)
        if run.signalled_at is not None and run.returncode == -9:
            kills += 1
            args = []  # restart as before the kill
            continue
        if run.returncode == 3:  # the whole day ran PAUSED: the console says why and how
            assert "PAUSED:" in run.output and "disagree" in run.output, run.output[-3000:]
            assert "the whole session ran PAUSED" in run.output
            args = _accept_args(run)
            continue
        assert run.returncode == 0, (run.args, run.returncode, run.output[-3000:])
        args = []
    assert kills == chaos.kills, [(r.args, r.returncode, r.signalled_at) for r in runs]
    # A last start after the last kill, as the runbook says, until one completes.
    for _ in range(3):
        final = run_paper(data_dir, *args)
        runs.append(final)
        if final.returncode == 3:
            args = _accept_args(final)
            continue
        break
    assert final.returncode == 0, final.output[-3000:]
    print([(r.args, r.returncode, r.signalled_at, round(r.seconds, 1)) for r in runs])
    assert "ABORTED" in "".join(r.output for r in runs)  # a restart reported a dead session

    found = asyncio.run(invariants(data_dir))
    assert {k: v for k, v in found.items() if v} == {}, found
    assert log_problems(data_dir) == []
    print(
        f"{kills} SIGKILLs in {len(runs)} runs; killed at "
        + ", ".join(f"{r.signalled_at:.1f}s" for r in runs if r.signalled_at is not None)
    )
