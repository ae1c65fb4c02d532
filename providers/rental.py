"""The rental side of a backend: provision, watch, stop and start, terminate, reach, reconcile.

Adapters translate between these plain records and their provider's API. The broker owns
everything else (ranking, credit, billing, failover), so an adapter never decides what to try
next: it says what happened, and, when the provider refused, how widely the refusal applies
(`Scope`), so the broker blocks the right thing and moves on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from pricing.offer import Offer
from providers.base import Provider, ProviderError


class Scope(StrEnum):
    """What a failed provision says about other candidates (SkyPilot's blocked resources)."""

    OFFER = "offer"  # only this offer: it is gone, or it cannot run this workload
    REGION = "region"  # this provider's region: out of capacity there
    PROVIDER = "provider"  # the whole provider: down, unpaid, unauthorized


# The broker's words for why a provider said no, and how far each reaches by default.
REASON_SCOPES: Mapping[str, Scope] = {
    "no_capacity": Scope.REGION,
    "offer_gone": Scope.OFFER,
    "conflict": Scope.OFFER,
    "refused": Scope.OFFER,
    "insufficient_funds": Scope.PROVIDER,
    "unauthorized": Scope.PROVIDER,
    "not_enabled": Scope.PROVIDER,
    "unavailable": Scope.PROVIDER,
}


def scope_of(error: ProviderError) -> Scope:
    """How widely a provisioning failure blocks, by the refusal's reason (`REASON_SCOPES`).

    A failure with no reason (the provider could not be reached, or failed) blocks the provider;
    a reason the table does not know blocks only the offer, the narrowest guess.
    """
    reason = getattr(error, "reason", "unavailable")
    return REASON_SCOPES.get(reason, Scope.OFFER)


class WorkloadMode(StrEnum):
    MODEL = "model"  # serve a model (vLLM / Ollama): `model`
    TEMPLATE = "template"  # a ready environment: `template` (jupyter, comfyui, ollama ...)
    CUSTOM = "custom"  # your image: `image`, `ports`, `env`
    SSH = "ssh"  # a machine to log into: `ssh_key`


@dataclass(frozen=True)
class Workload:
    """What the renter wants to run."""

    mode: WorkloadMode = WorkloadMode.CUSTOM
    image: str | None = None
    model: str | None = None
    template: str | None = None
    ports: tuple[int, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    ssh_key: str | None = None


class UnsupportedWorkload(ValueError):
    """The offer cannot run this workload; `field` names the request field at fault (a 422)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class NotSupported(ProviderError):
    """The provider has no such operation (e.g. stopping an AIVory rental): a 409 to the user."""


class InstanceStatus(StrEnum):
    PROVISIONING = "provisioning"
    RUNNING = "running"
    STOPPED = "stopped"
    INTERRUPTED = "interrupted"  # a spot instance the provider took back
    TERMINATED = "terminated"
    FAILED = "failed"


@dataclass(frozen=True)
class SshAccess:
    host: str
    port: int
    user: str = "root"

    @property
    def command(self) -> str:
        return f"ssh {self.user}@{self.host} -p {self.port}"


@dataclass(frozen=True)
class Upstream:
    """Where the connect proxy sends a rental's traffic, and the credentials it adds."""

    base_url: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)  # credentials


@dataclass(frozen=True)
class Instance:
    """A provider's view of one rented instance, as of one API call.

    `handle` is the adapter's opaque, stable reference (it may encode the offer family, e.g.
    `pod:68abc1`); `rental_id` is the broker's id as tagged at the provider (name, label or
    idempotency key) where the provider echoes it back; `deployment` is the id of the broker
    deployment that started it, where the provider echoes a tag (None: untagged, or a provider
    that takes no tag); `reason` keeps the provider's words for a failure or an interruption;
    `ended_at` is when the provider says it stopped running. `upstream` carries credentials a
    provider hands out once, in its answer to the provision call only: the broker keeps them
    (encrypted) because no later call returns them.
    """

    provider: str
    handle: str
    status: InstanceStatus
    rental_id: str | None = None
    reason: str | None = None
    ssh: SshAccess | None = None
    ended_at: datetime | None = None
    deployment: str | None = None
    upstream: Upstream | None = field(default=None, repr=False)


class RentalProvider(Provider, Protocol):
    """A backend the broker can rent through. Every call raises only `ProviderError`s."""

    def check_workload(self, offer: Offer, workload: Workload) -> None:
        """Raise `UnsupportedWorkload` when `offer` cannot run `workload`; no I/O."""
        ...

    def provision(self, offer: Offer, workload: Workload, rental_id: str) -> Instance:
        """Start an instance of `offer`, tagged with `rental_id` wherever the API allows, and
        with the deployment id of `ProviderConfig.deployment_id` where the provider takes a tag.

        Returns at once (usually `PROVISIONING`). A refusal raises `ProviderRefused` with a
        `reason` from `REASON_SCOPES`.
        """
        ...

    def status(self, handle: str) -> Instance:
        """The instance now; `ProviderRefused(reason="not_found")` when the provider lost it."""
        ...

    def terminate(self, handle: str) -> Instance:
        """End the instance for good. Terminating an ended or unknown instance is not an error."""
        ...

    def stop(self, handle: str) -> Instance:
        """Pause (billing stops, disk kept); `NotSupported` where the provider cannot."""
        ...

    def start(self, handle: str) -> Instance:
        """Resume a stopped instance; `NotSupported` where the provider cannot."""
        ...

    def upstream(self, handle: str) -> Upstream | None:
        """Where the workload's HTTP is reached, with provider-side credentials; None for SSH."""
        ...

    def list_instances(self) -> list[Instance]:
        """Every live instance in the provider account, for reconciliation."""
        ...
