"""The per-GPU overview: whole-card prices, slices counted but never advertised as a card."""

from __future__ import annotations

from datetime import UTC, datetime

from pricing.offer import InstanceType, Offer, Tier
from pricing.summary import summarize_gpus


def offer(gpu: str, vram: int, price: int, tier: Tier = Tier.ON_DEMAND, **kw: object) -> Offer:
    made = Offer(
        id=f"{gpu}:{vram}:{price}:{tier}",
        provider=str(kw.get("provider", "p")),
        gpu=gpu,
        gpu_count=1,
        vram_gb=vram,
        base_price_per_gpu_hour=price,
        tier=tier,
        region="US",
        instance_type=InstanceType.CONTAINER,
        available=bool(kw.get("available", True)),
        available_count=kw.get("available_count"),  # type: ignore[arg-type]
        updated_at=datetime(2026, 11, 20, tzinfo=UTC),
    )
    made.price_per_gpu_hour = price
    return made


def test_slices_do_not_set_the_whole_card_price() -> None:
    rows = summarize_gpus(
        [
            offer("A100 80GB", 80, 1_400_000),
            offer("A100 80GB", 10, 200_000, provider="q"),
            offer("A100 80GB", 80, 700_000, Tier.SPOT, available_count=2),
            offer("A100 80GB", 80, 100_000, available=False),
        ]
    )
    [row] = rows
    assert (row.gpu, row.vram_gb, row.offers) == ("A100 80GB", 80, 3)
    assert (row.min_on_demand_price, row.min_spot_price) == (1_400_000, 700_000)
    assert row.providers == {"p", "q"}
    assert row.available_count == 2


def test_rows_are_cheapest_on_demand_first() -> None:
    rows = summarize_gpus(
        [
            offer("H100 SXM", 80, 2_000_000),
            offer("RTX 4090", 24, 400_000),
            offer("T4", 16, 100_000, Tier.SPOT),
        ]
    )
    assert [r.gpu for r in rows] == ["RTX 4090", "H100 SXM", "T4"]
