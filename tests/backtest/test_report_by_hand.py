"""The report on a 3-day fixture whose trades, charges and ratios were worked out by hand.

Charges follow Zerodha's equity-intraday schedule in charges.json (brokerage
0.03 % capped at 20 per order, to the paisa; STT 0.025 % of sells and stamp
0.003 % of buys, to the rupee; NSE 0.00297 %, SEBI 10 per crore, GST 18 %
on brokerage + NSE + SEBI, to the paisa; ROUND_HALF_UP), one contract note
per trade. Capital 10,00,000; risk-free rate 6.5 % a year.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal as D  # noqa: N817 - money literals read better short
from pathlib import Path

import pytest
from rich.console import Console

from aitrapp.backtest.records import DayResult, TradeRecord, round_trip
from aitrapp.backtest.render import print_report, write_report
from aitrapp.backtest.report import ReportSettings, build_report
from aitrapp.calendar import IST

D1, D2, D3 = date(2026, 1, 22), date(2026, 1, 23), date(2026, 1, 27)


def at(day: date, hh: int, mm: int) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=IST)


def fixture_trades() -> dict[str, TradeRecord]:
    return {
        # BUY 100 RELX 1450.00 -> 1460.00 (TP). Gross +1000.00. Charges: brokerage 20 + 20
        # (0.03 % of 1,45,000 and 1,46,000 both exceed 20); STT 0.025 % x 1,46,000 = 36.50
        # -> 37; NSE 0.00297 % x 2,91,000 = 8.6427 -> 8.64; SEBI 0.291 -> 0.29; stamp
        # 0.003 % x 1,45,000 = 4.35 -> 4; GST 18 % x 48.93 = 8.8074 -> 8.81. Total 98.74.
        "t1": round_trip(
            day=D1, plan_id="t1", strategy="ORB", symbol="RELX", side="BUY", qty=100,
            entry_price=D("1450.00"), exit_price=D("1460.00"),
            opened_at=at(D1, 10, 0), closed_at=at(D1, 10, 30), exit_reason="TP",
            planned_risk=D("500"), planned_entry=D("1450.00"), planned_stop=D("1445.00"),
            planned_tp=D("1460.00"),
        ),
        # SELL 200 ACME 250.00 -> 252.50 (STOP planned at 252.00: 100.00 of slippage).
        # Gross -500.00. Brokerage 15.00 + 15.15; STT 12.50 -> 13; NSE 1,00,500 x 0.00297 %
        # = 2.98485 -> 2.98; SEBI 0.1005 -> 0.10; stamp 50,500 x 0.003 % = 1.515 -> 2;
        # GST 18 % x 33.23 = 5.9814 -> 5.98. Total 54.21. Loss/risk 500/400 = 1.25.
        "t2": round_trip(
            day=D1, plan_id="t2", strategy="EMA", symbol="ACME", side="SELL", qty=200,
            entry_price=D("250.00"), exit_price=D("252.50"),
            opened_at=at(D1, 11, 0), closed_at=at(D1, 11, 20), exit_reason="STOP",
            planned_risk=D("400"), planned_entry=D("250.00"), planned_stop=D("252.00"),
            planned_tp=D("246.00"),
        ),
        # SELL 50 RELX 1470.00 -> 1475.00 (STOP at its level). Gross -250.00. Brokerage
        # 20 + 20; STT 73,500 x 0.025 % = 18.375 -> 18; NSE 1,47,250 x 0.00297 % = 4.373325
        # -> 4.37; SEBI 0.14725 -> 0.15; stamp 73,750 x 0.003 % = 2.2125 -> 2; GST 18 % x
        # 44.52 = 8.0136 -> 8.01. Total 72.53. Loss/risk 250/250 = 1.00.
        "t3": round_trip(
            day=D2, plan_id="t3", strategy="ORB", symbol="RELX", side="SELL", qty=50,
            entry_price=D("1470.00"), exit_price=D("1475.00"),
            opened_at=at(D2, 9, 30), closed_at=at(D2, 9, 45), exit_reason="STOP",
            planned_risk=D("250"), planned_entry=D("1470.00"), planned_stop=D("1475.00"),
            planned_tp=D("1460.00"),
        ),
        # BUY 10 RELX 1480.05 (planned 1480.00: 0.50 of slippage) -> 1490.00 at the 15:20
        # square-off. Gross 99.50. Brokerage 4.44015 -> 4.44 and 4.47; STT 3.725 -> 4; NSE
        # 29,700.50 x 0.00297 % = 0.8821 -> 0.88; SEBI 0.0297 -> 0.03; stamp 0.444 -> 0;
        # GST 18 % x 9.82 = 1.7676 -> 1.77. Total 15.59.
        "t4": round_trip(
            day=D3, plan_id="t4", strategy="EMA", symbol="RELX", side="BUY", qty=10,
            entry_price=D("1480.05"), exit_price=D("1490.00"),
            opened_at=at(D3, 14, 0), closed_at=at(D3, 15, 20), exit_reason="EOD",
            planned_risk=D("100"), planned_entry=D("1480.00"), planned_stop=D("1470.00"),
            planned_tp=D("1500.00"),
        ),
    }  # fmt: skip


SETTINGS = ReportSettings(capital=D("1000000"), risk_free_rate_pct=6.5)


def report(settings: ReportSettings = SETTINGS):  # type: ignore[no-untyped-def]
    t = fixture_trades()
    days = [
        DayResult(D1, "COMPLETED", (t["t1"], t["t2"]), ticks=100),
        DayResult(D2, "COMPLETED", (t["t3"],), ticks=100),
        DayResult(D3, "COMPLETED", (t["t4"],), ticks=100),
    ]
    return build_report(days, settings, label="hand-made fixture")


def test_each_trade_is_priced_like_its_contract_note() -> None:
    t = fixture_trades()
    assert {k: (v.gross, v.charges, v.net) for k, v in t.items()} == {
        "t1": (D("1000.00"), D("98.74"), D("901.26")),
        "t2": (D("-500.00"), D("54.21"), D("-554.21")),
        "t3": (D("-250.00"), D("72.53"), D("-322.53")),
        "t4": (D("99.50"), D("15.59"), D("83.91")),
    }
    assert [v.slippage for v in t.values()] == [D("0"), D("100.00"), D("0"), D("0.50")]


def test_totals_match_the_hand_computation() -> None:
    tot = report().total
    assert (tot.trades, tot.wins) == (4, 2)
    assert tot.win_rate == 0.5
    assert (tot.gross, tot.charges, tot.net) == (D("349.50"), D("241.07"), D("108.43"))
    assert tot.expectancy == D("27.1075")  # 108.43 / 4
    assert tot.charges_share == pytest.approx(0.6898, abs=5e-5)  # 241.07 / 349.50
    # Equity at closes: 901.26, 347.05, 24.52, 108.43; the peak 901.26 (22 Jan 10:30) is
    # never regained: 876.74 deep, 300 + 375 + 375 market minutes to the last close.
    assert tot.max_drawdown == D("876.74")
    assert tot.max_drawdown_pct == pytest.approx(0.0877, abs=5e-5)
    assert tot.max_drawdown_minutes == 1050 and not tot.drawdown_recovered
    # r = 347.05, -322.53, 83.91 per 10 lakh; rf/252 = 0.065/252. mean(r - rf) =
    # -2.217932e-4, sample std 3.373360e-4, downside deviation 3.498698e-4.
    assert tot.sharpe == pytest.approx(-10.4372, abs=5e-5)
    assert tot.sortino == pytest.approx(-10.0633, abs=5e-5)
    # Open 30 + 20 + 15 + 80 minutes of 3 x 375.
    assert tot.exposure_share == pytest.approx(0.1289, abs=5e-5)
    assert tot.exposure_minutes == 145
    assert tot.avg_loss_r == pytest.approx(1.125) and tot.worst_loss_r == pytest.approx(1.25)
    assert tot.avg_slippage == D("25.125")  # (0 + 100 + 0 + 0.50) / 4
    assert tot.exits == {"EOD": 1, "STOP": 2, "TP": 1}


def test_without_a_risk_free_rate() -> None:
    tot = report(ReportSettings(capital=D("1000000"))).total
    assert tot.sharpe == pytest.approx(1.7008, abs=5e-5)
    assert tot.sortino == pytest.approx(3.0812, abs=5e-5)


def test_groups_by_day_strategy_and_symbol() -> None:
    r = report()
    by_day = {g.key: g for g in r.by_day}
    assert [(k, g.trades, g.net) for k, g in by_day.items()] == [
        ("2026-01-22", 2, D("347.05")),
        ("2026-01-23", 1, D("-322.53")),
        ("2026-01-27", 1, D("83.91")),
    ]
    d1 = by_day["2026-01-22"]
    assert d1.max_drawdown == D("554.21") and d1.max_drawdown_minutes == 300
    assert d1.sharpe is None and d1.sortino is None  # one day has no spread
    assert d1.exposure_share == pytest.approx(50 / 375)
    strat = {g.key: g for g in r.by_strategy}
    assert strat["ORB"].net == D("578.73") and strat["EMA"].net == D("-470.30")
    assert strat["ORB"].max_drawdown == D("322.53") and strat["ORB"].max_drawdown_minutes == 1050
    assert strat["EMA"].charges_share is None  # gross -400.50: no share of a loss
    sym = {g.key: g for g in r.by_symbol}
    assert sym["RELX"].net == D("662.64") and sym["ACME"].net == D("-554.21")
    assert sym["RELX"].win_rate == pytest.approx(2 / 3)
    assert [(p.equity, p.drawdown) for p in r.daily] == [
        (D("347.05"), D("0")),
        (D("24.52"), D("322.53")),
        (D("108.43"), D("238.62")),
    ]
    (month,) = r.monthly
    assert (month.year, month.month, month.days, month.trades) == (2026, 1, 3, 4)
    assert month.net == D("108.43") and month.return_pct == pytest.approx(0.010843)


def test_files_and_terminal_carry_the_same_figures(tmp_path: Path) -> None:
    r = report()
    files = write_report(r, tmp_path / "out")
    data = json.loads(files.json.read_text())
    assert data["total"]["net"] == "108.43" and data["total"]["charges"] == "241.07"
    assert data["total"]["expectancy"] == "27.11"
    assert round(data["total"]["sharpe"], 4) == -10.4372
    assert [t["charges"] for t in data["trades"]] == ["98.74", "54.21", "72.53", "15.59"]
    assert {p.name for p in files.pngs.values()} == {"equity.png", "daily_pnl.png", "monthly.png"}
    assert all(p.stat().st_size > 5000 for p in files.pngs.values())
    html = files.html.read_text()
    assert "108.43" in html and "241.07" in html and "equity.png" in html
    console = Console(record=True, width=200)
    print_report(r, console)
    text = console.export_text()
    assert "349.50 / 241.07 / 108.43" in text and "-10.44 / -10.06" in text
