"""The EmpirioLabs adapter: HTTP through `ProviderHTTP`, meaning through `parse` and `instances`.

The catalog is public and small, and the API takes no search parameters, so every refresh reads
all of it; filters are left to the caller.

A rental's handle is the provider's instance id (`gi_...`). The API has no name or label, so
instances cannot carry the broker's rental id: reconciliation matches them by handle. Workloads
have no address of their own; they are reached through the provider's connect proxy with the
account key, so `upstream` needs no request.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

from pricing.offer import Offer
from providers.base import OfferFilters, OfferPage, ProviderConfig, ProviderRefused
from providers.empiriolabs.instances import (
    INSTANCES_PATH,
    check_workload,
    deploy_body,
    parse_instance,
    parse_instance_list,
    read_refusal,
)
from providers.empiriolabs.parse import PROVIDER, parse_catalog
from providers.http import ProviderHTTP
from providers.rental import Instance, InstanceStatus, UnsupportedWorkload, Upstream, Workload

CATALOG_PATH = "/v1/gpu/catalog"
CONNECT_PATH = "/v1/gpu/connect"


class EmpirioLabsAdapter:
    """EmpirioLabs GPU Cloud: on-demand GPUs by slug, model / template / custom deploys."""

    name = PROVIDER

    def __init__(self, config: ProviderConfig) -> None:
        self._config = config
        self._http = ProviderHTTP(PROVIDER, config, read_refusal=read_refusal)

    def list_offers(self, filters: OfferFilters | None = None) -> OfferPage:
        """The whole catalog; `filters` are not pushed down because the API has none."""
        payload = self._http.get(CATALOG_PATH)
        return parse_catalog(payload, datetime.now(UTC))

    def check_workload(self, offer: Offer, workload: Workload) -> None:
        check_workload(workload)

    def provision(self, offer: Offer, workload: Workload, rental_id: str) -> Instance:
        """Deploy `workload`; `rental_id` cannot be tagged: the API has no name field."""
        try:
            check_workload(workload)
        except UnsupportedWorkload as exc:
            raise ProviderRefused(PROVIDER, exc.message, status=422, reason="refused") from None
        payload = self._http.post(INSTANCES_PATH, json=deploy_body(offer, workload))
        return parse_instance(payload)

    def status(self, handle: str) -> Instance:
        return parse_instance(self._http.get(_instance_path(handle)))

    def terminate(self, handle: str) -> Instance:
        """Destroy the instance; one the provider no longer knows is reported as terminated."""
        try:
            return parse_instance(self._http.request("DELETE", _instance_path(handle)))
        except ProviderRefused as exc:
            if exc.reason != "not_found":
                raise
        return Instance(provider=PROVIDER, handle=handle, status=InstanceStatus.TERMINATED)

    def stop(self, handle: str) -> Instance:
        """Pause billing and keep the disk."""
        return self._action(handle, "stop")

    def start(self, handle: str) -> Instance:
        """Boot a stopped instance again; it provisions before it runs."""
        return self._action(handle, "start")

    def upstream(self, handle: str) -> Upstream | None:
        """The connect proxy for this instance, authenticated with the account key."""
        if not self._config.api_key:
            raise ProviderRefused(PROVIDER, "no API key is configured", reason="unauthorized")
        base = self._config.base_url.rstrip("/")
        return Upstream(
            f"{base}{CONNECT_PATH}/{_path_id(handle)}",
            {"Authorization": f"Bearer {self._config.api_key}"},
        )

    def list_instances(self) -> list[Instance]:
        """Every instance the account holds that is not destroyed."""
        instances = parse_instance_list(self._http.get(INSTANCES_PATH))
        return [item for item in instances if item.status is not InstanceStatus.TERMINATED]

    def close(self) -> None:
        self._http.close()

    def _action(self, handle: str, action: str) -> Instance:
        return parse_instance(self._http.post(f"{_instance_path(handle)}/{action}", json={}))


def _instance_path(handle: str) -> str:
    return f"{INSTANCES_PATH}/{_path_id(handle)}"


def _path_id(handle: str) -> str:
    """The handle as one path segment; an empty one names no instance."""
    if not handle.strip():
        raise ProviderRefused(PROVIDER, "an empty handle names no instance", reason="not_found")
    return quote(handle, safe="")
