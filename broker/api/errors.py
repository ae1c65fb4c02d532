"""The one error shape of the API: `{"error": {"code", "message"}}` with a fitting status.

Handlers raise `APIError` (or a subclass); FastAPI's own validation errors and HTTP exceptions
are rewritten into the same shape, naming the offending parameter, so no client ever has to
parse two formats.

The domain below (ledger, accounts, top-ups, rentals) raises its own refusals
(`broker.domain_errors`), which know nothing of HTTP. `DOMAIN_ERRORS` is the one place that says
what each of them is over the wire: its status and error code; their fields (`param`,
`attempts`, `missing`, ...) travel beside the message unchanged.

A transaction that lost to concurrent ones on every retry (`broker.db.Contention`), or a database
error of that kind raised outside the retrying helper, is a 503 `busy`: nothing was changed and the
same request may simply be sent again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from broker.budget.service import BudgetExceeded
from broker.db import Contention, is_retryable
from broker.domain_errors import (
    Conflict,
    DomainError,
    Invalid,
    Malformed,
    NoCapacity,
    NotConfigured,
    NotFound,
    PriceChanged,
    ProviderFailed,
)
from broker.ledger_core import InsufficientCredit

log = logging.getLogger("gpubroker.api")

_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    402: "insufficient_credit",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "invalid_request",
    422: "invalid_request",
    429: "rate_limited",
    502: "provider_error",
    503: "no_capacity",
    504: "provider_error",
}


class APIError(Exception):
    """An error to return to the caller as-is; `extra` adds fields beside code and message
    (any name, `status` included: the leading parameters are positional-only)."""

    def __init__(self, status: int, code: str, message: str, /, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


# Each kind of domain refusal as (status, code); a subclass maps as its nearest listed base.
DOMAIN_ERRORS: dict[type[DomainError], tuple[int, str]] = {
    Malformed: (400, "invalid_request"),
    InsufficientCredit: (402, "insufficient_credit"),
    BudgetExceeded: (402, "budget_exceeded"),
    NotFound: (404, "not_found"),
    Conflict: (409, "conflict"),
    PriceChanged: (409, "price_changed"),
    Invalid: (422, "invalid_request"),
    ProviderFailed: (502, "provider_error"),
    NoCapacity: (503, "no_capacity"),
    NotConfigured: (503, "not_configured"),
}


def _mapping(error: DomainError) -> tuple[int, str]:
    for kind in type(error).__mro__:
        if kind in DOMAIN_ERRORS:
            return DOMAIN_ERRORS[kind]
    return 500, "internal_error"


def status_of(error: DomainError) -> int:
    """The HTTP status a domain refusal is answered with."""
    return _mapping(error)[0]


def invalid(message: str, /, **extra: Any) -> APIError:
    return APIError(422, "invalid_request", message, **extra)


def not_found(message: str, /, **extra: Any) -> APIError:
    return APIError(404, "not_found", message, **extra)


def conflict(message: str, /, **extra: Any) -> APIError:
    return APIError(409, "conflict", message, **extra)


def unauthorized(
    message: str = "a valid API key is required: Authorization: Bearer <key>",
) -> APIError:
    return APIError(401, "unauthorized", message)


def error_body(code: str, message: str, /, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def error_response(status: int, code: str, message: str, /, **extra: Any) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(error_body(code, message, **extra), status_code=status, headers=headers)


def _busy() -> JSONResponse:
    return error_response(
        503,
        "busy",
        "the broker is busy with concurrent changes to the same account; nothing was changed, "
        "retry the request",
    )


def _location(loc: Sequence[Any]) -> str:
    parts = [str(part) for part in loc if part not in ("query", "body", "path", "header")]
    return ".".join(parts) or "request"


def describe_validation_errors(errors: Sequence[dict[str, Any]]) -> tuple[str, str]:
    """The first offending parameter and a sentence naming each problem."""
    first = _location(errors[0].get("loc", ())) if errors else "request"
    problems = [f"{_location(e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in errors]
    return first, "; ".join(problems)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, **exc.extra)

    @app.exception_handler(DomainError)
    async def _domain_error(_: Request, exc: DomainError) -> JSONResponse:
        status, code = _mapping(exc)
        return error_response(status, code, exc.message, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if errors and errors[0].get("type") == "json_invalid":
            message = f"the body is not JSON: {errors[0].get('msg', 'invalid JSON')}"
            return error_response(400, "invalid_request", message, param="body")
        param, message = describe_validation_errors(errors)
        return error_response(422, "invalid_request", message, param=param)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _CODES.get(exc.status_code, "invalid_request" if exc.status_code < 500 else "error")
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404 and message == "Not Found":
            message = "no such endpoint; see the API reference in the README"
        return error_response(exc.status_code, code, message)

    @app.exception_handler(Contention)
    async def _contention(_: Request, exc: Contention) -> JSONResponse:
        return _busy()

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        if is_retryable(exc):
            log.warning("concurrent change on %s %s: %s", request.method, request.url.path, exc)
            return _busy()
        return await _unexpected(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(
            500, "internal_error", "the broker hit an unexpected error; it has been logged"
        )
