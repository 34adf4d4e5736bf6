"""Client ids: golden vectors shared with cargo, retry/re-entry, broker tags, and a
hypothesis comparison against a plain hashlib computation."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aitrapp import (
    AitrappError,
    IdError,
    Price,
    broker_tag,
    order_client_id,
    parse_order_client_id,
    plan_client_id,
)

GOLDEN = json.loads((Path(__file__).parents[1] / "testdata" / "client_ids.json").read_text())


def reference_plan_id(
    symbol: str, side: str, e: int, s: int, t: int, q: int, strat: str, cfg: str, ts: int
) -> str:
    pre = f"{symbol}|{side}|{e / 100:.2f}|{s / 100:.2f}|{t / 100:.2f}|{q}|{strat}|{cfg}|{ts}"
    return hashlib.sha1(pre.encode()).hexdigest()[:24]


@pytest.mark.parametrize("case", GOLDEN["cases"], ids=lambda c: c["plan_id"])
def test_golden_vectors(case: dict[str, object]) -> None:
    plan = plan_client_id(
        case["symbol"],
        case["side"],
        Price(case["entry_paise"]),
        Price(case["stop_paise"]),
        Price(case["tp_paise"]),
        case["qty"],
        case["strategy"],
        case["config_sha"],
        case["signal_ts"],
    )
    assert plan == case["plan_id"]
    for tag, want in case["order_ids"].items():  # type: ignore[attr-defined]
        cid = order_client_id(tag, plan)
        assert cid == want
        assert broker_tag(cid) == case["broker_tags"][tag]  # type: ignore[index]
        assert parse_order_client_id(cid) == (plan, tag)


def _plan(ts: int) -> str:
    return plan_client_id("RELIANCE", "BUY", "2500.05", "2480.00", "2536.15", 24, "ORB", "c1", ts)


def test_retried_plan_gets_the_same_id() -> None:
    assert _plan(1_767_240_000_000_000_000) == _plan(1_767_240_000_000_000_000)


def test_reentry_with_identical_prices_gets_a_new_id() -> None:
    first = _plan(1_767_240_000_000_000_000)
    reentry = _plan(1_767_240_600_000_000_000)
    assert first != reentry


def test_changed_config_never_reuses_an_id() -> None:
    a = plan_client_id("X", "SELL", 10, 11, 8, 1, "ORB", "cfgA", 5)
    b = plan_client_id("X", "SELL", 10, 11, 8, 1, "ORB", "cfgB", 5)
    assert a != b


def test_price_spellings_agree() -> None:
    # str is exact, float rounds to the paisa, Price is paise: all the same plan.
    ids = {
        plan_client_id("X", "BUY", e, "99.00", "102.00", 1, "S", "c", 1)
        for e in ("100.10", 100.1, Price(10010), "100.1")
    }
    assert len(ids) == 1


def test_sibling_broker_tags_are_short_and_distinct() -> None:
    plan = _plan(7)
    tags = [broker_tag(order_client_id(t, plan)) for t in ("ENTRY", "STOP", "TP", "TP1", "TP2")]
    assert len(set(tags)) == len(tags)
    assert all(len(t) <= 20 and t.isalnum() for t in tags)
    # The naive cut to 20 chars would make all of them identical.
    assert len({order_client_id(t, plan)[:20] for t in ("ENTRY", "STOP", "TP")}) == 1


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("X|Y", "BUY", 1, 1, 1, 1, "S", "c", 1), "symbol"),
        (("X", "HOLD", 1, 1, 1, 1, "S", "c", 1), "BUY or SELL"),
        (("X", "BUY", 1, 1, 1, 0, "S", "c", 1), "qty"),
        (("X", "BUY", "1.234", 1, 1, 1, "S", "c", 1), "two decimals"),
        (("X", "BUY", float("nan"), 1, 1, 1, "S", "c", 1), "finite"),
    ],
)
def test_bad_inputs_raise_clear_errors(args: tuple[object, ...], match: str) -> None:
    with pytest.raises((ValueError, AitrappError), match=match):
        plan_client_id(*args)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["", "abc:ENTRY", "0123456789abcdef01234567:FOO"])
def test_malformed_client_ids(bad: str) -> None:
    with pytest.raises(IdError):
        broker_tag(bad)


@settings(max_examples=3000, deadline=None)
@given(
    symbol=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789&-_", min_size=1, max_size=30),
    side=st.sampled_from(["BUY", "SELL"]),
    e=st.integers(0, 10**10),
    s=st.integers(0, 10**10),
    t=st.integers(0, 10**10),
    q=st.integers(1, 10**9),
    strat=st.sampled_from(["ORB", "TrendPullback", "VWAPReversion", "EmaCross"]),
    cfg=st.text(alphabet="0123456789abcdef", min_size=1, max_size=40),
    ts=st.integers(-(2**63), 2**63 - 1),
)
def test_rust_ids_equal_hashlib(
    symbol: str, side: str, e: int, s: int, t: int, q: int, strat: str, cfg: str, ts: int
) -> None:
    got = plan_client_id(symbol, side, Price(e), Price(s), Price(t), q, strat, cfg, ts)
    assert got == reference_plan_id(symbol, side, e, s, t, q, strat, cfg, ts)
