"""api/openapi.json is the contract: generated from the app, and never stale."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from aitrapp.api.openapi import build_openapi, render_openapi
from aitrapp.api.openapi import main as openapi_main

ROOT = Path(__file__).resolve().parents[2]
CHECKED_IN = ROOT / "api" / "openapi.json"


def test_openapi_json_is_current() -> None:
    assert CHECKED_IN.exists(), "api/openapi.json is missing: run `make openapi`"
    assert CHECKED_IN.read_text(encoding="utf-8") == render_openapi(), (
        "api/openapi.json is stale: run `make openapi` and commit the result"
    )


def test_contract_lists_every_endpoint_with_its_security() -> None:
    doc = build_openapi()
    paths = doc["paths"]
    assert set(paths) == {
        "/health", "/state", "/mode", "/pause", "/resume", "/flatten", "/orders",
        "/positions", "/trades", "/signals", "/decisions", "/risk-events", "/metrics", "/events",
    }  # fmt: skip
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for path in ("/mode", "/pause", "/resume", "/flatten"):
        op = paths[path]["post"]
        assert op["security"] == [{"HTTPBearer": []}], path
        assert "401" in op["responses"], path
    assert "security" not in paths["/health"]["get"]
    mode = doc["components"]["schemas"]["ModeRequest"]
    assert mode["additionalProperties"] is False
    assert "text/event-stream" in paths["/events"]["get"]["responses"]["200"]["content"]
    dates = {p["name"]: p for p in paths["/trades"]["get"]["parameters"]}
    assert dates["date"]["schema"]["anyOf"][0]["format"] == "date"


def test_check_mode_of_the_generator(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "openapi.json"
    cmd = [sys.executable, "-m", "aitrapp.api.openapi", "--out", str(out)]
    # The module as `make openapi` runs it (a process); the other runs call its main here.
    stale = subprocess.run([*cmd, "--check"], capture_output=True, text=True, check=False)
    assert stale.returncode == 1 and "stale" in stale.stderr
    assert openapi_main(["--out", str(out)]) == 0
    assert json.loads(out.read_text())["info"]["title"] == "AITRAPP control API"
    capsys.readouterr()
    fresh = openapi_main(["--out", str(out), "--check"])
    assert fresh == 0, capsys.readouterr().err
