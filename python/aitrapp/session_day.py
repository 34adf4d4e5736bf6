"""Which day a session trades and on which feed, decided before its session row.

Client order ids are deterministic, so the same day, data and config must not
run twice into one database: a synthetic day already run is skipped (or, with
``--date``, refused), and a replay already run is refused, identified by its
content rather than its file name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from aitrapp.calendar import DAY_NS, IST_OFFSET_NS, is_trading_day, previous_trading_day
from aitrapp.exceptions import ConfigError
from aitrapp.feeds.base import ArrayFeed, Feed
from aitrapp.universe import Universe

if TYPE_CHECKING:
    from aitrapp.brokers.paper_config import PaperConfig
    from aitrapp.db.pool import Pool
    from aitrapp.runtime import RuntimeOptions

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


async def pick_day(pool: Pool, o: RuntimeOptions, config_sha: str) -> date:
    """The day to trade: the live feed's is today's (IST) session; a synthetic one
    the latest trading day not yet run with this seed and config (with --date, a
    rerun is refused); a replay's the given one (or, later, its data's)."""
    if o.feed == "kite":
        from aitrapp.kite.session import live_trading_day

        return o.day or live_trading_day(datetime.now(UTC))
    candidate = o.day or _latest_trading_day(date.today())
    if o.feed != "synthetic":
        return candidate
    for _ in range(500):
        taken = await pool.fetchval(
            "SELECT id FROM sessions WHERE trading_date = $1 AND feed = 'synthetic' "
            "AND config_sha = $2 AND summary->'feed'->>'seed' = $3 LIMIT 1",
            candidate,
            config_sha,
            str(o.seed),
        )
        if taken is None:
            return candidate
        if o.day is not None:
            raise ConfigError(_rerun_message(f"synthetic day {candidate} (seed {o.seed})", taken))
        candidate = previous_trading_day(candidate)
    raise ConfigError("no synthetic trading day left to run: use another --seed")


def make_feed(o: RuntimeOptions, universe: Universe, day: date) -> Feed:
    """The session's feed from its options (an injected factory goes first)."""
    if o.feed_factory is not None:
        return o.feed_factory(universe, day)
    if o.feed == "synthetic":
        from aitrapp.feeds.synthetic import SyntheticFeed, SyntheticParams

        params = SyntheticParams(ticks_per_second=o.ticks_per_second)
        return SyntheticFeed(universe, day=day, seed=o.seed, params=params)
    if o.feed == "replay":
        from aitrapp.feeds.replay import ReplayFeed

        if not o.replay_paths:
            raise ConfigError("feed 'replay' needs replay_paths (files or folders)")
        return ReplayFeed(list(o.replay_paths), instruments=universe.instruments, day=o.day)
    if o.feed == "kite":  # credentials and the token file from the environment
        from aitrapp.kite.session import kite_access_from_env, kite_feed_factory

        access = kite_access_from_env(now=datetime.now(UTC))
        return kite_feed_factory(access)(universe, day)
    raise ConfigError(f"feed {o.feed!r}: expected synthetic, replay or kite")


@dataclass(frozen=True, slots=True)
class ReplayIdentity:
    day: date  # the data's own day unless --date chose one
    sha: str | None  # content hash (ticks, instruments, simulation settings)


async def refuse_rerun(
    pool: Pool,
    feed: Feed,
    o: RuntimeOptions,
    day: date,
    config_sha: str,
    paper: PaperConfig,
) -> ReplayIdentity:
    """A replay already run with this config (one that placed orders) is refused;
    a run that failed before any order leaves nothing to collide with. The data is
    loaded here, so a bad file fails before any session row exists."""
    if feed.kind != "replay":
        return ReplayIdentity(day, None)
    label_day, sha = day, None
    if isinstance(feed, ArrayFeed):
        from aitrapp.backtest.hashing import replay_sha

        await feed.start()
        day = _replay_day(feed, o.day) or day
        sha = replay_sha(feed.data, feed.instruments, paper, o.bracket)
    # Sessions from before content hashes (replay_sha NULL) are matched by label.
    taken = await pool.fetchval(
        "SELECT s.id FROM sessions s WHERE s.feed = 'replay' AND s.config_sha = $1 "
        "AND (s.replay_sha = $2 OR (s.replay_sha IS NULL AND s.trading_date = $3 "
        "AND s.summary->'feed'->>'label' = $4)) "
        "AND EXISTS (SELECT 1 FROM orders o WHERE o.session_id = s.id) LIMIT 1",
        config_sha,
        sha,
        label_day,
        feed.label,
    )
    if taken is not None:
        what = f"replay {feed.label}"
        if sha is not None:
            what += f" (content {sha[:12]})"
        raise ConfigError(_rerun_message(what, taken))
    return ReplayIdentity(day, sha)


def feed_info(feed: Feed | None, seed: int) -> dict[str, Any]:
    """How the session row, the audit and /state describe the feed."""
    if feed is None:
        return {}
    info: dict[str, Any] = {
        "kind": feed.kind,
        "label": feed.label,
        "synthetic": feed.is_synthetic,
        "name": feed.name,
    }
    if feed.kind == "synthetic":
        info["seed"] = seed
    return info


def _replay_day(feed: ArrayFeed, chosen: date | None) -> date | None:
    """Without --date a replay is stamped with the day its data holds; data of
    several days is refused (one session per day: that is `aitrapp backtest`)."""
    if chosen is not None or not len(feed.data):
        return None
    days = np.unique((feed.data.ts_ns + IST_OFFSET_NS) // DAY_NS)
    if len(days) > 1:
        first, last = (date.fromordinal(_EPOCH_ORDINAL + int(d)) for d in (days[0], days[-1]))
        raise ConfigError(
            f"replay: the data covers {len(days)} days ({first}..{last}); pick one with "
            "--date, or run each as its own session with `aitrapp backtest --replay ...`"
        )
    return date.fromordinal(_EPOCH_ORDINAL + int(days[0]))


def _rerun_message(what: str, session_id: object) -> str:
    return (
        f"the {what} with this config already ran as session {session_id} in this database; "
        "client order ids are deterministic, so running it again would reuse them. Pick "
        "another --date or --seed, or a fresh data dir (AITRAPP_DATA_DIR)."
    )


def _latest_trading_day(today: date) -> date:
    return today if is_trading_day(today) else previous_trading_day(today)
