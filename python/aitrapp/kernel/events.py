"""Event batches of the kernel: ``{table: {column: list}}``, appended in order."""

from __future__ import annotations

from typing import Any

EventBatch = dict[str, dict[str, list[Any]]]

TABLES = (
    "decisions",
    "blocks",
    "orders",
    "updates",
    "fills",
    "transitions",
    "trades",
    "alerts",
)


def extend(into: EventBatch, batch: EventBatch | None) -> None:
    """Appends every row of ``batch`` to ``into`` (columns stay aligned)."""
    if not batch:
        return
    for table, cols in batch.items():
        dst = into.setdefault(table, {})
        for name, values in cols.items():
            dst.setdefault(name, []).extend(values)


def rows(batch: EventBatch, table: str) -> list[dict[str, Any]]:
    """The rows of one table as dicts (tests, reports; not for hot paths)."""
    cols = batch.get(table) or {}
    if not cols:
        return []
    names = list(cols)
    return [dict(zip(names, vals, strict=True)) for vals in zip(*cols.values(), strict=True)]


def count(batch: EventBatch, table: str) -> int:
    cols = batch.get(table) or {}
    first = next(iter(cols.values()), [])
    return len(first)
