"""Fixtures of the browser tests: Debian's chromium driven by Playwright, and a
short PAPER session served by the real app on a free loopback port.

``console(token=...)`` starts the runtime (replay feed held until the test
calls ``start_feed()``) under uvicorn and opens a 1280x800 page whose
console errors are collected. Screenshots go to ``artifacts/ui/`` (ignored
by git).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvicorn
from playwright.async_api import Browser, Page, async_playwright

from aitrapp.api import create_app
from aitrapp.cli.serve import ApiServer
from aitrapp.db.embedded import free_port
from aitrapp.runtime import Runtime, start_runtime
from aitrapp.settings import AppSettings, load_settings

from .paper_session import paper_options

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "ui"
TOKEN = "console-token-" + "7" * 20
VIEWPORT = {"width": 1280, "height": 800}


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail(
            "chromium is not installed: the console's browser tests need Debian's chromium "
            "(`make test` installs it as root; else: sudo apt-get install chromium)",
            pytrace=False,
        )
    return found


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    path = chromium_path()
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=path, headless=True)
        try:
            yield b
        finally:
            await b.close()


@dataclass
class Console:
    url: str
    runtime: Runtime
    page: Page
    token: str | None
    errors: list[str] = field(default_factory=list)

    async def open(self, path: str = "/", *, token: str | None = "default") -> None:
        """Load a page; ``token`` is put in sessionStorage first (default: the right one)."""
        value = self.token if token == "default" else token
        if value:
            await self.page.add_init_script(
                f"sessionStorage.setItem('aitrapp.apiToken', {value!r});"
            )
        await self.page.goto(self.url + path)

    async def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        await self.page.screenshot(path=str(path))
        return path


MakeConsole = Callable[..., Awaitable[Console]]


@pytest.fixture
async def console(browser: Browser, db_url: str, tmp_path: Path) -> AsyncIterator[MakeConsole]:
    async with contextlib.AsyncExitStack() as stack:

        async def make(token: str | None = TOKEN, **option_overrides: object) -> Console:
            settings = load_settings(
                database_url=db_url,
                redis_url=None,
                data_dir=tmp_path / "var",
                logs_dir=tmp_path / "logs",
                api_token=token,
                notify_urls=[],
            )
            options = paper_options(tmp_path, start_feed=False, **option_overrides)
            runtimes: list[Runtime] = []

            async def factory(s: AppSettings) -> Runtime:
                rt = await start_runtime(s, options)
                runtimes.append(rt)
                return rt

            app = create_app(settings, runtime_factory=factory, sse_heartbeat_s=2.0)
            port = free_port()
            config = uvicorn.Config(
                app, host="127.0.0.1", port=port, lifespan="on", log_config=None,
                log_level="warning",
            )  # fmt: skip
            server = ApiServer(config, app)
            task = asyncio.create_task(server.serve(), name="console-api")

            async def stop_server() -> None:
                server.should_exit = True
                await asyncio.wait_for(task, 60)

            stack.push_async_callback(stop_server)
            while not server.started:
                if task.done():
                    task.result()
                    raise AssertionError("the API did not start")
                await asyncio.sleep(0.02)
            context = await browser.new_context(viewport=VIEWPORT)
            stack.push_async_callback(context.close)  # before the server stops
            page = await context.new_page()
            c = Console(f"http://127.0.0.1:{port}", runtimes[0], page, token)
            page.on("console", lambda m: c.errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: c.errors.append(f"page error: {e}"))
            return c

        yield make


def update_docs_screenshot(shot: Path) -> None:
    """``AITRAPP_UPDATE_DOCS_SCREENSHOT=1`` copies the dashboard shot into docs/img."""
    if os.environ.get("AITRAPP_UPDATE_DOCS_SCREENSHOT") == "1":
        target = ROOT / "docs" / "img" / "dashboard.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target)
