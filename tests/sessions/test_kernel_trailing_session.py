"""A whole PAPER session on the kernel with trailing stops (``trail_atr_mult``):
it runs to the end, its stops trail (the moves are persisted as bracket
transitions and as the venue's order updates when each move arrived), and
every trade still adds up."""

from __future__ import annotations

from pathlib import Path

from aitrapp.config import EmaCrossConfig, EngineConfig, RiskConfig, StrategiesConfig
from aitrapp.kernel.options import BracketOptions

from .conftest import MakeDb
from .helpers import count, options, run_session, settings_for

# The busy test engine with wide targets: positions stay open long enough to trail.
WIDE = EngineConfig(
    risk=RiskConfig(daily_loss_stop_pct=100.0, cooldown_seconds=60, max_trades_per_day=40),
    strategies=StrategiesConfig(
        ema_cross=EmaCrossConfig(enabled=True, stop_ticks=60, tp_ticks=400),
    ),
)


async def test_a_kernel_session_with_trailing_stops_trails(make_db: MakeDb, tmp_path: Path) -> None:
    bracket = BracketOptions(entry_type="MARKET", trail_atr_mult=0.3)
    rt = await run_session(
        settings_for(await make_db(), tmp_path),
        options(engine=WIDE, bracket=bracket),
    )
    try:
        pool, sid = rt.pool, rt.session_id
        assert rt.kernel is not None and sid is not None
        c = rt.book().counters
        assert await count(pool, "trades", sid) == c["trades"] > 0
        # The trail itself: a price update that moved a stop (bracket audit trail).
        moved = await pool.fetchval(
            "SELECT count(*) FROM bracket_transitions WHERE session_id = $1 "
            "AND event = 'PRICE_UPDATE'",
            sid,
        )
        assert moved > 0
        # The venue's answer to each move: a stop that reported being working
        # again after its acknowledgement (its modification arrived).
        rearmed = await pool.fetch(
            "SELECT o.client_order_id, count(*) AS working FROM orders o "
            "JOIN order_events e ON e.client_order_id = o.client_order_id "
            "WHERE o.session_id = $1 AND o.role = 'STOP' "
            "AND e.status NOT IN ('COMPLETE', 'CANCELLED', 'REJECTED') "
            "GROUP BY o.client_order_id HAVING count(*) > 1",
            sid,
        )
        assert rearmed, "no stop modification reached the venue"
        open_positions = await pool.fetchval(
            "SELECT count(*) FROM positions WHERE session_id = $1 AND status = 'OPEN'", sid
        )
        assert open_positions == 0
    finally:
        await rt.close()
