"""The one error shape: `{"error": {"code", "message", ...}}`."""

from __future__ import annotations

from typing import Any

from broker.schemas import Body


class ErrorDetail(Body):
    code: str
    message: str
    param: str | None = None
    suggestions: list[str] | None = None
    attempts: list[dict[str, Any]] | None = None


class ErrorBody(Body):
    error: ErrorDetail
