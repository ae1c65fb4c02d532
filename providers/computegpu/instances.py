"""ComputeGPU rentals in plain terms: handles, instance JSON and refusals, for both families.

Pure functions, tested on fixtures; the adapter only moves their inputs and outputs over HTTP.

A handle names the family and the provider's id: `listing:rnt_...` for a marketplace rental,
`pod:68abc...` for a GPU cloud pod, because the two live under different endpoints.

Marketplace rentals are `active` (a listing is an already-running Ollama host, so RUNNING at
once) or `stopped` (the end of the rental: TERMINATED, or INTERRUPTED where `stopReason` says
the host preempted it). Pods are `deploying`, `running`, `paused`, `preempted` or `destroyed`.
Any other status word is a `MalformedResponse`, not a guess: reading it as failed would let the
broker stop billing while the GPU still runs and costs money.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from providers.base import ProviderRefused
from providers.computegpu.parse import PROVIDER
from providers.http import error_body, refused
from providers.parsing import (
    MalformedItem,
    integer,
    items_of,
    optional,
    read_response,
    status_in,
    text,
    timestamp,
)
from providers.parsing import field as field_at
from providers.rental import Instance, InstanceStatus, SshAccess

LISTING = "listing"
POD = "pod"
FAMILIES = (LISTING, POD)
PREEMPTED = "preempted"

_RENTAL_STATUSES = {"active": InstanceStatus.RUNNING, "stopped": InstanceStatus.TERMINATED}
_POD_STATUSES = {
    "deploying": InstanceStatus.PROVISIONING,
    "running": InstanceStatus.RUNNING,
    "paused": InstanceStatus.STOPPED,
    "preempted": InstanceStatus.INTERRUPTED,
    "destroyed": InstanceStatus.TERMINATED,
}
# A 409 in these words is about capacity; any other 409 is a conflict with this one request.
_CAPACITY_WORDS = re.compile(r"capacity|not available|unavailable|sold out", re.IGNORECASE)


# --- handles -------------------------------------------------------------------------------------


def make_handle(family: str, provider_id: str) -> str:
    return f"{family}:{provider_id}"


def split_handle(handle: str) -> tuple[str, str]:
    """The family and id in a handle; a handle of neither family names no instance."""
    family, _, provider_id = handle.partition(":")
    if family not in FAMILIES or not provider_id.strip() or "/" in provider_id:
        raise ProviderRefused(
            PROVIDER, f"{handle!r} is not a ComputeGPU rental handle", reason="not_found"
        )
    return family, provider_id


# --- instance JSON -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Access:
    """Where a rental's Ollama endpoint is and the per-rental key it takes (never the account's)."""

    endpoint: str
    api_key: str = field(repr=False)


@dataclass(frozen=True)
class Reading:
    """One response about one rental: the instance, and how to reach it where it says."""

    instance: Instance
    access: Access | None = None
    # How a pod is reached (`ollama`, `docker`, `ssh`); None for marketplace rentals.
    instance_type: str | None = None


def parse_rent_response(payload: Any) -> Reading:
    """`POST /api/v1/marketplace/rent/{listingId}`: `{"rentalId", "apiKey", "endpoint", ...}`."""
    return read_response(PROVIDER, "rent response", lambda item: _rental(item, "rentalId"), payload)


def parse_rental(payload: Any) -> Reading:
    """`{"rental": {...}}`: the rental detail, and the stop response (which adds `cost`)."""
    return read_response(
        PROVIDER, "rental", lambda item: _rental(field_at(item, "rental"), "id"), payload
    )


def parse_rental_list(payload: Any) -> list[Instance]:
    """`GET /api/v1/marketplace/rentals`: `{"rentals": [...]}`."""
    return read_response(
        PROVIDER,
        "rental list",
        lambda page: [_rental(item, "id").instance for item in _items(page, "rentals")],
        payload,
    )


def parse_pod(payload: Any) -> Reading:
    """`{"instance": {...}}`: the deploy, pod, stop, resume and destroy responses."""
    return read_response(PROVIDER, "pod", lambda item: _pod(field_at(item, "instance")), payload)


def parse_pod_list(payload: Any) -> list[Instance]:
    """`GET /api/v1/gpu/pods`: `{"instances": [...]}`."""
    return read_response(
        PROVIDER,
        "pod list",
        lambda page: [_pod(item).instance for item in _items(page, "instances")],
        payload,
    )


def _items(payload: Any, key: str) -> list[Any]:
    return payload if isinstance(payload, list) else items_of(payload, key)


def _rental(item: Any, id_field: str) -> Reading:
    record = _object(item, "rental")
    _, status = status_in(record, _RENTAL_STATUSES, "a known rental status")
    stop_reason = optional(record, "stopReason")
    reason = None
    if status is InstanceStatus.TERMINATED and stop_reason is not None:
        reason = text(stop_reason, "stopReason").lower()
        if reason == PREEMPTED:
            status = InstanceStatus.INTERRUPTED
    instance = Instance(
        provider=PROVIDER,
        handle=make_handle(LISTING, text(field_at(record, id_field), id_field)),
        status=status,
        reason=reason,
        ended_at=_ended_at(record, "stoppedAt", status),
    )
    return Reading(instance=instance, access=_access(record))


def _pod(item: Any) -> Reading:
    record = _object(item, "instance")
    _, status = status_in(record, _POD_STATUSES, "a known pod status")
    instance_type = optional(record, "instanceType")
    instance = Instance(
        provider=PROVIDER,
        handle=make_handle(POD, text(field_at(record, "id"), "id")),
        status=status,
        reason=PREEMPTED if status is InstanceStatus.INTERRUPTED else None,
        ssh=_ssh(record),
        ended_at=_ended_at(record, "endedAt", status),
    )
    return Reading(
        instance=instance,
        access=_access(record),
        instance_type=None
        if instance_type is None
        else text(instance_type, "instanceType").lower(),
    )


def _object(item: Any, name: str) -> Mapping[str, Any]:
    if not isinstance(item, Mapping):
        raise MalformedItem(f"{name} is not an object")
    return item


def _access(record: Mapping[str, Any]) -> Access | None:
    """The endpoint and per-rental key, where the response carries both."""
    endpoint = optional(record, "endpoint")
    api_key = optional(record, "apiKey")
    if endpoint is None or api_key is None:
        return None
    return Access(endpoint=text(endpoint, "endpoint"), api_key=text(api_key, "apiKey"))


def _ssh(record: Mapping[str, Any]) -> SshAccess | None:
    ssh = optional(record, "ssh")
    if ssh is None:
        return None
    user = optional(ssh, "user")
    return SshAccess(
        host=text(field_at(ssh, "host"), "ssh.host"),
        port=integer(field_at(ssh, "port"), "ssh.port"),
        user="root" if user is None else text(user, "ssh.user"),
    )


def _ended_at(record: Mapping[str, Any], name: str, status: InstanceStatus) -> datetime | None:
    if status not in (InstanceStatus.TERMINATED, InstanceStatus.INTERRUPTED):
        return None
    return timestamp(optional(record, name), name)


# --- refusals ------------------------------------------------------------------------------------


def refusal_reason(status: int, message: str, context: str) -> str:
    """The broker's word for a 4xx, given ComputeGPU's message and what was asked.

    `context` is `rent` (a listing), `deploy` (a pod) or `instance` (anything with an id). A
    listing is one host's machine, single-tenant: it being taken says nothing about other hosts
    in its country, so on a rent both 404 and an unavailable 409 are about that offer alone.
    """
    if status in (401, 403):
        return "unauthorized"
    if status == 402:
        return "insufficient_funds"
    if status == 404:
        return "not_found" if context == "instance" else "offer_gone"
    if status == 409:
        if context == "instance" or not _CAPACITY_WORDS.search(message):
            return "conflict"
        return "no_capacity" if context == "deploy" else "offer_gone"
    return "refused"


def request_context(request: httpx.Request) -> str:
    path = request.url.path.rstrip("/")
    if request.method == "POST" and "/api/v1/marketplace/rent/" in path:
        return "rent"
    if request.method == "POST" and path.endswith(
        ("/api/v1/gpu/deploy", "/api/v1/gpu/deploy-spot")
    ):
        return "deploy"
    return "instance"


def read_refusal(response: httpx.Response) -> ProviderRefused:
    """A 4xx as a refusal, with ComputeGPU's `{"error": "message"}` where it sent one."""
    body = error_body(response)
    message = body.get("error") if isinstance(body, dict) else None
    detail = message if isinstance(message, str) and message else f"status {response.status_code}"
    reason = refusal_reason(response.status_code, detail, request_context(response.request))
    return refused(PROVIDER, response, detail, reason)
