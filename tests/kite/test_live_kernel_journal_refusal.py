"""LIVE: an entry the write-ahead journal cannot record is never placed.

(The kernel form of tests/sessions/test_db_outage.py's
``test_an_entry_in_the_moment_before_the_writer_notices_is_refused_and_said_why``.)
The database dies between two writer batches: the writer still says healthy, so
the kernel's entry gets as far as the journal, whose insert fails. No entry may
reach Kite, the engine must get the plan's risk back, and a DB_UNAVAILABLE risk
event must say why; once the connection is back the session trades again.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from aitrapp.db.embedded import free_port
from aitrapp.db.pool import create_pool

from .conftest import eventually
from .fake_kite import FakeKite
from .test_live_kernel import V_PRICES, _live, _tags
from .test_session_feed import RELIANCE, T10, full, kite_env

__all__ = ["kite_env"]  # the fixture, used by name

pytestmark = pytest.mark.integration


async def test_an_entry_the_journal_cannot_record_is_refused_and_said_why(
    fake: FakeKite,
    kite_env: Path,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rt = await _live(fake, db_url, tmp_path, monkeypatch)
    dead = await create_pool(
        f"postgresql://postgres@127.0.0.1:{free_port()}/postgres", min_size=0, max_size=1
    )
    try:
        journal, live = rt.journal, rt.live
        assert journal is not None and live is not None
        monkeypatch.setattr(journal, "_pool", dead)  # only the journal's connection is lost
        fake.set_ltp(RELIANCE, "1442.50")
        packets = [full(RELIANCE, p, T10 + i, 1000 + i) for i, p in enumerate(V_PRICES)]
        await fake.broadcast_ticks(packets)
        await eventually(lambda: rt.book().counters["decisions"] >= 1)
        await eventually(lambda: live.shell_risk_events >= 1)
        await live.drain()
        assert rt.writer.healthy  # the writer had not noticed anything
        assert _tags(fake, "EN") == [] and fake.placed() == []  # nothing reached Kite
        p = rt.book().portfolio  # the plan's risk is back
        assert p.open_positions == 0 and p.heat_rupees == 0
        assert live.kernel.open_brackets == 0
        await rt.writer.flush()
        events = await rt.pool.fetch(
            "SELECT details FROM risk_events WHERE session_id = $1 AND reason = 'DB_UNAVAILABLE'",
            rt.session_id,
        )
        plans = await rt.pool.fetch(
            "SELECT plan_id FROM decisions WHERE session_id = $1", rt.session_id
        )
        assert sorted(e["details"]["plan_id"] for e in events) == sorted(
            r["plan_id"] for r in plans
        )
        assert "database unavailable" in events[0]["details"]["error"]
        assert rt.book().counters["risk_blocks"] == len(events)
    finally:
        await rt.stop()
        await dead.close()
