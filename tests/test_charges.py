"""Charges against hand-computed contract notes, to the paisa.

Each case shows its hand computation. Rounding (ROUND_HALF_UP): brokerage per
executed order to the paisa; STT and stamp duty on the note's totals to the
whole rupee; transaction charges, SEBI fee and GST to the paisa. GST is 18 % of
(brokerage + transaction charges + SEBI fee), each already rounded.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from aitrapp import AitrappError
from aitrapp.charges import (
    ChargeBreakdown,
    ChargeSchedule,
    ChargesError,
    ExecutedOrder,
    charge_kind,
    compute_charges,
    contract_note_charges,
    round_trip_charges,
)

D = Decimal
MON_MAY_4 = date(2026, 5, 4)
BEFORE_STT_CHANGE = date(2026, 3, 30)
AFTER_STT_CHANGE = date(2026, 4, 6)


def breakdown(
    brokerage: str, stt: str, txn: str, sebi: str, stamp: str, gst: str, total: str
) -> ChargeBreakdown:
    return ChargeBreakdown(D(brokerage), D(stt), D(txn), D(sebi), D(stamp), D(gst), D(total))


def test_equity_intraday_round_trip_with_capped_brokerage() -> None:
    # BUY 100 @ 2500.00, SELL 100 @ 2510.00, NSE EQ, MIS.
    # turnover: buy 250000.00, sell 251000.00, total 501000.00
    # brokerage: min(0.03% x 250000 = 75.00, 20) + min(75.30, 20)   = 40.00
    # STT 0.025% x 251000 = 62.75                                     -> 63
    # NSE txn 0.00297% x 501000 = 14.8797                             -> 14.88
    # SEBI 501000 x 10 / 1e7 = 0.501                                  -> 0.50
    # stamp 0.003% x 250000 = 7.50                                    -> 8
    # GST 18% x (40 + 14.88 + 0.50 = 55.38) = 9.9684                  -> 9.97
    # total 40 + 63 + 14.88 + 0.50 + 8 + 9.97                         = 136.35
    got = round_trip_charges("EQ", 100, D("2500.00"), D("2510.00"), MON_MAY_4)
    assert got == breakdown("40.00", "63", "14.88", "0.50", "8", "9.97", "136.35")


def test_equity_intraday_small_trade_uses_percentage_brokerage() -> None:
    # BUY 20 @ 103.30, SELL 20 @ 103.55.
    # turnover: buy 2066.00, sell 2071.00, total 4137.00
    # brokerage: 0.03% x 2066 = 0.6198 -> 0.62; 0.03% x 2071 = 0.6213 -> 0.62   = 1.24
    # STT 0.025% x 2071 = 0.51775                                     -> 1
    # txn 0.00297% x 4137 = 0.1228689                                 -> 0.12
    # SEBI 4137 / 1e6 = 0.004137                                      -> 0.00
    # stamp 0.003% x 2066 = 0.06198                                   -> 0
    # GST 18% x (1.24 + 0.12 + 0.00 = 1.36) = 0.2448                  -> 0.24
    # total 1.24 + 1 + 0.12 + 0 + 0 + 0.24                            = 2.60
    got = round_trip_charges("EQ", 20, "103.30", "103.55", MON_MAY_4)
    assert got == breakdown("1.24", "1", "0.12", "0.00", "0", "0.24", "2.60")


@pytest.mark.parametrize(
    ("trade_date", "stt", "total"),
    [
        # STT 0.02% x 1566500 = 313.30 -> 313; total 40 + 313 + 54.09 + 3.13 + 31 + 17.50
        (BEFORE_STT_CHANGE, "313", "458.72"),
        # STT 0.05% x 1566500 = 783.25 -> 783; total 40 + 783 + 54.09 + 3.13 + 31 + 17.50
        (date(2026, 4, 1), "783", "928.72"),
    ],
)
def test_futures_round_trip_across_the_stt_change(trade_date: date, stt: str, total: str) -> None:
    # NIFTY future, 1 lot of 65: BUY @ 24000.00, SELL @ 24100.00, NFO.
    # turnover: buy 1560000.00, sell 1566500.00, total 3126500.00
    # brokerage: both orders capped at 20                             = 40.00
    # txn 0.00173% x 3126500 = 54.08845                               -> 54.09
    # SEBI 3126500 / 1e6 = 3.1265                                     -> 3.13
    # stamp 0.002% x 1560000 = 31.20                                  -> 31
    # GST 18% x (40 + 54.09 + 3.13 = 97.22) = 17.4996                 -> 17.50
    got = round_trip_charges("FUT", 65, "24000", "24100", trade_date, "NFO")
    assert got == breakdown("40.00", stt, "54.09", "3.13", "31", "17.50", total)


@pytest.mark.parametrize(
    ("trade_date", "stt", "total"),
    [
        # STT 0.10% x 17582.50 = 17.5825 -> 18; total 40 + 18 + 11.65 + 0.03 + 0 + 9.30
        (BEFORE_STT_CHANGE, "18", "78.98"),
        # STT 0.15% x 17582.50 = 26.37375 -> 26; total 40 + 26 + 11.65 + 0.03 + 0 + 9.30
        (AFTER_STT_CHANGE, "26", "86.98"),
    ],
)
def test_options_round_trip_flat_brokerage(trade_date: date, stt: str, total: str) -> None:
    # NIFTY option, 2 lots = 130: BUY @ 120.50, SELL @ 135.25 (premiums).
    # turnover: buy 15665.00, sell 17582.50, total 33247.50
    # brokerage: flat 20 per executed order                           = 40.00
    # txn 0.03503% x 33247.50 = 11.64659925                           -> 11.65
    # SEBI 33247.50 / 1e6 = 0.0332475                                 -> 0.03
    # stamp 0.003% x 15665 = 0.46995                                  -> 0
    # GST 18% x (40 + 11.65 + 0.03 = 51.68) = 9.3024                  -> 9.30
    got = round_trip_charges("OPT", 130, "120.50", "135.25", trade_date, "NFO")
    assert got == breakdown("40.00", stt, "11.65", "0.03", "0", "9.30", total)


def test_single_orders_priced_alone() -> None:
    # SELL 100 @ 2510: brokerage 20; STT 62.75 -> 63; txn 0.00297% x 251000 = 7.4547 -> 7.45;
    # SEBI 0.251 -> 0.25; no stamp on a sell; GST 18% x 27.70 = 4.986 -> 4.99;
    # total 20 + 63 + 7.45 + 0.25 + 0 + 4.99 = 95.69
    sell = compute_charges("EQ", "SELL", 100, D("2510"), MON_MAY_4)
    assert sell == breakdown("20.00", "63", "7.45", "0.25", "0", "4.99", "95.69")
    # BUY 100 @ 2500: brokerage 20; no STT on an intraday buy; txn 7.425 -> 7.43 (half up);
    # SEBI 0.25; stamp 7.50 -> 8; GST 18% x 27.68 = 4.9824 -> 4.98;
    # total 20 + 0 + 7.43 + 0.25 + 8 + 4.98 = 40.66
    buy = compute_charges("EQ", "BUY", 100, D("2500"), MON_MAY_4)
    assert buy == breakdown("20.00", "0", "7.43", "0.25", "8", "4.98", "40.66")


def test_contract_note_with_a_scale_out() -> None:
    # ENTRY BUY 100 @ 2500; TP1 SELL 50 @ 2520; TP2 SELL 50 @ 2530 (three executed orders).
    # turnover: buy 250000, sell 126000 + 126500 = 252500, total 502500
    # brokerage: 20 + min(37.80, 20) + min(37.95, 20)                 = 60.00
    # STT 0.025% x 252500 = 63.125                                    -> 63
    # txn 0.00297% x 502500 = 14.92425                                -> 14.92
    # SEBI 0.5025                                                     -> 0.50
    # stamp 0.003% x 250000 = 7.50                                    -> 8
    # GST 18% x (60 + 14.92 + 0.50 = 75.42) = 13.5756                 -> 13.58
    # total 60 + 63 + 14.92 + 0.50 + 8 + 13.58                        = 160.00
    orders = [
        ExecutedOrder.at("BUY", 100, "2500"),
        ExecutedOrder.at("SELL", 50, "2520"),
        ExecutedOrder.at("SELL", 50, "2530"),
    ]
    got = contract_note_charges("EQ", orders, MON_MAY_4)
    assert got == breakdown("60.00", "63", "14.92", "0.50", "8", "13.58", "160.00")


def test_order_with_several_fills_uses_its_turnover() -> None:
    # One SELL order of 10 filled 4 @ 151.05 and 6 @ 151.10: turnover 604.20 + 906.60 = 1510.80.
    # brokerage 0.03% x 1510.80 = 0.45324 -> 0.45; STT 0.025% x 1510.80 = 0.3777 -> 0;
    # txn 0.00297% x 1510.80 = 0.04487 -> 0.04; SEBI 0.0015108 -> 0.00; stamp 0;
    # GST 18% x (0.45 + 0.04 + 0) = 0.0882 -> 0.09; total 0.45 + 0 + 0.04 + 0 + 0 + 0.09 = 0.58
    order = ExecutedOrder("SELL", 10, D("604.20") + D("906.60"))
    got = contract_note_charges("EQ", [order], MON_MAY_4)
    assert got == breakdown("0.45", "0", "0.04", "0.00", "0", "0.09", "0.58")


def test_equity_delivery_charges_stt_both_sides() -> None:
    # CNC: BUY 10 @ 1500, SELL 10 @ 1550. Brokerage 0.
    # STT 0.1% x (15000 + 15500) = 30.50 -> 31 (half up); txn 0.00297% x 30500 = 0.90585 -> 0.91
    # SEBI 0.0305 -> 0.03; stamp 0.015% x 15000 = 2.25 -> 2; GST 18% x 0.94 = 0.1692 -> 0.17
    # total 0 + 31 + 0.91 + 0.03 + 2 + 0.17 = 34.11
    got = round_trip_charges("EQ", 10, "1500", "1550", MON_MAY_4, product="CNC")
    assert got == breakdown("0.00", "31", "0.91", "0.03", "2", "0.17", "34.11")


def test_bundled_schedule_carries_the_2026_stt_change() -> None:
    s = ChargeSchedule.default()
    assert s.rates_for("NSE", "FUT", date(2026, 3, 31)).stt_sell_pct == D("0.02")
    assert s.rates_for("NFO", "FUT", date(2026, 4, 1)).stt_sell_pct == D("0.05")
    assert s.rates_for("NSE", "OPT", date(2026, 3, 31)).stt_sell_pct == D("0.1")
    assert s.rates_for("NSE", "OPT", date(2026, 4, 1)).stt_sell_pct == D("0.15")
    assert s.rates_for("NSE", "EQ_INTRADAY", date(2026, 4, 1)).stt_sell_pct == D("0.025")


def test_breakdown_adds_and_serialises() -> None:
    a = breakdown("1", "2", "3", "4", "5", "6", "21")
    total = a + a
    assert total.total == D("42") and total.gst == D("12")
    assert a.as_dict()["total"] == "21"
    assert ChargeBreakdown.zero().total == 0
    assert contract_note_charges("EQ", [], MON_MAY_4) == ChargeBreakdown.zero()


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: compute_charges("EQ", "BUY", 1, 100.5, MON_MAY_4), "price must be a Decimal"),  # type: ignore[arg-type]
        (lambda: compute_charges("EQ", "BUY", 0, "100", MON_MAY_4), "quantity"),
        (lambda: compute_charges("EQ", "HOLD", 1, "100", MON_MAY_4), "side"),
        (lambda: compute_charges("EQ", "BUY", 1, "-5", MON_MAY_4), "price must be a positive"),
        (lambda: compute_charges("EQ", "BUY", 1, "abc", MON_MAY_4), "price is not a number"),
        (lambda: compute_charges("IDX", "BUY", 1, "100", MON_MAY_4), "IDX"),
        (lambda: compute_charges("CDS", "BUY", 1, "100", MON_MAY_4), "unknown segment"),
        (lambda: compute_charges("EQ", "BUY", 1, "100", MON_MAY_4, product="NRML"), "product"),
        (lambda: compute_charges("OPT", "BUY", 1, "100", MON_MAY_4, product="CNC"), "product"),
        (lambda: compute_charges("EQ", "BUY", 1, "100", MON_MAY_4, "BSE"), "exchange 'BSE'"),
        (lambda: compute_charges("EQ", "BUY", 1, "100", date(2024, 9, 30)), "earliest"),
    ],
)
def test_bad_input_names_the_argument(call: Any, match: str) -> None:
    with pytest.raises(ChargesError, match=match):
        call()
    assert issubclass(ChargesError, AitrappError)


def _data() -> dict[str, Any]:
    src = Path(__file__).parents[1] / "python" / "aitrapp" / "data" / "charges.json"
    data: dict[str, Any] = json.loads(src.read_text())
    return data


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: d["schedules"][0].update(stt_sell_pct="x"), r"schedules\[0\]\.stt_sell_pct"),
        (lambda d: d["schedules"][2].update(stt_sell_pct=0.05), r"schedules\[2\]\.stt_sell_pct"),
        (lambda d: d["schedules"][1].update(kind="SWAP"), r"schedules\[1\]\.kind"),
        (lambda d: d["schedules"][1].update(effective_from="1/4/26"), "effective_from"),
        (lambda d: d["schedules"][0].update(brokerage={"pct": "1"}), "brokerage"),
        (lambda d: d["schedules"][0].update(extra="1"), "unknown key"),
        (lambda d: d["rounding"].pop("stt"), r"rounding\.stt"),
        (lambda d: d["schedules"].append(dict(d["schedules"][0])), "two schedules"),
    ],
)
def test_bad_rate_data_names_the_key(mutate: Any, match: str) -> None:
    data = _data()
    mutate(data)
    with pytest.raises(ChargesError, match=match):
        ChargeSchedule.from_json(data)


def test_custom_schedule_file_prices_older_dates(tmp_path: Path) -> None:
    data = _data()
    older = dict(data["schedules"][0], effective_from="2024-01-01", stt_sell_pct="0.05")
    data["schedules"].append(older)
    path = tmp_path / "rates.json"
    path.write_text(json.dumps(data))
    sched = ChargeSchedule.load(path)
    # SELL 100 @ 2510 on 2024-06-03 at the (made up) older STT 0.05%: 125.50 -> 126.
    got = compute_charges("EQ", "SELL", 100, "2510", date(2024, 6, 3), schedule=sched)
    assert got.stt == D("126")
    with pytest.raises(ChargesError, match="cannot read"):
        ChargeSchedule.load(tmp_path / "missing.json")


def test_charge_kind_maps_segment_and_product() -> None:
    assert charge_kind("EQ", "MIS") == "EQ_INTRADAY"
    assert charge_kind("EQ", "CNC") == "EQ_DELIVERY"
    assert charge_kind("FUT", "NRML") == "FUT"
    assert charge_kind("OPT", "MIS") == "OPT"
