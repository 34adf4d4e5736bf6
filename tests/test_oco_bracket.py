"""The OCO machine across the Python boundary: spec validation, events, commands."""

from __future__ import annotations

import json

import pytest

from aitrapp import AitrappError, Instrument, Price
from aitrapp.oco import BracketSpec, OcoBracket, OcoError

PLAN = "0123456789abcdef01234567"
T0 = 1_767_240_000_000_000_000  # 2026-01-01 09:30 IST
MIN = 60_000_000_000


def inst(segment: str = "EQ", lot: int = 1) -> Instrument:
    return Instrument(
        exchange="NSE" if segment == "EQ" else "NFO",
        tradingsymbol="RELIANCE" if segment == "EQ" else "NIFTY26JANFUT",
        instrument_token=738561,
        segment=segment,
        tick_size="0.05",
        lot_size=lot,
        freeze_qty=100_000,
    )


def spec(**over: object) -> BracketSpec:
    fields: dict[str, object] = {
        "plan_id": PLAN,
        "instrument": inst(),
        "side": "BUY",
        "qty": 10,
        "entry_price": "2500.00",
        "stop": "2480.00",
        "take_profit": "2540.00",
    }
    fields.update(over)
    return BracketSpec(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("plan_id", "not-a-plan"),
        ("qty", 0),
        ("stop", "2510.00"),
        ("take_profit", "2490.00"),
        ("entry_type", "STOP"),
        ("stop_type", "SLX"),
        ("stop_limit_buffer_ticks", 3),  # SL-M has no limit
        ("scale_out_fraction", float("nan")),
        ("trail_atr_mult", -1.0),
        ("time_stop_minutes", 0.0),
        ("entry_timeout_s", float("inf")),
        ("square_off", "3:20pm"),
        ("max_modifications", 0),
    ],
)
def test_bad_spec_names_the_field(field: str, value: object) -> None:
    over: dict[str, object] = {field: value}
    if field == "scale_out_fraction":
        over["scale_out"] = True
    with pytest.raises(OcoError, match=field) as info:
        spec(**over)
    assert isinstance(info.value, AitrappError)


def test_spec_defaults_and_json() -> None:
    s = spec()
    assert (s.side, s.qty, s.entry_type, s.stop_type) == ("BUY", 10, "LIMIT", "SL-M")
    assert s.square_off_minute_ist == 15 * 60 + 20
    assert s.entry_timeout_ns == 5 * MIN
    assert s.instrument.tradingsymbol == "RELIANCE"
    doc = json.loads(s.to_json())
    assert doc["stop"] == 248000 and doc["square_off_minute_ist"] == 920
    fno = spec(instrument=inst("FUT", 65), qty=130)
    assert fno.square_off_minute_ist == 15 * 60 + 25
    assert spec(square_off="15:10").square_off_minute_ist == 910
    so = spec(scale_out=True)
    assert so.target_for("TP1") == Price.from_rupees("2524.00")
    assert so.target_for("TP2") == Price.from_rupees("2540.00")


def test_walk_a_bracket_through_the_binding() -> None:
    b, cmds = OcoBracket.open(spec(), T0)
    assert [c.kind for c in cmds] == ["PLACE_ORDER"]
    entry = cmds[0]
    assert (entry.client_order_id, entry.side, entry.qty, entry.order_type) == (
        f"{PLAN}:ENTRY",
        "BUY",
        10,
        "LIMIT",
    )
    assert entry.price == Price(250000)
    t = b.on_order("ENTRY", "OPEN", 4, 2500.0, now_ns=T0 + 1)
    assert (t.from_state, t.to_state, t.event) == ("PENDING", "ENTERING", "ENTRY_PARTIAL_FILL")
    assert t.event_detail == "ENTRY_PARTIAL_FILL filled=4 avg=2500.00"
    stop, tp = t.commands
    assert (stop.tag, stop.order_type, stop.qty, stop.trigger) == ("STOP", "SL-M", 4, Price(248000))
    assert (tp.tag, tp.order_type, tp.qty, tp.price) == ("TP", "LIMIT", 4, Price(254000))
    assert [(f.role, f.qty, f.notional_paise) for f in t.fills] == [("ENTRY", 4, 1_000_000)]
    t = b.on_order("ENTRY", "COMPLETE", 10, "2500.00", now_ns=T0 + 2)
    assert [(c.kind, c.tag, c.qty, c.seq) for c in t.commands] == [
        ("MODIFY", "STOP", 10, 1),
        ("MODIFY", "TP", 10, 1),
    ]
    for tag in ("STOP", "TP"):
        assert not b.on_modify_ack(tag, 1, now_ns=T0 + 3).commands
    t = b.on_order("TP", "COMPLETE", 10, 2540.0, now_ns=T0 + 4)
    assert t.to_state == "CLOSING"
    assert [(c.kind, c.tag) for c in t.commands] == [("CANCEL", "STOP")]
    assert t.fills[0].exit_reason == "TP"
    t = b.on_order("STOP", "CANCELLED", 0, 0, now_ns=T0 + 5)
    assert t.to_state == "CLOSED" and b.is_terminal
    assert b.realized_pnl_paise == 10 * 4000
    assert b.working_orders() == []
    assert [o.status for o in b.orders()] == ["FILLED", "CANCELLED", "FILLED"]


