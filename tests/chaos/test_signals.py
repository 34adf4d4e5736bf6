"""SIGINT or SIGTERM to `aitrapp paper` at random moments: a clean end within seconds.

Start-up (embedded PostgreSQL starting, migrations, reconciliation), mid-session,
and serving after the close (``--keep-serving``): each signal ends the process
within a few seconds, with its session ended (ABORTED when cut short), positions
flat, nothing left working, the writer drained and the embedded PostgreSQL
released (stopped, as its only holder left). The next start therefore finds
broker and database in agreement and trades. Moments are drawn from a seeded
generator (reproducible).
"""

from __future__ import annotations

import asyncio
import random
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import ChaosSizes
from .paper_proc import SLOW, When, invariants, log_problems, pgdata, run_paper, stop_embedded

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

SEED = 20260305  # the signal moments (synthetic test schedule)
EXIT_WITHIN_S = 10.0  # "a few seconds", with room for a loaded machine
# 130/143: stopped by the signal; 0: the run ended first (or serving ended on it);
# -2/-15: the signal came while Python was still importing, before anything started.
CLEAN_EXITS = {0, 130, 143, -2, -15}


def moments(rng: random.Random, n: int) -> list[tuple[When, list[str]]]:
    """Start-up, mid-session and serving after the close, in turn (the i-th of each kind
    at a random point of its own slice)."""
    out: list[tuple[When, list[str]]] = []
    for i in range(n):
        kind, k = i % 3, i // 3
        slices = (n - kind + 2) // 3
        frac = rng.uniform(k / slices, (k + 1) / slices)
        if kind == 0:
            out.append((When(seconds=0.3 + 3.0 * frac), []))
        elif kind == 1:
            out.append((When(progress=0.02 + 0.96 * frac), []))
        else:
            out.append((When(after_close=2.0 * frac), ["--keep-serving"]))
    return out


@pytest.fixture
def data_dir(pg_dir: Path) -> Iterator[Path]:
    try:
        yield pg_dir
    finally:
        stop_embedded(pg_dir)


def test_signals_at_random_moments_end_cleanly(data_dir: Path, chaos: ChaosSizes) -> None:
    rng = random.Random(SEED)
    seen: list[tuple[str, float | None, int | None, float | None]] = []
    for when, extra in moments(rng, chaos.signals):
        sig = rng.choice([signal.SIGINT, signal.SIGTERM])
        run = run_paper(data_dir, *extra, *SLOW, when=when, sig=sig)
        seen.append((sig.name, run.signalled_at, run.returncode, run.exit_after_signal))
        if run.signalled_at is None:  # it finished first: a normal run
            assert run.returncode == 0, run.output[-3000:]
            continue
        assert run.returncode in CLEAN_EXITS, (sig.name, run.returncode, run.output[-3000:])
        assert run.exit_after_signal is not None and run.exit_after_signal < EXIT_WITHIN_S, seen
        # The embedded server was released (its only holder left).
        assert not (pgdata(data_dir) / "postmaster.pid").exists(), run.output[-2000:]
        if run.returncode in (130, 143):
            assert "stopped by SIG" in run.output, run.output[-2000:]
    # The next start agrees with the database left behind and trades normally.
    final = run_paper(data_dir)
    assert final.returncode == 0, final.output[-3000:]
    assert "PAUSED" not in final.output
    found = asyncio.run(invariants(data_dir))
    assert {k: v for k, v in found.items() if v} == {}, found
    assert log_problems(data_dir) == []
    print("signals (name, sent at, exit code, exit after):", seen)
