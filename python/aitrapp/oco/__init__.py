"""OCO brackets: the Rust state machine (``OcoBracket``) and the ``OCOManager`` that runs it."""

from aitrapp._core import (
    BracketSpec,
    OcoBracket,
    OcoCommand,
    OcoError,
    OcoFill,
    OcoOrder,
    OcoTransition,
)
from aitrapp.oco.errors import BracketExistsError, FlattenTimeoutError, OcoHaltedError
from aitrapp.oco.manager import OCOManager
from aitrapp.oco.records import (
    BracketResult,
    BracketSnapshot,
    EntryFill,
    ExitFill,
    Hook,
    OcoAlert,
    TransitionRecord,
    WorkingOrder,
    command_dict,
    fill_dict,
)

__all__ = [
    "BracketExistsError",
    "BracketResult",
    "BracketSnapshot",
    "BracketSpec",
    "EntryFill",
    "ExitFill",
    "FlattenTimeoutError",
    "Hook",
    "OCOManager",
    "OcoAlert",
    "OcoBracket",
    "OcoCommand",
    "OcoError",
    "OcoFill",
    "OcoHaltedError",
    "OcoOrder",
    "OcoTransition",
    "TransitionRecord",
    "WorkingOrder",
    "command_dict",
    "fill_dict",
]
