"""The normalized offer: one rentable configuration at one provider, in one region and tier.

Parsers fill what the provider says (`base_price_per_gpu_hour`, and an interruption probability
when the provider gives one; the slice of a card it sells, the models a listing serves). The
offer reads its own `region` as a place (country, continent) through pricing.places. The
catalog's pricing policy then derives what the broker shows: the price with the operator's
margin, the interruption estimate and the effective price.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import lru_cache

from pricing.places import resolve_place


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


# The members read in per-offer loops, read off their classes once: reading an enum member off
# its class costs a descriptor call, and a refresh reads them a million times.
SPOT, ON_DEMAND = Tier.SPOT, Tier.ON_DEMAND
NO_SOURCE, PROVIDER_SOURCE = InterruptionSource.NONE, InterruptionSource.PROVIDER
OBSERVED_SOURCE, ESTIMATED_SOURCE = InterruptionSource.OBSERVED, InterruptionSource.ESTIMATED

_SLUG_JUNK = re.compile(r"[^a-z0-9]+")
_SLUG_FORM = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


@lru_cache(maxsize=65536)
def slug(text: str) -> str:
    """Lower-case, dash-separated form of a name: "Quebec, CA" -> "quebec-ca".

    Runs for every part of every offer id, so it is remembered; text already in that form, as
    most provider ids are ("host-42"), is kept as it is without rewriting it.
    """
    if _SLUG_FORM.fullmatch(text):
        return text
    return _SLUG_JUNK.sub("-", text.lower()).strip("-") or "none"


@lru_cache(maxsize=4096)
def model_key(name: str) -> str:
    """One model, however tagged: `llama3`, `Llama3:latest` and ` llama3 ` are the same."""
    key = name.strip().casefold()
    return key.removesuffix(":latest")


def offer_id(provider: str, *parts: str) -> str:
    """A stable offer id from the parts that identify the offer at its provider."""
    return ":".join([provider, *map(slug, parts)])


@dataclass(slots=True)
class Offer:
    """One rentable configuration. Amounts are integer micro-dollars.

    `providers.parsing.build_offer` passes the fields up to `models` by position: a new field
    goes after them.
    """

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
    # What the provider sells of one card: None for whole cards, else e.g. "mig-1g.10gb",
    # "timesliced"; `gpu_fraction` is the share of the card (1.0 for a whole one).
    slice: str | None = None
    gpu_fraction: float = 1.0
    # The models the listing serves where the provider says; None: no list (any it can load).
    models: tuple[str, ...] | None = None
    # Derived by the pricing policy (pricing.policy.apply_policy).
    price_per_gpu_hour: int = 0
    effective_price_per_gpu_hour: int = 0
    # Derived from `region` (pricing.places): ISO 3166-1 alpha-2, continent code, and whether
    # the spelling is one the place table knows.
    country: str | None = field(init=False, default=None)
    continent: str | None = field(init=False, default=None)
    place_known: bool = field(init=False, default=True)

    def __post_init__(self) -> None:
        place = resolve_place(self.region)
        self.country = place.country
        self.continent = place.continent
        self.place_known = place.known

    def serves(self, model: str) -> bool:
        """Whether the listing serves `model`, or can load any (it publishes no list)."""
        if self.models is None:
            return True
        wanted = model_key(model)
        return any(model_key(name) == wanted for name in self.models)

    @property
    def price_per_hour(self) -> int:
        return self.price_per_gpu_hour * self.gpu_count
