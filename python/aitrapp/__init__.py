"""AITRAPP: automated intraday trading for NSE, Rust core with a Python control plane."""

from aitrapp._core import (
    BracketSpec,
    Decision,
    Engine,
    Instrument,
    OcoBracket,
    OcoError,
    PortfolioError,
    Price,
    RiskBlock,
    __version__,
    broker_tag,
    order_client_id,
    parse_order_client_id,
    plan_client_id,
)
from aitrapp.config import EngineConfig
from aitrapp.exceptions import (
    AitrappError,
    CalendarError,
    ConfigError,
    IdError,
    InstrumentError,
    PriceError,
    ReplayError,
)

__all__ = [
    "AitrappError",
    "BracketSpec",
    "CalendarError",
    "ConfigError",
    "Decision",
    "Engine",
    "EngineConfig",
    "IdError",
    "Instrument",
    "InstrumentError",
    "OcoBracket",
    "OcoError",
    "PortfolioError",
    "Price",
    "PriceError",
    "ReplayError",
    "RiskBlock",
    "__version__",
    "broker_tag",
    "order_client_id",
    "parse_order_client_id",
    "plan_client_id",
]
