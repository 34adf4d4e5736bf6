"""Price and Instrument across the Python boundary."""

from __future__ import annotations

import pytest

from aitrapp import AitrappError, Instrument, InstrumentError, Price, PriceError


@pytest.mark.parametrize(
    ("text", "paise"), [("2500.05", 250005), ("2500", 250000), ("0.5", 50), ("-0.05", -5)]
)
def test_price_parses_exactly(text: str, paise: int) -> None:
    p = Price.from_rupees(text)
    assert p.paise == paise
    assert Price.from_rupees(str(p)) == p


def test_price_formats_two_decimals() -> None:
    assert str(Price(250000)) == "2500.00"
    assert repr(Price(5)) == "Price('0.05')"


@pytest.mark.parametrize(
    ("paise", "mode", "want"),
    [(250003, "down", 250000), (250003, "up", 250005), (250003, "nearest", 250005)],
)
def test_round_to_tick(paise: int, mode: str, want: int) -> None:
    assert Price(paise).round_to_tick(Price(5), mode).paise == want


def test_bad_rounding_mode_and_tick() -> None:
    with pytest.raises(ValueError, match="rounding"):
        Price(1).round_to_tick(Price(5), "sideways")
    with pytest.raises(PriceError, match="tick"):
        Price(1).round_to_tick(Price(0))


def test_errors_share_one_root() -> None:
    for exc in (PriceError, InstrumentError):
        assert issubclass(exc, AitrappError)
    with pytest.raises(AitrappError):
        Price.from_rupees(float("inf"))


def _inst(**over: object) -> Instrument:
    fields: dict[str, object] = {
        "exchange": "NSE",
        "tradingsymbol": "RELIANCE",
        "instrument_token": 738561,
        "segment": "EQ",
        "tick_size": "0.05",
        "lot_size": 1,
        "freeze_qty": 100000,
    }
    fields.update(over)
    return Instrument(**fields)  # type: ignore[arg-type]


def test_instrument_round_trip() -> None:
    i = _inst()
    assert (i.exchange, i.tradingsymbol, i.segment, i.tick_paise, i.lot_size) == (
        "NSE",
        "RELIANCE",
        "EQ",
        5,
        1,
    )
    assert i.tick_size == pytest.approx(0.05)


@pytest.mark.parametrize(
    ("over", "key"),
    [
        ({"lot_size": 0}, "lot_size"),
        ({"tick_size": 0}, "tick_size"),
        ({"segment": "CDS"}, "segment"),
        ({"freeze_qty": 0, "lot_size": 65}, "freeze_qty"),
    ],
)
def test_invalid_instrument_names_the_key(over: dict[str, object], key: str) -> None:
    with pytest.raises(InstrumentError, match=key):
        _inst(**over)
