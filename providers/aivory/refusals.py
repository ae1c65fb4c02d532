"""AIVory's 4xx answers in the broker's refusal words.

AIVory answers `{"error": {"code", "message"}}`. The code decides where AIVory sends one the
broker knows; otherwise the status does: 402 is the account's credit, 409 on a rent means the
offer is gone (AIVory's listings are single upstream machines).
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from providers.aivory.parse import PROVIDER
from providers.base import ProviderRefused
from providers.http import error_body, refused
from providers.parsing import optional

_BY_STATUS: Mapping[int, str] = {
    401: "unauthorized",
    403: "unauthorized",
    402: "insufficient_funds",
    404: "not_found",
    409: "offer_gone",
}
_BY_CODE: Mapping[str, str] = {
    "unauthorized": "unauthorized",
    "insufficient_credit": "insufficient_funds",
    "not_found": "not_found",
    "offer_unavailable": "offer_gone",
    "no_capacity": "no_capacity",
    "conflict": "conflict",
    "invalid_request": "refused",
}


def read_refusal(response: httpx.Response) -> ProviderRefused:
    """A 4xx as a refusal, with AIVory's own message where it sent one."""
    body = error_body(response)
    code = optional(body, "error", "code") if isinstance(body, dict) else None
    message = optional(body, "error", "message") if isinstance(body, dict) else None
    reason = _BY_STATUS.get(response.status_code, "refused")
    if isinstance(code, str):
        reason = _BY_CODE.get(code, reason)
    return refused(PROVIDER, response, message, reason)
