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
    PortfolioError,
    PriceError,
    VenueError,
)


class ReplayError(AitrappError):
    """A replay file is malformed; the message names the file, row and column."""


class CalendarError(AitrappError):
    """A date is not an NSE trading day, or session times are out of order."""


__all__ = [
    "AitrappError",
    "CalendarError",
    "ConfigError",
    "IdError",
    "InstrumentError",
    "PortfolioError",
    "PriceError",
    "ReplayError",
    "VenueError",
]
