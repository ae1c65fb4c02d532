"""The AIVory adapter: HTTP through `ProviderHTTP`, meaning through `parse`.

The offer listing needs the account key and does not page. It takes GPU model, minimum memory
and maximum price filters, so those are pushed down to shrink the response; the caller still
filters what comes back. The GPU goes down as its family ("H100" for "H100 SXM"), the way AIVory
spells models: a canonical name it does not use would silently drop offers, a family only
widens the answer.
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from pricing.gpus import canonical_gpu
from pricing.money import format_usd
from providers.aivory.parse import PROVIDER, parse_offers
from providers.base import OfferFilters, OfferPage, ProviderConfig, ProviderRefused
from providers.http import ProviderHTTP
from providers.parsing import optional

OFFERS_PATH = "/v1/gpu/offers"
# AIVory's error codes, and HTTP statuses without one, in the broker's refusal words.
_REFUSAL_REASONS = {
    401: "unauthorized",
    403: "unauthorized",
    402: "insufficient_credit",
    404: "not_found",
    409: "no_capacity",
}


def read_refusal(response: httpx.Response) -> ProviderRefused:
    """A 4xx as a refusal, with AIVory's `{"error": {"code", "message"}}` where it sent one."""
    try:
        body = response.json()
    except ValueError:
        body = None
    code = optional(body, "error", "code") if isinstance(body, dict) else None
    message = optional(body, "error", "message") if isinstance(body, dict) else None
    reason = _REFUSAL_REASONS.get(response.status_code, "refused")
    if isinstance(code, str) and code in _REFUSAL_REASONS.values():
        reason = code
    detail = message if isinstance(message, str) and message else f"status {response.status_code}"
    return ProviderRefused(
        PROVIDER, f"refused the request: {detail}", status=response.status_code, reason=reason
    )


def offer_query(filters: OfferFilters | None) -> dict[str, str]:
    """The listing's query parameters for the filters it understands."""
    if filters is None:
        return {}
    query: dict[str, str] = {}
    if filters.gpu:
        query["gpu_model"] = canonical_gpu(filters.gpu).family or filters.gpu
    if filters.min_vram_gb is not None:
        query["min_vram"] = str(filters.min_vram_gb)
    if filters.max_price_per_gpu_hour is not None:
        query["max_price"] = format_usd(filters.max_price_per_gpu_hour)
    return query


class AivoryAdapter:
    """AIVory Smart Inference: per-GPU spot (and some on-demand) offers across upstreams."""

    name = PROVIDER

    def __init__(self, config: ProviderConfig) -> None:
        self._http = ProviderHTTP(PROVIDER, config, read_refusal=read_refusal)

    def list_offers(self, filters: OfferFilters | None = None) -> OfferPage:
        payload = self._http.get(OFFERS_PATH, params=offer_query(filters))
        return parse_offers(payload, datetime.now(UTC))

    def close(self) -> None:
        self._http.close()
