"""Self-hosted rentals in plain terms: workload checks, container plans, labels, Docker states.

Pure functions over the Docker Engine API's JSON (container summaries from `GET /containers/json`
and inspections from `GET /containers/{id}/json`), so the adapter only moves them in and out.

Everything the broker must know again after a restart lives in the container's labels: the
rental id, the GPU UUIDs it holds, the region (the host's name in the catalog), the offer and the
requested ports. Allocation is read back from them, never kept only in memory.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pricing.offer import Offer
from providers.rental import Instance, InstanceStatus, UnsupportedWorkload, Workload, WorkloadMode
from providers.selfhosted.devices import GpuDevice
from providers.selfhosted.offers import PROVIDER

LABEL_RENTAL = "gpubroker.rental"
LABEL_DEPLOYMENT = "gpubroker.deployment"
LABEL_REGION = "gpubroker.region"
LABEL_OFFER = "gpubroker.offer"
LABEL_GPUS = "gpubroker.gpus"
LABEL_PORTS = "gpubroker.ports"
LABEL_SIMULATED = "gpubroker.simulated"

# Containers in these states keep their GPUs. One that has exited, for any reason, gives them
# back: a stopped rental is not billed, so its GPUs go back on offer (`start` takes them again
# if they are still free).
HOLDING_STATES = frozenset({"created", "running", "restarting", "paused"})
LOG_LINES = 20
MAX_REASON_CHARS = 2000

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,499}$")
_NAME_JUNK = re.compile(r"[^A-Za-z0-9_.-]+")

_STATUSES = {
    "created": InstanceStatus.PROVISIONING,
    "restarting": InstanceStatus.PROVISIONING,
    "running": InstanceStatus.RUNNING,
    "paused": InstanceStatus.STOPPED,
    "removing": InstanceStatus.TERMINATED,
}


# --- what a workload may ask for ---------------------------------------------------------------


def check_workload(workload: Workload) -> None:
    """Raise `UnsupportedWorkload` naming the field this backend cannot honour.

    Only custom images run here: the host has no catalogue of model servers or templates to map
    `model` or `template` to an image, and no SSH gateway. Ports and env names are checked again
    (the API checks them first) so a direct caller cannot start a container with a bad spec.
    """
    if workload.mode is not WorkloadMode.CUSTOM:
        raise UnsupportedWorkload(
            "mode",
            f"self-hosted GPUs run custom images only, not mode {workload.mode.value}: "
            "give mode custom with an image (e.g. vllm/vllm-openai) and its ports",
        )
    if not workload.image:
        raise UnsupportedWorkload("image", "mode custom needs an image")
    if not _IMAGE.fullmatch(workload.image):
        raise UnsupportedWorkload("image", f"{workload.image!r} is not a Docker image reference")
    for name in ("model", "template", "ssh_key"):
        if getattr(workload, name):
            raise UnsupportedWorkload(name, f"self-hosted GPUs do not take {name} with an image")
    for port in workload.ports:
        if not 1 <= port <= 65535:
            raise UnsupportedWorkload("ports", f"port {port} is outside 1-65535")
    if len(set(workload.ports)) != len(workload.ports):
        raise UnsupportedWorkload("ports", "a port is listed twice")
    for env_name in workload.env:
        if not _ENV_NAME.fullmatch(env_name):
            raise UnsupportedWorkload(
                "env", f"{env_name!r} is not a valid environment variable name"
            )


# --- the container a rental runs as ------------------------------------------------------------


@dataclass(frozen=True)
class ContainerPlan:
    """Everything `docker create` needs for one rental. `device_ids` is empty when simulated."""

    name: str
    image: str
    env: Mapping[str, str] = field(repr=False)  # the renter's env may hold secrets
    labels: Mapping[str, str]
    ports: tuple[int, ...]
    device_ids: tuple[str, ...]


def container_name(rental_id: str) -> str:
    """A Docker-safe name that a person reading `docker ps` can tie to the rental."""
    return "gpubroker-" + (_NAME_JUNK.sub("-", rental_id).strip("-.") or "rental")


def plan_container(
    offer: Offer,
    workload: Workload,
    rental_id: str,
    devices: Iterable[GpuDevice],
    region: str,
    deployment: str | None = None,
) -> ContainerPlan:
    """The container for a checked workload on `devices`, labelled so it can be found again,
    and with the deployment that started it (no deployment label when it has none)."""
    chosen = list(devices)
    simulated = any(device.simulated for device in chosen)
    uuids = tuple(device.uuid for device in chosen)
    owner = {} if deployment is None else {LABEL_DEPLOYMENT: deployment}
    return ContainerPlan(
        name=container_name(rental_id),
        image=workload.image or "",
        env=dict(workload.env),
        labels={
            **owner,
            LABEL_RENTAL: rental_id,
            LABEL_REGION: region,
            LABEL_OFFER: offer.id,
            LABEL_GPUS: ",".join(uuids),
            LABEL_PORTS: ",".join(str(port) for port in workload.ports),
            LABEL_SIMULATED: "true" if simulated else "false",
        },
        ports=tuple(workload.ports),
        device_ids=() if simulated else uuids,
    )


# --- reading containers back -------------------------------------------------------------------


def labels_of(container: Mapping[str, Any]) -> Mapping[str, str]:
    """Labels from a summary (`Labels`) or an inspection (`Config.Labels`)."""
    labels = container.get("Labels")
    if labels is None:
        labels = (container.get("Config") or {}).get("Labels")
    return labels or {}


def state_of(container: Mapping[str, Any]) -> str:
    """The Docker state word: a summary's `State` is a string, an inspection's an object."""
    state = container.get("State")
    if isinstance(state, Mapping):
        return str(state.get("Status", "")).lower()
    return str(state or "").lower()


def gpu_uuids(container: Mapping[str, Any]) -> list[str]:
    return [uuid for uuid in labels_of(container).get(LABEL_GPUS, "").split(",") if uuid]


def allocated_uuids(containers: Iterable[Mapping[str, Any]]) -> frozenset[str]:
    """The GPUs held by containers that still hold them (see `HOLDING_STATES`)."""
    return frozenset(
        uuid
        for container in containers
        if state_of(container) in HOLDING_STATES
        for uuid in gpu_uuids(container)
    )


def requested_ports(container: Mapping[str, Any]) -> list[int]:
    raw = labels_of(container).get(LABEL_PORTS, "")
    return [int(port) for port in raw.split(",") if port.strip().isdigit()]


def published_port(container: Mapping[str, Any], port: int) -> int | None:
    """The loopback host port that an inspected container's `port`/tcp is published on."""
    ports = (container.get("NetworkSettings") or {}).get("Ports") or {}
    for binding in ports.get(f"{port}/tcp") or ():
        host_port = str(binding.get("HostPort", ""))
        if host_port.isdigit():
            return int(host_port)
    return None


