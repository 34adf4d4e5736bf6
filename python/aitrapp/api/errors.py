"""Exception handlers: bad input is a 4xx naming the field, never a 500.

- Validation errors (body, query, path): 422 with FastAPI's ``detail`` list
  plus a one-line ``message`` such as ``body.mode: Input should be 'PAPER' or 'LIVE'``.
- JSON bodies are checked before FastAPI reads them (:class:`StrictJsonBody`):
  invalid JSON, and NaN or Infinity (Python's json accepts them, JSON does not,
  and a NaN echoed back in an error could not even be rendered), are a 422
  naming the field (``body.timeout_s: NaN is not a JSON number``).
- Domain refusals: ``ModeRefusedError`` 409 with the gate's ``reasons``;
  ``FlattenTimeoutError`` 504 (orders may still be working: look at /state);
  any other ``AitrappError`` 409.
- The database (or another backing service) unreachable or timing out: 503.
- Anything else is a bug: logged with its traceback, answered 500 without details.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg
from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
    if isinstance(value, float) and not math.isfinite(value):
        out["input"] = str(value)  # NaN/Infinity cannot be written as JSON
    elif isinstance(value, _JSON_SCALARS) and not (isinstance(value, str) and len(value) > 200):
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


# ---- JSON bodies: invalid JSON and non-finite numbers, before FastAPI parses them ----
_NON_FINITE = {"NaN": "NaN", "Infinity": "Infinity", "-Infinity": "-Infinity"}


def _reject_constant(name: str) -> float:
    raise _NonFiniteError(name)


class _NonFiniteError(ValueError):
    pass


def _non_finite_paths(value: object, path: tuple[str | int, ...] = ()) -> list[tuple[Any, ...]]:
    """Where a parsed document holds an infinite float (a literal like 1e999)."""
    if isinstance(value, float) and not math.isfinite(value):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _non_finite_paths(v, (*path, str(k)))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _non_finite_paths(v, (*path, i))]
    return []


def _locate_constant(text: str, name: str) -> tuple[str | int, ...]:
    """The field holding the first NaN/Infinity literal: parse again with it as a marker."""
    marker = "\u0000aitrapp-non-finite\u0000"
    doc = json.loads(text, parse_constant=lambda c: marker if c == name else 0.0)

    def find(value: object, path: tuple[str | int, ...]) -> tuple[str | int, ...] | None:
        if value == marker:
            return path
        items: list[tuple[str | int, object]] = []
        if isinstance(value, dict):
            items = [(str(k), v) for k, v in value.items()]
        elif isinstance(value, list):
            items = list(enumerate(value))
        for key, v in items:
            found = find(v, (*path, key))
            if found is not None:
                return found
        return None

    return find(doc, ()) or ()


def json_body_errors(body: bytes) -> list[dict[str, Any]]:
    """Validation errors of a JSON request body that FastAPI would let through or choke on."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return [{"loc": ["body"], "msg": f"not UTF-8 ({exc.reason})", "type": "json_invalid"}]
    if not text.strip():
        return []  # no body: the route decides whether one is required
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except _NonFiniteError as exc:
        name = str(exc)
        loc = ["body", *_locate_constant(text, name)]
        return [
            {
                "loc": loc,
                "msg": f"{_NON_FINITE[name]} is not a JSON number (send a finite number)",
                "type": "finite_number",
            }
        ]
    except json.JSONDecodeError as exc:
        return [
            {
                "loc": ["body"],
                "msg": f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                "type": "json_invalid",
            }
        ]
    except RecursionError:
        return [{"loc": ["body"], "msg": "invalid JSON: nested too deeply", "type": "json_invalid"}]
    return [
        {"loc": ["body", *p], "msg": "out of range: not a finite number", "type": "finite_number"}
        for p in _non_finite_paths(doc)
    ]


def _is_json(headers: list[tuple[bytes, bytes]]) -> bool:
    for key, value in headers:
        if key.lower() == b"content-type":
            mime = value.split(b";", 1)[0].strip().lower()
            return mime.endswith(b"/json") or mime.endswith(b"+json")
    return False


class StrictJsonBody:
    """ASGI middleware: a JSON body of a route that reads one must be valid, finite JSON.

    Anything else is answered 422 here, in the shape of every validation error,
    with the body read to its end so the connection stays usable (keep-alive).
    Routes without a request body in the OpenAPI document are left alone (they
    ignore what is sent).
    """

    def __init__(self, app: ASGIApp, *, openapi: Callable[[], dict[str, Any]]) -> None:
        self.app = app
        self._openapi = openapi
        self._with_body: list[tuple[str, re.Pattern[str]]] | None = None

    def _reads_json(self, scope: Scope) -> bool:
        if self._with_body is None:
            self._with_body = [
                (method.upper(), compile_path(path)[0])
                for path, ops in self._openapi().get("paths", {}).items()
                for method, op in ops.items()
                if isinstance(op, dict) and "requestBody" in op
            ]
        method, path = scope["method"], scope["path"]
        return any(m == method and rx.match(path) for m, rx in self._with_body)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in ("POST", "PUT", "PATCH")
            or not _is_json(scope.get("headers", []))
            or not self._reads_json(scope)
        ):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        errors = json_body_errors(body)
        if errors:
            response = JSONResponse(
                status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
                content={"detail": errors, "message": validation_message(errors)},
            )
            await response(scope, receive, send)
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def install_error_handlers(app: FastAPI) -> None:
    app.add_middleware(StrictJsonBody, openapi=app.openapi)
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
