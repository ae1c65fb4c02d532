"""The IC GPU adapter: HTTP through `ProviderHTTP`, meaning through `parse`, `instances` and
`workload`.

The tier listing is public, small and unpaged, and takes no search parameters, so every refresh
reads all of it; filters are left to the caller. The key, when configured, is still sent: the
rental endpoints need it.

Instances are SSH-only machines. A create carries an `Idempotency-Key`, so, unlike the other
providers' starts, it is retried on transient faults: a retry replays the instance the lost
answer made. An instance that IC GPU cannot find at create time means the offer's tier is gone.
A batch instance can be preempted (interrupted) and requeued; any instance can be stopped and
started.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from pricing.offer import Offer
from providers.base import (
    MalformedResponse,
    OfferFilters,
    OfferPage,
    ProviderConfig,
    ProviderRefused,
)
from providers.http import ProviderHTTP
from providers.icgpu import instances
from providers.icgpu import workload as rules
from providers.icgpu.parse import PROVIDER, parse_tiers
from providers.icgpu.refusals import read_refusal
from providers.parsing import MalformedItem, read_object
from providers.rental import Instance, InstanceStatus, Upstream, Workload

TIERS_PATH = "/api/v1/gpu-tiers"
INSTANCES_PATH = "/api/v1/instances"
PAGE_SIZE = 100
MAX_PAGES = 1000
_ENDED = (InstanceStatus.INTERRUPTED, InstanceStatus.TERMINATED, InstanceStatus.FAILED)


def instance_path(handle: str, action: str | None = None) -> str:
    path = f"{INSTANCES_PATH}/{quote(handle, safe='')}"
    return path if action is None else f"{path}/{action}"


class IcGpuAdapter:
    """IC GPU: dedicated, MIG and time-sliced tiers, interactive or batch."""

    name = PROVIDER

    def __init__(self, config: ProviderConfig) -> None:
        self._deployment = config.deployment_id
        self._http = ProviderHTTP(PROVIDER, config, read_refusal=read_refusal)

    def list_offers(self, filters: OfferFilters | None = None) -> OfferPage:
        """Every tier's offers; `filters` are not pushed down because the API has none."""
        return parse_tiers(self._http.get(TIERS_PATH), datetime.now(UTC))

    def check_workload(self, offer: Offer, workload: Workload) -> None:
        rules.check_workload(offer, workload)

    def provision(self, offer: Offer, workload: Workload, rental_id: str) -> Instance:
        """Create the instance; a replayed start that has since ended is a `conflict`."""
        payload = self._create(offer, workload, rental_id, dry_run=False)
        instance = self._read(payload)
        if instance.status in _ENDED:
            raise ProviderRefused(
                PROVIDER,
                f"IC GPU answered with {instance.handle}, made by an earlier start of this rental "
                f"on this offer and {instance.reason or instance.status.value} since",
                reason="conflict",
            )
        if instance.rental_id:
            return instance
        return replace(instance, rental_id=rental_id, deployment=self._deployment)

    def dry_run(self, offer: Offer, workload: Workload, rental_id: str) -> None:
        """Ask IC GPU whether this create would succeed, creating nothing; refusals raise."""
        self._create(offer, workload, rental_id, dry_run=True)

    def status(self, handle: str) -> Instance:
        return self._read(self._http.get(instance_path(handle)))

    def terminate(self, handle: str) -> Instance:
        """DELETE; an unknown instance is reported terminated."""
        return self._http.delete_instance(instance_path(handle), handle, self._read, self.status)

    def stop(self, handle: str) -> Instance:
        return self._act(handle, "stop")

    def start(self, handle: str) -> Instance:
        return self._act(handle, "start")

    def requeue(self, handle: str) -> Instance:
        """Put a preempted batch instance back in the queue; it provisions again."""
        return self._act(handle, "requeue")

    def upstream(self, handle: str) -> Upstream | None:
        """None: IC GPU instances have no HTTP workload to proxy, only SSH."""
        return None

    def list_instances(self) -> list[Instance]:
        """Every instance not yet terminated, across all pages of the listing."""
        found: list[Instance] = []
        token: str | None = None
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            params: dict[str, str | int] = {"maxResults": PAGE_SIZE}
            if token is not None:
                params["nextToken"] = token
            try:
                page = instances.parse_page(self._http.get(INSTANCES_PATH, params=params))
            except MalformedItem as exc:
                raise MalformedResponse(
                    PROVIDER, f"the instance listing is not the documented shape: {exc}"
                ) from None
            found.extend(i for i in page.instances if i.status is not InstanceStatus.TERMINATED)
            token = page.next_token
            if token is None:
                return found
            if token in seen:
                raise MalformedResponse(PROVIDER, "the instance listing repeats a page token")
            seen.add(token)
        raise MalformedResponse(PROVIDER, f"the instance listing ran past {MAX_PAGES} pages")

    def close(self) -> None:
        self._http.close()

    def _create(self, offer: Offer, workload: Workload, rental_id: str, *, dry_run: bool) -> Any:
        """POST the create; a dry run carries no idempotency key, so it cannot be replayed as
        the real create's answer."""
        body = rules.create_request(offer, workload, rental_id, self._deployment)
        if dry_run:
            options: dict[str, Any] = {"params": {"dryRun": "true"}}
        else:
            options = {"headers": {"Idempotency-Key": rules.idempotency_key(rental_id, offer)}}
        try:
            # The Idempotency-Key makes a replay safe: a lost answer is retried into the same
            # instance. A dry run creates nothing, so it may be repeated too.
            return self._http.post(INSTANCES_PATH, json=body, idempotent=True, **options)
        except ProviderRefused as refused:
            if refused.reason != "not_found":
                raise
            raise ProviderRefused(
                PROVIDER, refused.message, status=refused.status, reason="offer_gone"
            ) from None

    def _act(self, handle: str, action: str) -> Instance:
        return self._read_or_fetch(self._http.post(instance_path(handle, action)), handle)

    def _read_or_fetch(self, payload: Any, handle: str) -> Instance:
        """The instance an action answered with, or, where it answered without one, a GET."""
        if isinstance(payload, dict) and "status" in payload:
            return self._read(payload)
        return self.status(handle)

    @staticmethod
    def _read(payload: Any) -> Instance:
        return read_object(PROVIDER, "an instance", instances.parse_instance, payload)
