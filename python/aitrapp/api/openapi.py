"""Generate ``api/openapi.json`` from the app (``make openapi``).

    python -m aitrapp.api.openapi [--out api/openapi.json] [--check]

The document is built from a fresh app with default settings and no runtime
(nothing starts), serialised with sorted keys so the diff of a change is
readable. ``--check`` exits 1 when the file differs: the test suite does the same.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from aitrapp.api.app import create_app
from aitrapp.control import RuntimeHandle
from aitrapp.settings import AppSettings

DEFAULT_PATH = Path("api/openapi.json")


async def _no_runtime(_: AppSettings) -> RuntimeHandle:
    raise RuntimeError("generating the OpenAPI document does not start a runtime")


def build_openapi() -> dict[str, Any]:
    # model_construct: the defaults, not this machine's environment.
    app = create_app(AppSettings.model_construct(), runtime_factory=_no_runtime)
    return app.openapi()


def render_openapi() -> str:
    return json.dumps(build_openapi(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    text = render_openapi()
    out: Path = args.out
    if args.check:
        current = out.read_text(encoding="utf-8") if out.exists() else ""
        if current != text:
            print(f"{out} is stale: run `make openapi`", file=sys.stderr)
            return 1
        print(f"{out} is up to date")
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
