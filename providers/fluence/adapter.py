"""The Fluence adapter: HTTP through `ProviderHTTP`, meaning through `parse`.

A refresh reads the three plan listings (containers, VMs, bare metal). None of them pages or
takes search parameters, so filters are left to the caller. A failure of any listing fails the
whole refresh: a catalog missing a family would look like offers that vanished.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pricing.offer import InstanceType
from providers.base import OfferFilters, OfferPage, ProviderConfig
from providers.fluence.parse import PROVIDER, parse_container_plans, parse_machine_plans
from providers.http import ProviderHTTP

CONTAINER_PLANS_PATH = "/gpu/plans/"
MACHINE_PLANS_PATHS = {
    InstanceType.VM: "/gpu/plans/vms",
    InstanceType.BAREMETAL: "/gpu/plans/baremetal",
}


class FluenceAdapter:
    """Fluence GPU Cloud: container, VM and bare-metal plans, on-demand."""

    name = PROVIDER

    def __init__(self, config: ProviderConfig) -> None:
        self._http = ProviderHTTP(PROVIDER, config)

    def list_offers(self, filters: OfferFilters | None = None) -> OfferPage:
        """All three plan families; `filters` are not pushed down because the API has none."""
        fetched_at = datetime.now(UTC)
        page = parse_container_plans(self._http.get(CONTAINER_PLANS_PATH), fetched_at)
        for instance_type, path in MACHINE_PLANS_PATHS.items():
            page.extend(parse_machine_plans(self._http.get(path), instance_type, fetched_at))
        return page

    def close(self) -> None:
        self._http.close()
