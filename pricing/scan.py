"""The plain meaning of a query, as a linear scan over the catalog.

This is the specification the index must agree with: the property tests compare the two on
random catalogs and queries, and the search benchmark uses it as its baseline.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pricing.offer import Offer
from pricing.places import region_needle
from pricing.query import OfferQuery

_SORT_KEYS: dict[str, Callable[[Offer], tuple[object, ...]]] = {
    "price": lambda o: (o.price_per_gpu_hour, o.id),
    "-price": lambda o: (-o.price_per_gpu_hour, o.id),
    "effective_price": lambda o: (o.effective_price_per_gpu_hour, o.id),
    "vram": lambda o: (o.vram_gb, o.price_per_gpu_hour, o.id),
    "-vram": lambda o: (-o.vram_gb, o.price_per_gpu_hour, o.id),
    "interruption": lambda o: (
        round((o.interruption_probability or 0.0) * 1e6),
        o.effective_price_per_gpu_hour,
        o.id,
    ),
    "price_per_vram": lambda o: (
        o.price_per_gpu_hour * 1000 // o.vram_gb if o.vram_gb > 0 else 2**62,
        o.id,
    ),
}


def sort_key(sort: str) -> Callable[[Offer], tuple[object, ...]]:
    return _SORT_KEYS[sort]


def matches(offer: Offer, q: OfferQuery, gpu_key: Callable[[str], str] = str.lower) -> bool:
    """Whether one offer satisfies every filter of the query."""
    return (
        (not q.gpus or gpu_key(offer.gpu) in {gpu_key(g) for g in q.gpus})
        and (q.min_vram is None or offer.vram_gb >= q.min_vram)
        and (q.max_price is None or offer.price_per_gpu_hour <= q.max_price)
        and (q.gpu_count is None or offer.gpu_count == q.gpu_count)
        and (q.min_gpu_count is None or offer.gpu_count >= q.min_gpu_count)
        and (not q.providers or offer.provider in q.providers)
        and (
            not q.region
            or region_needle(q.region).matches(offer.region, offer.country, offer.continent)
        )
        and (q.slices is None or (offer.slice is not None) is q.slices)
        and (not q.model or offer.serves(q.model))
        and (q.tier is None or offer.tier is q.tier)
        and (
            q.max_interruption is None
            or (offer.interruption_probability or 0.0) <= q.max_interruption
        )
        and (q.instance_type is None or offer.instance_type is q.instance_type)
        and (q.available is None or offer.available is q.available)
    )


def linear_search(offers: Sequence[Offer], q: OfferQuery) -> list[Offer]:
    """Every matching offer in sort order (no paging)."""
    return sorted((o for o in offers if matches(o, q)), key=sort_key(q.sort))