def test_duplicates_are_not_transitions() -> None:
    b, _ = OcoBracket.open(spec(), T0)
    first = b.on_order("ENTRY", "COMPLETE", 10, 2500.0, now_ns=T0)
    again = b.on_order("ENTRY", "COMPLETE", 10, 2500.0, now_ns=T0)
    stale = b.on_order("ENTRY", "OPEN", 4, 2500.0, now_ns=T0)
    assert first.changed and not again.changed and not stale.changed
    assert b.entry_filled == 10


def test_alerts_and_exits_cross_the_boundary() -> None:
    b, _ = OcoBracket.open(spec(), T0)
    b.on_order("ENTRY", "COMPLETE", 10, 2500.0, now_ns=T0)
    t = b.on_order("STOP", "REJECTED", 0, 0, now_ns=T0 + 1, reason="trigger above LTP")
    kinds = [c.kind for c in t.commands]
    assert kinds == ["ALERT", "CANCEL", "EXIT_AT_MARKET"]
    alert, _, exit_ = t.commands
    assert (alert.severity, alert.alert_code) == ("CRITICAL", "STOP_LOST")
    assert "trigger above LTP" in (alert.message or "")
    assert (exit_.client_order_id, exit_.side, exit_.qty, exit_.order_type, exit_.exit_reason) == (
        f"{PLAN}:EXIT",
        "SELL",
        10,
        "MARKET",
        "UNPROTECTED",
    )
    assert b.closing_reason == "UNPROTECTED"


def test_timers_trailing_and_flatten() -> None:
    b, _ = OcoBracket.open(spec(trail_atr_mult=2.0, time_stop_minutes=30), T0)
    b.on_order("ENTRY", "COMPLETE", 10, 2500.0, now_ns=T0)
    t = b.on_price(2550.0, now_ns=T0 + 1, atr=10.0)
    assert [(c.kind, c.trigger) for c in t.commands] == [("MODIFY", Price(253000))]
    assert b.stop_target == Price(253000)
    assert not b.advance_time(T0 + 29 * MIN).commands
    t = b.advance_time(T0 + 30 * MIN)
    assert t.to_state == "CLOSING" and b.closing_reason == "TIME"
    assert not b.flatten(now_ns=T0 + 31 * MIN).changed  # already closing


def test_impossible_events_raise() -> None:
    b, _ = OcoBracket.open(spec(), T0)
    with pytest.raises(OcoError, match="not valid in state PENDING"):
        b.on_order("STOP", "OPEN", 0, 0, now_ns=T0)
    with pytest.raises(OcoError, match="unknown order status"):
        b.on_order("ENTRY", "PARTIAL", 1, 2500.0, now_ns=T0)
    with pytest.raises(AitrappError):
        b.on_order("BOGUS", "OPEN", 0, 0, now_ns=T0)
    with pytest.raises(OcoError, match="filled"):
        b.on_order("ENTRY", "COMPLETE", 11, 2500.0, now_ns=T0)
    with pytest.raises(OcoError, match="avg_price"):
        b.on_order("ENTRY", "OPEN", 5, 0.0, now_ns=T0)
    assert b.state == "PENDING" and b.entry_filled == 0


def test_cannot_open_after_square_off() -> None:
    with pytest.raises(OcoError, match="square-off"):
        OcoBracket.open(spec(), T0 + 6 * 60 * MIN)


def test_flatten_turns_the_stop_into_the_exit_or_cancels_everything() -> None:
    def opened() -> OcoBracket:
        b, _ = OcoBracket.open(spec(), T0)
        b.on_order("ENTRY", "COMPLETE", 10, 2500.0, now_ns=T0)
        b.on_order("STOP", "TRIGGER PENDING", 0, 0, now_ns=T0 + 1)
        b.on_order("TP", "OPEN", 0, 0, now_ns=T0 + 1)
        return b

    # The kernel's kill switch: the stop becomes the market exit by one modify;
    # the target waits for that modify's answer.
    t = opened().flatten(now_ns=T0 + 2, convert_stop=True)
    assert [(c.kind, c.tag, c.order_type, c.qty) for c in t.commands] == [
        ("MODIFY", "STOP", "MARKET", 10)
    ]
    # Without conversion: both cancelled, the stop's part exits once its cancel is in.
    t = opened().flatten(now_ns=T0 + 2)
    assert sorted((c.kind, c.tag) for c in t.commands) == [("CANCEL", "STOP"), ("CANCEL", "TP")]
