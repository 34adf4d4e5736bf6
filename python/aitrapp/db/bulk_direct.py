"""The bulk lane's fast path: append-only rows COPYed straight into their tables.

Most rows of a kernel batch only append: risk refusals (a signal and a risk
event each), order events, fills and bracket steps. Staged, each costs a COPY
into a temp table plus an ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``
that computes its id, time and rupees row by row. Here the same values are
computed client side (:func:`aitrapp._core.encode_copy`, the SQL's twins to
the bit: md5 ids, ``timestamptz`` from nanoseconds, exact rupees from paise)
and the rows go into the tables with one binary COPY each.

A plain COPY has no ``ON CONFLICT``: a write whose rows are already there (an
acknowledgement lost, a spill replayed) or a bad row fails it, and the writer
applies the write again on the staged path (idempotent, isolating bad rows),
which gives exactly what it gave before. So the fast path changes how a write
is applied, never what lands.

Foreign keys, when the write runs with per-row checks off: each risk event's
signal is the row next to it in the same COPY (same key), and the sessions and
orders the rows name are checked set-based here, as the staged checks do.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aitrapp._core import encode_copy

Record = tuple[Any, ...]
Spec = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Payload:
    """One binary COPY into ``table`` (its ``columns``, in payload order)."""

    table: str
    columns: tuple[str, ...]
    data: bytes


@dataclass(frozen=True, slots=True)
class Reference:
    """Values of a write that must exist as ``parent.column``."""

    table: str
    parent: str
    column: str
    sql_type: str
    values: frozenset[Any]


def _scopes(values: Sequence[Any]) -> Any:
    """The id scope (a session id, a fill scope) as text: one for all rows when
    they share it (the usual case), else one per row."""
    first = values[0]
    if values.count(first) == len(values):  # identity first: C speed for a shared object
        return None if first is None else str(first)
    return [None if v is None else str(v) for v in values]


def _distinct(values: list[Any]) -> frozenset[Any]:
    first = values[0]
    return frozenset((first,)) if values.count(first) == len(values) else frozenset(values)


def _col(records: Sequence[Record], i: int) -> list[Any]:
    return [r[i] for r in records]


def _details(details: str | None, strategy: str) -> str:
    """The staged SQL's ``"k=v;k=v" -> jsonb || {strategy}``: split on ';', empty
    parts skipped, the value after the first '=' ('' without one), the last of
    a repeated key kept, strategy last."""
    out: dict[str, str] = {}
    for part in (details or "").split(";"):
        if part:
            key, _, value = part.partition("=")
            out[key] = value
    out["strategy"] = strategy
    return json.dumps(out)


def _each(fn: Callable[..., str], *columns: Sequence[Any]) -> list[str]:
    """``fn`` of each row's values, worked out once per distinct combination."""
    keys = list(zip(*columns, strict=True))
    memo = {k: fn(*k) for k in set(keys)}
    return [memo[k] for k in keys]


def _blocks(records: Sequence[Record]) -> tuple[list[Payload], list[Reference]]:
    # session_id, seq, ts_ns, token, tradingsymbol, strategy, side, reason,
    # entry, stop, tp, details
    n = len(records)
    sids, seqs, ts = _col(records, 0), _col(records, 1), _col(records, 2)
    scope = _scopes(sids)
    signal_id = ("md5", seqs, scope, "block-signal")
    signals = encode_copy(
        [
            signal_id, ("uuid", scope), ("ts", ts), ("int8", _col(records, 3)),
            ("text", _col(records, 4)), ("text", _col(records, 5)), ("text", _col(records, 6)),
            ("rupees", _col(records, 8)), ("rupees", _col(records, 9)),
            ("rupees", _col(records, 10)),
        ],
        n,
    )  # fmt: skip
    events = encode_copy(
        [
            ("md5", seqs, scope, "risk-event"), ("uuid", scope), signal_id, ("ts", ts),
            ("text", _col(records, 7)),
            ("jsonb", _each(_details, _col(records, 11), _col(records, 5))),
        ],
        n,
    )  # fmt: skip
    columns = ("id", "session_id", "ts", "instrument_token", "tradingsymbol", "strategy",
               "side", "entry", "stop", "tp")  # fmt: skip
    return [
        Payload("signals", columns, signals),
        Payload(
            "risk_events", ("id", "session_id", "signal_id", "ts", "reason", "details"), events
        ),
    ], [Reference("risk_events", "sessions", "id", "uuid", _distinct(sids))]


