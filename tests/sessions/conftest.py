"""Fixtures of the session tests: fresh migrated databases on the shared server.

``make_db()`` clones the migrated template (milliseconds) and drops the clones
after the test, so a test can run several sessions side by side (the replay
determinism test needs two); ``module_db`` is one such database shared by the
checks of one recorded session.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest_asyncio

from .helpers import fresh_database

MakeDb = Callable[[], Awaitable[str]]


@pytest_asyncio.fixture
async def make_db(pg_url: str, pg_template: str) -> AsyncIterator[MakeDb]:
    async with contextlib.AsyncExitStack() as stack:

        async def make() -> str:
            return await stack.enter_async_context(fresh_database(pg_url, pg_template))

        yield make


@pytest_asyncio.fixture(scope="module")
async def module_db(pg_url: str, pg_template: str) -> AsyncIterator[str]:
    async with fresh_database(pg_url, pg_template) as url:
        yield url
