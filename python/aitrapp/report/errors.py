"""Errors of the report, burn-in and LIVE-gate layer."""

from __future__ import annotations

from aitrapp.exceptions import AitrappError


class ReportError(AitrappError):
    """A report or burn-in cannot be produced: no such session or date, or bad
    arguments. The message names the argument."""
