"""Errors of the OCO manager (the machine's own errors are ``OcoError`` from the core)."""

from __future__ import annotations

from aitrapp._core import AitrappError


class OcoHaltedError(AitrappError):
    """``open_bracket`` after ``flatten``: no new entries until ``resume()``."""


class BracketExistsError(AitrappError):
    """A bracket with this plan id is already managed (a retried plan is not a new trade)."""


class FlattenTimeoutError(AitrappError):
    """``flatten`` could not bring every bracket to a terminal state in time."""
