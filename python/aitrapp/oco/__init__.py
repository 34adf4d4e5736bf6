"""OCO brackets: the Rust state machine (``OcoBracket``), which the trading kernel
runs one per plan (see docs/oco.md and docs/kernel.md)."""

from aitrapp._core import (
    BracketSpec,
    OcoBracket,
    OcoCommand,
    OcoError,
    OcoFill,
    OcoOrder,
    OcoTransition,
)

__all__ = [
    "BracketSpec",
    "OcoBracket",
    "OcoCommand",
    "OcoError",
    "OcoFill",
    "OcoOrder",
    "OcoTransition",
]
