"""One JSON error shape for every error the API returns, and the one place errors become HTTP.

Every error response, whatever raised it (an unknown route, a bad parameter, a missing API key, a
store that is down, a bug), has the body::

    {"error": {"status": 404, "code": "not_found", "message": "...", "details": [...]}}

Sitegraph's own exceptions (:mod:`sitegraph.errors`) map to status codes here; driver errors that
mean "the store is not reachable" become 503; anything else is a 500 whose body says nothing about
the code (the stack trace goes to the log only).
"""

from __future__ import annotations

import logging
import sqlite3
import uuid
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from sitegraph.errors import (
    InvalidInputError,
    NotFoundError,
    SchemaError,
    SitegraphError,
    StoreError,
    StoreUnavailableError,
    UsageError,
)

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = "2"


class ErrorDetail(BaseModel):
    """One thing wrong with a request."""

    location: str | None = Field(default=None, description="Where the field is: body, query, path or header.")
    field: str | None = Field(default=None, description="Dotted name of the offending field, e.g. 'site_id' or 'limit'.")
    message: str = Field(description="What is wrong with it.")
    type: str | None = Field(default=None, description="A machine-readable kind of problem, e.g. 'missing', 'not_found'.")


class ErrorInfo(BaseModel):
    status: int = Field(description="The HTTP status code, repeated.")
    code: str = Field(description="A stable machine-readable code, e.g. not_found, validation_error, unauthorized.")
    message: str = Field(description="A human-readable explanation.")
    details: list[ErrorDetail] = Field(default_factory=list)


class ErrorResponse(BaseModel):
    """The body of every error response."""

    error: ErrorInfo

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "error": {
                        "status": 404,
                        "code": "not_found",
                        "message": "no site with id 'site:nowhere'",
                        "details": [
                            {
                                "location": "path",
                                "field": "site_id",
                                "message": "no site with id 'site:nowhere'",
                                "type": "not_found",
                            }
                        ],
                    }
                }
            ]
        }
    }


class ApiError(Exception):
    """An error raised by the API layer itself (authentication, disabled writes)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: Sequence[ErrorDetail] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = list(details)
        self.headers = dict(headers or {})


_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    500: "internal_error",
    503: "service_unavailable",
}


def code_for(status: int) -> str:
    if status in _CODES:
        return _CODES[status]
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


def error_response(
    status: int,
    message: str,
    *,
    code: str | None = None,
    details: Sequence[ErrorDetail] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = ErrorResponse(error=ErrorInfo(status=status, code=code or code_for(status), message=message, details=list(details)))
    return JSONResponse(status_code=status, content=body.model_dump(mode="json"), headers=dict(headers or {}))


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries documenting the error shape for these status codes."""
    descriptions = {
        400: "Bad request.",
        401: "Missing or invalid API key.",
        404: "Unknown id.",
        413: "Request body larger than 64 KiB.",
        422: "Invalid input; `details` names each offending field.",
        500: "Internal error (no stack trace is returned).",
        503: "The store is not reachable (retry later), or writes are disabled because no API keys are configured.",
    }
    return {s: {"model": ErrorResponse, "description": descriptions.get(s, HTTPStatus(s).phrase)} for s in statuses}


# --- handlers ----------------------------------------------------------------------------------


def _validation_details(exc: RequestValidationError) -> list[ErrorDetail]:
    details: list[ErrorDetail] = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        location = loc[0] if loc and loc[0] in ("body", "query", "path", "header", "cookie") else None
        field_parts = loc[1:] if location else loc
        details.append(
            ErrorDetail(
                location=location,
                field=".".join(field_parts) or None,
                message=str(err.get("msg", "invalid value")),
                type=str(err.get("type")) if err.get("type") else None,
            )
        )
    return details


def _summary(details: Sequence[ErrorDetail], prefix: str) -> str:
    if not details:
        return prefix
    first = details[0]
    where = first.field or first.location or "request"
    more = f" (and {len(details) - 1} more problem(s))" if len(details) > 1 else ""
    return f"{prefix}: {where}: {first.message}{more}"


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = _validation_details(exc)
    return error_response(422, _summary(details, "invalid request"), details=details)


async def _on_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    if exc.status_code == 404 and message == "Not Found":
        message = f"no such endpoint: {request.url.path}"
    elif exc.status_code == 405 and message == "Method Not Allowed":
        message = f"method {request.method} is not allowed on {request.url.path}"
    return error_response(exc.status_code, message, headers=exc.headers)


async def _on_api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, code=exc.code, details=exc.details, headers=exc.headers)


def _store_down(message: str) -> JSONResponse:
    return error_response(503, message, code="store_unavailable", headers={"Retry-After": RETRY_AFTER_SECONDS})


async def _on_sitegraph_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SitegraphError)
    if isinstance(exc, NotFoundError):
        return error_response(404, str(exc))
    if isinstance(exc, InvalidInputError):
        details = [ErrorDetail(location=p.source, field=p.field, message=p.message, type="invalid") for p in exc.problems]
        return error_response(422, _summary(details, exc.summary), details=details)
    if isinstance(exc, UsageError):
        return error_response(400, str(exc))
    if isinstance(exc, StoreUnavailableError):
        log.warning("store unavailable during %s %s: %s", request.method, request.url.path, exc)
        return _store_down("the store is not available; retry later")
    if isinstance(exc, SchemaError):
        log.error("schema error during %s %s: %s", request.method, request.url.path, exc)
        return error_response(500, "internal error")
    if isinstance(exc, StoreError):
        log.error("store error during %s %s: %s", request.method, request.url.path, exc)
        return error_response(500, "the store refused the operation", code="store_error")
    log.error("unexpected sitegraph error during %s %s: %s", request.method, request.url.path, exc)
    return error_response(500, "internal error")


async def _on_driver_down(request: Request, exc: Exception) -> JSONResponse:
    """Driver errors that escaped the store's own wrapping still mean the store is unreachable."""
    log.warning("store driver error during %s %s: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
    return _store_down("the store is not available; retry later")


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    incident = uuid.uuid4().hex[:12]
    log.error("unhandled error %s during %s %s", incident, request.method, request.url.path, exc_info=exc)
    return error_response(500, f"internal error (incident {incident})")


def _driver_unavailable_types() -> tuple[type[Exception], ...]:
    types: list[type[Exception]] = [sqlite3.Error]
    try:
        from neo4j.exceptions import ServiceUnavailable, SessionExpired

        types += [ServiceUnavailable, SessionExpired]
    except ImportError:  # pragma: no cover - neo4j is a dependency
        pass
    return tuple(types)


def install_error_handlers(app: FastAPI) -> None:
    """Register every handler on the app: the single mapping from exceptions to HTTP responses."""
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(SitegraphError, _on_sitegraph_error)
    for exc_type in _driver_unavailable_types():
        app.add_exception_handler(exc_type, _on_driver_down)
    app.add_exception_handler(Exception, _on_unexpected)
