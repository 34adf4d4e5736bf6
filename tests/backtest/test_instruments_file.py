"""--instruments FILE: Kite's instrument dump format, errors naming file, row and column."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from aitrapp.cli import app
from aitrapp.exceptions import ConfigError
from aitrapp.instruments_csv import load_instruments_file, load_own_universe

from .candles import HEADER

KITE_HEADER = HEADER.removesuffix(",freeze_qty")


def test_own_symbols_become_instruments(own_instruments: Path) -> None:
    u = load_instruments_file(own_instruments)
    relx = u.by_symbol("relx").instrument
    assert (relx.instrument_token, relx.exchange, relx.segment) == (990001, "NSE", "EQ")
    assert (relx.tick_paise, relx.lot_size, relx.freeze_qty) == (5, 1, 5000)
    assert u.by_symbol("RELX").ref_price == 500.0
    assert sorted(u.defaults().symbols) == ["ACME", "RELX"]
    assert u.row_of("ACME") == 3


@pytest.mark.parametrize(
    ("row", "where"),
    [
        ("x,1,RELX,R,0,,0,0.05,1,EQ,NSE,NSE,10", "row 2, column instrument_token"),
        ("7,1,RELX,R,0,,0,abc,1,EQ,NSE,NSE,10", "row 2, column tick_size"),
        ("7,1,RELX,R,0,,0,0.05,1.5,EQ,NSE,NSE,10", "row 2, column lot_size"),
        ("7,1,RELX,R,0,2026-13-01,0,0.05,1,EQ,NSE,NSE,10", "row 2, column expiry"),
        ("7,1,RELX,R,-3,,0,0.05,1,EQ,NSE,NSE,10", "row 2, column last_price"),
        ("7,1,RELX,R,0,,0,0.05,1,EQ,NSE,NSE,0", "row 2, column freeze_qty"),
        ("7,1,RELX,R,0,,0,0.05,1,EQ,NSE,NSE,many", "row 2, column freeze_qty"),
        ("7,1,,R,0,,0,0.05,1,EQ,NSE,NSE,10", "row 2, column tradingsymbol"),
    ],
)
def test_a_bad_row_names_file_row_and_column(tmp_path: Path, row: str, where: str) -> None:
    path = tmp_path / "mine.csv"
    path.write_text(f"{HEADER}\n{row}\n")
    with pytest.raises(ConfigError) as info:
        load_instruments_file(path)
    assert str(path) in str(info.value) and where in str(info.value)


def test_the_row_counts_like_a_spreadsheet(tmp_path: Path) -> None:
    path = tmp_path / "mine.csv"
    good = "7,1,RELX,R,0,,0,0.05,1,EQ,NSE,NSE,10"
    path.write_text(f"{HEADER}\n{good}\n8,1,ACME,A,0,,0,0.05,one,EQ,NSE,NSE,10\n")
    with pytest.raises(ConfigError, match=r"mine\.csv row 3, column lot_size"):
        load_instruments_file(path)


def test_duplicates_name_both_rows(tmp_path: Path) -> None:
    path = tmp_path / "mine.csv"
    a = "7,1,RELX,R,0,,0,0.05,1,EQ,NSE,NSE,10"
    path.write_text(f"{HEADER}\n{a}\n8,1,RELX,R,0,,0,0.05,1,EQ,NSE,NSE,10\n")
    with pytest.raises(ConfigError, match=r"row 3, column tradingsymbol: RELX already .* row 2"):
        load_instruments_file(path)
    path.write_text(f"{HEADER}\n{a}\n7,1,ACME,R,0,,0,0.05,1,EQ,NSE,NSE,10\n")
    with pytest.raises(ConfigError, match=r"row 3, column instrument_token: 7 already .* row 2"):
        load_instruments_file(path)


def test_missing_columns_are_named(tmp_path: Path) -> None:
    path = tmp_path / "mine.csv"
    path.write_text("instrument_token,tradingsymbol,tick_size\n7,RELX,0.05\n")
    with pytest.raises(ConfigError, match=r"mine\.csv: missing column\(s\) lot_size"):
        load_instruments_file(path)
    with pytest.raises(ConfigError, match=r"instruments file .*absent\.csv"):
        load_instruments_file(tmp_path / "absent.csv")


def test_freeze_quantity_from_the_column_or_the_freeze_file(tmp_path: Path) -> None:
    path = tmp_path / "dump.csv"
    path.write_text(
        f"{KITE_HEADER}\n7,1,RELX,RELX LTD,0,,0,0.05,1,EQ,NSE,NSE\n"
        "8,1,NIFTY26JANFUT,NIFTY,0,2026-01-27,0,0.1,65,FUT,NFO-FUT,NFO\n"
    )
    u = load_instruments_file(path)
    # A row without a freeze quantity is kept aside: choosing it names the row and column.
    with pytest.raises(ConfigError, match=r"dump\.csv row 2: column freeze_qty: .*--freeze"):
        u.select(["RELX"])
    with pytest.raises(ConfigError, match=r"dump\.csv: no tradable instrument; e\.g\. row 2"):
        u.defaults()
    freeze = tmp_path / "freeze.csv"
    freeze.write_text("symbol,freeze_qty\nRELX,900\nNIFTY,1800\n")
    u = load_instruments_file(path, freeze_file=freeze)
    assert u.by_symbol("RELX").instrument.freeze_qty == 900
    assert u.by_symbol("NIFTY26JANFUT").instrument.freeze_qty == 1800  # keyed by the underlying
    with pytest.raises(ConfigError, match="--freeze-file: only with --instruments"):
        load_own_universe(None, freeze)


def test_paper_refuses_a_bad_file_before_any_database_work(tmp_path: Path) -> None:
    path = tmp_path / "mine.csv"
    path.write_text(
        f"{HEADER}\n7,1,RELX,R,0,,0,0.05,1,EQ,NSE,NSE,10\n8,1,ACME,A,0,,0,x,1,EQ,NSE,NSE,10\n"
    )
    result = CliRunner().invoke(
        app, ["paper", "--instruments", str(path), "--no-serve", "--date", "2026-01-22"]
    )
    assert result.exit_code == 2
    assert _flat("mine.csv row 3, column tick_size") in _flat(result.output)
    # The synthetic feed starts at last_price: a row without one is named.
    path.write_text(f"{HEADER}\n7,1,RELX,R,0,,0,0.05,1,EQ,NSE,NSE,10\n")
    result = CliRunner().invoke(app, ["paper", "--instruments", str(path), "--no-serve"])
    assert result.exit_code == 2
    assert _flat("mine.csv row 2, column last_price") in _flat(result.output)


def _flat(text: str) -> str:
    # The console wraps long messages anywhere (a long tmp path splits a file name).
    return "".join(text.split())


def test_serve_takes_your_instruments(own_instruments: Path, tmp_path: Path) -> None:
    import typer

    from aitrapp.cli.serve import runtime_options
    from aitrapp.instruments_csv import FileUniverse

    data = tmp_path / "RELX.csv"
    options = runtime_options("replay", "1x", None, [data], 7, "PAPER", own_instruments)
    assert isinstance(options.universe, FileUniverse)
    assert options.universe.by_symbol("RELX").token == 990001
    bad = tmp_path / "bad.csv"
    bad.write_text(f"{HEADER}\n7,1,RELX,R,0,,0,0.05,1,EQ,NSE,NSE,-4\n")
    with pytest.raises(typer.BadParameter, match=r"bad\.csv row 2, column freeze_qty"):
        runtime_options("replay", "1x", None, [data], 7, "PAPER", bad)
