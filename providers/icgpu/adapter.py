"""The IC GPU adapter: HTTP through `ProviderHTTP`, meaning through `parse`.

The tier listing is public, small and unpaged, and takes no search parameters, so every refresh
reads all of it; filters are left to the caller. The key, when configured, is still sent: the
rental endpoints need it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from providers.base import OfferFilters, OfferPage, ProviderConfig
from providers.http import ProviderHTTP
from providers.icgpu.parse import PROVIDER, parse_tiers

TIERS_PATH = "/api/v1/gpu-tiers"


class IcGpuAdapter:
    """IC GPU: dedicated, MIG and time-sliced tiers, interactive or batch."""

    name = PROVIDER

    def __init__(self, config: ProviderConfig) -> None:
        self._http = ProviderHTTP(PROVIDER, config)

    def list_offers(self, filters: OfferFilters | None = None) -> OfferPage:
        """Every tier's offers; `filters` are not pushed down because the API has none."""
        return parse_tiers(self._http.get(TIERS_PATH), datetime.now(UTC))

    def close(self) -> None:
        self._http.close()
