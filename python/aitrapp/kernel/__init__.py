"""The Python shell of the trading kernel (``aitrapp._core.Kernel``).

The kernel runs the engine, every OCO bracket and the paper venue in one
event-exact loop in Rust. Python feeds it tick columns, and turns its event
batches into trades with charges (one contract note per trade), rows to
persist and messages to publish. See ``docs/kernel.md``.
"""

from aitrapp.kernel.replay import KernelDay, KernelTrade, replay_day

__all__ = ["KernelDay", "KernelTrade", "replay_day"]
