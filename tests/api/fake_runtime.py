"""A stand-in for ``aitrapp.runtime.Runtime``: the RuntimeHandle protocol, in memory.

It uses the real bus and metrics and a real database pool (for the journal
reads), and records every control call with its actor so tests can check
what the API asked for. It keeps no order book: the end-to-end tests in
``test_e2e_runtime.py`` run the real runtime for that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID, uuid4

from aitrapp.bus import InProcessBus
from aitrapp.control import (
    ComponentHealth,
    FlattenResult,
    FlattenTimeoutError,
    Mode,
    ModeChange,
    ModeRefusedError,
    TradingState,
)
from aitrapp.db import repo
from aitrapp.db.pool import Pool
from aitrapp.metrics import Metrics


@dataclass
class Call:
    action: str
    actor: str
    args: dict[str, Any] = field(default_factory=dict)


class FakeRuntime:
    def __init__(self, pool: Pool, *, session_id: UUID | None = None) -> None:
        self._pool = pool
        self._bus = InProcessBus()
        self._metrics = Metrics()
        self._session_id = session_id or uuid4()
        self._mode: Mode = "PAPER"
        self._state: TradingState = "ACTIVE"
        self.calls: list[Call] = []
        self.components: dict[str, ComponentHealth] = {
            "database": ComponentHealth(ok=True, detail="pool 1/4"),
            "feed": ComponentHealth(ok=True, detail="synthetic"),
        }
        self.live_refusals: list[str] = []  # what the LIVE gate says, if anything
        self.working_orders = 4
        self.open_positions = 2
        self.flatten_leaves: tuple[int, int] = (0, 0)  # (positions, orders) after a flatten
        self.flatten_raises = False
        self.stopped = False

    @classmethod
    async def start(cls, pool: Pool) -> FakeRuntime:
        """With its session row written, as the real runtime does first."""
        rt = cls(pool)
        await repo.create_session(
            pool,
            repo.SessionRow(
                id=rt._session_id,
                trading_date=date(2026, 1, 5),
                mode="PAPER",
                feed="synthetic",
                started_at=datetime(2026, 1, 5, 3, 30, tzinfo=UTC),
            ),
        )
        return rt

    # ---- RuntimeHandle ----
    @property
    def pool(self) -> Pool:
        return self._pool

    @property
    def bus(self) -> InProcessBus:
        return self._bus

    @property
    def metrics(self) -> Metrics:
        return self._metrics

    @property
    def session_id(self) -> UUID | None:
        return self._session_id

    @property
    def mode(self) -> Mode:
        return self._mode

    @property
    def trading_state(self) -> TradingState:
        return self._state

    async def set_mode(self, mode: Mode, *, actor: str) -> ModeChange:
        self.calls.append(Call("mode", actor, {"mode": mode}))
        if mode == "LIVE" and self.live_refusals:
            raise ModeRefusedError(list(self.live_refusals))
        previous, self._mode = self._mode, mode
        return ModeChange(previous=previous, mode=mode)

    async def pause(self, *, actor: str) -> TradingState:
        self.calls.append(Call("pause", actor))
        if self._state == "ACTIVE":
            self._state = "PAUSED"
        return self._state

    async def resume(self, *, actor: str) -> TradingState:
        self.calls.append(Call("resume", actor))
        self._state = "ACTIVE"
        return self._state

    async def flatten(self, *, actor: str, timeout_s: float = 10.0) -> FlattenResult:
        self.calls.append(Call("flatten", actor, {"timeout_s": timeout_s}))
        self._state = "HALTED"
        if self.flatten_raises:
            raise FlattenTimeoutError(f"2 brackets not terminal after {timeout_s} s")
        # Each open position's stop became its exit; the rest of the orders were cancelled.
        cancelled, exits = self.working_orders - self.open_positions, self.open_positions
        self.open_positions, self.working_orders = self.flatten_leaves
        return FlattenResult(
            elapsed_ms=12.5,
            cancelled_orders=cancelled,
            exit_orders=exits,
            open_positions_after=self.open_positions,
            working_orders_after=self.working_orders,
            state=self._state,
            converted_stops=exits,
            flat_after_ms=None if self.open_positions else 4.25,
            clean_after_ms=None if self.open_positions or self.working_orders else 12.5,
        )

    def state(self) -> dict[str, Any]:
        """The shape of ``aitrapp.runtime.Runtime.state()``."""
        position = {
            "plan_id": "p1", "tradingsymbol": "RELIANCE", "side": "BUY", "qty": 10,
            "avg_entry": 2500.05, "last_price": 2501.3, "unrealized_pnl": 12.5,
            "stop_trigger": 2480.0, "state": "OPEN",
        }  # fmt: skip
        order = {
            "plan_id": "p1", "client_order_id": "p1:STOP", "broker_order_id": "7",
            "role": "STOP", "side": "SELL", "order_type": "SL-M", "qty": 10, "filled": 0,
            "price": None, "trigger": 2480.0, "status": "WORKING",
        }  # fmt: skip
        latency = {
            "count": 1000, "p50_ms": 0.002, "p99_ms": 0.01, "p999_ms": 0.02, "max_ms": 0.5,
            "slo_ms": 1.0, "slo_compliance": 1.0,
        }  # fmt: skip
        return {
            "mode": self._mode,
            "trading_state": self._state,
            "session": {
                "id": str(self._session_id),
                "trading_date": "2026-01-05",
                "feed": {"kind": "synthetic", "label": "SYNTHETIC"},
                "progress": 0.25,
                "feed_done": False,
            },
            "positions": [position] * self.open_positions,
            "working_orders": [order] * self.working_orders,
            "daily_pnl": {
                "realized_gross": 361.0,
                "unrealized": -12.5,
                "total_gross": 348.5,
                "net_after_charges": "-120.75",
                "daily_loss_halted": False,
            },
            "portfolio_heat_pct": 0.8,
            "counters": {"ticks": 1000, "signals": 3, "decisions": 2, "trades": 1},
            "last_tick_at": "2026-01-05T04:00:00+00:00",
            "tick_to_decision": latency,
            "order_latency": {**latency, "slo_ms": None, "slo_compliance": None},
            "alerts": [],
            "flatten": None,
            "new_key": {"kept": True},
        }

    def health(self) -> dict[str, ComponentHealth]:
        return dict(self.components)

    async def stop(self) -> None:
        self.stopped = True
        await self._bus.close()
