"""Fluence's 4xx answers in the broker's refusal words.

Fluence has two error formats: 422 with `{"detail": [{"loc", "msg", ...}]}` for a request that
does not validate, and 400 with `{"detail": "..."}` for a business refusal whose only
machine-readable part is the sentence itself, so the reason is read from its words: insufficient
balance, a plan no longer available, no capacity, an instance not ACTIVE yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from providers.base import ProviderRefused
from providers.fluence.parse import PROVIDER
from providers.http import error_body, refused

_BY_STATUS: Mapping[int, str] = {
    401: "unauthorized",
    403: "unauthorized",
    402: "insufficient_funds",
    404: "not_found",
    409: "conflict",
}
# Words in a 400's detail, in the order they are tried, and the reason each means.
_BY_WORDS: tuple[tuple[str, str], ...] = (
    ("insufficient balance", "insufficient_funds"),
    ("no longer available", "offer_gone"),
    ("capacity", "no_capacity"),
    ("only active", "conflict"),
)


def read_refusal(response: httpx.Response) -> ProviderRefused:
    """A 4xx as a refusal whose message is Fluence's own detail."""
    body = error_body(response)
    detail = describe_detail(body.get("detail") if isinstance(body, Mapping) else None)
    return refused(PROVIDER, response, detail, refusal_reason(response.status_code, detail))


def refusal_reason(status: int, detail: str) -> str:
    if status == 400:
        lowered = detail.lower()
        return next((reason for words, reason in _BY_WORDS if words in lowered), "refused")
    return _BY_STATUS.get(status, "refused")


def describe_detail(detail: Any) -> str:
    """A detail string as is; a validation list as "body.field: message; ..."."""
    if isinstance(detail, str):
        return detail
    if not isinstance(detail, list):
        return ""
    parts = []
    for error in detail:
        if not isinstance(error, Mapping):
            continue
        loc = error.get("loc")
        where = ".".join(str(step) for step in loc) if isinstance(loc, list) else ""
        message = error.get("msg")
        text = message if isinstance(message, str) else "invalid"
        parts.append(f"{where}: {text}" if where else text)
    return "; ".join(parts)
