"""The instruments master: Kite's CSV, the freeze table, the daily cache."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from aitrapp.exceptions import ConfigError, InstrumentError
from aitrapp.kite.client import KiteRest
from aitrapp.kite.instruments import (
    InstrumentsMaster,
    cache_path,
    load_freeze_table,
    load_instruments,
    parse_instruments_csv,
    rows_to_csv,
)

from .fake_kite import FakeKite

HEADER = (
    "instrument_token,exchange_token,tradingsymbol,name,last_price,expiry,strike,"
    "tick_size,lot_size,instrument_type,segment,exchange\n"
)
DUMP = HEADER + (
    "738561,2885,RELIANCE,RELIANCE INDUSTRIES,0,,0,0.1,1,EQ,NSE,NSE\n"
    "2953217,11536,TCS,TATA CONSULTANCY SERV LT,0,,0,0.05,1,EQ,NSE,NSE\n"
    "13238786,51714,NIFTY26JANFUT,NIFTY,0,2026-01-27,0,0.1,65,FUT,NFO-FUT,NFO\n"
    "12345602,48221,NIFTY2612026000CE,NIFTY,0,2026-01-20,26000,0.05,65,CE,NFO-OPT,NFO\n"
    "256265,1001,NIFTY 50,NIFTY 50,0,,0,0,0,EQ,INDICES,NSE\n"
    "412675,1612,USDINR26JANFUT,USDINR,0,2026-01-28,0,0.0025,1,FUT,CDS-FUT,CDS\n"
)
FREEZE = {"NIFTY": 1800, "RELIANCE": 10_000}


def test_parse_and_classify() -> None:
    master = InstrumentsMaster(parse_instruments_csv(DUMP, FREEZE))
    assert len(master) == 6
    fut = master.by_symbol("NFO:NIFTY26JANFUT")
    assert fut.expiry == date(2026, 1, 27) and fut.lot_size == 65
    assert fut.tick_size == Decimal("0.1") and fut.tick_paise == 10
    assert fut.freeze_qty == 1800  # keyed by the underlying's name
    assert fut.core_segment == "FUT"
    assert master.by_token(12345602).core_segment == "OPT"
    assert master.by_token(12345602).freeze_qty == 1800
    assert master.by_token(256265).core_segment == "IDX"
    assert master.by_token(2953217).freeze_qty is None
    assert master.tokens_for(["NSE:RELIANCE", "NFO:NIFTY26JANFUT"]) == [738561, 13238786]


def test_to_core_instrument() -> None:
    master = InstrumentsMaster(parse_instruments_csv(DUMP, FREEZE))
    inst = master.instrument(13238786)
    assert (inst.tick_paise, inst.lot_size, inst.freeze_qty) == (10, 65, 1800)
    assert inst.max_order_qty() == 1755  # 27 whole lots
    assert master.instrument(738561).segment == "EQ"
    index = master.instrument(256265)  # zeros in the dump; carried by feeds, never traded
    assert (index.segment, index.tick_paise, index.lot_size) == ("IDX", 5, 1)


def test_unknown_freeze_or_sub_paisa_tick_is_not_tradable() -> None:
    master = InstrumentsMaster(parse_instruments_csv(DUMP, FREEZE))
    with pytest.raises(InstrumentError, match=r"freeze_qty unknown.*'TCS'"):
        master.instrument(2953217)
    usd = master.by_token(412675)
    assert usd.tick_paise is None
    with pytest.raises(InstrumentError, match=r"tick_size 0\.0025"):
        usd.to_instrument()
    with pytest.raises(InstrumentError, match="instrument_token 1 is not"):
        master.by_token(1)
    with pytest.raises(InstrumentError, match="'NSE:NOPE'"):
        master.tokens_for(["NSE:NOPE"])


@pytest.mark.parametrize(
    ("row", "match"),
    [
        (
            "x,2885,RELIANCE,R,0,,0,0.05,1,EQ,NSE,NSE",
            "row 2, column instrument_token: not an integer",
        ),
        ("1,2885,RELIANCE,R,0,,0,abc,1,EQ,NSE,NSE", "row 2, column tick_size: not a number"),
        ("1,2885,RELIANCE,R,0,,0,0.05,1.5,EQ,NSE,NSE", "row 2, column lot_size: not an integer"),
        (
            "1,2885,RELIANCE,R,0,2026-13-01,0,0.05,1,EQ,NSE,NSE",
            "row 2, column expiry: not YYYY-MM-DD",
        ),
        ("1,2885,,R,0,,0,0.05,1,EQ,NSE,NSE", "row 2, column tradingsymbol: missing value"),
    ],
)
def test_bad_rows_name_line_and_column(row: str, match: str) -> None:
    with pytest.raises(InstrumentError, match=match):
        parse_instruments_csv(HEADER + row + "\n")


def test_missing_columns() -> None:
    with pytest.raises(InstrumentError, match="missing column"):
        parse_instruments_csv("instrument_token,tradingsymbol\n1,X\n")


def test_freeze_table(tmp_path: Path) -> None:
    p = tmp_path / "freeze.csv"
    p.write_text("symbol,freeze_qty\nNIFTY,1800\nBANKNIFTY,600\n")
    assert load_freeze_table(p) == {"NIFTY": 1800, "BANKNIFTY": 600}
    p.write_text("symbol,freeze_qty\nNIFTY,lots\n")
    with pytest.raises(ConfigError, match="line 2: freeze_qty is not an integer"):
        load_freeze_table(p)
    p.write_text("name,qty\n")
    with pytest.raises(ConfigError, match="symbol,freeze_qty"):
        load_freeze_table(p)
    with pytest.raises(ConfigError, match="freeze table"):
        load_freeze_table(tmp_path / "absent.csv")


async def test_cache_is_used_within_the_day_and_replaced_next_day(tmp_path: Path) -> None:
    calls: list[str] = []

    async def fetch(exchange: str) -> str:
        calls.append(exchange)
        return DUMP

    day1, day2 = date(2026, 1, 5), date(2026, 1, 6)
    m1 = await load_instruments(
        fetch, exchanges=["NSE"], cache_dir=tmp_path, day=day1, freeze=FREEZE
    )
    m2 = await load_instruments(
        fetch, exchanges=["NSE"], cache_dir=tmp_path, day=day1, freeze=FREEZE
    )
    assert calls == ["NSE"]
    assert len(m1) == len(m2) == 6
    await load_instruments(fetch, exchanges=["NSE"], cache_dir=tmp_path, day=day2)
    assert calls == ["NSE", "NSE"]
    assert not cache_path(tmp_path, "NSE", day1).exists()
    assert cache_path(tmp_path, "NSE", day2).exists()
    await load_instruments(fetch, exchanges=["NSE"], cache_dir=tmp_path, day=day2, refresh=True)
    assert len(calls) == 3


def csv_files(directory: Path) -> list[Path]:
    return list(directory.glob("*.csv"))


async def test_unreadable_dump_is_not_cached(tmp_path: Path) -> None:
    async def fetch(exchange: str) -> str:
        return "garbage\n"

    with pytest.raises(InstrumentError):
        await load_instruments(fetch, exchanges=["NSE"], cache_dir=tmp_path, day=date(2026, 1, 5))
    assert not csv_files(tmp_path)
    with pytest.raises(ConfigError, match="exchange code"):
        await load_instruments(fetch, exchanges=["../x"], cache_dir=tmp_path, day=date(2026, 1, 5))


async def test_fetch_through_kiteconnect_from_fake_kite(fake: FakeKite, tmp_path: Path) -> None:
    rest = KiteRest(fake.api_key, fake.access_token, root=fake.rest_root)

    async def fetch(exchange: str) -> str:
        return rows_to_csv(await rest.instruments(exchange))

    master = await load_instruments(
        fetch, exchanges=["NSE", "NFO"], cache_dir=tmp_path, day=date(2026, 1, 5), freeze=FREEZE
    )
    fut = master.by_symbol("NFO:NIFTY26JANFUT")
    assert (fut.lot_size, fut.tick_paise, fut.expiry) == (65, 10, date(2026, 1, 27))
    assert master.instrument(738561).tick_paise == 10
    assert master.by_symbol("NSE:NIFTY 50").core_segment == "IDX"
