"""The built-in universe: realistic NSE instrument definitions, lookups, futures symbols."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from aitrapp import Instrument
from aitrapp.exceptions import ConfigError
from aitrapp.universe import (
    Universe,
    expiry_code,
    load_universe,
    monthly_expiry,
    near_month_expiry,
)

DAY = date(2026, 1, 5)
HEADER = (
    "exchange,tradingsymbol,instrument_token,token_source,segment,tick_size,lot_size,"
    "freeze_qty,ref_price,daily_vol_pct,avg_daily_volume,default,name"
)
GOOD_ROW = "NSE,RELIANCE,738561,kite,EQ,0.05,1,100000,1450.00,1.3,10000000,1,Reliance"


@pytest.fixture(scope="module")
def universe() -> Universe:
    return load_universe(on=DAY)


def test_builtin_universe_shape(universe: Universe) -> None:
    eq = [e for e in universe if e.instrument.segment == "EQ"]
    fut = [e for e in universe if e.instrument.segment == "FUT"]
    assert len(eq) >= 30
    assert 3 <= len(fut) <= 6
    assert len(universe.defaults()) == 20
    assert all(isinstance(e.instrument, Instrument) for e in universe)
    assert len({e.token for e in universe}) == len(universe)


def test_equity_rows_follow_nse_rules(universe: Universe) -> None:
    for e in universe:
        inst = e.instrument
        if inst.segment != "EQ":
            continue
        assert inst.exchange == "NSE"
        assert inst.lot_size == 1
        assert inst.freeze_qty >= 1
        # Tick size per DOMAIN.md: 0.01 below 250 rupees, 0.05 otherwise.
        want = 1 if e.ref_price < 250 else 5
        assert inst.tick_paise == want, inst.tradingsymbol
        assert e.token_source == "kite"
        assert e.token & 0xFF == 1  # Kite's segment byte for NSE
        assert 5 <= e.ref_price <= 50_000
        assert 0.005 <= e.daily_vol <= 0.05
        assert e.avg_daily_volume > 0


def test_index_futures_rows(universe: Universe) -> None:
    nifty = universe.by_symbol("NIFTY").instrument
    bank = universe.by_symbol("BANKNIFTY").instrument
    assert (nifty.lot_size, bank.lot_size) == (65, 30)
    for e in universe:
        inst = e.instrument
        if inst.segment == "FUT":
            assert inst.exchange == "NFO"
            assert inst.tick_paise == 10
            assert inst.freeze_qty >= inst.lot_size
            assert e.token_source == "synthetic"
            assert e.token & 0xFF == 2  # NFO
            assert inst.tradingsymbol.endswith("26JANFUT")
    assert nifty.max_order_qty() == 1755  # 27 whole lots under the 1800 freeze


def test_reference_prices_sit_on_the_tick_grid(universe: Universe) -> None:
    for e in universe:
        assert round(e.ref_price * 100) % e.instrument.tick_paise == 0


def test_lookups(universe: Universe) -> None:
    assert universe.by_symbol("reliance").token == 738561
    assert universe.by_token(408065).symbol == "INFY"
    assert universe.by_symbol("NIFTY26JANFUT") is universe.by_symbol("nifty")
    assert "INFY" in universe and "NOPE" not in universe
    with pytest.raises(ConfigError, match=r"unknown symbol 'RELIANC'; did you mean RELIANCE"):
        universe.by_symbol("RELIANC")
    with pytest.raises(ConfigError, match="unknown instrument_token 1"):
        universe.by_token(1)


def test_select_keeps_order_and_drops_duplicates(universe: Universe) -> None:
    chosen = universe.select(["INFY", "reliance", "INFY", "NIFTY"])
    assert chosen.symbols == ["INFY", "RELIANCE", "NIFTY26JANFUT"]
    with pytest.raises(ConfigError, match="at least one"):
        universe.select([])
    with pytest.raises(ConfigError, match="unknown symbol"):
        universe.select(["INFY", "BOGUS"])


@pytest.mark.parametrize(
    ("on", "expiry"),
    [
        (date(2026, 1, 5), date(2026, 1, 27)),  # last Tuesday of January
        (date(2026, 1, 27), date(2026, 1, 27)),  # the contract trades on its expiry day
        (date(2026, 1, 28), date(2026, 2, 24)),  # rolled to February
        (date(2026, 3, 5), date(2026, 3, 30)),  # Tue 31 Mar is a holiday: Monday
        (date(2026, 12, 30), date(2027, 1, 26)),  # year end rolls into January
        (date(2025, 8, 4), date(2025, 8, 28)),  # before Sep 2025: last Thursday
    ],
)
def test_near_month_expiry(on: date, expiry: date) -> None:
    assert near_month_expiry(on) == expiry


def test_expiry_codes_and_symbols() -> None:
    assert expiry_code(date(2026, 1, 27)) == "26JAN"
    assert expiry_code(date(2026, 12, 29)) == "26DEC"
    assert monthly_expiry(2026, 9) == date(2026, 9, 29)
    assert load_universe(on=date(2026, 2, 2)).by_symbol("NIFTY").symbol == "NIFTY26FEBFUT"


def _write(tmp_path: Path, *rows: str, header: str = HEADER) -> Path:
    path = tmp_path / "u.csv"
    path.write_text("\n".join(["# a comment", header, *rows]) + "\n")
    return path


def test_custom_universe_file(tmp_path: Path) -> None:
    u = load_universe(_write(tmp_path, GOOD_ROW), on=DAY)
    assert u.symbols == ["RELIANCE"]
    assert u.by_symbol("RELIANCE").ref_price == 1450.0


@pytest.mark.parametrize(
    ("row", "needle"),
    [
        (GOOD_ROW.replace(",0.05,", ",abc,"), "line 3, column tick_size: cannot parse price"),
        (GOOD_ROW.replace(",100000,", ",0,"), "line 3: instrument RELIANCE: freeze_qty"),
        (GOOD_ROW.replace("738561", "738562"), "line 3, column instrument_token"),
        (GOOD_ROW.replace("738561", "x"), "line 3, column instrument_token: 'x' is not an integer"),
        (GOOD_ROW.replace(",kite,", ",guess,"), "line 3, column token_source"),
        (GOOD_ROW.replace("1450.00", "1450.03"), "not on the 0.05 tick grid"),
        (GOOD_ROW.replace(",1.3,", ",-1,"), "line 3, column daily_vol_pct: must be positive"),
        (GOOD_ROW.replace(",EQ,", ",CDS,"), "unknown segment"),
        (GOOD_ROW.replace("NSE,", "MCX,", 1), "line 3, column exchange"),
        (GOOD_ROW.replace(",1,Reliance", ",yes,Reliance"), "line 3, column default"),
        (GOOD_ROW + ",extra", "line 3: 14 fields, the header has 13"),
    ],
)
def test_bad_universe_rows_name_line_and_column(tmp_path: Path, row: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_universe(_write(tmp_path, row), on=DAY)
    assert "u.csv" in str(info.value)
    assert needle in str(info.value)


def test_missing_columns_and_duplicates(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="line 2: missing column"):
        load_universe(_write(tmp_path, GOOD_ROW, header=HEADER.replace(",ref_price", "")), on=DAY)
    dup = GOOD_ROW.replace("RELIANCE", "RELIANCE2")
    with pytest.raises(ConfigError, match="738561 is used by both RELIANCE and RELIANCE2"):
        load_universe(_write(tmp_path, GOOD_ROW, dup), on=DAY)
    with pytest.raises(ConfigError, match=r"universe file .*missing.csv"):
        load_universe(tmp_path / "missing.csv", on=DAY)
