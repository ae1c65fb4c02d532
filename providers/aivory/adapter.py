"""The AIVory adapter: HTTP through `ProviderHTTP`, meaning through `parse`, `instances` and
`workload`.

The offer listing needs the account key and does not page. It takes GPU model, minimum memory
and maximum price filters, so those are pushed down to shrink the response; the caller still
filters what comes back. The GPU goes down as its family ("H100" for "H100 SXM"), the way AIVory
spells models: a canonical name it does not use would silently drop offers, a family only
widens the answer.

A rent is sent once, never retried: AIVory has no idempotency key and places a credit hold, so a
retry after a timeout could start and bill a second rental. AIVory cannot stop or start a rental
and documents no way to list rentals, so those raise `NotSupported`. A running rental is reached
at its `endpoint` with the account key, which `upstream` hands to the connect proxy.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from pricing.gpus import canonical_gpu
from pricing.money import format_usd
from pricing.offer import Offer
from providers.aivory import instances
from providers.aivory import workload as rules
from providers.aivory.parse import PROVIDER, parse_offer, parse_offers
from providers.aivory.refusals import read_refusal
from providers.base import (
    MalformedResponse,
    OfferFilters,
    OfferPage,
    ProviderConfig,
    ProviderRefused,
)
from providers.http import ProviderHTTP
from providers.parsing import MalformedItem, read_object
from providers.rental import Instance, NotSupported, Upstream, Workload
from providers.streaming import stream_offers
from providers.workloads import require_running

OFFERS_PATH = "/v1/gpu/offers"
RENT_PATH = "/v1/gpu/rent"
RENTALS_PATH = "/v1/gpu/rentals"


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


def rental_path(handle: str) -> str:
    return f"{RENTALS_PATH}/{quote(handle, safe='')}"


class AivoryAdapter:
    """AIVory Smart Inference: per-GPU spot (and some on-demand) offers across upstreams."""

    name = PROVIDER

    def __init__(self, config: ProviderConfig) -> None:
        self._http = ProviderHTTP(PROVIDER, config, read_refusal=read_refusal)
        self._rent_http = ProviderHTTP(
            PROVIDER, replace(config, retry_attempts=1), read_refusal=read_refusal
        )
        self._api_key = config.api_key

    def list_offers(self, filters: OfferFilters | None = None) -> OfferPage:
        payload = self._http.get(OFFERS_PATH, params=offer_query(filters))
        return parse_offers(payload, datetime.now(UTC))

    def stream_offers(self, skipped: list[str]) -> Iterator[Offer]:
        """The whole listing read as it arrives (it does not page, so it can be very long)."""
        fetched_at = datetime.now(UTC)
        return stream_offers(
            self._http,
            OFFERS_PATH,
            ("data",),
            lambda item: [parse_offer(item, fetched_at)],
            lambda payload: parse_offers(payload, fetched_at),
            skipped,
        )

    def check_workload(self, offer: Offer, workload: Workload) -> None:
        rules.check_workload(offer, workload)

    def provision(self, offer: Offer, workload: Workload, rental_id: str) -> Instance:
        """Rent `offer`; AIVory keeps no tag, so `rental_id` is only echoed on the result."""
        body = rules.rent_request(offer, workload)
        instance = self._read(self._rent_http.post(RENT_PATH, json=body))
        return replace(instance, rental_id=rental_id)

    def status(self, handle: str) -> Instance:
        return self._read(self._http.get(rental_path(handle)))

    def terminate(self, handle: str) -> Instance:
        """DELETE; an unknown rental is reported terminated, an ended one as it ended."""
        return self._http.delete_instance(rental_path(handle), handle, self._read, self.status)

    def stop(self, handle: str) -> Instance:
        raise NotSupported(PROVIDER, "AIVory cannot stop a rental; terminate it instead")

    def start(self, handle: str) -> Instance:
        raise NotSupported(PROVIDER, "AIVory cannot stop or start a rental")

    def upstream(self, handle: str) -> Upstream | None:
        """The running rental's OpenAI-compatible base URL, reached with the account key."""
        payload = self._http.get(rental_path(handle))
        instance = self._read(payload)
        require_running(PROVIDER, instance, f"rental {handle}", "an endpoint")
        try:
            endpoint = instances.rental_endpoint(payload)
        except MalformedItem as exc:
            raise MalformedResponse(PROVIDER, f"rental {handle}: {exc}") from None
        if endpoint is None:
            raise MalformedResponse(PROVIDER, f"rental {handle} is running without an endpoint")
        if not self._api_key:
            raise ProviderRefused(
                PROVIDER, "no API key is configured to reach the endpoint", reason="unauthorized"
            )
        return Upstream(endpoint, {"Authorization": f"Bearer {self._api_key}"})

    def list_instances(self) -> list[Instance]:
        raise NotSupported(PROVIDER, "AIVory documents no way to list rentals")

    def close(self) -> None:
        self._http.close()
        self._rent_http.close()

    @staticmethod
    def _read(payload: Any) -> Instance:
        return read_object(PROVIDER, "a rental", instances.parse_rental, payload)
