"""What each ComputeGPU offer family can run, and the deploy body that asks for it.

Pure functions. Marketplace listings are rented whole and reached as an Ollama endpoint: the
rent call takes no body, so the only workload a listing can honour is a model it serves (where
the listing publishes its models, the model must be one of them). GPU cloud pods are deployed
with an access type: a model is an `ollama` pod, a custom image a `docker` pod, SSH an `ssh` pod.
A field that the chosen path would silently drop is refused by name instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pricing.money import format_usd
from pricing.offer import Offer, Tier
from providers.base import ProviderRefused
from providers.computegpu.instances import LISTING, POD
from providers.computegpu.parse import DEFAULT_INSTANCE_TYPE, PROVIDER
from providers.rental import UnsupportedWorkload, Workload, WorkloadMode
from providers.workloads import set_fields

DEPLOY_PATH = "/api/v1/gpu/deploy"
DEPLOY_SPOT_PATH = "/api/v1/gpu/deploy-spot"

# Each pod access type, the workload fields it sends, and the one it cannot do without.
_POD_TYPES: Mapping[WorkloadMode, tuple[str, frozenset[str], str | None]] = {
    WorkloadMode.MODEL: ("ollama", frozenset({"model"}), "model"),
    WorkloadMode.CUSTOM: ("docker", frozenset({"image", "env"}), "image"),
    WorkloadMode.SSH: ("ssh", frozenset({"ssh_key"}), None),
}


def family_of(offer: Offer) -> str:
    """`listing` or `pod`, from the family the catalog parser stored (`cloud` means pods)."""
    family = offer.ref.get("family")
    if family == LISTING:
        return LISTING
    if family == "cloud":
        return POD
    raise ProviderRefused(
        PROVIDER, f"offer {offer.id} names no ComputeGPU family", reason="refused"
    )


def offer_ref(offer: Offer, key: str) -> str:
    """A value the catalog parser stored on the offer; a refusal of that offer when missing."""
    value = offer.ref.get(key)
    if not value:
        raise ProviderRefused(PROVIDER, f"offer {offer.id} carries no {key}", reason="refused")
    return value


def check_workload(offer: Offer, workload: Workload) -> None:
    """Raise `UnsupportedWorkload` naming the field this offer cannot honour."""
    if family_of(offer) == LISTING:
        _check_listing(offer, workload)
    else:
        _check_pod(workload)


def _check_listing(offer: Offer, workload: Workload) -> None:
    kind = offer.ref.get("instance_type", DEFAULT_INSTANCE_TYPE)
    if kind != "ollama":
        raise UnsupportedWorkload(
            "mode",
            f"this listing is a {kind} host; marketplace rentals are reached only as Ollama.",
        )
    if workload.mode is WorkloadMode.SSH:
        raise UnsupportedWorkload("mode", "an Ollama-only listing gives no SSH access.")
    if workload.image:
        raise UnsupportedWorkload("image", "an Ollama-only listing runs no image of your own.")
    if workload.ports:
        raise UnsupportedWorkload("ports", "an Ollama-only listing exposes only its Ollama API.")
    if workload.mode is not WorkloadMode.MODEL:
        raise UnsupportedWorkload(
            "mode", "an Ollama-only listing serves models: use mode model with a model."
        )
    if not workload.model:
        raise UnsupportedWorkload("model", "mode model needs a model.")
    _refuse_extras(workload, frozenset({"model"}), "an Ollama-only listing")
    published = offer.ref.get("ollama_models")
    if published:
        served = published.split(",")
        if not any(same_model(workload.model, name) for name in served):
            raise UnsupportedWorkload(
                "model", f"this listing serves {', '.join(served)}, not {workload.model}."
            )


def _check_pod(workload: Workload) -> None:
    if workload.mode not in _POD_TYPES:
        raise UnsupportedWorkload(
            "mode", "ComputeGPU pods deploy a model, a custom image or SSH; no templates."
        )
    instance_type, allowed, required = _POD_TYPES[workload.mode]
    if required and not getattr(workload, required):
        raise UnsupportedWorkload(required, f"mode {workload.mode.value} needs a {required}.")
    _refuse_extras(workload, allowed, f"a ComputeGPU {instance_type} pod")


def _refuse_extras(workload: Workload, allowed: frozenset[str], what: str) -> None:
    extra = sorted(set_fields(workload) - allowed)
    if extra:
        raise UnsupportedWorkload(extra[0], f"{what} does not take {extra[0]}.")


def same_model(wanted: str, served: str) -> bool:
    """Ollama's names: `llama3` and `llama3:latest` are one model; case does not matter."""
    return _model_name(wanted) == _model_name(served)


def _model_name(name: str) -> str:
    return name.strip().lower().removesuffix(":latest")


def deploy_request(offer: Offer, workload: Workload) -> tuple[str, dict[str, Any]]:
    """The deploy path and body for a checked pod workload; spot bids the offer's own price."""
    instance_type, _, _ = _POD_TYPES[workload.mode]
    body: dict[str, Any] = {
        "gpuType": offer_ref(offer, "gpu_type"),
        "gpuCount": int(offer_ref(offer, "gpu_count")),
        "instanceType": instance_type,
    }
    if workload.mode is WorkloadMode.MODEL:
        body["models"] = [workload.model]
    elif workload.mode is WorkloadMode.CUSTOM:
        body["image"] = workload.image
        if workload.env:
            body["env"] = dict(workload.env)
    elif workload.ssh_key:
        body["sshKey"] = workload.ssh_key
    if offer.tier is Tier.SPOT:
        # A JSON number as documented; the amount comes from micro-dollars, exact to 6 places.
        body["bidPerGpu"] = float(format_usd(offer.base_price_per_gpu_hour))
        return DEPLOY_SPOT_PATH, body
    return DEPLOY_PATH, body
