"""Fixtures for the deployment checks: the app's real /metrics text, the tools' paths.

``exposition`` starts the control API in-process (its lifespan on the test's
database, the stand-in runtime of tests/api, whose metrics are the real
:class:`~aitrapp.metrics.Metrics`) and scrapes ``GET /metrics``, so the
dashboard and the alert rules are checked against what Prometheus would read.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from aitrapp.api import create_app
from aitrapp.db.pool import Pool
from aitrapp.settings import AppSettings, load_settings
from api.fake_runtime import FakeRuntime  # tests/api (pytest puts tests/ on sys.path)

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def tool(name: str, package: str) -> str:
    """The tool's path, or a skip that names the Debian package `make deploy-tools` installs."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(
            f"{name} not installed: `make deploy-tools` installs Debian's {package} "
            f"(this check did NOT run)"
        )
    return path


@pytest.fixture
async def exposition(db_pool: Pool) -> str:
    runtime = await FakeRuntime.start(db_pool)

    async def factory(_: AppSettings) -> FakeRuntime:
        return runtime

    app = create_app(load_settings(), runtime_factory=factory)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000"
        ) as client,
    ):
        response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    return response.text
