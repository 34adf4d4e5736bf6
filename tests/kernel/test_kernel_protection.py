"""The protection figures a kernel session keeps for ``/state`` and its summary
are the ones computed from the same day replayed without a database (SYNTHETIC
gappy data from aitrapp.research.protection_check)."""

from __future__ import annotations

import json
from typing import Any
from uuid import uuid4

from aitrapp._core import Kernel
from aitrapp.bus import InProcessBus
from aitrapp.calendar import ist_date, ist_ns
from aitrapp.config import EngineConfig
from aitrapp.kernel.book_view import BookView
from aitrapp.kernel.driver import KernelDriver
from aitrapp.kernel.events import rows
from aitrapp.kernel.replay import CLOSE, replay_day
from aitrapp.metrics import Metrics
from aitrapp.report.protection import facts_of, summarize
from aitrapp.research.protection_check import GappyParams, gappy_days, gappy_instruments


class _Writer:
    """Takes every write (submit, submit_many, submit_batch...) and keeps nothing:
    the figures come from the events."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: True


def test_state_protection_matches_the_replayed_day() -> None:
    params = GappyParams(days=2, symbols=3, seed=5)
    instruments = gappy_instruments(params.symbols)
    config = EngineConfig()
    for _, ticks in gappy_days(params):
        day = replay_day(ticks, instruments, config)
        targets = {d["plan_id"]: d["tp"] / 100 for d in rows(day.events, "decisions")}
        alerts = [a["code"] for a in rows(day.events, "alerts")]
        expected = summarize(
            (facts_of(t, planned_tp=targets[t.plan_id]) for t in day.trades),
            watchdog={c: alerts.count(c) for c in set(alerts)},
        )
        assert expected.trades > 0  # the day traded: the comparison is not empty

        kernel = Kernel(config.to_core_json(), instruments, json.dumps({}), json.dumps({}))
        driver = KernelDriver(
            kernel,
            writer=_Writer(),  # type: ignore[arg-type]
            bus=InProcessBus(),
            metrics=Metrics(),
            session_id=uuid4(),
            instruments={i.instrument_token: i for i in instruments},
            fill_scope="paper:test",
        )
        for lo in range(0, len(ticks), 1_000):  # several batches: the tally runs on
            driver.run_batch(ticks.slice(lo, min(lo + 1_000, len(ticks))))
        last = int(ticks.ts_ns[-1])
        driver.finish(last, ist_ns(ist_date(last), CLOSE))

        snap = BookView.of_kernel(driver).protection
        assert snap == expected.to_json()
        assert driver.protection.open_plans == 0  # every plan traded or was cancelled
