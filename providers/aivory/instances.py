"""AIVory rental JSON to `Instance` records: pure functions.

A rental is named by AIVory's own id (`ar_...`), which is the handle as is. AIVory takes no name
or label on a rent, so a rental never carries the broker's id back. `status` is `provisioning`,
`running` or `terminated`; a `terminated` rental whose `reason` is `interrupted` lost its spot
capacity, which the broker calls interrupted. A running rental carries `endpoint`, the base URL
of its OpenAI-compatible API.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from providers.aivory.parse import PROVIDER
from providers.parsing import field, lenient_timestamp, optional, status_in, text
from providers.rental import Instance, InstanceStatus

INTERRUPTED = "interrupted"
_STATUSES: Mapping[str, InstanceStatus] = {
    "provisioning": InstanceStatus.PROVISIONING,
    "running": InstanceStatus.RUNNING,
    "terminated": InstanceStatus.TERMINATED,
}


def parse_rental(item: Mapping[str, Any]) -> Instance:
    """One rental from a rent, get or delete response."""
    rental_id = text(field(item, "rental_id"), "rental_id")
    _, status = status_in(item, _STATUSES, "one AIVory documents")
    raw_reason = optional(item, "reason")
    reason = None if raw_reason is None else text(raw_reason, "reason")
    if status is InstanceStatus.TERMINATED and reason == INTERRUPTED:
        status = InstanceStatus.INTERRUPTED
    return Instance(
        provider=PROVIDER,
        handle=rental_id,
        status=status,
        reason=reason,
        ended_at=lenient_timestamp(optional(item, "ended_at")),
    )


def rental_endpoint(item: Mapping[str, Any]) -> str | None:
    """The rental's OpenAI-compatible base URL, once it has one."""
    value = optional(item, "endpoint")
    return None if value is None else text(value, "endpoint").rstrip("/")
