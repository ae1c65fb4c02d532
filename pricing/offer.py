"""The normalized offer: one rentable configuration at one provider, in one region and tier.

Parsers fill what the provider says (`base_price_per_gpu_hour`, and an interruption probability
when the provider gives one). The catalog's pricing policy then derives what the broker shows:
the price with the operator's margin, the interruption estimate and the effective price.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import lru_cache


class Tier(StrEnum):
    ON_DEMAND = "on_demand"
    SPOT = "spot"


class InstanceType(StrEnum):
    CONTAINER = "container"
    VM = "vm"
    BAREMETAL = "baremetal"


class InterruptionSource(StrEnum):
    NONE = "none"
    PROVIDER = "provider"
    OBSERVED = "observed"
    ESTIMATED = "estimated"


_SLUG_JUNK = re.compile(r"[^a-z0-9]+")


@lru_cache(maxsize=65536)
def slug(text: str) -> str:
    """Lower-case, dash-separated form of a name: "Quebec, CA" -> "quebec-ca"."""
    return _SLUG_JUNK.sub("-", text.lower()).strip("-") or "none"


def offer_id(provider: str, *parts: str) -> str:
    """A stable offer id from the parts that identify the offer at its provider."""
    return ":".join([provider, *(slug(part) for part in parts)])


@dataclass(slots=True)
class Offer:
    """One rentable configuration. Amounts are integer micro-dollars."""

    id: str
    provider: str
    gpu: str
    gpu_count: int
    vram_gb: int
    base_price_per_gpu_hour: int
    tier: Tier
    region: str
    instance_type: InstanceType
    available: bool
    available_count: int | None
    updated_at: datetime
    interruption_probability: float | None = None
    interruption_source: InterruptionSource = InterruptionSource.NONE
    gpu_known: bool = True
    # What the adapter needs to provision this offer (slug, listing id, plan id, location ...).
    ref: dict[str, str] = field(default_factory=dict)
    # Derived by the pricing policy (pricing.policy.apply_policy).
    price_per_gpu_hour: int = 0
    effective_price_per_gpu_hour: int = 0

    @property
    def price_per_hour(self) -> int:
        return self.price_per_gpu_hour * self.gpu_count
