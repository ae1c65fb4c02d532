"""Fluence instance JSON to `Instance` records, and the handles naming them: pure functions.

Fluence keeps containers, VMs and bare metal under three URL families that share one status
vocabulary (PENDING, ACTIVE, FAILED, TERMINATED) but nothing else, so a handle carries its
family: `container:inst_...`, `vm:inst_...` or `baremetal:inst_...`. The instance `name` is the
broker's rental id and deployment id (`providers.ownership`), which is how reconciliation
recognises its own instances and leaves other deployments' alone.

A container is reached over its forwarded ports: Fluence labels only port 80 `http`, and any
other port is forwarded as plain `tcp`, which carries HTTP just as well; so the workload's
address is the `http` forward when there is one, else the first `tcp` forward. A VM or a
bare-metal machine is reached over SSH through `ssh_connection` ("ssh root@1.2.3.4 -p 22").
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from pricing.offer import InstanceType
from providers.fluence.parse import PROVIDER
from providers.ownership import read_name
from providers.parsing import MalformedItem, field, integer, items_of, optional, status_in, text
from providers.rental import Instance, InstanceStatus, SshAccess

log = logging.getLogger("gpubroker.providers")


class Family(StrEnum):
    """Which of Fluence's instance URL families an instance lives under."""

    CONTAINER = "container"
    VM = "vm"
    BAREMETAL = "baremetal"


FAMILY_OF_TYPE: Mapping[InstanceType, Family] = {
    InstanceType.CONTAINER: Family.CONTAINER,
    InstanceType.VM: Family.VM,
    InstanceType.BAREMETAL: Family.BAREMETAL,
}
_STATUSES: Mapping[str, InstanceStatus] = {
    "PENDING": InstanceStatus.PROVISIONING,
    "ACTIVE": InstanceStatus.RUNNING,
    "FAILED": InstanceStatus.FAILED,
    "TERMINATED": InstanceStatus.TERMINATED,
}
DEFAULT_SSH_PORT = 22
DEFAULT_SSH_USER = "root"


def make_handle(family: Family, instance_id: str) -> str:
    return f"{family.value}:{instance_id}"


def split_handle(handle: str) -> tuple[Family, str] | None:
    """A handle's family and Fluence instance id; None when it is not a Fluence handle."""
    family, _, instance_id = handle.partition(":")
    if not instance_id or family not in {member.value for member in Family}:
        return None
    return Family(family), instance_id


def parse_instance(item: Mapping[str, Any], family: Family) -> Instance:
    """One instance from a deploy, get or list response."""
    instance_id = text(field(item, "id"), "id")
    raw_status, status = status_in(item, _STATUSES, "one Fluence documents", case=str.upper)
    name = optional(item, "name")
    rental_id, deployment = (None, None) if name is None else read_name(text(name, "name"))
    return Instance(
        provider=PROVIDER,
        handle=make_handle(family, instance_id),
        status=status,
        rental_id=rental_id,
        deployment=deployment,
        reason=raw_status if status is InstanceStatus.FAILED else None,
        ssh=_ssh(item, instance_id),
    )


def _ssh(item: Mapping[str, Any], instance_id: str) -> SshAccess | None:
    """SSH access where the instance has it; a garbled one is logged, not fatal to the status."""
    connection = optional(item, "ssh_connection")
    if connection is None:
        return None
    try:
        return parse_ssh_connection(connection)
    except MalformedItem as exc:
        log.warning(
            "%s: instance %s has an unreadable ssh_connection (%s)", PROVIDER, instance_id, exc
        )
        return None


def parse_instance_list(payload: Any, family: Family) -> tuple[list[Instance], list[str]]:
    """A list response (a bare array, or one wrapped in `instances` or `data`).

    A malformed instance is skipped with a note rather than hiding the others from
    reconciliation; a wrong top-level shape raises `MalformedItem`.
    """
    if isinstance(payload, Mapping):
        key = next((key for key in ("instances", "data") if key in payload), None)
        items = items_of(payload, key) if key else items_of(payload)
    else:
        items = items_of(payload)
    instances: list[Instance] = []
    skipped: list[str] = []
    for position, item in enumerate(items):
        try:
            if not isinstance(item, Mapping):
                raise MalformedItem("not an object")
            instances.append(parse_instance(item, family))
        except MalformedItem as exc:
            note = f"{family.value} instance {position}: {exc}"
            skipped.append(note)
            log.warning("%s: skipped a listed instance (%s)", PROVIDER, note)
    return instances, skipped


def container_address(item: Mapping[str, Any]) -> str | None:
    """The container workload's base URL, or None while it has no forwarded port."""
    domain = optional(item, "network", "domain")
    forwards = optional(item, "network", "forwarded_ports")
    if domain is None or not isinstance(forwards, list):
        return None
    readable = [forward for forward in forwards if isinstance(forward, Mapping)]
    for wanted in ("http", "tcp"):
        for forward in readable:
            protocol = optional(forward, "protocol")
            if isinstance(protocol, str) and protocol.lower() == wanted:
                port = integer(field(forward, "external"), "forwarded_ports[].external")
                return f"http://{text(domain, 'network.domain')}:{port}"
    return None


def parse_ssh_connection(value: Any) -> SshAccess:
    """`"ssh root@1.2.3.4 -p 22"` (user, `-p` and the leading `ssh` optional) as SSH access."""
    words = text(value, "ssh_connection").split()
    if words and words[0] == "ssh":
        words = words[1:]
    port = DEFAULT_SSH_PORT
    destination: str | None = None
    position = 0
    while position < len(words):
        word = words[position]
        if word == "-p" and position + 1 < len(words):
            port = integer(words[position + 1], "ssh_connection port")
            position += 2
            continue
        if not word.startswith("-") and destination is None:
            destination = word
        position += 1
    if destination is None:
        raise MalformedItem(f"ssh_connection names no host: {value!r}")
    user, _, host = destination.rpartition("@")
    if not 0 < port < 65536:
        raise MalformedItem(f"ssh_connection port is out of range: {value!r}")
    return SshAccess(host=host, port=port, user=user or DEFAULT_SSH_USER)
