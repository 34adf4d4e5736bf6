"""Tick feeds: synthetic (generated, labelled SYNTHETIC), replay (your files), kite (live).

`aitrapp.feeds.kite` is imported on demand only: it pulls in the Kite client.
"""

from aitrapp.feeds.base import OI_ABSENT, ArrayFeed, Feed, FeedError, FeedKind, TickBatch
from aitrapp.feeds.replay import ReplayFeed
from aitrapp.feeds.synthetic import SyntheticFeed, SyntheticParams

__all__ = [
    "OI_ABSENT",
    "ArrayFeed",
    "Feed",
    "FeedError",
    "FeedKind",
    "ReplayFeed",
    "SyntheticFeed",
    "SyntheticParams",
    "TickBatch",
]