def container_id(container: Mapping[str, Any]) -> str:
    return str(container.get("Id") or container.get("ID") or "")


def failure_reason(container: Mapping[str, Any], logs: str) -> str:
    """Why a container ended, for the rental: its exit code and its last log lines."""
    state = container.get("State")
    details = state if isinstance(state, Mapping) else {}
    words = f"the container {state_of(container) or 'ended'}"
    if "ExitCode" in details:
        words = f"the container exited with code {details['ExitCode']}"
    if details.get("OOMKilled"):
        words += " (killed: out of memory)"
    if details.get("Error"):
        words += f" ({details['Error']})"
    tail = "\n".join(logs.strip().splitlines()[-LOG_LINES:])
    reason = f"{words}; last log lines:\n{tail}" if tail else f"{words}; it wrote no log"
    return reason[-MAX_REASON_CHARS:]


def instance_from_inspection(
    container: Mapping[str, Any], *, stop_requested: bool, logs: str | None = None
) -> Instance:
    """The rental's state from an inspected container, for `status` and the operations.

    An exited container is `STOPPED` when the broker stopped it, and otherwise `FAILED`: the
    workload ended on its own, and `logs` (its last lines) say why.
    """
    state = state_of(container)
    status = _STATUSES.get(state)
    reason = None
    if status is None:
        if state == "exited" and stop_requested:
            status = InstanceStatus.STOPPED
        else:
            status = InstanceStatus.FAILED
            reason = failure_reason(container, logs or "")
    return Instance(
        provider=PROVIDER,
        handle=container_id(container),
        status=status,
        rental_id=labels_of(container).get(LABEL_RENTAL),
        reason=reason,
        deployment=labels_of(container).get(LABEL_DEPLOYMENT),
    )


def instance_from_summary(container: Mapping[str, Any]) -> Instance:
    """A listed container, for reconciliation.

    Every container that still exists is live here: an exited one is reported `STOPPED`, not
    `FAILED`, because reconciliation ignores ended instances, and a container left behind by a
    failed rental must be found and removed (its logs are already in the rental's reason).
    """
    status = _STATUSES.get(state_of(container), InstanceStatus.STOPPED)
    return Instance(
        provider=PROVIDER,
        handle=container_id(container),
        status=status,
        rental_id=labels_of(container).get(LABEL_RENTAL),
        deployment=labels_of(container).get(LABEL_DEPLOYMENT),
    )
