"""`/state` on a kernel session holds to the API contract while positions
are open: every field the schema requires, the stop of each position."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from aitrapp.api.schemas import StateOut
from aitrapp.runtime import start_runtime
from aitrapp.settings import load_settings

from .paper_session import paper_options


async def test_state_of_a_kernel_session_with_open_positions(tmp_path: Path, pg_url: str) -> None:
    settings = load_settings(database_url=pg_url, data_dir=tmp_path, logs_dir=tmp_path / "logs")
    opts = paper_options(tmp_path, symbols=("RELIANCE", "SBIN", "INFY"))
    rt = await start_runtime(settings, replace(opts, start_feed=False))
    seen: list[StateOut] = []

    async def check() -> None:  # between batches, while brackets are open
        state = StateOut.model_validate(rt.state())
        if state.positions:
            seen.append(state)

    rt.after_batch = check
    try:
        rt.start_feed()
        await rt.wait_feed()
        assert seen, "positions were open during the replay"
        last = seen[-1]
        for p in last.positions:
            assert p.stop_trigger is not None and p.stop_trigger > 0
        assert len(last.working_orders) == 2 * len(last.positions)
    finally:
        await rt.stop()
