"""Exception handlers: bad input is a 4xx naming the field, never a 500.

- Validation errors (body, query, path): 422 with FastAPI's ``detail`` list
  plus a one-line ``message`` such as ``body.mode: Input should be 'PAPER' or 'LIVE'``.
- Domain refusals: ``ModeRefusedError`` 409 with the gate's ``reasons``;
  ``FlattenTimeoutError`` 504 (orders may still be working: look at /state);
  any other ``AitrappError`` 409.
- The database (or another backing service) unreachable or timing out: 503.
- Anything else is a bug: logged with its traceback, answered 500 without details.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import asyncpg
from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from aitrapp.control import FlattenTimeoutError, ModeRefusedError
from aitrapp.exceptions import AitrappError

log = logging.getLogger(__name__)

_JSON_SCALARS = (str, int, float, bool, type(None))


def _loc(loc: Sequence[Any]) -> str:
    return ".".join(str(part) for part in loc)


def _clean(error: dict[str, Any]) -> dict[str, Any]:
    """One validation error, JSON-safe (pydantic's ``ctx`` may hold exceptions)."""
    out: dict[str, Any] = {
        "loc": list(error.get("loc", ())),
        "msg": str(error.get("msg", "")).removeprefix("Value error, "),
        "type": str(error.get("type", "")),
    }
    value = error.get("input")
    if isinstance(value, _JSON_SCALARS) and not (isinstance(value, str) and len(value) > 200):
        out["input"] = value
    return out


def validation_message(errors: Sequence[dict[str, Any]]) -> str:
    return "; ".join(f"{_loc(e['loc'])}: {e['msg']}" for e in errors) or "invalid request"


def invalid_field(
    loc: Sequence[str | int], msg: str, value: object = None
) -> RequestValidationError:
    """A 422 for checks FastAPI cannot express (e.g. date_from after date_to)."""
    return RequestValidationError(
        [{"loc": tuple(loc), "msg": msg, "type": "value_error", "input": value}]
    )


async def _on_validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [_clean(dict(e)) for e in exc.errors()]
    return JSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        content={"detail": errors, "message": validation_message(errors)},
    )


async def _on_http(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return JSONResponse(
        status_code=exc.status_code, content={"detail": exc.detail}, headers=exc.headers
    )


async def _on_mode_refused(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ModeRefusedError)
    return JSONResponse(
        status_code=status.HTTP_409_CONFLICT,
        content={"detail": f"mode change refused: {exc}", "reasons": exc.reasons},
    )


async def _on_flatten_timeout(_: Request, exc: Exception) -> JSONResponse:
    log.error("api: flatten timed out: %s", exc)
    return JSONResponse(
        status_code=status.HTTP_504_GATEWAY_TIMEOUT,
        content={"detail": f"flatten incomplete: {exc}", "error": type(exc).__name__},
    )


async def _on_domain(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(
        status_code=status.HTTP_409_CONFLICT,
        content={"detail": str(exc), "error": type(exc).__name__},
    )


async def _on_database(request: Request, exc: Exception) -> JSONResponse:
    log.warning("api: database unavailable for %s: %s", request.url.path, exc)
    return JSONResponse(
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        content={"detail": "database unavailable", "error": type(exc).__name__},
    )


async def _on_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("api: %s on %s: %s", type(exc).__name__, request.url.path, exc)
    return JSONResponse(
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        content={"detail": "a backing service is unavailable", "error": type(exc).__name__},
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("api: unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse(
        status_code=status.HTTP_500_INTERNAL_SERVER_ERROR,
        content={"detail": "internal error (logged)", "error": type(exc).__name__},
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(ModeRefusedError, _on_mode_refused)
    app.add_exception_handler(FlattenTimeoutError, _on_flatten_timeout)
    app.add_exception_handler(AitrappError, _on_domain)
    app.add_exception_handler(asyncpg.PostgresError, _on_database)
    app.add_exception_handler(asyncpg.InterfaceError, _on_database)
    app.add_exception_handler(ConnectionError, _on_unavailable)
    app.add_exception_handler(TimeoutError, _on_unavailable)
    app.add_exception_handler(Exception, _on_unexpected)
