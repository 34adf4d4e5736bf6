"""Brokers: the `Broker` protocol, the paper simulator and the Kite adapter."""

from aitrapp.brokers.base import (
    Broker,
    BrokerError,
    BrokerPosition,
    OrderRequest,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Product,
    Validity,
)

__all__ = [
    "Broker",
    "BrokerError",
    "BrokerPosition",
    "OrderRequest",
    "OrderStatus",
    "OrderType",
    "OrderUpdate",
    "Product",
    "Validity",
]
