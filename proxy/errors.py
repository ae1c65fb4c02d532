"""The proxy's own refusals, in the broker's error shape but without depending on the broker.

The proxy sits below the broker in the layering (pricing <- providers <- proxy <- broker), so it
cannot raise the broker's `APIError`. It raises `ProxyError` instead: the same status, code,
message and extra fields, rendered into the same `{"error": {"code", "message", ...}}` body.
The broker registers `proxy_error_handler` beside its own handlers; a WebSocket handshake, which
has no exception handler, is refused with `error_response` directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse


@dataclass(eq=False)
class ProxyError(Exception):
    """A refusal to return to the caller as-is; `extra` adds fields beside code and message."""

    status: int
    code: str
    message: str
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)


def unauthorized(message: str) -> ProxyError:
    return ProxyError(401, "unauthorized", message)


def not_found(message: str) -> ProxyError:
    return ProxyError(404, "not_found", message)


def conflict(message: str, /, **extra: Any) -> ProxyError:
    return ProxyError(409, "conflict", message, extra)


def provider_error(message: str, status: int = 502) -> ProxyError:
    return ProxyError(status, "provider_error", message)


def error_response(error: ProxyError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    body = {"error": {"code": error.code, "message": error.message, **error.extra}}
    return JSONResponse(body, status_code=error.status, headers=headers)


async def proxy_error_handler(_: Request, exc: Exception) -> JSONResponse:
    """For `app.add_exception_handler(ProxyError, ...)`."""
    if not isinstance(exc, ProxyError):
        raise exc
    return error_response(exc)
