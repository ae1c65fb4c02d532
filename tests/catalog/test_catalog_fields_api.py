"""The catalog's new fields over HTTP: slices, places, models, charts that agree with tables,
and the price a renter was shown."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from broker.app import create_app
from broker.demo_history import WEEK, seed_history
from broker.settings import CoreSettings
from pricing.history import HistoryPoint, HistoryQuery, query_history
from pricing.offer import Tier
from pricing.spot import provider_levels
from tests.brokers import bearer, open_account
from tests.catalog_data import offer

CATALOG = {
    "alpha": [
        offer("alpha:h100:de:spot", "alpha", "H100 SXM", 1_500_000, vram_gb=80, tier=Tier.SPOT,
              region="DE"),
        offer("alpha:h100:mig:spot", "alpha", "H100 SXM", 330_000, vram_gb=20, tier=Tier.SPOT,
              region="eu-west", slice="mig-2g.20gb", gpu_fraction=0.25),
        offer("alpha:h100:gone:spot", "alpha", "H100 SXM", 900_000, vram_gb=80, tier=Tier.SPOT,
              region="Paris, FR", available=False),
    ],
    "beta": [
        offer("beta:h100:us:spot", "beta", "H100 SXM", 1_700_000, vram_gb=80, tier=Tier.SPOT,
              region="us-east"),
        offer("beta:4090:llama", "beta", "RTX 4090", 300_000, region="PL", models=("llama3",)),
        offer("beta:4090:deepseek", "beta", "RTX 4090", 280_000, region="PL",
              models=("deepseek-r1",)),
    ],
}  # fmt: skip


def install(providers: dict[str, Any], bump: int = 0) -> None:
    for name, offers in CATALOG.items():
        providers[name].offers = [
            replace(o, base_price_per_gpu_hour=o.base_price_per_gpu_hour + bump) for o in offers
        ]


@pytest.fixture
def app(make_settings: Callable[..., CoreSettings], static_providers: dict[str, Any]) -> FastAPI:
    install(static_providers)
    app = create_app(make_settings(), adapters=static_providers, start_jobs=False)
    app.state.refresher.refresh_all()
    return app


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def refresh_dearer(app: FastAPI, providers: dict[str, Any], bump: int) -> None:
    """Every offer `bump` micro-dollars dearer at its provider, and the catalog refreshed."""
    install(providers, bump=bump)
    app.state.refresher.refresh_all()


def ids(client: TestClient, **params: Any) -> list[str]:
    response = client.get("/v1/offers", params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    return [o["id"] for o in response.json()["data"]]


def test_slices_only_when_asked_and_labelled(client: TestClient) -> None:
    assert "alpha:h100:mig:spot" not in ids(client, gpu="H100")
    assert ids(client, gpu="H100", slices="only") == ["alpha:h100:mig:spot"]
    assert "alpha:h100:mig:spot" in ids(client, gpu="H100", slices="true")
    body = client.get("/v1/offers/alpha:h100:mig:spot").json()
    assert (body["slice"], body["gpu_fraction"]) == ("mig-2g.20gb", 0.25)
    spot = client.get("/v1/spot-prices", params={"gpu": "H100"}).json()
    assert spot["cheapest"]["spot_offer_id"] == "alpha:h100:de:spot"
    [h100] = [r for r in client.get("/v1/gpus").json()["data"] if r["gpu"] == "H100 SXM"]
    assert (h100["offers"], h100["min_spot_price"]) == (2, "1.500000")


def test_region_means_places(client: TestClient) -> None:
    assert set(ids(client, region="eu")) == {
        "alpha:h100:de:spot",
        "beta:4090:llama",
        "beta:4090:deepseek",
    }
    assert ids(client, region="germany") == ["alpha:h100:de:spot"]
    assert ids(client, region="north america") == ["beta:h100:us:spot"]
    body = client.get("/v1/offers/beta:4090:llama").json()
    assert (body["country"], body["continent"], body["models"]) == ("PL", "EU", ["llama3"])


def test_model_filter_keeps_listings_serving_it_or_any(client: TestClient) -> None:
    found = ids(client, model="llama3:latest")
    assert "beta:4090:llama" in found and "beta:4090:deepseek" not in found
    assert "alpha:h100:de:spot" in found


def test_the_chart_ends_where_the_table_is(
    app: FastAPI, client: TestClient, static_providers: dict[str, Any]
) -> None:
    first_refresh = min(p.at for p in query_history(app.state.db, HistoryQuery(limit=500)).points)
    seen = [replace(o, updated_at=first_refresh) for o in app.state.catalog.index.offers]
    assert seed_history(app.state.db, seen, seed=7) > 0
    refresh_dearer(app, static_providers, bump=50_000)
    end = datetime.now(UTC) + timedelta(seconds=1)
    raw = client.get(
        "/v1/spot-prices/history",
        params={"gpu": "H100", "tier": "spot", "since": (end - WEEK).isoformat(), "limit": 500},
    ).json()["data"]
    points = [_point(p) for p in raw]
    table = client.get("/v1/spot-prices", params={"gpu": "H100"}).json()["rows"]
    # The chart draws exactly the table's offers: not the unavailable one, not the slice.
    assert {p.offer_id for p in points} == {row["spot_offer_id"] for row in table}
    # A week of lines, not a few dots at the right edge.
    assert min(p.at for p in points) < first_refresh - timedelta(days=6)
    assert len(points) > 20
    levels = provider_levels(points, end - WEEK, end, samples=50)
    for row in table:
        assert levels[row["provider"]][-1] == round(float(row["spot_price"]) * 1e6)


def _point(raw: dict[str, Any]) -> HistoryPoint:
    return HistoryPoint(
        raw["offer_id"], raw["provider"], raw["gpu"], raw["region"], Tier(raw["tier"]),
        round(float(raw["price"]) * 1e6), datetime.fromisoformat(raw["at"].replace("Z", "+00:00")),
    )  # fmt: skip


def test_a_dearer_offer_than_shown_is_a_price_changed_conflict(
    app: FastAPI, client: TestClient, static_providers: dict[str, Any]
) -> None:
    account = open_account(cast(Any, client))  # a TestClient speaks httpx.Client's API
    refresh_dearer(app, static_providers, bump=10_000)
    response = client.post(
        "/v1/rentals",
        json={"offer_id": "beta:4090:llama", "expected_price": "0.300000", "model": "llama3"},
        headers=bearer(account["api_key"]),
    )
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == "price_changed"
    assert (error["expected_price"], error["price"]) == ("0.300000", "0.310000")
    assert error["offer_id"] == "beta:4090:llama"


def test_expected_price_goes_with_an_offer_id(client: TestClient) -> None:
    account = open_account(cast(Any, client))
    response = client.post(
        "/v1/rentals",
        json={"gpu": "RTX 4090", "expected_price": "0.300000", "image": "busybox"},
        headers=bearer(account["api_key"]),
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["param"] == "expected_price"


def test_renting_a_model_by_constraints_skips_listings_serving_others(client: TestClient) -> None:
    account = open_account(cast(Any, client))
    response = client.post(
        "/v1/rentals",
        json={"gpu": "RTX 4090", "region": "PL", "mode": "model", "model": "qwen2.5"},
        headers=bearer(account["api_key"]),
    )
    # Both Polish RTX 4090 listings publish their models, and neither serves qwen2.5.
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "no_capacity"
