"""IC GPU's 4xx answers in the broker's refusal words.

IC GPU answers `{"code", "message"}` with AWS-style codes. A ConflictException is either a state
conflict or a tier without free GPUs; only the message tells them apart, so one about capacity is
`no_capacity`. 429 and 5xx never reach here: `ProviderHTTP` retries them as transient.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from providers.base import ProviderRefused
from providers.http import error_body, refused
from providers.icgpu.parse import PROVIDER

_BY_CODE: Mapping[str, str] = {
    "ValidationException": "refused",
    "AuthenticationError": "unauthorized",
    "AccessDeniedException": "unauthorized",
    "InsufficientTokens": "insufficient_funds",
    "ResourceNotFoundException": "not_found",
    "ConflictException": "conflict",
}
_BY_STATUS: Mapping[int, str] = {
    400: "refused",
    401: "unauthorized",
    402: "insufficient_funds",
    403: "unauthorized",
    404: "not_found",
    409: "conflict",
}


def read_refusal(response: httpx.Response) -> ProviderRefused:
    """A 4xx as a refusal, with IC GPU's own message where it sent one."""
    body = error_body(response)
    code = body.get("code") if isinstance(body, Mapping) else None
    message = body.get("message") if isinstance(body, Mapping) else None
    text = message if isinstance(message, str) and message else f"status {response.status_code}"
    reason = _BY_CODE.get(code, "") if isinstance(code, str) else ""
    reason = reason or _BY_STATUS.get(response.status_code, "refused")
    if reason == "conflict" and "capacity" in text.lower():
        reason = "no_capacity"
    label = f"{code}: " if isinstance(code, str) else ""
    return refused(PROVIDER, response, f"{label}{text}", reason)
