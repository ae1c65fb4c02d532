"""A small, hand-checked catalog shared by the API and CLI tests, and a broker that lists it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI

from broker.app import create_app
from broker.settings import CoreSettings
from pricing.offer import InstanceType, InterruptionSource, Offer, Tier

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def offer(id: str, provider: str, gpu: str, price: int, **kw: object) -> Offer:
    values: dict[str, object] = {
        "gpu_count": 1,
        "vram_gb": 24,
        "tier": Tier.ON_DEMAND,
        "region": "US",
        "instance_type": InstanceType.CONTAINER,
        "available": True,
        "available_count": None,
        "updated_at": NOW,
    }
    values.update(kw)
    return Offer(id=id, provider=provider, gpu=gpu, base_price_per_gpu_hour=price, **values)  # type: ignore[arg-type]


def spot_offer(
    id: str, provider: str, gpu: str, price: int, interruption: float, **kw: object
) -> Offer:
    """A spot offer whose provider states `interruption` as its interruption probability."""
    return offer(
        id,
        provider,
        gpu,
        price,
        tier=Tier.SPOT,
        interruption_probability=interruption,
        interruption_source=InterruptionSource.PROVIDER,
        **kw,
    )


CATALOG = {
    "alpha": [
        offer("alpha:4090:us", "alpha", "RTX 4090", 400_000, available_count=3),
        spot_offer("alpha:4090:eu:spot", "alpha", "RTX 4090", 287_000, 0.02, region="Quebec, CA"),
        offer(
            "alpha:h100:8x",
            "alpha",
            "H100 SXM",
            2_500_000,
            gpu_count=8,
            vram_gb=80,
            instance_type=InstanceType.BAREMETAL,
        ),
        offer("alpha:gone", "alpha", "RTX 4090", 100_000, available=False),
    ],
    "beta": [
        offer("beta:4090", "beta", "RTX 4090", 350_000, region="EU"),
        offer("beta:a100", "beta", "A100 80GB", 1_400_000, vram_gb=80, tier=Tier.SPOT),
    ],
}


def catalog_broker(settings: CoreSettings, providers: dict[str, Any]) -> FastAPI:
    """A broker without background jobs whose static `providers` list `CATALOG`, read once."""
    for name, offers in CATALOG.items():
        providers[name].offers = offers
    app = create_app(settings, adapters=providers, start_jobs=False)
    app.state.refresher.refresh_all()
    return app
