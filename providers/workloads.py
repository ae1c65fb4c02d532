"""What the adapters share in turning a rent into a provider's request.

Each provider decides for itself which workloads it can run and how its request is worded; a few
rules recur. Several providers sell machines reached over SSH only: such a machine takes an SSH
key in mode `ssh` and nothing to run or expose, and `check_ssh_only` applies that rule in the
order every such provider answers it (ports, image, environment, mode, key), each refusal worded
as that provider words it. `set_fields` names the optional workload fields a renter filled in,
for providers that accept only some of them. `offer_ref` reads a value a listing kept in the
offer's `ref` for the request to repeat; an offer without it is refused, not guessed at. Once
rented, a workload is reached only while its instance runs: `require_running` refuses the rest
as a conflict.
"""

from __future__ import annotations

from dataclasses import dataclass

from pricing.offer import Offer
from providers.base import ProviderRefused
from providers.rental import Instance, InstanceStatus, UnsupportedWorkload, Workload, WorkloadMode


@dataclass(frozen=True)
class SshOnlyWording:
    """A provider's refusals of what an SSH-only machine cannot take; `mode` is formatted with
    the mode asked for."""

    ports: str
    image: str
    env: str
    mode: str
    ssh_key: str


def check_ssh_only(workload: Workload, wording: SshOnlyWording) -> None:
    """Raise `UnsupportedWorkload` for the first field an SSH-only machine cannot honour."""
    if workload.ports:
        raise UnsupportedWorkload("ports", wording.ports)
    if workload.image:
        raise UnsupportedWorkload("image", wording.image)
    if workload.env:
        raise UnsupportedWorkload("env", wording.env)
    if workload.mode is not WorkloadMode.SSH:
        raise UnsupportedWorkload("mode", wording.mode.format(mode=workload.mode.value))
    if not workload.ssh_key:
        raise UnsupportedWorkload("ssh_key", wording.ssh_key)


def set_fields(workload: Workload) -> set[str]:
    """The optional workload fields the renter filled in."""
    values = {
        "image": workload.image,
        "model": workload.model,
        "template": workload.template,
        "ports": workload.ports,
        "env": workload.env,
        "ssh_key": workload.ssh_key,
    }
    return {name for name, value in values.items() if value}


def offer_ref(provider: str, offer: Offer, key: str, purpose: str) -> str:
    """The offer's `ref[key]`; a refusal saying it is needed to `purpose` where it is missing."""
    value = offer.ref.get(key)
    if not value:
        raise ProviderRefused(
            provider, f"offer {offer.id} lacks {key!r} needed to {purpose}", reason="refused"
        )
    return value


def require_running(provider: str, instance: Instance, what: str, reached_by: str) -> None:
    """Refuse, as a conflict, to reach `what` (e.g. "rental r-1") while it is not running."""
    if instance.status is not InstanceStatus.RUNNING:
        raise ProviderRefused(
            provider,
            f"{what} is {instance.status.value}; it has {reached_by} only while running",
            reason="conflict",
        )
