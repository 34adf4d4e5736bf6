"""A PAPER session on the kernel keeps the protection figures where each reader
finds them: /state's running tally, the stored session summary (watchdog
escalations, races), and the report and burn-in, which read the database; all
agree on the same trades."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import pytest_asyncio

from aitrapp.db import repo
from aitrapp.report.burnin import evaluate_session
from aitrapp.report.data import load_daily_report
from aitrapp.runtime import Runtime

from .helpers import BUSY_ENGINE, options, run_session, settings_for

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture(scope="module")
async def rt(module_db: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Runtime]:
    runtime = await run_session(
        settings_for(module_db, tmp_path_factory.mktemp("kernel-protection")),
        options(engine=BUSY_ENGINE),
    )
    try:
        assert runtime.kernel is not None
        yield runtime
    finally:
        await runtime.close()


async def test_state_summary_report_and_burn_in_agree(rt: Runtime) -> None:
    sid = rt.session_id
    assert sid is not None
    live = rt.state()["protection"]
    trades = await rt.pool.fetchval("SELECT count(*) FROM trades WHERE session_id = $1", sid)
    assert live["trades"] == trades > 0, live
    assert sum(live["exits"].values()) == trades

    row = await repo.get_session(rt.pool, sid)
    assert row is not None
    assert row.summary["protection"] == live  # stored as /state showed it at the end

    report = await load_daily_report(rt.pool, session_id=sid, now=datetime.now(UTC))
    verdict = await evaluate_session(rt.pool, sid, now=datetime.now(UTC))
    for p in (report.protection, verdict.protection):
        assert p is not None
        assert p.exits == live["exits"]
        assert p.watchdog == live["watchdog"]  # read back from the summary
        assert (p.double_exits, p.unraced_double_exits) == (
            live["double_exits"],
            live["unraced_double_exits"],
        )
        assert p.losses == live["loss_over_risk"]["losses"]
        assert p.loss_risk_worst == pytest.approx(live["loss_over_risk"]["worst"], abs=1e-3)
    assert next(c for c in verdict.criteria if c.name == "protection").passed
