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
from .paper_proc import SLOW, Run, When, invariants, log_problems, run_paper, stop_embedded

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

SEED = 20260304  # the kill moments (synthetic test schedule)
STARTUP_S = (0.3, 2.5)  # embedded PostgreSQL, migrations, reconciliation


def kill_schedule(rng: random.Random, kills: int) -> list[When]:
    """One kill in four during start-up, the others at random points of the session's
    replay (stratified, so even two kills see start-up and mid-session)."""
    plan: list[When] = []
    mid = [k for k in range(kills) if k % 4 != 0]
    for k in range(kills):
        if k % 4 == 0:
            plan.append(When(seconds=rng.uniform(*STARTUP_S)))
        else:
            i = mid.index(k)
            lo, hi = 0.02 + 0.96 * i / len(mid), 0.02 + 0.96 * (i + 1) / len(mid)
            plan.append(When(progress=rng.uniform(lo, hi)))
    return plan


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
    schedule = kill_schedule(random.Random(SEED), chaos.kills)
    runs: list[Run] = []
    kills = 0
    args: list[str] = []  # the first run: as a user would start it
    while kills < chaos.kills and len(runs) < 4 * chaos.kills + 4:
        run = run_paper(data_dir, *args, *SLOW, when=schedule[kills])
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
    mid_session = [r for r in runs if r.progress_at_signal is not None]
    assert mid_session, "no kill hit a running session"
    # A restart said which sessions it found RUNNING with their process dead.
    assert "marked ABORTED at its last event" in "".join(r.output for r in runs)

    found = asyncio.run(invariants(data_dir))
    assert {k: v for k, v in found.items() if v} == {}, found
    assert log_problems(data_dir) == []
    print(
        f"{kills} SIGKILLs in {len(runs)} runs; killed at "
        + ", ".join(
            f"{r.signalled_at:.1f}s"
            + (f" ({r.progress_at_signal:.0%})" if r.progress_at_signal else "")
            for r in runs
            if r.signalled_at is not None
        )
    )
