"""The simulated IC GPU account: tiers with finite GPUs and the instances running on them.

A create takes one GPU from its tier's `available` count, which the tier listing shows; stopping,
preemption and termination give it back, starting and requeueing take one again. An instance is
`pending` until `knobs.provision_seconds` have passed since it was created, started or requeued
(worked out on each read against the knob's current value, so a test may shorten the wait), then
`running` with SSH on 127.0.0.1. Batch instances can be preempted.

Readings of what the document leaves open: a create may name `gpu_model` to pick among the tiers
sharing a name (the first with a free GPU otherwise); replaying an `Idempotency-Key` returns the
instance it created, as it is now, and makes nothing; a dry run checks the body, the tier and its
capacity; the listing pages at most `PAGE_LIMIT` instances at a time, oldest first, terminated
ones included; an ended instance shows `ended_at`.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from providers.simulators.book import AccountBook, Answer, known, new_id
from providers.simulators.icgpu.seed import GpuTier, seed_tiers
from providers.simulators.kit import Refusal, SimError, SimulatorKnobs, rfc3339
from providers.simulators.lifecycle import Holding

PAGE_LIMIT = 3
SIM_HOST = "127.0.0.1"
FIRST_SSH_PORT = 2200
WORKLOAD_TYPES = ("interactive", "batch")
STORAGE_GB = (10, 500, 50)  # least, most, default


def _rfc3339(moment: datetime | None) -> str | None:
    return None if moment is None else rfc3339(moment)


@dataclass
class SimInstance(Holding):
    """One instance; it holds capacity while it has taken one of its tier's free GPUs."""

    id: str
    name: str
    tier: GpuTier
    workload_type: str
    storage_gb: int
    ssh_port: int
    created_at: datetime
    pending_since: float
    status: str = "pending"

    def to_json(self) -> dict[str, object]:
        running = self.status == "running"
        return {
            "id": self.id,
            "name": self.name,
            "tier": self.tier.tier,
            "gpu_model": self.tier.gpu_model,
            "workload_type": self.workload_type,
            "storage_gb": self.storage_gb,
            "status": self.status,
            "ssh_host": SIM_HOST if running else None,
            "ssh_port": self.ssh_port if running else None,
            "created_at": _rfc3339(self.created_at),
            "ended_at": _rfc3339(self.ended_at),
        }


@dataclass(frozen=True)
class CreateRequest:
    name: str
    tier: str
    gpu_model: str | None
    workload_type: str
    storage_gb: int


