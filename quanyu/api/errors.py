"""Translate errors into ``{"code", "message"}`` JSON once, for every route."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from quanyu.errors import QuanyuError, RateLimited

log = logging.getLogger("quanyu.api")


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None, **extra: Any
) -> Response:
    """A JSON error body with a stable code and a human message."""
    body = {"code": code, "message": message, **extra}
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def quanyu_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, QuanyuError)
    headers = None
    if isinstance(exc, RateLimited):
        headers = {
            "Retry-After": str(int(exc.retry_after)),
            "X-RateLimit-Reset": str(int(exc.reset_at)),
        }
    extra = {"rejected": exc.details} if exc.details is not None else {}
    return error_response(exc.status, exc.code, exc.message, headers, **extra)


def validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()))
        problems.append(f"{where}: {err.get('msg')}")
    return error_response(422, "invalid_request", "Invalid request: " + "; ".join(problems))


def http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail), exc.headers)


def unexpected_error(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(
        500, "internal_error", "An internal error occurred; it is logged with this request's id."
    )


def install(app: FastAPI) -> None:
    """Register the translations on ``app``."""
    app.add_exception_handler(QuanyuError, quanyu_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected_error)
