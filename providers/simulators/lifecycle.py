"""What the simulated instances that boot, stop and start again share: the phases they never
leave, the provisioning clock a start sets going again, the GPU count a deploy may ask for, and
the place of capacity an instance holds until it ends."""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from providers.simulators.kit import SimError


class Bootable(Protocol):
    """An instance whose stored `phase` settles against a provisioning clock."""

    phase: str
    boot_started: float


def still_live(item: Bootable, ended: Collection[str], code: str = "") -> None:
    """A 409 `SimError` naming the phase when `item` is in one of the `ended` phases."""
    if item.phase in ended:
        raise SimError(409, f"Instance is {item.phase}.", code)


def boot_again(item: Bootable, stopped: str, booting: str) -> None:
    """Send a `stopped` item back to `booting`, its provisioning clock started anew."""
    if item.phase == stopped:
        item.phase = booting
        item.boot_started = time.monotonic()


def gpu_count_allowed(count: int, most: int, field: str, code: str = "") -> None:
    """A 400 `SimError` naming `field` unless `count` GPUs is between 1 and `most`."""
    if not 1 <= count <= most:
        raise SimError(400, f"{field} must be between 1 and {most}.", code)


@dataclass(kw_only=True)
class Holding:
    """An instance that holds a place of its catalog's capacity from its start until it ends;
    `ended_at` says when it ended."""

    holds_capacity: bool = True
    ended_at: datetime | None = None

    def let_go(self) -> bool:
        """Whether the instance held its place until now; from here on it holds none."""
        held, self.holds_capacity = self.holds_capacity, False
        return held
