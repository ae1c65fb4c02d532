"""IC GPU instance JSON to `Instance` records: pure functions.

An instance is named by IC GPU's own id (`inst-...`), which is the handle as is, and carries the
broker's rental id and deployment id in its `name` (`providers.ownership`). `status` is
`pending`, `running`, `stopped`, `preempted` (a batch instance that yielded its GPU: the
broker's interrupted), `terminated` or `error` (failed).
A running instance is reached over SSH as `gpuuser` at `ssh_host` and `ssh_port`, as IC GPU's
examples show. The list endpoint pages with an opaque `nextToken`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from providers.icgpu.parse import PROVIDER
from providers.ownership import read_name
from providers.parsing import (
    MalformedItem,
    integer,
    items_of,
    lenient_timestamp,
    optional,
    status_in,
    text,
)
from providers.parsing import field as field_at
from providers.rental import Instance, InstanceStatus, SshAccess

log = logging.getLogger("gpubroker.providers")

SSH_USER = "gpuuser"
_STATUSES: Mapping[str, InstanceStatus] = {
    "pending": InstanceStatus.PROVISIONING,
    "running": InstanceStatus.RUNNING,
    "stopped": InstanceStatus.STOPPED,
    "preempted": InstanceStatus.INTERRUPTED,
    "terminated": InstanceStatus.TERMINATED,
    "error": InstanceStatus.FAILED,
}
# Statuses whose name is the provider's own word for why the instance is gone.
_REASONED = (InstanceStatus.INTERRUPTED, InstanceStatus.FAILED)


@dataclass
class InstancePage:
    """One page of the instance listing: what parsed, a note per skipped item, the next token."""

    instances: list[Instance] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    next_token: str | None = None


def parse_instance(item: Mapping[str, Any]) -> Instance:
    """One instance from a create, get, action, delete or list response."""
    instance_id = text(field_at(item, "id"), "id")
    raw_status, status = status_in(item, _STATUSES, "one IC GPU documents")
    name = optional(item, "name")
    rental_id, deployment = (None, None) if name is None else read_name(text(name, "name"))
    return Instance(
        provider=PROVIDER,
        handle=instance_id,
        status=status,
        rental_id=rental_id,
        deployment=deployment,
        reason=raw_status if status in _REASONED else None,
        ssh=_ssh(item, instance_id),
        ended_at=lenient_timestamp(optional(item, "ended_at")),
    )


def parse_page(payload: Any) -> InstancePage:
    """`GET /api/v1/instances`; a wrong top-level shape raises, a bad instance is skipped."""
    page = InstancePage()
    for position, item in enumerate(items_of(payload, "instances")):
        try:
            if not isinstance(item, Mapping):
                raise MalformedItem("not an object")
            page.instances.append(parse_instance(item))
        except MalformedItem as exc:
            note = f"instance {position}: {exc}"
            page.skipped.append(note)
            log.warning("%s: skipped a listed instance (%s)", PROVIDER, note)
    token = optional(payload, "nextToken")
    page.next_token = None if token is None else text(token, "nextToken")
    return page


def _ssh(item: Mapping[str, Any], instance_id: str) -> SshAccess | None:
    """SSH access where the instance has it; a garbled one is logged, not fatal to the status."""
    host = optional(item, "ssh_host")
    port = optional(item, "ssh_port")
    if host is None or port is None:
        return None
    try:
        number = integer(port, "ssh_port")
        if not 0 < number < 65536:
            raise MalformedItem(f"ssh_port is out of range: {port!r}")
        return SshAccess(host=text(host, "ssh_host"), port=number, user=SSH_USER)
    except MalformedItem as exc:
        log.warning("%s: instance %s has unreadable SSH details (%s)", PROVIDER, instance_id, exc)
        return None
