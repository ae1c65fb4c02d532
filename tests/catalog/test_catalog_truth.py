"""Catalog truth: slices labelled and hidden unless asked, places read as countries and
continents, served models searchable, and filters that hold on any catalog."""

from __future__ import annotations

import json
import logging
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.demo_history import walk
from broker.domain_errors import PriceChanged
from broker.rentals.ranking import Constraints, check_expected_price, rank
from pricing.index import CatalogIndex
from pricing.offer import InstanceType, Offer, Tier
from pricing.places import resolve_place
from pricing.query import OfferQuery
from pricing.scan import linear_search
from pricing.spot import compare_spot
from pricing.summary import summarize_gpus
from providers.computegpu.parse import parse_listing
from providers.icgpu.parse import parse_tier
from providers.simulators.aivory.seed import UPSTREAMS
from providers.simulators.computegpu.seed import LOCATIONS as COMPUTEGPU_LOCATIONS
from providers.simulators.empiriolabs.seed import REGIONS as EMPIRIOLABS_REGIONS
from providers.simulators.fluence.seed import LOCATIONS as FLUENCE_LOCATIONS
from providers.simulators.icgpu.seed import TIERS, seed_tiers

NOW = datetime(2026, 11, 20, tzinfo=UTC)
FIXTURES = Path(__file__).parent.parent / "fixtures"
REGIONS = [
    "DE", "Paris, FR", "Quebec, CA", "eu-west", "us-central1", "US", "EU", "APAC", "Global",
    "Helsinki, FI", "Tokyo, JP", "ap-southeast", "Bavaria, DE", "Texas, US", "Narnia",
]  # fmt: skip
NEEDLES = ["eu", "Europe", "na", "north america", "asia", "de", "germany", "quebec", "us", "fr"]
SLICES = [None, None, "mig-1g.10gb", "timesliced"]
MODELS = [None, ("llama3",), ("deepseek-r1", "qwen2.5"), ("Llama3:latest",)]


def provider_spellings() -> set[str]:
    """Every place a provider fixture or simulator seed spells."""
    spellings: set[str] = set()
    for path in FIXTURES.rglob("*.json"):
        text = path.read_text()
        for key in ("region", "location"):
            spellings |= _values(json.loads(text), key)
        for place in _objects_with(json.loads(text), "country"):
            spellings.add(", ".join(v for v in (place.get("city"), place["country"]) if v))
    spellings |= {region for _, regions in UPSTREAMS for region in regions}
    spellings |= set(COMPUTEGPU_LOCATIONS) | set(EMPIRIOLABS_REGIONS)
    spellings |= {f"{city}, {country}" for city, country in FLUENCE_LOCATIONS.values()}
    spellings |= {city for city, _ in FLUENCE_LOCATIONS.values()}
    spellings |= {region for tier in TIERS for region in tier[4]}
    # A location given by id alone ("loc_fr1") names no place: it stays as given.
    return {s for s in spellings if not s.startswith("loc_")}


def _values(node: object, key: str) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key and isinstance(v, str):
                found.add(v)
            found |= _values(v, key)
    elif isinstance(node, list):
        for item in node:
            found |= _values(item, key)
    return found


def _objects_with(node: object, key: str) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    if isinstance(node, dict):
        if isinstance(node.get(key), str):
            found.append(node)
        for v in node.values():
            found += _objects_with(v, key)
    elif isinstance(node, list):
        for item in node:
            found += _objects_with(item, key)
    return found


def test_the_place_table_knows_every_spelling_of_the_docs_and_the_simulators() -> None:
    spellings = provider_spellings()
    # The spellings the providers' documentation shows, each in a fixture or a simulator.
    assert {"DE", "US", "EU", "Paris, FR", "Quebec, CA", "eu-west", "Helsinki"} <= spellings
    unknown = [s for s in spellings if not resolve_place(s).known]
    assert unknown == []
    assert resolve_place("Paris, FR").country == "FR"
    assert (resolve_place("Quebec, CA").country, resolve_place("Quebec, CA").continent) == (
        "CA",
        "NA",
    )
    assert resolve_place("eu-west").continent == "EU"
    assert resolve_place("us-central1").country == "US"
    assert resolve_place("Helsinki").continent == "EU"
    assert resolve_place("Narnia") == resolve_place("Narnia")
    assert not resolve_place("Narnia").known


