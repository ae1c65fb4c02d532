"""The Fluence adapter: HTTP through `ProviderHTTP`, meaning through `parse`, `instances` and
`workload`.

A refresh reads the three plan listings (containers, VMs, bare metal). None of them pages or
takes search parameters, so filters are left to the caller. A failure of any listing fails the
whole refresh: a catalog missing a family would look like offers that vanished.

Rentals go to the instance family of the offer (handles say which: `container:`, `vm:`,
`baremetal:`). A deploy is sent once, never retried: Fluence has no idempotency key, so a retry
after a timeout could start a second instance; the one a lost answer may have started carries the
rental id and the broker's deployment id in its name, so reconciliation finds it, and only the
deployment that started it acts on it. Fluence cannot stop or start an instance, and
terminates only ACTIVE ones: terminating a PENDING instance is a `conflict` to retry later.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from pricing.offer import InstanceType, Offer
from providers.base import (
    MalformedResponse,
    OfferFilters,
    OfferPage,
    ProviderConfig,
    ProviderRefused,
)
from providers.fluence import instances
from providers.fluence import workload as rules
from providers.fluence.instances import Family
from providers.fluence.parse import PROVIDER, parse_container_plans, parse_machine_plans
from providers.fluence.refusals import read_refusal
from providers.http import ProviderHTTP
from providers.parsing import MalformedItem, read_object
from providers.rental import Instance, InstanceStatus, NotSupported, Upstream, Workload
from providers.workloads import require_running

log = logging.getLogger("gpubroker.providers")

CONTAINER_PLANS_PATH = "/gpu/plans/"
MACHINE_PLANS_PATHS = {
    InstanceType.VM: "/gpu/plans/vms",
    InstanceType.BAREMETAL: "/gpu/plans/baremetal",
}
INSTANCE_PATHS = {
    Family.CONTAINER: "/gpu/instances/",
    Family.VM: "/gpu/instances/vms",
    Family.BAREMETAL: "/gpu/instances/baremetal",
}
_ENDED = (InstanceStatus.TERMINATED, InstanceStatus.FAILED)


def instance_path(family: Family, instance_id: str) -> str:
    return f"{INSTANCE_PATHS[family].rstrip('/')}/{quote(instance_id, safe='')}"


class FluenceAdapter:
    """Fluence GPU Cloud: container, VM and bare-metal plans, on-demand."""

    name = PROVIDER

    def __init__(self, config: ProviderConfig) -> None:
        self._deployment = config.deployment_id
        self._http = ProviderHTTP(PROVIDER, config, read_refusal=read_refusal)
        self._deploy_http = ProviderHTTP(
            PROVIDER, replace(config, retry_attempts=1), read_refusal=read_refusal
        )

    def list_offers(self, filters: OfferFilters | None = None) -> OfferPage:
        """All three plan families; `filters` are not pushed down because the API has none."""
        fetched_at = datetime.now(UTC)
        page = parse_container_plans(self._http.get(CONTAINER_PLANS_PATH), fetched_at)
        for instance_type, path in MACHINE_PLANS_PATHS.items():
            page.extend(parse_machine_plans(self._http.get(path), instance_type, fetched_at))
        return page

    def check_workload(self, offer: Offer, workload: Workload) -> None:
        rules.check_workload(offer, workload)

    def provision(self, offer: Offer, workload: Workload, rental_id: str) -> Instance:
        family, body = rules.deploy_request(offer, workload, rental_id, self._deployment)
        instance = self._read(self._deploy_http.post(INSTANCE_PATHS[family], json=body), family)
        if instance.rental_id:
            return instance
        return replace(instance, rental_id=rental_id, deployment=self._deployment)

    def status(self, handle: str) -> Instance:
        family, instance_id = self._split(handle)
        return self._read(self._http.get(instance_path(family, instance_id)), family)

    def terminate(self, handle: str) -> Instance:
        """DELETE; an unknown or already ended instance is returned as it is, not an error."""
        parts = instances.split_handle(handle)
        if parts is None:
            return Instance(PROVIDER, handle, InstanceStatus.TERMINATED, reason="unknown handle")
        family, instance_id = parts
        try:
            payload = self._http.request("DELETE", instance_path(family, instance_id))
        except ProviderRefused as refused:
            if refused.reason == "not_found":
                return Instance(PROVIDER, handle, InstanceStatus.TERMINATED, reason="not found")
            if refused.reason == "unauthorized":
                raise
            return self._not_terminable(handle, instance_id, refused)
        if isinstance(payload, dict) and "status" in payload:
            return self._read(payload, family)
        return self.status(handle)

    def stop(self, handle: str) -> Instance:
        raise NotSupported(PROVIDER, "Fluence cannot stop an instance; terminate it instead")

    def start(self, handle: str) -> Instance:
        raise NotSupported(PROVIDER, "Fluence cannot stop or start an instance")

    def upstream(self, handle: str) -> Upstream | None:
        """A container's forwarded port; None for VMs and bare metal, which are SSH-only."""
        family, instance_id = self._split(handle)
        if family is not Family.CONTAINER:
            return None
        payload = self._http.get(instance_path(family, instance_id))
        instance = self._read(payload, family)
        require_running(PROVIDER, instance, f"instance {instance_id}", "an address")
        try:
            address = instances.container_address(payload)
        except MalformedItem as exc:
            raise MalformedResponse(PROVIDER, f"instance {instance_id}: {exc}") from None
        if address is None:
            raise MalformedResponse(
                PROVIDER, f"instance {instance_id} is ACTIVE without a forwarded port"
            )
        return Upstream(address)

    def list_instances(self) -> list[Instance]:
        """Every instance of all three families that has not been terminated."""
        found: list[Instance] = []
        for family, path in INSTANCE_PATHS.items():
            try:
                listed, _ = instances.parse_instance_list(self._http.get(path), family)
            except MalformedItem as exc:
                raise MalformedResponse(
                    PROVIDER, f"{family.value} instances are not the documented shape: {exc}"
                ) from None
            found.extend(i for i in listed if i.status is not InstanceStatus.TERMINATED)
        return found

    def close(self) -> None:
        self._http.close()
        self._deploy_http.close()

    def _not_terminable(self, handle: str, instance_id: str, refused: ProviderRefused) -> Instance:
        """Why a DELETE was refused: already ended is fine, PENDING is a conflict to retry."""
        current = self.status(handle)
        if current.status in _ENDED:
            return current
        if current.status is InstanceStatus.PROVISIONING:
            raise ProviderRefused(
                PROVIDER,
                f"instance {instance_id} is still PENDING and Fluence terminates only ACTIVE "
                "instances; retry once it is active",
                status=refused.status,
                reason="conflict",
            )
        raise refused

    @staticmethod
    def _split(handle: str) -> tuple[Family, str]:
        parts = instances.split_handle(handle)
        if parts is None:
            raise ProviderRefused(
                PROVIDER, f"{handle!r} is not a Fluence instance handle", reason="not_found"
            )
        return parts

    @staticmethod
    def _read(payload: Any, family: Family) -> Instance:
        return read_object(
            PROVIDER, "an instance", lambda item: instances.parse_instance(item, family), payload
        )
