"""The catalog's answers: offers, GPU rows, spot comparisons and price history."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from broker.schemas import Body, Money, Page


class Offer(Body):
    id: str
    provider: str
    gpu: str
    gpu_count: int
    vram_gb: float
    price_per_gpu_hour: Money
    price_per_hour: Money
    tier: Literal["on_demand", "spot"]
    interruption_probability: float | None = None
    interruption_source: str | None = None
    effective_price_per_gpu_hour: Money | None = None
    region: str | None = None
    instance_type: str | None = None
    available: bool = True
    available_count: int | None = None
    updated_at: datetime | None = None
    stale: bool = False
    slice: str | None = None
    gpu_fraction: float = 1.0
    country: str | None = None
    continent: str | None = None
    models: list[str] | None = None
    place_known: bool = True
    gpu_known: bool = True


class ProviderStatus(Body):
    status: str
    offers: int = 0
    updated_at: datetime | None = None
    error: str | None = None


class OfferPage(Page[Offer]):
    """Matching offers, with how each provider's catalog stands."""

    providers: dict[str, ProviderStatus] = Field(default_factory=dict)


class GpuRow(Body):
    gpu: str
    vram_gb: float | None = None
    offers: int
    providers: list[str]
    min_on_demand_price: Money | None = None
    min_spot_price: Money | None = None
    available_count: int | None = None


class GpuPage(Page[GpuRow]):
    """One row per canonical GPU."""


class SpotRow(Body):
    provider: str
    region: str | None = None
    gpu: str | None = None
    spot_price: Money | None = None
    on_demand_price: Money | None = None
    savings_pct: float | None = None
    interruption_probability: float | None = None
    interruption_source: str | None = None
    risk_bucket: str | None = None
    effective_price: Money | None = None
    updated_at: datetime | None = None
    spot_offer_id: str | None = None
    on_demand_offer_id: str | None = None
    stale: bool = False
    best_tier: Literal["on_demand", "spot"] = "spot"
    slice: str | None = None


class SpotComparison(Body):
    gpu: str
    gpus: list[str] = Field(default_factory=list)
    region: str | None = None
    rows: list[SpotRow]
    cheapest: SpotRow | None = None
    on_demand_wins: bool = False


class PricePoint(Body):
    provider: str
    gpu: str
    region: str | None = None
    tier: Literal["on_demand", "spot"]
    price: Money
    at: datetime
    offer_id: str | None = None


class PricePage(Page[PricePoint]):
    """Price change points."""
