"""What the control plane may ask of a running trading system.

The FastAPI app (and the CLI) talk to the trading runtime only through this
protocol, so the API never reaches into the kernel's or the runtime's internals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from aitrapp.exceptions import AitrappError

Mode = Literal["PAPER", "LIVE"]
TradingState = Literal["ACTIVE", "PAUSED", "HALTED"]


class ModeRefusedError(AitrappError):
    """Switching mode was refused; ``reasons`` says why (the LIVE gate)."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


class FlattenTimeoutError(AitrappError):
    """Flatten did not get every bracket terminal in time; working orders remain."""


@dataclass(frozen=True, slots=True)
class ModeChange:
    previous: Mode
    mode: Mode
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class FlattenResult:
    """A flatten: exits first (flat), then clean-up (nothing working), each timed."""

    elapsed_ms: float
    cancelled_orders: int  # cancels sent: targets, entries, stops not turned into exits
    exit_orders: int  # market exits: converted stops plus market orders placed
    open_positions_after: int
    working_orders_after: int
    state: TradingState
    converted_stops: int = 0  # stops turned into market exits by one modify
    flat_after_ms: float | None = None  # every position flat (None: not in time)
    clean_after_ms: float | None = None  # nothing working any more (None: not in time)

    @property
    def flat(self) -> bool:
        """No open position afterwards."""
        return self.open_positions_after == 0

    @property
    def clean(self) -> bool:
        """No working order afterwards."""
        return self.working_orders_after == 0

    @property
    def ok(self) -> bool:
        return self.flat and self.clean


@dataclass(frozen=True, slots=True)
class ComponentHealth:
    ok: bool
    detail: str = ""


class TradingControl(Protocol):
    @property
    def mode(self) -> Mode: ...

    @property
    def trading_state(self) -> TradingState: ...

    async def set_mode(self, mode: Mode, *, actor: str) -> ModeChange:
        """Raises ModeRefusedError with the gate's reasons."""
        ...

    async def pause(self, *, actor: str) -> TradingState:
        """No new entries; open brackets keep being managed."""
        ...

    async def resume(self, *, actor: str) -> TradingState: ...

    async def flatten(self, *, actor: str, timeout_s: float = 10.0) -> FlattenResult:
        """Kill switch: HALTED first (no new entries can race it), then exit every
        open position at market (a working stop becomes the exit where the broker
        allows), then cancel what still works; returns once flat and clean."""
        ...

    def state(self) -> dict[str, Any]:
        """Snapshot for GET /state (JSON-ready)."""
        ...

    def health(self) -> dict[str, ComponentHealth]: ...


class RuntimeHandle(TradingControl, Protocol):
    """A started trading runtime, as the API's lifespan holds it.

    Built by ``aitrapp.runtime.start_runtime(settings, options)`` (components
    started in order: database pool + migrations check, writer, bus, the
    trading kernel (and, LIVE, the Kite broker), feed) and torn down in reverse
    by ``stop()``.
    """

    @property
    def pool(self) -> Any:  # aitrapp.db.pool.Pool
        ...

    @property
    def bus(self) -> Any:  # aitrapp.bus.EventBus
        ...

    @property
    def metrics(self) -> Any:  # aitrapp.metrics.Metrics
        ...

    @property
    def session_id(self) -> Any:  # uuid.UUID | None
        ...

    async def stop(self) -> None: ...
