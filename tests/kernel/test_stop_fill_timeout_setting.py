"""`oco.stop_fill_timeout_s` is a setting (AITRAPP_OCO_STOP_FILL_TIMEOUT_S):
it reaches every bracket, refuses nonsense, and explicit options win."""

from __future__ import annotations

import pytest

from aitrapp.exceptions import ConfigError
from aitrapp.kernel.options import BracketOptions, bracket_template
from aitrapp.runtime import Runtime, RuntimeOptions
from aitrapp.settings import load_settings


def test_the_setting_reaches_thebracket_template(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AITRAPP_OCO_STOP_FILL_TIMEOUT_S", "12.5")
    rt = Runtime(load_settings(), RuntimeOptions())
    assert rt.options.bracket.stop_fill_timeout_s == 12.5
    assert bracket_template(rt.options.bracket)["stop_fill_timeout_s"] == 12.5


def test_options_that_chose_a_timeout_keep_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AITRAPP_OCO_STOP_FILL_TIMEOUT_S", "12.5")
    opts = RuntimeOptions(bracket=BracketOptions(stop_fill_timeout_s=2.0))
    assert Runtime(load_settings(), opts).options.bracket.stop_fill_timeout_s == 2.0


@pytest.mark.parametrize("bad", ["0", "-1", "7200", "soon"])
def test_a_bad_timeout_is_refused_naming_the_key(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv("AITRAPP_OCO_STOP_FILL_TIMEOUT_S", bad)
    with pytest.raises(ConfigError, match="AITRAPP_OCO_STOP_FILL_TIMEOUT_S"):
        load_settings()
