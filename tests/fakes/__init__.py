"""Test doubles shared across the suite."""

from fakes.fake_broker import FakeBroker, FakeOrder

__all__ = ["FakeBroker", "FakeOrder"]
