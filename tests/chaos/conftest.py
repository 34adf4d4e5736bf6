"""Chaos suite settings: a bounded form inside ``make test``, the long form in ``make chaos``.

``AITRAPP_CHAOS=long`` (set by ``make chaos``) selects the long form: more
SIGKILLs, a 20 s database hang, more schemathesis examples. Each test reads
its sizes from :data:`CHAOS` so both forms check the same promises.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest


@dataclass(frozen=True, slots=True)
class ChaosSizes:
    long: bool
    kills: int  # SIGKILLs of `aitrapp paper`, each followed by a restart
    signals: int  # SIGINT/SIGTERM at random moments
    db_hang_s: float  # every PostgreSQL process stopped this long
    api_examples: int  # schemathesis examples per operation


LONG = os.environ.get("AITRAPP_CHAOS", "").lower() == "long"
CHAOS = (
    ChaosSizes(long=True, kills=12, signals=8, db_hang_s=20.0, api_examples=100)
    if LONG
    else ChaosSizes(long=False, kills=2, signals=2, db_hang_s=6.0, api_examples=3)
)


@pytest.fixture
def chaos() -> ChaosSizes:
    return CHAOS
