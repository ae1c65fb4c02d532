"""The index answers exactly what the plain linear scan answers, for any catalog and query."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pricing.index import CatalogIndex, InvalidCursor, _sorted_by
from pricing.offer import InstanceType, InterruptionSource, Offer, Tier
from pricing.query import SORTS, OfferQuery
from pricing.scan import linear_search, matches, sort_key

GPUS = [("RTX 4090", 24), ("H100 SXM", 80), ("A100 80GB", 80), ("L4", 24), ("T4", 16), ("Odd X", 0)]
PROVIDERS = ["empiriolabs", "computegpu", "fluence", "aivory", "icgpu"]
REGIONS = ["US", "EU", "Quebec, CA", "Paris, FR", "eu-west", "Global"]
NOW = datetime(2026, 11, 20, tzinfo=UTC)


def make_catalog(seed: int, size: int) -> list[Offer]:
    rng = random.Random(seed)
    offers = []
    for i in range(size):
        gpu, vram = rng.choice(GPUS)
        tier = rng.choice(list(Tier))
        price = rng.choice(
            [100_000, 250_000, 290_000, 500_000, 1_990_000, rng.randint(1, 4_000_000)]
        )
        probability = rng.choice([0.0, 0.02, 0.05, 0.1, 0.3]) if tier is Tier.SPOT else 0.0
        offer = Offer(
            id=f"{rng.choice(PROVIDERS)}:{i:05d}",
            provider=rng.choice(PROVIDERS),
            gpu=gpu,
            gpu_count=rng.choice([1, 1, 2, 4, 8]),
            vram_gb=vram,
            base_price_per_gpu_hour=price,
            tier=tier,
            region=rng.choice(REGIONS),
            instance_type=rng.choice(list(InstanceType)),
            available=rng.random() < 0.8,
            available_count=None,
            updated_at=NOW,
            interruption_probability=probability,
            interruption_source=InterruptionSource.ESTIMATED,
        )
        offer.price_per_gpu_hour = price
        offer.effective_price_per_gpu_hour = int(price / (1 - probability * 0.5))
        offers.append(offer)
    return offers


queries = st.builds(
    OfferQuery,
    gpus=st.lists(st.sampled_from([g for g, _ in GPUS] + ["rtx 4090", "nope"]), max_size=2).map(
        tuple
    ),
    min_vram=st.none() | st.sampled_from([0, 16, 20, 24, 48, 80, 81]),
    max_price=st.none() | st.integers(0, 4_000_000),
    gpu_count=st.none() | st.sampled_from([1, 2, 3, 8]),
    min_gpu_count=st.none() | st.sampled_from([1, 2, 3, 8, 9]),
    providers=st.lists(st.sampled_from(PROVIDERS), max_size=2).map(tuple),
    region=st.none() | st.sampled_from(["us", "EU", "ca", "west", "zz"]),
    tier=st.none() | st.sampled_from(list(Tier)),
    max_interruption=st.none() | st.sampled_from([0.0, 0.02, 0.04, 0.1, 1.0]),
    instance_type=st.none() | st.sampled_from(list(InstanceType)),
    available=st.sampled_from([True, False, None]),
    sort=st.sampled_from(SORTS),
    limit=st.integers(1, 40),
)


def page_through(index: CatalogIndex, query: OfferQuery) -> list[Offer]:
    seen: list[Offer] = []
    cursor = None
    for _ in range(10_000):
        page = index.search(OfferQuery(**{**query.__dict__, "cursor": cursor}))
        assert len(page.offers) <= query.limit
        seen.extend(page.offers)
        if page.next_cursor is None:
            return seen
        assert len(page.offers) == query.limit
        cursor = page.next_cursor
    raise AssertionError("paging did not end")


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 10_000), size=st.integers(0, 250), query=queries)
def test_index_agrees_with_the_linear_scan(seed: int, size: int, query: OfferQuery) -> None:
    offers = make_catalog(seed, size)
    index = CatalogIndex(offers)
    paged = page_through(index, query)

    # Every returned offer satisfies every filter.
    assert all(matches(o, query) for o in paged)
    # The order holds for the sort key.
    keys = [sort_key(query.sort)(o) for o in paged]
    assert keys == sorted(keys)
    # Paging returns each matching offer exactly once.
    assert [o.id for o in paged] == [o.id for o in linear_search(offers, query)]


def test_cursor_survives_a_rebuilt_index_without_repeats() -> None:
    offers = make_catalog(1, 200)
    query = OfferQuery(limit=30, available=None)
    first = CatalogIndex(offers).search(query)
    rebuilt = CatalogIndex(list(reversed(offers)))
    second = rebuilt.search(OfferQuery(limit=500, available=None, cursor=first.next_cursor))
    ids = [o.id for o in first.offers] + [o.id for o in second.offers]
    assert sorted(ids) == sorted(o.id for o in offers)
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("cursor", ["garbage!", "cHJpY2V8eHx5", ""])
def test_foreign_cursors_are_refused(cursor: str) -> None:
    index = CatalogIndex(make_catalog(2, 20))
    if cursor == "":
        assert index.search(OfferQuery(cursor=cursor)).offers
        return
    with pytest.raises(InvalidCursor):
        index.search(OfferQuery(cursor=cursor))


def test_cursor_from_another_sort_is_refused() -> None:
    index = CatalogIndex(make_catalog(3, 50))
    page = index.search(OfferQuery(limit=5, available=None))
    with pytest.raises(InvalidCursor, match="sort=price"):
        index.search(OfferQuery(limit=5, sort="vram", cursor=page.next_cursor))


def test_large_catalog_pages_cover_everything() -> None:
    offers = make_catalog(4, 5000)
    index = CatalogIndex(offers)
    query = OfferQuery(limit=500, available=None, sort="-vram")
    assert len(page_through(index, query)) == 5000


@pytest.mark.parametrize("span", [1, 1_000, 4_000_000, 10**13, 2**62])
def test_sort_orders_break_ties_by_id_whatever_the_range_of_the_key(span: int) -> None:
    """Small ranges sort key and id rank as one number, wide ones sort stably: same order."""
    rng = np.random.default_rng(span % 1000)
    size = 3_000
    key = rng.integers(-(span // 2), span - span // 2, size, dtype=np.int64)
    id_order = rng.permutation(size)
    id_rank = np.empty(size, np.int64)
    id_rank[id_order] = np.arange(size)
    expected = np.lexsort((id_rank, key))
    assert _sorted_by(key, id_order, id_rank).tolist() == expected.tolist()
