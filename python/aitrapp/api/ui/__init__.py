"""The operator console: server-rendered pages and fragments, static CSS and JS.

:func:`install_console` adds the routes and the static files to an app.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from aitrapp.api.ui.routes import STATIC_DIR, STATIC_URL, router


def install_console(app: FastAPI) -> None:
    app.include_router(router)
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="console-static")


__all__ = ["install_console"]
