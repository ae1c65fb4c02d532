"""What AIVory can run, and the rent request that runs it: pure functions.

AIVory's product is an OpenAI-compatible endpoint on a rented GPU: mode `model` serves
`model_id` (with AIVory's serving image unless `image` names another), mode `custom` runs the
renter's `docker_image`, which must serve that API itself. The rent's optional `ssh_key` is for
debugging such a deployment, not a machine to log into, so mode `ssh` is refused, as are
`template` (AIVory has no templates), `ports` (only AIVory's own endpoint is reachable) and
`env` (the rent takes none).

The documented rent body names an offer by GPU model, upstream provider and region, which a spot
offer and its on-demand twin share; `spot` is sent beside them so the right one is rented.
"""

from __future__ import annotations

from pricing.offer import Offer, Tier
from providers.aivory.parse import PROVIDER
from providers.base import ProviderRefused
from providers.rental import UnsupportedWorkload, Workload, WorkloadMode
from providers.workloads import offer_ref

JsonObject = dict[str, object]


def check_workload(offer: Offer, workload: Workload) -> None:
    """Raise `UnsupportedWorkload` naming the request field AIVory cannot honour."""
    if workload.mode in (WorkloadMode.SSH, WorkloadMode.TEMPLATE):
        raise UnsupportedWorkload(
            "mode",
            f"AIVory serves an OpenAI-compatible endpoint, not mode {workload.mode.value}: "
            "use mode model with a model id, or mode custom with an image serving that API",
        )
    if workload.ports:
        raise UnsupportedWorkload(
            "ports", "AIVory exposes its own OpenAI-compatible endpoint only, no other ports"
        )
    if workload.env:
        raise UnsupportedWorkload("env", "AIVory rentals take no environment variables")
    if workload.mode is WorkloadMode.MODEL and not workload.model:
        raise UnsupportedWorkload("model", "mode model needs the model to serve")
    if workload.mode is WorkloadMode.CUSTOM and not workload.image:
        raise UnsupportedWorkload("image", "mode custom needs an image serving the OpenAI API")


def rent_request(offer: Offer, workload: Workload) -> JsonObject:
    """The rent body for `offer`; an unrunnable workload or a bare offer is a refusal."""
    try:
        check_workload(offer, workload)
    except UnsupportedWorkload as exc:
        raise ProviderRefused(PROVIDER, exc.message, reason="refused") from None
    body: JsonObject = {
        "gpu_model": _ref(offer, "gpu_model"),
        "provider_id": _ref(offer, "provider_id"),
        "region": _ref(offer, "region"),
        "spot": offer.tier is Tier.SPOT,
        "fine_tuned": False,
    }
    if workload.model:
        body["model_id"] = workload.model
    if workload.image:
        body["docker_image"] = workload.image
    if workload.ssh_key:
        body["ssh_key"] = workload.ssh_key
    return body


def _ref(offer: Offer, key: str) -> str:
    return offer_ref(PROVIDER, offer, key, "rent it")
