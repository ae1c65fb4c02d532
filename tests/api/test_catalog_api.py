"""The catalog endpoints: filters, sorting, paging, the providers block, and bad input."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from broker.app import create_app
from tests.api.support import assert_refused
from tests.catalog_data import CATALOG, catalog_broker, offer


@pytest.fixture
def client(make_settings: Callable[..., object], static_providers) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(catalog_broker(make_settings(), static_providers)) as test_client:
        test_client.providers = static_providers  # type: ignore[attr-defined]
        yield test_client


def ids(response) -> list[str]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.text
    return [o["id"] for o in response.json()["data"]]


def test_cheapest_4090_under_a_price_spot_included(client: TestClient) -> None:
    response = client.get("/v1/offers", params={"gpu": "rtx4090", "max_price": "0.40"})
    assert ids(response) == ["alpha:4090:eu:spot", "beta:4090", "alpha:4090:us"]


def test_offer_shape_and_effective_price(client: TestClient) -> None:
    body = client.get("/v1/offers/alpha:4090:eu:spot").json()
    assert body == {
        "id": "alpha:4090:eu:spot",
        "provider": "alpha",
        "gpu": "RTX 4090",
        "gpu_count": 1,
        "vram_gb": 24,
        "price_per_gpu_hour": "0.287000",
        "price_per_hour": "0.287000",
        "tier": "spot",
        "interruption_probability": 0.02,
        "interruption_source": "provider",
        "effective_price_per_gpu_hour": "0.289899",
        "region": "Quebec, CA",
        "country": "CA",
        "continent": "NA",
        "place_known": True,
        "slice": None,
        "gpu_fraction": 1.0,
        "models": None,
        "instance_type": "container",
        "available": True,
        "available_count": None,
        "gpu_known": True,
        "updated_at": "2026-11-20T10:00:00Z",
        "stale": False,
    }


def test_spot_without_a_provider_figure_gets_an_estimate(client: TestClient) -> None:
    body = client.get("/v1/offers/beta:a100").json()
    assert body["interruption_source"] == "estimated"
    assert 0 < body["interruption_probability"] < 1
    assert body["effective_price_per_gpu_hour"] > body["price_per_gpu_hour"]


def test_margin_is_added_to_provider_prices(make_settings, static_providers) -> None:  # type: ignore[no-untyped-def]
    static_providers["alpha"].offers = CATALOG["alpha"]
    app = create_app(make_settings(margin="0.10"), adapters=static_providers, start_jobs=False)
    app.state.refresher.refresh_all()
    with TestClient(app) as c:
        body = c.get("/v1/offers/alpha:h100:8x").json()
    assert body["price_per_gpu_hour"] == "2.750000"
    assert body["price_per_hour"] == "22.000000"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"provider": "beta"}, ["beta:4090", "beta:a100"]),
        ({"tier": "spot"}, ["alpha:4090:eu:spot", "beta:a100"]),
        ({"min_vram": 48}, ["beta:a100", "alpha:h100:8x"]),
        ({"gpu_count": 8}, ["alpha:h100:8x"]),
        ({"min_gpu_count": 2}, ["alpha:h100:8x"]),
        ({"region": "ca"}, ["alpha:4090:eu:spot"]),
        ({"instance_type": "baremetal"}, ["alpha:h100:8x"]),
        ({"available": "false"}, ["alpha:gone"]),
        ({"gpu": ["H100", "a100-80gb"]}, ["beta:a100", "alpha:h100:8x"]),
        (
            {"max_interruption": 0.03, "gpu": "4090"},
            ["alpha:4090:eu:spot", "beta:4090", "alpha:4090:us"],
        ),
        ({"sort": "-price", "limit": 2}, ["alpha:h100:8x", "beta:a100"]),
        ({"sort": "vram", "limit": 1}, ["alpha:4090:eu:spot"]),
    ],
)
def test_filters_and_sorts(
    client: TestClient, params: dict[str, object], expected: list[str]
) -> None:
    assert ids(client.get("/v1/offers", params=params)) == expected


def test_paging_returns_each_offer_once(client: TestClient) -> None:
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, "available": "any", **({"cursor": cursor} if cursor else {})}
        body = client.get("/v1/offers", params=params).json()
        seen += [o["id"] for o in body["data"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(o.id for offers in CATALOG.values() for o in offers)


def test_providers_block_and_stale_marking(client: TestClient) -> None:
    client.providers["beta"].failure = "timed out after 10s"  # type: ignore[attr-defined]
    client.app.state.refresher.refresh("beta")  # type: ignore[attr-defined]
    body = client.get("/v1/offers", params={"provider": "beta"}).json()
    assert body["providers"]["alpha"]["status"] == "ok"
    assert body["providers"]["alpha"]["offers"] == 4
    assert body["providers"]["beta"] == {
        "status": "stale",
        "offers": 2,
        "updated_at": body["providers"]["beta"]["updated_at"],
        "error": "timed out after 10s",
    }
    assert [o["stale"] for o in body["data"]] == [True, True]


def test_gpus_overview(client: TestClient) -> None:
    rows = {r["gpu"]: r for r in client.get("/v1/gpus").json()["data"]}
    assert rows["RTX 4090"] == {
        "gpu": "RTX 4090",
        "vram_gb": 24,
        "offers": 3,
        "providers": ["alpha", "beta"],
        "min_on_demand_price": "0.350000",
        "min_spot_price": "0.287000",
        "available_count": 3,
    }
    assert rows["A100 80GB"]["min_on_demand_price"] is None


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"max_price": "abc"}, "max_price"),
        ({"max_price": "-1"}, "max_price"),
        ({"max_price": "NaN"}, "max_price"),
        ({"tier": "cheap"}, "tier"),
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"max_interruption": 2}, "max_interruption"),
        ({"sort": "cheapest"}, "sort"),
        ({"min_vram": "lots"}, "min_vram"),
        ({"gpu_count": 0}, "gpu_count"),
        ({"instance_type": "pod"}, "instance_type"),
        ({"available": "maybe"}, "available"),
        ({"provider": "nosuch"}, "provider"),
        ({"gpu": "RTX 4909"}, "gpu"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ],
)
def test_bad_filters_are_422_naming_the_parameter(
    client: TestClient, params: dict[str, object], param: str
) -> None:
    error = assert_refused(client.get("/v1/offers", params=params), param)
    assert param in error["message"] or "GPU" in error["message"] or "provider" in error["message"]


def test_unknown_gpu_suggests_close_names(client: TestClient) -> None:
    error = client.get("/v1/offers", params={"gpu": "RTX 4909"}).json()["error"]
    assert "RTX 4090" in error["suggestions"]


def test_unknown_offer_is_404(client: TestClient) -> None:
    response = client.get("/v1/offers/nosuch:offer")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_price_changes_are_recorded_as_history(client: TestClient) -> None:
    from sqlmodel import select

    from pricing.history_table import PricePoint

    provider = client.providers["alpha"]  # type: ignore[attr-defined]
    provider.offers = [offer("alpha:4090:us", "alpha", "RTX 4090", 410000), *CATALOG["alpha"][1:]]
    client.app.state.refresher.refresh("alpha")  # type: ignore[attr-defined]
    client.app.state.refresher.refresh("alpha")  # type: ignore[attr-defined]
    with client.app.state.db.session() as session:  # type: ignore[attr-defined]
        points = session.exec(
            select(PricePoint).where(PricePoint.offer_id == "alpha:4090:us").order_by(PricePoint.id)
        ).all()
    assert [p.price for p in points] == [400_000, 410_000]


def test_health_and_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    text = client.get("/metrics").text
    assert 'gpubroker_offers{provider="alpha"} 4.0' in text
    assert 'gpubroker_provider_up{provider="beta"} 1.0' in text
