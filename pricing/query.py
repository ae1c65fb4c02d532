"""A catalog search, already validated: what `GET /v1/offers` and the CLI ask the index."""

from __future__ import annotations

from dataclasses import dataclass

from pricing.offer import InstanceType, Tier

SORTS = ("price", "-price", "effective_price", "vram", "-vram", "interruption", "price_per_vram")
MAX_LIMIT = 500


@dataclass(frozen=True)
class OfferQuery:
    """Filters stack (AND); a tuple filter matches any of its values (OR).

    `gpus` holds canonical names (or normalized keys of names the table does not know);
    `available` is True (only available), False (only unavailable) or None (both); `slices`
    likewise: False (whole cards only), True (slices of cards only) or None (both). `region` is
    read by pricing.places.region_needle; `model` keeps offers that serve it or can load any.
    """

    gpus: tuple[str, ...] = ()
    min_vram: int | None = None
    max_price: int | None = None
    gpu_count: int | None = None
    min_gpu_count: int | None = None
    providers: tuple[str, ...] = ()
    region: str | None = None
    tier: Tier | None = None
    max_interruption: float | None = None
    instance_type: InstanceType | None = None
    available: bool | None = True
    slices: bool | None = False
    model: str | None = None
    sort: str = "price"
    limit: int = 50
    cursor: str | None = None
