"""The spot comparison: grouping, cheapest picks, savings, risk buckets, levels over time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from pricing.history import HistoryPoint
from pricing.offer import InterruptionSource, Offer, Tier
from pricing.policy import PricingPolicy, apply_policy
from pricing.spot import compare_spot, provider_levels, risk_bucket, sparkline
from tests.catalog_data import offer

T0 = datetime(2026, 11, 20, tzinfo=UTC)


def spot(id: str, provider: str, price: int, probability: float, **kw: object) -> Offer:
    return offer(
        id,
        provider,
        kw.pop("gpu", "RTX 4090"),  # type: ignore[arg-type]
        price,
        tier=Tier.SPOT,
        interruption_probability=probability,
        interruption_source=InterruptionSource.PROVIDER,
        **kw,
    )


def priced(*offers: Offer) -> list[Offer]:
    items = list(offers)
    apply_policy(items, PricingPolicy(interruption_loss_hours=Decimal("0.5")))
    return items


@pytest.mark.parametrize(
    ("probability", "bucket"),
    [
        (0.0, "<5%"),
        (0.0499, "<5%"),
        (0.05, "5-10%"),
        (0.0999, "5-10%"),
        (0.10, "10-15%"),
        (0.15, "15-20%"),
        (0.1999, "15-20%"),
        (0.20, ">20%"),
        (0.9, ">20%"),
    ],
)
def test_risk_buckets_follow_aws_lower_bound_inclusive(probability: float, bucket: str) -> None:
    assert risk_bucket(probability) == bucket


def test_one_row_per_provider_and_region_with_its_cheapest_of_each_tier() -> None:
    offers = priced(
        spot("a:spot:cheap", "alpha", 300_000, 0.02),
        spot("a:spot:dear", "alpha", 320_000, 0.01),
        offer("a:od:dear", "alpha", "RTX 4090", 450_000),
        offer("a:od:cheap", "alpha", "RTX 4090", 400_000),
        offer("a:od:eu", "alpha", "RTX 4090", 380_000, region="EU"),
        spot("b:spot", "beta", 280_000, 0.3),
    )
    rows = compare_spot(offers, {"RTX 4090"}).rows
    summary = [
        (
            r.provider,
            r.region,
            r.spot.id if r.spot else None,
            r.on_demand.id if r.on_demand else None,
        )
        for r in rows
    ]
    assert summary == [
        ("alpha", "US", "a:spot:cheap", "a:od:cheap"),
        ("beta", "US", "b:spot", None),
        ("alpha", "EU", None, "a:od:eu"),
    ]


def test_savings_effective_price_and_risk_of_a_row() -> None:
    (row,) = compare_spot(
        priced(spot("s", "alpha", 287_000, 0.12), offer("o", "alpha", "RTX 4090", 350_000)),
        {"RTX 4090"},
    ).rows
    assert row.savings_pct == 18.0
    assert row.interruption_probability == 0.12
    assert row.risk_bucket == "10-15%"
    assert row.effective_price == 305_319  # 287000 / (1 - 0.12 * 0.5)


def test_spot_dearer_than_on_demand_shows_negative_savings() -> None:
    (row,) = compare_spot(
        priced(spot("s", "alpha", 420_000, 0.01), offer("o", "alpha", "RTX 4090", 400_000)),
        {"RTX 4090"},
    ).rows
    assert row.savings_pct == -5.0


def test_cheapest_is_by_effective_price_not_by_sticker_price() -> None:
    risky = spot("risky", "alpha", 250_000, 0.9)  # 250000 / (1 - 0.45) = 454545
    steady = spot("steady", "beta", 300_000, 0.02)  # 300000 / 0.99 = 303030
    comparison = compare_spot(priced(risky, steady), {"RTX 4090"})
    assert comparison.cheapest is not None
    assert comparison.cheapest.spot is not None
    assert comparison.cheapest.spot.id == "steady"
    assert [r.provider for r in comparison.rows] == ["beta", "alpha"]


def test_an_on_demand_only_row_costs_its_price_and_can_be_the_cheapest() -> None:
    comparison = compare_spot(
        priced(offer("o", "alpha", "RTX 4090", 280_000), spot("s", "beta", 300_000, 0.02)),
        {"RTX 4090"},
    )
    row = comparison.rows[0]
    assert compare_spot([], {"RTX 4090"}).cheapest is None
    assert (row.provider, row.spot, row.savings_pct, row.risk_bucket) == ("alpha", None, None, None)
    assert row.effective_price == 280_000
    assert row.best_tier is Tier.ON_DEMAND
    assert comparison.cheapest is row


def test_on_demand_wins_a_row_where_spot_interruptions_cost_more() -> None:
    (row,) = compare_spot(
        priced(offer("o", "alpha", "RTX 4090", 300_000), spot("s", "alpha", 290_000, 0.9)),
        {"RTX 4090"},
    ).rows
    assert (row.best_tier, row.effective_price) == (Tier.ON_DEMAND, 300_000)


def test_unavailable_offers_other_gpus_and_slices_are_left_out() -> None:
    offers = priced(
        spot("gone", "alpha", 100_000, 0.01, available=False),
        spot("slice", "alpha", 50_000, 0.01, vram_gb=10, slice="mig-1g.10gb"),
        spot("a100", "alpha", 90_000, 0.01, gpu="A100 80GB", vram_gb=80),
        spot("card", "alpha", 300_000, 0.01),
    )
    rows = compare_spot(offers, {"RTX 4090"}).rows
    assert [r.spot.id for r in rows if r.spot] == ["card"]
    with_slices = compare_spot(offers, {"RTX 4090"}, slices=True).rows
    assert [(r.spot.id, r.slice) for r in with_slices if r.spot] == [("slice", "mig-1g.10gb")]


def test_models_of_one_family_are_never_compared_with_each_other() -> None:
    offers = priced(
        spot("sxm", "alpha", 2_000_000, 0.05, gpu="H100 SXM", vram_gb=80),
        offer("pcie", "alpha", "H100 PCIe", 1_900_000, vram_gb=80),
    )
    rows = compare_spot(offers, {"H100 SXM", "H100 PCIe"}).rows
    assert [(r.gpu, r.spot is not None, r.on_demand is not None) for r in rows] == [
        ("H100 PCIe", False, True),
        ("H100 SXM", True, False),
    ]


def test_region_is_a_substring_a_country_or_a_continent() -> None:
    offers = priced(
        spot("ca", "alpha", 300_000, 0.01, region="Quebec, CA"),
        spot("us", "alpha", 280_000, 0.01, region="US"),
        spot("de", "alpha", 290_000, 0.01, region="Bavaria, DE"),
    )
    assert [r.region for r in compare_spot(offers, {"RTX 4090"}, region="quebec").rows] == [
        "Quebec, CA"
    ]
    assert [r.region for r in compare_spot(offers, {"RTX 4090"}, region="canada").rows] == [
        "Quebec, CA"
    ]
    assert [r.region for r in compare_spot(offers, {"RTX 4090"}, region="na").rows] == [
        "US",
        "Quebec, CA",
    ]
    assert [r.region for r in compare_spot(offers, {"RTX 4090"}, region="Europe").rows] == [
        "Bavaria, DE"
    ]


def test_updated_at_is_the_fresher_offer_of_the_row() -> None:
    later = T0 + timedelta(minutes=5)
    (row,) = compare_spot(
        priced(
            spot("s", "alpha", 300_000, 0.01, updated_at=T0),
            offer("o", "alpha", "RTX 4090", 400_000, updated_at=later),
        ),
        {"RTX 4090"},
    ).rows
    assert row.updated_at == later


def point(provider: str, offer_id: str, price: int, hours: float) -> HistoryPoint:
    return HistoryPoint(
        offer_id, provider, "RTX 4090", "US", Tier.SPOT, price, T0 + timedelta(hours=hours)
    )


def test_provider_level_is_its_cheapest_offer_holding_its_last_price() -> None:
    points = [
        point("alpha", "a1", 300, 0),
        point("alpha", "a2", 280, 2),
        point("alpha", "a2", 350, 4),
        point("beta", "b1", 500, 3),
    ]
    levels = provider_levels(reversed(points), T0, T0 + timedelta(hours=5), 6)
    assert levels == {
        "alpha": [300, 300, 280, 280, 300, 300],
        "beta": [None, None, None, 500, 500, 500],
    }


def test_a_point_before_the_range_sets_the_starting_level() -> None:
    levels = provider_levels([point("alpha", "a", 42, -30)], T0, T0 + timedelta(hours=1), 2)
    assert levels == {"alpha": [42, 42]}


def test_levels_need_a_real_range() -> None:
    with pytest.raises(ValueError):
        provider_levels([], T0, T0, 10)
    with pytest.raises(ValueError):
        provider_levels([], T0, T0 + timedelta(hours=1), 1)


def test_sparkline_scales_from_low_to_high_and_keeps_gaps() -> None:
    assert sparkline([None, 100, 150, 200]) == " ▁▅█"
    assert sparkline([7, 7, 7]) == "▁▁▁"
    assert sparkline([None, None]) == "  "
    assert sparkline([]) == ""
