"""What IC GPU can run, and the create request that runs it: pure functions.

IC GPU instances are machines to log into over SSH: mode `ssh` with a key, and nothing to run or
expose (no image, ports or environment). The request names the offer's `tier` and
`workload_type` (interactive or batch). A tier name such as `dedicated` covers several GPU
models, which the documented body cannot tell apart, so the offer's `gpu_model` is sent beside
it. The region is not sent: the documented body has none, and IC GPU places the instance.

The `Idempotency-Key` is the rental id and the offer id together: a retry of the same start
replays the instance it made, while a later start of the same rental on another offer (a spot
recovery keeps the rental id) makes a new one.
"""

from __future__ import annotations

from pricing.offer import Offer
from providers.base import ProviderRefused
from providers.icgpu.parse import PROVIDER
from providers.ownership import tagged_name
from providers.rental import UnsupportedWorkload, Workload
from providers.workloads import SshOnlyWording, check_ssh_only, offer_ref

DEFAULT_STORAGE_GB = 50

JsonObject = dict[str, object]
SSH_ONLY = SshOnlyWording(
    ports="HTTP ports on an SSH-only tier: IC GPU instances are reached over SSH only "
    "(forward a port through SSH instead)",
    image="IC GPU instances are SSH-only machines: they run no image of yours",
    env="IC GPU instances are SSH-only machines: they take no environment variables",
    mode="IC GPU instances are SSH-only: use mode ssh, not {mode}",
    ssh_key="an IC GPU instance needs an ssh_key to log in with",
)


def check_workload(offer: Offer, workload: Workload) -> None:
    """Raise `UnsupportedWorkload` naming the request field IC GPU cannot honour."""
    check_ssh_only(workload, SSH_ONLY)


def create_request(
    offer: Offer, workload: Workload, rental_id: str, deployment: str | None = None
) -> JsonObject:
    """The create body, named after the rental and its deployment (`providers.ownership`); an
    unrunnable workload is a refusal."""
    try:
        check_workload(offer, workload)
    except UnsupportedWorkload as exc:
        raise ProviderRefused(PROVIDER, exc.message, reason="refused") from None
    return {
        "name": tagged_name(rental_id, deployment),
        "tier": _ref(offer, "tier"),
        "gpu_model": _ref(offer, "gpu_model"),
        "ssh_key": workload.ssh_key,
        "workload_type": _ref(offer, "workload_type"),
        "storage_gb": DEFAULT_STORAGE_GB,
    }


def idempotency_key(rental_id: str, offer: Offer) -> str:
    return f"{rental_id}:{offer.id}"


def _ref(offer: Offer, key: str) -> str:
    return offer_ref(PROVIDER, offer, key, "start it")
