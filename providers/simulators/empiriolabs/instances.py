"""The EmpirioLabs simulator's rentals: GPU instances, their lifecycle and the GPUs they hold.

Provisioning is asynchronous and lazy: an instance reads as `provisioning` until the knobs'
`provision_seconds` have passed since it was created (or started again), then as `running`. A
deploy takes `gpu_count` GPUs from its catalog item, so the catalog's `available_count` shows
the rental; destroying the instance gives them back. A stopped instance keeps its GPUs, so
starting it again never runs out of capacity.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from providers.simulators.book import Answer, known, new_id, refuse_if_told
from providers.simulators.empiriolabs.seed import CatalogItem
from providers.simulators.kit import Refusal, SimError, SimulatorKnobs, rfc3339
from providers.simulators.lifecycle import boot_again, gpu_count_allowed, still_live

# Phases an instance never leaves: no pause, stop or start from them.
ENDED = ("destroyed", "failed")
# Refusal kinds as EmpirioLabs words them: status, message, error type.
REFUSALS: dict[Refusal, Answer] = {
    "capacity": (409, "No GPUs of this type are available right now.", "capacity_exhausted"),
    "payment": (402, "Your credit balance is zero. Add credits to deploy.", "insufficient_balance"),
    "conflict": (409, "Another request for this deploy is in progress.", "conflict"),
    "gone": (404, "No GPU with this slug.", "not_found"),
}


def _rfc3339(moment: datetime) -> str:
    return rfc3339(moment, timespec="seconds")


@dataclass
class SimInstance:
    """One GPU instance. `phase` is the stored status; reads settle it against the clock."""

    id: str
    gpu_slug: str
    gpu_count: int
    mode: str
    price_hourly: float
    region: str
    workload: dict[str, Any]
    created_at: datetime
    boot_started: float
    phase: str = "provisioning"
    destroyed_at: datetime | None = None

    def settle(self, provision_seconds: float) -> None:
        if (
            self.phase == "provisioning"
            and time.monotonic() - self.boot_started >= provision_seconds
        ):
            self.phase = "running"

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "object": "gpu_instance",
            "gpu_slug": self.gpu_slug,
            "gpu_count": self.gpu_count,
            "mode": self.mode,
            "status": self.phase,
            "price_hourly": self.price_hourly,
            "region": self.region,
            "created_at": _rfc3339(self.created_at),
            **self.workload,
        }
        if self.destroyed_at is not None:
            body["destroyed_at"] = _rfc3339(self.destroyed_at)
        return body


class InstanceBook:
    """Every instance the simulated account has deployed, destroyed ones included."""

    def __init__(self, knobs: SimulatorKnobs, items: dict[str, CatalogItem]) -> None:
        self.knobs = knobs
        self.items = items
        self.instances: dict[str, SimInstance] = {}
        # Accounts outside the early-access group get 404 on every deploy.
        self.early_access = True

    def deploy(
        self, gpu_slug: str, gpu_count: int, mode: str, workload: dict[str, Any]
    ) -> SimInstance:
        if not self.early_access:
            raise SimError(
                404, "GPU deploys are not enabled for this account yet.", "early_access_required"
            )
        refuse_if_told(self.knobs, REFUSALS)
        item = known(self.items, gpu_slug, f"No GPU with slug '{gpu_slug}'.", "not_found")
        gpu_count_allowed(gpu_count, item.max_gpus, "gpu_count", "invalid_request_error")
        self._take(item, gpu_count)
        instance = SimInstance(
            id=new_id("gi_", 8),
            gpu_slug=gpu_slug,
            gpu_count=gpu_count,
            mode=mode,
            price_hourly=item.price_hourly,
            region=item.regions[0],
            workload=workload,
            created_at=datetime.now(UTC),
            boot_started=time.monotonic(),
        )
        self.instances[instance.id] = instance
        return instance

    def get(self, instance_id: str) -> SimInstance:
        instance = known(self.instances, instance_id, f"No instance '{instance_id}'.", "not_found")
        instance.settle(self.knobs.provision_seconds)
        return instance

    def stop(self, instance_id: str) -> SimInstance:
        instance = self.get(instance_id)
        still_live(instance, ENDED, "conflict")
        instance.phase = "stopped"
        return instance

    def start(self, instance_id: str) -> SimInstance:
        instance = self.get(instance_id)
        still_live(instance, ENDED, "conflict")
        boot_again(instance, "stopped", "provisioning")
        return instance

    def destroy(self, instance_id: str) -> SimInstance:
        instance = self.get(instance_id)
        if instance.phase != "destroyed":
            instance.phase = "destroyed"
            instance.destroyed_at = datetime.now(UTC)
            self._give_back(instance)
        return instance

    def interrupt(self, instance_id: str) -> SimInstance:
        """EmpirioLabs sells on-demand GPUs only: nothing of theirs is ever preempted."""
        self.get(instance_id)
        raise SimError(409, "EmpirioLabs instances are on-demand and never preempted.", "conflict")

    def all(self) -> list[SimInstance]:
        for instance in self.instances.values():
            instance.settle(self.knobs.provision_seconds)
        return list(self.instances.values())

    def _take(self, item: CatalogItem, count: int) -> None:
        """Take `count` GPUs of the item, or refuse for capacity when fewer are free."""
        if not item.available or item.available_count < count:
            raise SimError(*REFUSALS["capacity"])
        item.available_count -= count
        item.available = item.available_count > 0

    def _give_back(self, instance: SimInstance) -> None:
        item = self.items.get(instance.gpu_slug)
        if item is not None:
            item.available_count += instance.gpu_count
            item.available = item.available_count > 0