class IcGpuState(AccountBook):
    """The simulated provider's tiers and instances, plus what it has been asked."""

    REFUSALS: ClassVar[Mapping[Refusal, Answer]] = {
        "capacity": (409, "Insufficient capacity in this tier", "ConflictException"),
        "payment": (402, "Token balance depleted", "InsufficientTokens"),
        "conflict": (409, "Resource already exists", "ConflictException"),
        "gone": (404, "Tier not found", "ResourceNotFoundException"),
    }

    def __init__(self, knobs: SimulatorKnobs) -> None:
        super().__init__(knobs)
        self.tiers: list[GpuTier] = seed_tiers(knobs.seed)
        self.instances: dict[str, SimInstance] = {}
        self.idempotency: dict[str, str] = {}

    def read_tiers(self) -> dict[str, object]:
        with self.settled():
            for tier in self.tiers:
                tier.price = self.knobs.drift(tier.price)
            return {"tiers": [tier.to_json() for tier in self.tiers]}

    def create(self, body: Any, key: str | None) -> tuple[bool, dict[str, object]]:
        """Create an instance; (False, the original instance) when `key` was seen before."""
        request = read_create_request(body)
        with self.settled():
            if key is not None and key in self.idempotency:
                return False, self.instances[self.idempotency[key]].to_json()
            self.refuse_if_told()
            tier = self._tier(request)
            self._take(tier)
            instance = SimInstance(
                id=new_id("inst-", 4),
                name=request.name,
                tier=tier,
                workload_type=request.workload_type,
                storage_gb=request.storage_gb,
                ssh_port=FIRST_SSH_PORT + len(self.instances),
                created_at=datetime.now(UTC),
                pending_since=time.monotonic(),
            )
            self.instances[instance.id] = instance
            if key is not None:
                self.idempotency[key] = instance.id
            return True, instance.to_json()

    def dry_run(self, body: Any) -> dict[str, object]:
        request = read_create_request(body)
        with self.settled():
            tier = self._tier(request)
            if tier.available <= 0:
                raise _no_capacity(tier)
            return {"dryRun": True, "message": "Request would succeed"}

    def get(self, instance_id: str) -> dict[str, object]:
        with self.settled():
            return self._find(instance_id).to_json()

    def list_page(self, max_results: int | None, next_token: str | None) -> dict[str, object]:
        if max_results is not None and max_results < 1:
            raise SimError(400, "maxResults must be at least 1", "ValidationException")
        size = min(max_results or PAGE_LIMIT, PAGE_LIMIT)
        start = 0 if next_token is None else _offset(next_token)
        with self.settled():
            listed = list(self.instances.values())
            end = start + size
            return {
                "instances": [instance.to_json() for instance in listed[start:end]],
                "nextToken": _token(end) if end < len(listed) else None,
            }

    def stop(self, instance_id: str) -> dict[str, object]:
        with self.settled():
            instance = self._find(instance_id)
            if instance.status == "running":
                instance.status = "stopped"
                self._release(instance)
            elif instance.status != "stopped":
                raise _state_conflict(instance, "stopped", "only a running instance stops")
            return instance.to_json()

    def start(self, instance_id: str) -> dict[str, object]:
        with self.settled():
            instance = self._find(instance_id)
            if instance.status == "stopped":
                self._resume(instance)
            elif instance.status not in ("pending", "running"):
                hint = (
                    "requeue it" if instance.status == "preempted" else "only a stopped one starts"
                )
                raise _state_conflict(instance, "started", hint)
            return instance.to_json()

    def requeue(self, instance_id: str) -> dict[str, object]:
        with self.settled():
            instance = self._find(instance_id)
            if instance.status != "preempted":
                raise _state_conflict(instance, "requeued", "only a preempted one is requeued")
            self._resume(instance)
            return instance.to_json()

    def terminate(self, instance_id: str) -> dict[str, object]:
        with self.settled():
            instance = self._find(instance_id)
            if instance.status != "terminated":
                instance.status = "terminated"
                instance.ended_at = instance.ended_at or datetime.now(UTC)
                self._release(instance)
            return instance.to_json()

    def interrupt_json(self, instance_id: str, base_url: str = "") -> dict[str, Any]:
        """A higher-priority workload takes a batch instance's GPU: `preempted`."""
        with self.settled():
            instance = self._find(instance_id)
            if instance.workload_type != "batch":
                raise SimError(
                    409, "Interactive instances are not preemptible", "ConflictException"
                )
            if instance.status not in ("pending", "running"):
                raise _state_conflict(instance, "preempted", "only a live batch instance is")
            instance.status = "preempted"
            instance.ended_at = datetime.now(UTC)
            self._release(instance)
            return instance.to_json()

    def instances_json(self, base_url: str = "") -> list[dict[str, Any]]:
        with self.settled():
            return [instance.to_json() for instance in self.instances.values()]

    def _tier(self, request: CreateRequest) -> GpuTier:
        named = [
            tier
            for tier in self.tiers
            if tier.tier == request.tier
            and (request.gpu_model is None or tier.gpu_model == request.gpu_model)
        ]
        if not named:
            model = f" with {request.gpu_model}" if request.gpu_model else ""
            raise SimError(
                404, f"Tier {request.tier!r}{model} not found", "ResourceNotFoundException"
            )
        return next((tier for tier in named if tier.available > 0), named[0])

    def _find(self, instance_id: str) -> SimInstance:
        return known(
            self.instances,
            instance_id,
            f"Instance {instance_id} not found",
            "ResourceNotFoundException",
        )

    def _resume(self, instance: SimInstance) -> None:
        self._take(instance.tier)
        instance.holds_capacity = True
        instance.status = "pending"
        instance.pending_since = time.monotonic()
        instance.ended_at = None

    @staticmethod
    def _take(tier: GpuTier) -> None:
        if tier.available <= 0:
            raise _no_capacity(tier)
        tier.available -= 1

    @staticmethod
    def _release(instance: SimInstance) -> None:
        if instance.let_go():
            instance.tier.available += 1

    def settle(self) -> None:
        for instance in self.provisioned(self.instances.values(), "pending"):
            instance.status = "running"


def read_create_request(body: Any) -> CreateRequest:
    """The create body's fields, or a 400 ValidationException naming the first bad one."""
    if not isinstance(body, dict):
        raise _invalid("the body must be a JSON object")
    texts: dict[str, str | None] = {}
    for name, required in (("name", True), ("tier", True), ("gpu_model", False)):
        value = body.get(name)
        if value is None and not required:
            texts[name] = None
        elif not isinstance(value, str) or not value.strip():
            raise _invalid(f"{name} must be a non-empty string")
        else:
            texts[name] = value
    ssh_key = body.get("ssh_key")
    if ssh_key is not None and not isinstance(ssh_key, str):
        raise _invalid("ssh_key must be a string")
    workload_type = body.get("workload_type", WORKLOAD_TYPES[0])
    if workload_type not in WORKLOAD_TYPES:
        raise _invalid(f"workload_type must be one of {', '.join(WORKLOAD_TYPES)}")
    least, most, default = STORAGE_GB
    storage_gb = body.get("storage_gb", default)
    if isinstance(storage_gb, bool) or not isinstance(storage_gb, int):
        raise _invalid("storage_gb must be an integer")
    if not least <= storage_gb <= most:
        raise _invalid(f"storage_gb must be between {least} and {most}")
    return CreateRequest(
        name=texts["name"] or "",
        tier=texts["tier"] or "",
        gpu_model=texts["gpu_model"],
        workload_type=workload_type,
        storage_gb=storage_gb,
    )


def _invalid(message: str) -> SimError:
    return SimError(400, message, "ValidationException")


def _no_capacity(tier: GpuTier) -> SimError:
    return SimError(
        409,
        f"Insufficient capacity: no free GPU in tier {tier.tier} ({tier.gpu_model})",
        "ConflictException",
    )


def _state_conflict(instance: SimInstance, wanted: str, hint: str) -> SimError:
    return SimError(
        409,
        f"Instance {instance.id} is {instance.status} and cannot be {wanted}: {hint}",
        "ConflictException",
    )


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _offset(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
        kind, _, number = text.partition(":")
        if kind != "offset":
            raise ValueError(text)
        return int(number)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise SimError(400, "nextToken is not valid", "ValidationException") from None
