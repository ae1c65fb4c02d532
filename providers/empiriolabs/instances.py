"""EmpirioLabs rentals in plain terms: workload checks, deploy bodies, instance JSON, refusals.

Pure functions, tested on fixtures; the adapter only moves their inputs and outputs over HTTP.

An instance's `status` is one of `provisioning`, `running`, `stopped`, `destroyed` or `failed`.
Any other word is a `MalformedResponse`, not a guess: reading an unknown status as failed would
let the broker stop billing, and maybe re-rent, while the GPU still runs and costs money.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from pricing.offer import Offer
from providers.base import ProviderRefused
from providers.empiriolabs.parse import PROVIDER
from providers.http import error_body, refused
from providers.parsing import (
    MalformedItem,
    field,
    items_of,
    optional,
    read_response,
    status_in,
    text,
    timestamp,
)
from providers.rental import Instance, InstanceStatus, UnsupportedWorkload, Workload, WorkloadMode
from providers.workloads import set_fields

INSTANCES_PATH = "/v1/gpu/instances"

_STATUSES = {
    "provisioning": InstanceStatus.PROVISIONING,
    "running": InstanceStatus.RUNNING,
    "stopped": InstanceStatus.STOPPED,
    "destroyed": InstanceStatus.TERMINATED,
    "failed": InstanceStatus.FAILED,
}

# The workload fields each deploy mode sends; anything else would be dropped without a word.
_MODE_FIELDS: Mapping[WorkloadMode, frozenset[str]] = {
    WorkloadMode.MODEL: frozenset({"model", "env"}),
    WorkloadMode.TEMPLATE: frozenset({"template", "env"}),
    WorkloadMode.CUSTOM: frozenset({"image", "ports", "env"}),
}
_REQUIRED_FIELD = {
    WorkloadMode.MODEL: "model",
    WorkloadMode.TEMPLATE: "template",
    WorkloadMode.CUSTOM: "image",
}


# --- what a deploy may ask for -----------------------------------------------------------------


def check_workload(workload: Workload) -> None:
    """Raise `UnsupportedWorkload` naming the field EmpirioLabs cannot honour."""
    if workload.mode not in _MODE_FIELDS:
        raise UnsupportedWorkload(
            "mode",
            "EmpirioLabs offers no SSH access: deploy a model, a template or a custom image.",
        )
    required = _REQUIRED_FIELD[workload.mode]
    if not getattr(workload, required):
        raise UnsupportedWorkload(required, f"mode {workload.mode.value} needs a {required}.")
    extra = sorted(set_fields(workload) - _MODE_FIELDS[workload.mode])
    if extra:
        raise UnsupportedWorkload(
            extra[0], f"EmpirioLabs does not take {extra[0]} in mode {workload.mode.value}."
        )


def deploy_body(offer: Offer, workload: Workload) -> dict[str, Any]:
    """The `POST /v1/gpu/instances` body for a checked workload on `offer`."""
    body: dict[str, Any] = {
        "gpu_slug": offer_ref(offer, "gpu_slug"),
        "gpu_count": int(offer_ref(offer, "gpu_count")),
        "mode": workload.mode.value,
    }
    if workload.mode is WorkloadMode.MODEL:
        body["hf_id"] = workload.model
    elif workload.mode is WorkloadMode.TEMPLATE:
        body["template_slug"] = workload.template
    else:
        body["image"] = workload.image
        if workload.ports:
            body["ports"] = list(workload.ports)
    if workload.env:
        body["env"] = dict(workload.env)
    return body


def offer_ref(offer: Offer, key: str) -> str:
    """A value the catalog parser stored on the offer; a refusal of that offer when missing."""
    value = offer.ref.get(key)
    if not value:
        raise ProviderRefused(PROVIDER, f"offer {offer.id} carries no {key}", reason="refused")
    return value


# --- instance JSON -------------------------------------------------------------------------------


def parse_instance(payload: Any) -> Instance:
    """One instance object (the deploy, get, action and delete responses)."""
    return read_response(PROVIDER, "instance", _instance, payload)


def parse_instance_list(payload: Any) -> list[Instance]:
    """`GET /v1/gpu/instances`: every instance the account has, in the provider's order."""
    return read_response(
        PROVIDER,
        "instance list",
        lambda page: [_instance(item) for item in items_of(page, "data")],
        payload,
    )


def _instance(item: Any) -> Instance:
    if not isinstance(item, Mapping):
        raise MalformedItem("an instance is not an object")
    _, status = status_in(item, _STATUSES, "a known instance status")
    reason = optional(item, "error")
    return Instance(
        provider=PROVIDER,
        handle=text(field(item, "id"), "id"),
        status=status,
        reason=text(reason, "error") if status is InstanceStatus.FAILED and reason else None,
        ended_at=(
            timestamp(optional(item, "destroyed_at"), "destroyed_at")
            if status is InstanceStatus.TERMINATED
            else None
        ),
    )


# --- refusals ------------------------------------------------------------------------------------


def refusal_reason(status: int, error_type: str | None, *, deploying: bool) -> str:
    """The broker's word for a 4xx, given EmpirioLabs' error `type` and whether it was a deploy.

    On a deploy the documented 404 means the account has no early access (the whole provider);
    only the catalog's own `not_found` type, an unknown GPU slug, is about this one offer. A 409
    on a deploy is the documented out-of-capacity unless the type says the request conflicted.
    """
    if status in (401, 403):
        return "unauthorized"
    if status == 402:
        return "insufficient_funds"
    if status == 404:
        if not deploying:
            return "not_found"
        return "offer_gone" if error_type == "not_found" else "not_enabled"
    if status == 409:
        return "no_capacity" if deploying and error_type != "conflict" else "conflict"
    return "refused"


def read_refusal(response: httpx.Response) -> ProviderRefused:
    """A 4xx as a refusal, with `{"error": {"message", "type"}}` where the provider sent it."""
    body = error_body(response)
    message = optional(body, "error", "message") if isinstance(body, dict) else None
    error_type = optional(body, "error", "type") if isinstance(body, dict) else None
    request = response.request
    deploying = request.method == "POST" and request.url.path.rstrip("/").endswith(INSTANCES_PATH)
    reason = refusal_reason(
        response.status_code,
        error_type if isinstance(error_type, str) else None,
        deploying=deploying,
    )
    return refused(PROVIDER, response, message, reason)
