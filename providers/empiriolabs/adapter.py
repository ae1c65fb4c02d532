"""The EmpirioLabs adapter: HTTP through `ProviderHTTP`, meaning through `parse`.

The catalog is public and small, and the API takes no search parameters, so every refresh reads
all of it; filters are left to the caller.
"""

from __future__ import annotations

from datetime import UTC, datetime

from providers.base import OfferFilters, OfferPage, ProviderConfig
from providers.empiriolabs.parse import PROVIDER, parse_catalog
from providers.http import ProviderHTTP

CATALOG_PATH = "/v1/gpu/catalog"


class EmpirioLabsAdapter:
    """EmpirioLabs GPU Cloud: on-demand GPUs by slug."""

    name = PROVIDER

    def __init__(self, config: ProviderConfig) -> None:
        self._http = ProviderHTTP(PROVIDER, config)

    def list_offers(self, filters: OfferFilters | None = None) -> OfferPage:
        """The whole catalog; `filters` are not pushed down because the API has none."""
        payload = self._http.get(CATALOG_PATH)
        return parse_catalog(payload, datetime.now(UTC))

    def close(self) -> None:
        self._http.close()
