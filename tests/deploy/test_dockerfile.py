"""The Dockerfile builds the wheel with the steps `make wheel` runs, and runs unprivileged.

The Makefile is the reference: ``make -n -B wheel`` lists its commands, and
each must be a RUN of the build stage, in the same order. The one exception is
``maturin develop``: `make wheel` reuses the development venv (dev extras
installed, the extension built in place), which a wheel build does not need.
"""

from __future__ import annotations

import re
import shlex
import subprocess

from .conftest import ROOT

DOCKERFILE = ROOT / "Dockerfile"
BUILD_VENV = "/opt/build-venv"


def stages() -> list[tuple[str, list[tuple[str, str]]]]:
    """(FROM line, [(instruction, argument)]) per stage; continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out: list[tuple[str, list[tuple[str, str]]]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        instr, _, arg = line.partition(" ")
        instr = instr.upper()
        if instr == "FROM":
            out.append((arg, []))
        elif out:
            out[-1][1].append((instr, " ".join(arg.split())))
    return out


def make_wheel_commands() -> list[str]:
    out = subprocess.run(
        ["make", "-n", "-B", "wheel", f"VENV={BUILD_VENV}"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=True,
    )
    return [" ".join(line.split()) for line in out.stdout.splitlines() if line.strip()]


def normal(cmd: str) -> list[str]:
    return shlex.split(cmd)


def test_build_stage_runs_the_make_wheel_steps_in_order() -> None:
    (build_from, build), *_ = stages()
    assert build_from.endswith(" AS build")
    env = {k: v for i, a in build if i == "ENV" for k, v in [a.split("=", 1)]}
    assert env.get("VENV") == BUILD_VENV
    runs = [normal(a.replace("$VENV", BUILD_VENV)) for i, a in build if i == "RUN"]
    expected = [
        c
        for c in map(normal, make_wheel_commands())
        if c[:1] != ["touch"] and not (c[0].endswith("/maturin") and c[1] == "develop")
    ]
    assert any(c[1:3] == ["build", "--release"] for c in expected), expected  # the wheel itself
    positions = [runs.index(c) if c in runs else -1 for c in expected]
    assert -1 not in positions, f"make wheel runs {expected}; the Dockerfile runs {runs}"
    assert positions == sorted(positions), "the Dockerfile runs them in another order"


def test_multi_stage_and_the_image_runs_as_a_non_root_user() -> None:
    all_stages = stages()
    assert len(all_stages) >= 2
    run_from, run = all_stages[-1]
    assert " AS build" not in run_from
    assert ("COPY", "--from=build /src/dist/*.whl /tmp/wheels/") in run
    users = [a for i, a in run if i == "USER"]
    assert users, "the final stage sets no USER (it would run as root)"
    assert users[-1].split(":")[0] not in ("root", "0")
    entry = [a for i, a in run if i == "ENTRYPOINT"]
    assert entry == ['["aitrapp"]']


def test_build_context_holds_what_the_build_copies() -> None:
    """.dockerignore allows only listed paths: each COPY source must be one of them."""
    allowed = [
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    ]
    (_, build), *_ = stages()
    sources = [
        s for i, a in build if i == "COPY" and not a.startswith("--from") for s in a.split()[:-1]
    ]
    assert sources
    for src in sources:
        assert src in allowed, f"COPY {src}: excluded by .dockerignore"
        assert (ROOT / src).exists(), src
