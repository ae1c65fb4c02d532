"""The per-GPU overview: whole cards only; a slice is never counted or advertised as a card."""

from __future__ import annotations

from datetime import UTC, datetime

from pricing.offer import InstanceType, Offer, Tier
from pricing.summary import summarize_gpus


def offer(
    gpu: str,
    vram: int,
    price: int,
    tier: Tier = Tier.ON_DEMAND,
    *,
    provider: str = "p",
    available: bool = True,
    available_count: int | None = None,
    slice: str | None = None,
) -> Offer:
    made = Offer(
        id=f"{gpu}:{vram}:{price}:{tier}",
        provider=provider,
        gpu=gpu,
        gpu_count=1,
        vram_gb=vram,
        base_price_per_gpu_hour=price,
        tier=tier,
        region="US",
        instance_type=InstanceType.CONTAINER,
        available=available,
        available_count=available_count,
        updated_at=datetime(2026, 11, 20, tzinfo=UTC),
        slice=slice,
    )
    made.price_per_gpu_hour = price
    return made


def test_slices_are_left_out_of_the_whole_card_row() -> None:
    rows = summarize_gpus(
        [
            offer("A100 80GB", 80, 1_400_000),
            offer("A100 80GB", 10, 200_000, provider="q", slice="mig-1g.10gb"),
            offer("A100 80GB", 80, 90_000, Tier.SPOT, provider="q", slice="timesliced"),
            offer("A100 80GB", 80, 700_000, Tier.SPOT, available_count=2),
            offer("A100 80GB", 80, 100_000, available=False),
        ]
    )
    [row] = rows
    assert (row.gpu, row.vram_gb, row.offers) == ("A100 80GB", 80, 2)
    assert (row.min_on_demand_price, row.min_spot_price) == (1_400_000, 700_000)
    assert row.providers == {"p"}
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
