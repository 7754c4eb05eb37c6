"""One error shape for every HTTP API: `{"error": "...", "details": [...]}` (docs/contract.md section 3).

Handlers raise `ApiError` (or FastAPI's own validation errors, which are
translated here); nothing a client sends may turn into a 500. A database that
cannot be reached answers 503 with Retry-After, wherever the query was.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.db.errors import DATABASE_ERRORS, database_unavailable

log = logging.getLogger(__name__)

DATABASE_RETRY_AFTER_S: Final = 5


class OrjsonResponse(JSONResponse):
    """JSON rendered by orjson (FastAPI deprecates its own OrjsonResponse)."""

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content)
        except orjson.JSONEncodeError:
            # A lone surrogate a client sent, echoed in an error's field or message, is
            # not UTF-8; the standard encoder writes it as its \u escape instead of a 500.
            return json.dumps(content, ensure_ascii=True, default=str).encode("ascii")


class ApiError(Exception):
    """An error meant for the client: status, a sentence, optional per-field details."""

    def __init__(
        self,
        status: int,
        error: str,
        details: Sequence[Mapping[str, Any]] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.details = [dict(d) for d in details]
        self.headers = dict(headers or {})


def error_response(
    status: int, error: str, details: Sequence[Mapping[str, Any]] = (),
    headers: Mapping[str, str] | None = None,
) -> OrjsonResponse:
    return OrjsonResponse(
        {"error": error, "details": [dict(d) for d in details]}, status_code=status,
        headers=dict(headers or {}),
    )


def _field(loc: Sequence[Any]) -> str:
    # FastAPI prefixes the source ("body", "query", "path", "header"); keep it
    # for parameters so "query.limit" and "body.name" stay unambiguous.
    return ".".join(str(part) for part in loc)


async def _api_error(_: Request, exc: Exception) -> OrjsonResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.error, exc.details, exc.headers)


async def _validation_error(_: Request, exc: Exception) -> OrjsonResponse:
    assert isinstance(exc, RequestValidationError)
    details = [{"field": _field(e.get("loc", ())), "message": e.get("msg", "invalid")}
               for e in exc.errors()]
    return error_response(422, "request is invalid", details)


async def _http_error(_: Request, exc: Exception) -> OrjsonResponse:
    assert isinstance(exc, StarletteHTTPException)
    return error_response(exc.status_code, str(exc.detail), (), getattr(exc, "headers", None))


async def _database_error(request: Request, exc: Exception) -> OrjsonResponse:
    if not database_unavailable(exc):
        return await _unexpected(request, exc)
    log.warning("database unavailable on %s %s: %r", request.method, request.url.path, exc)
    return error_response(503, "the database cannot be reached right now; retry later", (),
                          {"Retry-After": str(DATABASE_RETRY_AFTER_S)})


async def _unexpected(request: Request, exc: Exception) -> OrjsonResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for kind in DATABASE_ERRORS:
        app.add_exception_handler(kind, _database_error)
    app.add_exception_handler(Exception, _unexpected)