def _payload(message: str | None, triggered: bool | None) -> str:
    return json.dumps({"message": message or None, "triggered": triggered})


def _updates(records: Sequence[Record]) -> tuple[list[Payload], list[Reference]]:
    # session_id, seq, client_order_id, broker_order_id, ts_ns, status,
    # filled_qty, avg_price, message, triggered
    data = encode_copy(
        [
            ("md5", _col(records, 1), _scopes(_col(records, 0)), "order-event"),
            ("text", _col(records, 2)), ("text", _col(records, 3)), ("ts", _col(records, 4)),
            ("text", _col(records, 5)), ("int4", _col(records, 6)),
            ("rupees0", [0 if v is None else v for v in _col(records, 7)]),
            ("jsonb", _each(_payload, _col(records, 8), _col(records, 9))),
        ],
        len(records),
    )  # fmt: skip
    columns = ("id", "client_order_id", "broker_order_id", "ts", "status", "filled_qty",
               "avg_price", "payload")  # fmt: skip
    # The staged updates check their orders (the stage stays: it folds the statuses).
    return [Payload("order_events", columns, data)], []


def _fills(records: Sequence[Record]) -> tuple[list[Payload], list[Reference]]:
    # fill_scope, order_id, filled_qty, client_order_id, qty, price, ts_ns
    scopes = _col(records, 0)
    keys = [f"{r[1]}:{r[2]}" for r in records]
    coids = _col(records, 3)
    data = encode_copy(
        [
            ("md5", keys, _scopes(scopes), "fill"), ("text", scopes), ("text", keys),
            ("text", coids), ("text", [None if r[1] is None else str(r[1]) for r in records]),
            ("int4", _col(records, 4)), ("rupees", _col(records, 5)), ("ts", _col(records, 6)),
        ],
        len(records),
    )  # fmt: skip
    columns = ("id", "fill_scope", "broker_fill_key", "client_order_id", "broker_order_id",
               "qty", "price", "ts")  # fmt: skip
    refs = [Reference("fills", "orders", "client_order_id", "text", _distinct(coids))]
    return [Payload("fills", columns, data)], refs


def _transitions(records: Sequence[Record]) -> tuple[list[Payload], list[Reference]]:
    # session_id, plan_id, seq, ts_ns, from_state, to_state, event, commands
    sids = _col(records, 0)
    data = encode_copy(
        [
            ("text", _col(records, 1)), ("int4", _col(records, 2)), ("ts", _col(records, 3)),
            ("text", _col(records, 4)), ("text", _col(records, 5)), ("text", _col(records, 6)),
            ("uuid", _scopes(sids)), ("jsonb", _col(records, 7)),
        ],
        len(records),
    )  # fmt: skip
    columns = ("plan_id", "seq", "ts", "from_state", "to_state", "event", "session_id",
               "commands")  # fmt: skip
    refs = [Reference("bracket_transitions", "sessions", "id", "uuid", _distinct(sids))]
    return [Payload("bracket_transitions", columns, data)], refs


# Stage table -> its rows as direct payloads. A stage listed here is not staged
# on the fast path, except bulk_updates: the orders' status fold reads it, so it
# is staged too and only its order_events insert moves here.
DIRECT: dict[str, Callable[[Sequence[Record]], tuple[list[Payload], list[Reference]]]] = {
    "bulk_blocks": _blocks,
    "bulk_updates": _updates,
    "bulk_fills": _fills,
    "bulk_transitions": _transitions,
}


def check_sql(ref: Reference) -> str:
    """A query raising ``bulk_orphan`` on the first value with no parent row ($1: the values)."""
    return (
        f"SELECT bulk_orphan(format('{ref.table}: %s has no {ref.parent}.{ref.column} row', v)) "
        f"FROM unnest($1::{ref.sql_type}[]) AS v WHERE v IS NOT NULL AND NOT EXISTS "
        f"(SELECT 1 FROM {ref.parent} p WHERE p.{ref.column} = v) LIMIT 1"
    )


__all__ = ["DIRECT", "Payload", "Reference", "check_sql"]