def test_ic_gpu_mig_and_timesliced_tiers_are_slices_and_cards_are_not() -> None:
    offers = [o for tier in seed_tiers(1) for o in parse_tier(tier.to_json(), NOW)]
    by_tier = {o.ref["tier"]: o for o in offers}
    assert (by_tier["dedicated"].slice, by_tier["dedicated"].gpu_fraction) == (None, 1.0)
    mig = next(o for o in offers if o.gpu == "A100 80GB" and o.ref["tier"] == "mig")
    assert (mig.slice, mig.gpu_fraction, mig.vram_gb) == ("mig-1g.10gb", 0.125, 10)
    assert by_tier["timesliced"].slice == "timesliced"
    assert by_tier["timesliced"].gpu_fraction < 1


def test_less_memory_than_the_card_has_is_a_part_of_a_card() -> None:
    listing = {"id": "lst_2", "gpuModel": "H100", "vramGb": 20, "pricePerHour": 0.333}
    part = parse_listing(listing, NOW)
    assert (part.gpu, part.vram_gb, part.slice, part.gpu_fraction) == (
        "H100 SXM",
        20,
        "partial-20gb",
        0.25,
    )
    whole = parse_listing({**listing, "vramGb": 80}, NOW)
    assert (whole.slice, whole.gpu_fraction) == (None, 1.0)


def test_a_place_nobody_knows_is_kept_flagged_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    listing = {"id": "lst_3", "gpuModel": "RTX 4090", "pricePerHour": 0.4, "location": "Atlantis 7"}
    with caplog.at_level(logging.WARNING, logger="gpubroker.pricing"):
        offers = [parse_listing(listing, NOW) for _ in range(3)]
    assert {(o.region, o.country, o.continent, o.place_known) for o in offers} == {
        ("Atlantis 7", None, None, False)
    }
    assert [r.getMessage() for r in caplog.records].count(
        "unknown place 'Atlantis 7': kept as given; add it to pricing/place_table.py"
    ) == 1


def test_a_computegpu_listing_says_which_models_it_serves() -> None:
    listing = {
        "id": "lst_1", "gpuModel": "RTX 4090", "pricePerHour": 0.45, "location": "PL",
        "ollamaModels": ["deepseek-r1"],
    }  # fmt: skip
    offer = parse_listing(listing, NOW)
    assert offer.models == ("deepseek-r1",)
    assert (offer.country, offer.continent) == ("PL", "EU")
    assert offer.serves("deepseek-r1:latest") and not offer.serves("llama3")
    assert parse_listing({**listing, "ollamaModels": None}, NOW).models is None


@st.composite
def catalogs(draw: st.DrawFn) -> list[Offer]:
    count = draw(st.integers(0, 25))
    offers = []
    for i in range(count):
        offer = Offer(
            id=f"o{i}",
            provider=draw(st.sampled_from(["alpha", "beta"])),
            gpu=draw(st.sampled_from(["RTX 4090", "H100 SXM"])),
            gpu_count=1,
            vram_gb=draw(st.sampled_from([10, 24, 80])),
            base_price_per_gpu_hour=draw(st.integers(1, 3_000_000)),
            tier=draw(st.sampled_from(list(Tier))),
            region=draw(st.sampled_from(REGIONS)),
            instance_type=InstanceType.CONTAINER,
            available=draw(st.booleans()),
            available_count=None,
            updated_at=NOW,
            slice=draw(st.sampled_from(SLICES)),
            models=draw(st.sampled_from(MODELS)),
        )
        offer.price_per_gpu_hour = offer.effective_price_per_gpu_hour = (
            offer.base_price_per_gpu_hour
        )
        offers.append(offer)
    return offers


