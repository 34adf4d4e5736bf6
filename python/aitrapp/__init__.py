"""AITRAPP: automated intraday trading for NSE, Rust core with a Python control plane."""

from aitrapp._core import (
    Instrument,
    Price,
    __version__,
    broker_tag,
    order_client_id,
    parse_order_client_id,
    plan_client_id,
)
from aitrapp.exceptions import (
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
    "Instrument",
    "InstrumentError",
    "Price",
    "PriceError",
    "__version__",
    "broker_tag",
    "order_client_id",
    "parse_order_client_id",
    "plan_client_id",
]
