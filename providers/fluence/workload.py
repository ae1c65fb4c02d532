"""What Fluence can run, and the deploy requests that run it: pure functions.

Containers run the renter's own image (mode `custom`) with the ports it serves exposed, within
Fluence's documented limits: at most 10 exposed ports, at most 64 environment variables, only
port 80 labelled `http` (every other port is forwarded as `tcp`), and `SSH_PUBKEY` reserved when
an SSH key is given (Fluence fails such a deployment). Fluence has no catalog of models or
templates to map `model` or `template` onto, so those modes are refused rather than guessed.
VMs and bare metal are machines to log into: mode `ssh` with a key, and nothing to run or expose.
"""

from __future__ import annotations

from pricing.offer import InstanceType, Offer
from providers.base import ProviderRefused
from providers.fluence.instances import FAMILY_OF_TYPE, Family
from providers.fluence.parse import PROVIDER
from providers.ownership import tagged_name
from providers.rental import UnsupportedWorkload, Workload, WorkloadMode
from providers.workloads import SshOnlyWording, check_ssh_only, offer_ref

MAX_PORTS = 10
MAX_ENV = 64
HTTP_PORT = 80
RESERVED_ENV = "SSH_PUBKEY"

JsonObject = dict[str, object]
MACHINE_SSH_ONLY = SshOnlyWording(
    ports="Fluence VMs and bare metal are SSH-only: no ports are exposed",
    image="Fluence VMs and bare metal are SSH-only: they run an OS image, not yours",
    env="Fluence VMs and bare metal are SSH-only: they take no environment variables",
    mode="Fluence VMs and bare metal are SSH-only: use mode ssh, not {mode}",
    ssh_key="a Fluence VM or bare-metal machine needs an ssh_key",
)


def check_workload(offer: Offer, workload: Workload) -> None:
    """Raise `UnsupportedWorkload` naming the request field Fluence cannot honour."""
    if offer.instance_type is InstanceType.CONTAINER:
        _check_container(workload)
    else:
        check_ssh_only(workload, MACHINE_SSH_ONLY)


def deploy_request(
    offer: Offer, workload: Workload, rental_id: str, deployment: str | None = None
) -> tuple[Family, JsonObject]:
    """The family to deploy under and the body to send, named after the rental and the
    deployment that starts it (`providers.ownership`).

    A workload Fluence cannot run, or an offer missing what its deploy needs, is a refusal of
    this offer, so provisioning raises only provider errors.
    """
    try:
        check_workload(offer, workload)
    except UnsupportedWorkload as exc:
        raise ProviderRefused(PROVIDER, exc.message, reason="refused") from None
    family = FAMILY_OF_TYPE[offer.instance_type]
    if family is Family.CONTAINER:
        body: JsonObject = {
            "plan_id": _ref(offer, "plan_id"),
            "name": tagged_name(rental_id, deployment),
            "location": _ref(offer, "location_id"),
            "container_settings": {
                "image": workload.image,
                "expose": expose(workload.ports),
                "env": dict(workload.env),
            },
        }
        if workload.ssh_key:
            body["ssh_key"] = workload.ssh_key
        return family, body
    return family, {
        "plan_id": _ref(offer, "option_id"),
        "name": tagged_name(rental_id, deployment),
        "ssh_key": workload.ssh_key,
        "os_image": _ref(offer, "os_image"),
    }


def expose(ports: tuple[int, ...]) -> list[JsonObject]:
    """Port 80 as `http`, the only port Fluence lets carry that label; every other as `tcp`."""
    return [{"port": port, "protocol": "http" if port == HTTP_PORT else "tcp"} for port in ports]


def _check_container(workload: Workload) -> None:
    if workload.mode is not WorkloadMode.CUSTOM:
        raise UnsupportedWorkload(
            "mode",
            f"Fluence containers run your own image; mode {workload.mode.value} is not offered: "
            "use mode custom with an image and the ports it serves"
            + (", or a Fluence VM for SSH" if workload.mode is WorkloadMode.SSH else ""),
        )
    if not workload.image:
        raise UnsupportedWorkload("image", "a Fluence container needs an image to run")
    if not workload.ports:
        raise UnsupportedWorkload(
            "ports", "a Fluence container must expose at least one port: list the ports it serves"
        )
    if len(workload.ports) > MAX_PORTS:
        raise UnsupportedWorkload(
            "ports", f"Fluence exposes at most {MAX_PORTS} ports, not {len(workload.ports)}"
        )
    if len(set(workload.ports)) != len(workload.ports):
        raise UnsupportedWorkload("ports", "a port is listed more than once")
    bad = [port for port in workload.ports if not 0 < port < 65536]
    if bad:
        raise UnsupportedWorkload("ports", f"ports must be between 1 and 65535, not {bad[0]}")
    if len(workload.env) > MAX_ENV:
        raise UnsupportedWorkload(
            "env", f"Fluence takes at most {MAX_ENV} environment variables, not {len(workload.env)}"
        )
    if workload.ssh_key and RESERVED_ENV in workload.env:
        raise UnsupportedWorkload(
            "env",
            f"{RESERVED_ENV} is reserved by Fluence for the SSH key: drop it or drop ssh_key",
        )


def _ref(offer: Offer, key: str) -> str:
    return offer_ref(PROVIDER, offer, key, "deploy it")
