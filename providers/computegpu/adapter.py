"""The ComputeGPU adapter: both offer families through one `ProviderHTTP`.

Marketplace search is paged with `limit`/`offset` and takes the broker's filters as query
parameters; the GPU cloud's type list is small and unfiltered. Results are read in the
provider's default order (no `sort`), which does not move between pages as prices change.

Rentals go to the family's own endpoints; the handle (`listing:...` or `pod:...`) says which.
A marketplace rental cannot be paused: its `stop` settles and ends it, so `terminate` uses it
and `stop`/`start` are `NotSupported`. Neither API takes a name or label, so instances cannot
carry the broker's rental id or deployment: reconciliation matches them by handle, and acts on
unknown ones only where the operator declares the account the broker's alone. A rental's
workload is reached with its own per-rental key, never the account key. A marketplace rental's
key and endpoint come in the rent response only (the rental detail never repeats them), so
`provision` returns them on `Instance.upstream` for the broker to keep; a pod's detail carries
them, so `upstream` reads them from the provider when asked.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import quote

from pricing.money import format_usd
from pricing.offer import Offer
from providers.base import (
    MalformedResponse,
    OfferFilters,
    OfferPage,
    ProviderConfig,
    ProviderRefused,
)
from providers.computegpu.instances import (
    LISTING,
    Access,
    Reading,
    parse_pod,
    parse_pod_list,
    parse_rent_response,
    parse_rental,
    parse_rental_list,
    read_refusal,
    split_handle,
)
from providers.computegpu.parse import PROVIDER, parse_gpu_types, parse_listings
from providers.computegpu.workload import check_workload, deploy_request, family_of, offer_ref
from providers.http import ProviderHTTP
from providers.rental import (
    Instance,
    InstanceStatus,
    NotSupported,
    UnsupportedWorkload,
    Upstream,
    Workload,
)

SEARCH_PATH = "/api/v1/marketplace/search"
TYPES_PATH = "/api/v1/gpu/types"
RENT_PATH = "/api/v1/marketplace/rent"
RENTALS_PATH = "/api/v1/marketplace/rentals"
PODS_PATH = "/api/v1/gpu/pods"
PAGE_SIZE = 100
# A provider that never reports the end of its results must not keep a refresh busy forever.
MAX_PAGES = 500
# Pods reached over SSH (and Jupyter, for docker) have no HTTP endpoint for the proxy.
_SHELL_POD_TYPES = ("ssh", "docker")


class ComputeGpuAdapter:
    """ComputeGPU: community marketplace listings and GPU cloud pods (on-demand and spot)."""

    name = PROVIDER

    def __init__(self, config: ProviderConfig, *, page_size: int = PAGE_SIZE) -> None:
        self._base_url = config.base_url.rstrip("/")
        self._http = ProviderHTTP(PROVIDER, config, read_refusal=read_refusal)
        self._page_size = page_size

    def list_offers(self, filters: OfferFilters | None = None) -> OfferPage:
        """Every marketplace listing that matches `filters`, then every GPU cloud type."""
        fetched_at = datetime.now(UTC)
        page = self._listings(search_params(filters or OfferFilters()), fetched_at)
        page.extend(parse_gpu_types(self._http.get(TYPES_PATH), fetched_at))
        return page

    def check_workload(self, offer: Offer, workload: Workload) -> None:
        check_workload(offer, workload)

    def provision(self, offer: Offer, workload: Workload, rental_id: str) -> Instance:
        """Rent the listing or deploy the pod; `rental_id` cannot be tagged: no name field."""
        try:
            check_workload(offer, workload)
        except UnsupportedWorkload as exc:
            raise ProviderRefused(PROVIDER, exc.message, status=422, reason="refused") from None
        if family_of(offer) == LISTING:
            listing_id = quote(offer_ref(offer, "listing_id"), safe="")
            reading = parse_rent_response(self._http.post(f"{RENT_PATH}/{listing_id}"))
            if reading.access is None:
                return reading.instance
            return replace(reading.instance, upstream=self._upstream_of(reading.access))
        path, body = deploy_request(offer, workload)
        return parse_pod(self._http.post(path, json=body)).instance

    def status(self, handle: str) -> Instance:
        return self._read(handle).instance

    def terminate(self, handle: str) -> Instance:
        """End the rental for good; one already ended or unknown is reported as ended."""
        try:
            family, provider_id = _split(handle)
            if family == LISTING:
                payload = self._http.post(f"{RENTALS_PATH}/{provider_id}/stop")
                return parse_rental(payload).instance
            return parse_pod(self._http.request("DELETE", f"{PODS_PATH}/{provider_id}")).instance
        except ProviderRefused as exc:
            if exc.reason == "not_found":
                return Instance(provider=PROVIDER, handle=handle, status=InstanceStatus.TERMINATED)
            if exc.reason != "conflict":
                raise
        # A conflict on an end that already happened (a preempted pod, a settled rental).
        instance = self.status(handle)
        if instance.status not in (InstanceStatus.TERMINATED, InstanceStatus.INTERRUPTED):
            raise ProviderRefused(
                PROVIDER, f"{handle} could not be ended while {instance.status}", reason="conflict"
            )
        return instance

    def stop(self, handle: str) -> Instance:
        """Pause a pod (billing pauses, volume kept); marketplace rentals cannot pause."""
        return self._pod_action(handle, "stop")

    def start(self, handle: str) -> Instance:
        """Resume a paused pod; it deploys again before it runs."""
        return self._pod_action(handle, "resume")

    def upstream(self, handle: str) -> Upstream | None:
        """The rental's Ollama endpoint with its per-rental key; None for SSH and docker pods."""
        reading = self._read(handle)
        if reading.access is None:
            if reading.instance_type in _SHELL_POD_TYPES:
                return None
            if _split(handle)[0] == LISTING:
                raise ProviderRefused(
                    PROVIDER,
                    f"{handle}: ComputeGPU gives a marketplace rental's key only when it is "
                    "rented, and the broker holds no stored copy of it",
                    status=409,
                    reason="conflict",
                )
            raise ProviderRefused(
                PROVIDER,
                f"{handle} has no endpoint while {reading.instance.status}",
                status=409,
                reason="conflict",
            )
        return self._upstream_of(reading.access)

    def list_instances(self) -> list[Instance]:
        """Active marketplace rentals and every pod not destroyed (paused and preempted too)."""
        rentals = parse_rental_list(self._http.get(RENTALS_PATH, params={"status": "active"}))
        pods = parse_pod_list(self._http.get(PODS_PATH))
        return [
            instance
            for instance in rentals + pods
            if instance.status is not InstanceStatus.TERMINATED
        ]

    def close(self) -> None:
        self._http.close()

    def _upstream_of(self, access: Access) -> Upstream:
        endpoint = access.endpoint
        base_url = endpoint if "://" in endpoint else f"{self._base_url}/{endpoint.lstrip('/')}"
        return Upstream(base_url, {"Authorization": f"Bearer {access.api_key}"})

    def _read(self, handle: str) -> Reading:
        family, provider_id = _split(handle)
        if family == LISTING:
            return parse_rental(self._http.get(f"{RENTALS_PATH}/{provider_id}"))
        return parse_pod(self._http.get(f"{PODS_PATH}/{provider_id}"))

    def _pod_action(self, handle: str, action: str) -> Instance:
        family, provider_id = _split(handle)
        if family == LISTING:
            raise NotSupported(
                PROVIDER,
                "a marketplace rental cannot be paused or resumed; stopping it ends it",
                status=409,
            )
        return parse_pod(self._http.request("PUT", f"{PODS_PATH}/{provider_id}/{action}")).instance

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


def _split(handle: str) -> tuple[str, str]:
    """The handle's family, and its id ready to sit in a URL path."""
    family, provider_id = split_handle(handle)
    return family, quote(provider_id, safe="")


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