@settings(max_examples=60, deadline=None)
@given(
    catalogs(),
    st.sampled_from([None, *NEEDLES]),
    st.sampled_from([False, None, True]),
    st.sampled_from([None, "llama3", "qwen2.5"]),
    st.sampled_from(["price", "effective_price", "-vram"]),
)
def test_every_filter_holds_with_the_new_fields(
    offers: list[Offer], region: str | None, slices: bool | None, model: str | None, sort: str
) -> None:
    query = OfferQuery(region=region, slices=slices, model=model, sort=sort, limit=500)
    found = CatalogIndex(offers).search(query).offers
    assert [o.id for o in found] == [o.id for o in linear_search(offers, query)]
    for offer in found:
        assert offer.available
        if slices is False:
            assert offer.slice is None
        if slices is True:
            assert offer.slice is not None
        if region in ("eu", "Europe"):
            assert offer.continent == "EU"
        if region in ("na", "north america"):
            assert offer.continent == "NA"
        if region in ("de", "germany"):
            assert offer.country == "DE"
        if model is not None:
            served = offer.models or ()
            assert offer.models is None or model in served or f"{model.title()}:latest" in served
    whole_cards = [o for o in offers if o.available and o.slice is None]
    assert sum(row.offers for row in summarize_gpus(offers)) == len(whole_cards)
    if region in ("eu", "Europe") and slices is False:
        eu_whole = [o for o in offers if o.available and o.continent == "EU" and o.slice is None]
        assert len(found) == len([o for o in eu_whole if model is None or o.serves(model)])


def test_the_demo_week_walks_back_from_the_current_price() -> None:
    spot, on_demand = (
        Offer("s", "p", "RTX 4090", 1, 24, 300_000, tier, "US", InstanceType.CONTAINER, True,
              None, NOW)
        for tier in (Tier.SPOT, Tier.ON_DEMAND)
    )  # fmt: skip
    for offer in (spot, on_demand):
        offer.price_per_gpu_hour = 300_000
    rng = random.Random(3)
    spot_points, on_demand_points = walk(spot, NOW, rng), walk(on_demand, NOW, rng)
    assert len(spot_points) > 2 * len(on_demand_points) > 0
    for at, price in spot_points + on_demand_points:
        assert NOW - timedelta(days=7) < at < NOW and price > 0
    assert [at for at, _ in spot_points] == sorted(at for at, _ in spot_points)
    assert len({price for _, price in spot_points}) > 10


@settings(max_examples=60, deadline=None)
@given(catalogs(), st.sampled_from([None, "eu", "na", "de"]), st.sampled_from([False, None, True]))
def test_the_spot_comparison_covers_every_row_and_hides_no_on_demand_deal(
    offers: list[Offer], region: str | None, slices: bool | None
) -> None:
    comparison = compare_spot(offers, {"RTX 4090", "H100 SXM"}, region, slices)
    for row in comparison.rows:
        for shown in (row.spot, row.on_demand):
            if shown is None:
                continue
            assert shown.available
            assert slices is None or (shown.slice is not None) is slices
            if region == "eu":
                assert shown.continent == "EU"
        if row.spot is None:
            assert row.on_demand is not None
            assert row.effective_price == row.on_demand.price_per_gpu_hour
    if comparison.rows:
        assert comparison.cheapest is not None
        lowest = min(row.effective_price for row in comparison.rows)
        assert comparison.cheapest.effective_price == lowest
    else:
        assert comparison.cheapest is None


def test_renting_a_model_by_constraints_ranks_only_listings_that_can_serve_it() -> None:
    offers = [
        Offer(name, "p", "RTX 4090", 1, 24, price, Tier.ON_DEMAND, "PL", InstanceType.CONTAINER,
              True, None, NOW, models=models)
        for name, price, models in [
            ("deepseek", 100_000, ("deepseek-r1",)),
            ("llama", 200_000, ("llama3:latest",)),
            ("any", 300_000, None),
        ]
    ]  # fmt: skip
    for offer in offers:
        offer.price_per_gpu_hour = offer.effective_price_per_gpu_hour = (
            offer.base_price_per_gpu_hour
        )
    index = CatalogIndex(offers)
    assert [o.id for o in rank(index, Constraints(model="llama3"))] == ["llama", "any"]
    assert [o.id for o in rank(index, Constraints())] == ["deepseek", "llama", "any"]


def test_a_price_above_the_one_shown_is_refused_and_one_below_is_not() -> None:
    offer = Offer("o", "p", "RTX 4090", 1, 24, 0, Tier.ON_DEMAND, "US", InstanceType.CONTAINER,
                  True, None, NOW)  # fmt: skip
    offer.price_per_gpu_hour = 191_900
    check_expected_price(offer, 191_900)
    check_expected_price(offer, 200_000)
    with pytest.raises(PriceChanged) as refused:
        check_expected_price(offer, 190_200)
    assert refused.value.extra == {
        "offer_id": "o",
        "expected_price": "0.190200",
        "price": "0.191900",
    }
