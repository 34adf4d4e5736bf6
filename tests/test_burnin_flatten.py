"""The burn-in's flatten criterion reads flat and clean apart, with their times."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from aitrapp.db import repo
from aitrapp.db.pool import Pool
from aitrapp.db.repo import AuditRow
from aitrapp.report.burnin import BurninCriteria, Verdict, evaluate_session
from test_burnin_support import TRADES, SessionBuilder, ist

pytestmark = pytest.mark.integration

NOW = datetime(2026, 1, 5, 10, 30, tzinfo=UTC)


async def drilled(pool: Pool, result: dict[str, Any]) -> Verdict:
    """A passing session whose one flatten drill answered ``result``."""
    s = await SessionBuilder.start(pool)
    await s.signals(55)
    for spec in TRADES:
        await s.bracket(spec)
    await repo.execute(
        pool,
        AuditRow(
            ts=ist(15, 10, s.day),
            actor="session",
            action="flatten",
            session_id=s.id,
            params={"drill": True},
            result=result,
        ),
    )
    await s.end()
    return await evaluate_session(pool, s.id, now=NOW, criteria=BurninCriteria())


def flatten(v: Verdict) -> Any:
    return next(c for c in v.criteria if c.name == "flatten")


async def test_flat_and_clean_times_are_reported(db_pool: Pool) -> None:
    v = await drilled(
        db_pool,
        {"elapsed_ms": 180, "ok": True, "flat": True, "clean": True,
         "flat_after_ms": 42.5, "clean_after_ms": 170},
    )  # fmt: skip
    c = flatten(v)
    assert c.passed and c.measured == 180
    assert c.detail == "180 ms (audit_log), flat after 42.5 ms, clean after 170 ms"


@pytest.mark.parametrize(
    ("flat", "clean", "want"),
    [
        (False, True, "not flat afterwards (positions left open)"),
        (True, False, "not clean afterwards (orders left working)"),
    ],
)
async def test_not_flat_or_not_clean_fails_and_says_which(
    db_pool: Pool, flat: bool, clean: bool, want: str
) -> None:
    v = await drilled(
        db_pool,
        {"elapsed_ms": 180, "ok": True, "flat": flat, "clean": clean,
         "flat_after_ms": 42.5 if flat else None, "clean_after_ms": None},
    )  # fmt: skip
    c = flatten(v)
    assert not c.passed
    assert want in c.detail
