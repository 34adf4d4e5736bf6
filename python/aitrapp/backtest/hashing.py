"""Content hashes: a replay is identified by what it replays, not by a file name.

``replay_sha`` is the SHA-256 of a day's tick columns (bytes, in feed order),
the definitions of the instruments those ticks name, and the simulation
settings that are not part of the engine's ``config_sha`` (paper venue,
bracket options). Together with ``config_sha`` it identifies a replayed
session: the same data under another name is the same run, and a corrected
file is a different one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, is_dataclass
from typing import Any

import numpy as np

from aitrapp._core import Instrument
from aitrapp.feeds.base import TickBatch

_COLUMNS = ("token", "ts_ns", "last_price", "last_qty", "volume", "bid", "ask", "oi")
_VERSION = b"aitrapp-replay-sha-v1\0"


def replay_sha(
    ticks: TickBatch,
    instruments: Iterable[Instrument],
    *settings: Any,
) -> str:
    """Hex SHA-256 of the ticks, the instruments they name and extra ``settings``
    (dataclasses or JSON-able values)."""
    h = hashlib.sha256(_VERSION)
    for name in _COLUMNS:
        col = np.ascontiguousarray(getattr(ticks, name))
        if col.dtype == np.float64:
            col = np.where(np.isnan(col), np.nan, col)  # one bit pattern for "absent"
            col = col + 0.0  # -0.0 -> 0.0
        h.update(name.encode() + b"\0")
        h.update(col.tobytes())
    h.update(b"synthetic\0" if ticks.synthetic else b"real\0")
    used = set(np.unique(ticks.token).tolist())
    for inst in sorted(instruments, key=lambda i: i.instrument_token):
        if inst.instrument_token in used:
            h.update(
                f"{inst.instrument_token}|{inst.exchange}|{inst.tradingsymbol}|{inst.segment}|"
                f"{inst.tick_paise}|{inst.lot_size}|{inst.freeze_qty}\n".encode()
            )
    for value in settings:
        plain = asdict(value) if is_dataclass(value) and not isinstance(value, type) else value
        h.update(json.dumps(plain, sort_keys=True, default=str).encode() + b"\0")
    return h.hexdigest()


__all__ = ["replay_sha"]
