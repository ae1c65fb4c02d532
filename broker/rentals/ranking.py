"""Which offers a rent request may land on, best first, and what a failure rules out.

Candidates come from the catalog index sorted by effective price (the price of an hour of
useful work, interruptions included). A failed provision blocks at the scope the adapter gave
(`providers.rental.Scope`): that offer, that provider's region, or the whole provider, for the
rest of this request, as SkyPilot's failover blocks a zone, a region or a cloud.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from broker.domain_errors import PriceChanged
from pricing.index import CatalogIndex
from pricing.money import format_usd
from pricing.offer import Offer, Tier
from pricing.query import MAX_LIMIT, OfferQuery
from providers.rental import Scope


@dataclass(frozen=True)
class Constraints:
    """A rent request by constraints (already resolved: canonical GPU names, micro-dollars)."""

    gpus: tuple[str, ...] = ()
    gpu_count: int = 1
    tier: Tier | None = None
    max_price: int | None = None
    region: str | None = None
    max_interruption: float | None = None
    providers: tuple[str, ...] = ()
    # The model a `model` workload runs: listings that serve others are no candidates.
    model: str | None = None


def _query(constraints: Constraints, **changes: Any) -> OfferQuery:
    """The catalog query for the constraints: available offers, cheapest effective price first.

    Each constraint is the query's filter of the same name, so a new one reaches the search.
    """
    filters = {f.name: getattr(constraints, f.name) for f in fields(constraints)}
    query = OfferQuery(**filters, available=True, sort="effective_price", limit=MAX_LIMIT)
    return replace(query, **changes)


def check_expected_price(offer: Offer, expected: int) -> None:
    """Refuse an offer that got dearer per GPU-hour than the price the caller was shown."""
    if offer.price_per_gpu_hour > expected:
        raise PriceChanged(
            f"offer {offer.id} now costs {format_usd(offer.price_per_gpu_hour)} per GPU-hour, not "
            f"the {format_usd(expected)} you were shown; review the new price and rent again",
            offer_id=offer.id,
            expected_price=format_usd(expected),
            price=format_usd(offer.price_per_gpu_hour),
        )


def rank(index: CatalogIndex, constraints: Constraints) -> list[Offer]:
    """Available offers meeting every constraint, cheapest effective price first."""
    return index.search(_query(constraints)).offers


def offered_counts(index: CatalogIndex, constraints: Constraints) -> list[int] | None:
    """When no offer meeting the other constraints, available or not, has `gpu_count` GPUs or
    more: the counts such offers do come in (empty when there are none at all). None otherwise.

    Asking for more GPUs than any matching offer (or host) ever has is bad input, not a lack
    of capacity, so the caller refuses it as invalid, naming `gpu_count`, rather than as no
    capacity.
    """
    anywhere = _query(constraints, gpu_count=None, available=None)
    if index.search(replace(anywhere, min_gpu_count=constraints.gpu_count, limit=1)).offers:
        return None
    return sorted({offer.gpu_count for offer in index.search(anywhere).offers})


@dataclass
class Blocklist:
    """What this request's failures rule out."""

    offers: set[str] = field(default_factory=set)
    regions: set[tuple[str, str]] = field(default_factory=set)
    providers: set[str] = field(default_factory=set)

    def block(self, offer: Offer, scope: Scope) -> None:
        if scope is Scope.PROVIDER:
            self.providers.add(offer.provider)
        elif scope is Scope.REGION:
            self.regions.add((offer.provider, offer.region))
        else:
            self.offers.add(offer.id)

    def blocks(self, offer: Offer) -> bool:
        return (
            offer.provider in self.providers
            or (offer.provider, offer.region) in self.regions
            or offer.id in self.offers
        )
