"""The AITRAPP exception tree, rooted at :class:`AitrappError`.

Errors raised by the Rust core are created in ``aitrapp._core`` (one mapping
in ``core-rs/aitrapp-py/src/errors.rs``); Python-side errors subclass the same
root so ``except AitrappError`` catches everything the system raises on purpose.
"""

from aitrapp._core import (
    AitrappError,
    ConfigError,
    IdError,
    InstrumentError,
    PriceError,
)

__all__ = [
    "AitrappError",
    "ConfigError",
    "IdError",
    "InstrumentError",
    "PriceError",
]
