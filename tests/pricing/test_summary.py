"""The per-GPU overview: whole cards only; a slice is never counted or advertised as a card."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

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


def reference(offers: list[Offer]) -> list[tuple[object, ...]]:
    """The overview worked out offer by offer, the plain way."""
    whole = [o for o in offers if o.available and o.slice is None]
    rows = []
    for gpu in {o.gpu for o in whole}:
        mine = [o for o in whole if o.gpu == gpu]
        on_demand = [o.price_per_gpu_hour for o in mine if o.tier is Tier.ON_DEMAND]
        spot = [o.price_per_gpu_hour for o in mine if o.tier is Tier.SPOT]
        counts = [o.available_count for o in mine if o.available_count is not None]
        rows.append(
            (
                gpu,
                max(o.vram_gb for o in mine),
                len(mine),
                {o.provider for o in mine},
                min(on_demand, default=None),
                min(spot, default=None),
                sum(counts) if counts else None,
            )
        )
    return sorted(rows, key=lambda r: (r[4] is None, r[4] or 0, r[0]))


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([("A100 80GB", 80), ("A100 80GB", 40), ("T4", 16), ("L4", 24)]),
            st.integers(1, 3_000_000),
            st.sampled_from(list(Tier)),
            st.sampled_from(["p", "q", "r"]),
            st.booleans(),
            st.none() | st.integers(0, 9),
            st.none() | st.just("mig-1g.10gb"),
        ),
        max_size=60,
    )
)
def test_the_overview_agrees_with_the_plain_sum(rows: list[tuple[Any, ...]]) -> None:
    offers = [
        offer(gpu, vram, price, tier, provider=p, available=up, available_count=n, slice=part)
        for (gpu, vram), price, tier, p, up, n, part in rows
    ]
    summary = [
        (
            r.gpu,
            r.vram_gb,
            r.offers,
            r.providers,
            r.min_on_demand_price,
            r.min_spot_price,
            r.available_count,
        )
        for r in summarize_gpus(offers)
    ]
    assert summary == reference(offers)
