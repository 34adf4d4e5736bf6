"""What the notifier sends: one :class:`Notice` per event worth telling a person.

A notice carries a ``key``: notices with the same key that arrive close
together are one message with a count (a flapping alert), and ``subject``
names what each occurrence was about (a plan id, an actor), so the merged
message can list them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Level = Literal["CRITICAL", "WARN", "INFO", "OK"]
# Most urgent first: CRITICAL goes out before anything queued behind it.
LEVEL_RANK: dict[Level, int] = {"CRITICAL": 0, "WARN": 1, "INFO": 2, "OK": 3}


@dataclass(frozen=True, slots=True)
class Notice:
    level: Level
    key: str  # same key close together: one message with a count
    title: str
    body: str
    subject: str = ""  # what this occurrence is about, listed when merged

    def __post_init__(self) -> None:
        if self.level not in LEVEL_RANK:
            raise ValueError(f"level: expected one of {list(LEVEL_RANK)}, got {self.level!r}")
        if not self.key:
            raise ValueError("key: must not be empty")
        if not self.title:
            raise ValueError("title: must not be empty")
