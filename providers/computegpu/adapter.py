"""The ComputeGPU adapter: both offer families through one `ProviderHTTP`.

Marketplace search is paged with `limit`/`offset` and takes the broker's filters as query
parameters; the GPU cloud's type list is small and unfiltered. Results are read in the
provider's default order (no `sort`), which does not move between pages as prices change.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pricing.money import format_usd
from providers.base import MalformedResponse, OfferFilters, OfferPage, ProviderConfig
from providers.computegpu.parse import PROVIDER, parse_gpu_types, parse_listings
from providers.http import ProviderHTTP

SEARCH_PATH = "/api/v1/marketplace/search"
TYPES_PATH = "/api/v1/gpu/types"
PAGE_SIZE = 100
# A provider that never reports the end of its results must not keep a refresh busy forever.
MAX_PAGES = 500


class ComputeGpuAdapter:
    """ComputeGPU: community marketplace listings and GPU cloud pods (on-demand and spot)."""

    name = PROVIDER

    def __init__(self, config: ProviderConfig, *, page_size: int = PAGE_SIZE) -> None:
        self._http = ProviderHTTP(PROVIDER, config)
        self._page_size = page_size

    def list_offers(self, filters: OfferFilters | None = None) -> OfferPage:
        """Every marketplace listing that matches `filters`, then every GPU cloud type."""
        fetched_at = datetime.now(UTC)
        page = self._listings(search_params(filters or OfferFilters()), fetched_at)
        page.extend(parse_gpu_types(self._http.get(TYPES_PATH), fetched_at))
        return page

    def close(self) -> None:
        self._http.close()

    def _listings(self, params: dict[str, str], fetched_at: datetime) -> OfferPage:
        page = OfferPage()
        seen: set[str] = set()
        offset = 0
        for _ in range(MAX_PAGES):
            payload = self._http.get(
                SEARCH_PATH, params={**params, "limit": self._page_size, "offset": offset}
            )
            batch = parse_listings(payload, fetched_at)
            # A listing that moved across a page boundary between two requests is kept once.
            page.offers.extend(offer for offer in batch.page.offers if offer.id not in seen)
            seen.update(offer.id for offer in batch.page.offers)
            page.skipped.extend(batch.page.skipped)
            offset += batch.received
            if batch.received == 0 or (batch.total is not None and offset >= batch.total):
                return page
        raise MalformedResponse(PROVIDER, f"search did not end within {MAX_PAGES} pages")


def search_params(filters: OfferFilters) -> dict[str, str]:
    """The search's query parameters for the filters it understands."""
    params: dict[str, str] = {}
    if filters.gpu:
        params["gpu"] = filters.gpu
    if filters.max_price_per_gpu_hour is not None:
        params["maxPrice"] = format_usd(filters.max_price_per_gpu_hour)
    if filters.min_vram_gb is not None:
        params["minVram"] = str(filters.min_vram_gb)
    return params
