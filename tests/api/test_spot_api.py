"""`GET /v1/spot-prices` and `GET /v1/spot-prices/history`: shapes, filters, paging, bad input."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from broker.settings import CoreSettings
from tests.api.support import assert_refused
from tests.web.spot_catalog import spot_broker

NOW = datetime.now(UTC)


@pytest.fixture
def client(
    make_settings: Callable[..., CoreSettings], static_providers: dict[str, Any]
) -> Iterator[TestClient]:
    app = spot_broker(make_settings(), static_providers, NOW)
    with TestClient(app) as test_client:
        yield test_client


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def hours_ago(hours: float) -> datetime:
    return NOW - timedelta(hours=hours)


def test_spot_prices_compares_every_provider_and_region(client: TestClient) -> None:
    body = client.get("/v1/spot-prices", params={"gpu": "rtx4090"}).json()
    assert body["gpu"] == "RTX 4090"
    assert body["gpus"] == ["RTX 4090"]
    assert body["region"] is None
    assert body["rows"] == [
        {
            "gpu": "RTX 4090",
            "provider": "alpha",
            "region": "Quebec, CA",
            "spot_price": "0.287000",
            "on_demand_price": None,
            "savings_pct": None,
            "interruption_probability": 0.02,
            "interruption_source": "provider",
            "risk_bucket": "<5%",
            "effective_price": "0.289899",
            "best_tier": "spot",
            "slice": None,
            "updated_at": "2026-11-20T10:00:00Z",
            "spot_offer_id": "alpha:4090:eu:spot",
            "on_demand_offer_id": None,
            "stale": False,
        },
        {
            "gpu": "RTX 4090",
            "provider": "beta",
            "region": "EU",
            "spot_price": "0.300000",
            "on_demand_price": "0.350000",
            "savings_pct": 14.3,
            "interruption_probability": 0.12,
            "interruption_source": "provider",
            "risk_bucket": "10-15%",
            "effective_price": "0.319149",
            "best_tier": "spot",
            "slice": None,
            "updated_at": "2026-11-20T10:00:00Z",
            "spot_offer_id": "beta:4090:eu:spot",
            "on_demand_offer_id": "beta:4090",
            "stale": False,
        },
        {
            "gpu": "RTX 4090",
            "provider": "alpha",
            "region": "US",
            "spot_price": "0.330000",
            "on_demand_price": "0.400000",
            "savings_pct": 17.5,
            "interruption_probability": 0.04,
            "interruption_source": "provider",
            "risk_bucket": "<5%",
            "effective_price": "0.336735",
            "best_tier": "spot",
            "slice": None,
            "updated_at": "2026-11-20T10:00:00Z",
            "spot_offer_id": "alpha:4090:us:spot",
            "on_demand_offer_id": "alpha:4090:us",
            "stale": False,
        },
    ]
    assert body["cheapest"] == body["rows"][0]


def test_region_narrows_the_comparison(client: TestClient) -> None:
    body = client.get("/v1/spot-prices", params={"gpu": "RTX 4090", "region": "eu"}).json()
    assert [(r["provider"], r["region"]) for r in body["rows"]] == [("beta", "EU")]
    assert body["cheapest"]["provider"] == "beta"


def test_estimated_risk_and_a_family_of_models(client: TestClient) -> None:
    a100 = client.get("/v1/spot-prices", params={"gpu": "a100-80gb"}).json()
    (row,) = a100["rows"]
    assert row["interruption_source"] == "estimated"
    assert row["risk_bucket"] == "5-10%"
    h100 = client.get("/v1/spot-prices", params={"gpu": "H100"}).json()
    assert h100["gpu"] == "H100"
    assert "H100 SXM" in h100["gpus"] and "H100 PCIe" in h100["gpus"]
    assert [(r["gpu"], r["spot_price"], r["on_demand_price"]) for r in h100["rows"]] == [
        ("H100 SXM", None, "2.500000")
    ]
    # On-demand only: its price is the row's effective price, and it is the cheapest row.
    assert h100["cheapest"]["effective_price"] == "2.500000"
    assert h100["on_demand_wins"] is True


def test_a_stale_provider_is_marked(client: TestClient) -> None:
    refresher = client.app.state.refresher  # type: ignore[attr-defined]
    refresher.adapters["beta"].failure = "timed out"
    refresher.refresh("beta")
    rows = client.get("/v1/spot-prices", params={"gpu": "RTX 4090"}).json()["rows"]
    assert {r["provider"]: r["stale"] for r in rows} == {"alpha": False, "beta": True}


@pytest.mark.parametrize("path", ["/v1/spot-prices", "/v1/spot-prices/history"])
def test_unknown_gpu_is_404_with_suggestions(client: TestClient, path: str) -> None:
    response = client.get(path, params={"gpu": "RTX 4909"})
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "not_found"
    assert "RTX 4090" in error["suggestions"]
    assert "RTX 4090" in error["message"]


def test_spot_prices_needs_a_gpu(client: TestClient) -> None:
    response = client.get("/v1/spot-prices")
    assert response.status_code == 422
    assert response.json()["error"]["param"] == "gpu"


def history(client: TestClient, **params: Any) -> list[tuple[str, str]]:
    response = client.get("/v1/spot-prices/history", params=params)
    assert response.status_code == 200, response.text
    return [(p["offer_id"], p["price"]) for p in response.json()["data"]]


def test_history_shape_and_order(client: TestClient) -> None:
    body = client.get(
        "/v1/spot-prices/history", params={"gpu": "4090", "provider": "beta", "tier": "spot"}
    ).json()
    assert body["object"] == "list"
    assert body["next_cursor"] is None
    assert body["data"][0] == {
        "provider": "beta",
        "gpu": "RTX 4090",
        "region": "EU",
        "tier": "spot",
        "price": "0.340000",
        "at": body["data"][0]["at"],
        "offer_id": "beta:4090:eu:spot",
    }
    assert [p["price"] for p in body["data"]] == ["0.340000", "0.320000", "0.300000"]
    moments = [datetime.fromisoformat(p["at"]) for p in body["data"]]
    assert moments == sorted(moments)
    assert abs(moments[0] - hours_ago(30)) < timedelta(seconds=1)


def test_history_filters(client: TestClient) -> None:
    assert history(client, gpu="RTX 4090", tier="on_demand", provider="beta") == [
        ("beta:4090", "0.350000")
    ]
    assert history(client, gpu="4090", region="quebec") == [
        ("alpha:4090:eu:spot", "0.310000"),
        ("alpha:4090:eu:spot", "0.295000"),
        ("alpha:4090:eu:spot", "0.287000"),
    ]
    assert history(client, gpu="4090", tier="spot", until=iso(hours_ago(24))) == [
        ("alpha:4090:eu:spot", "0.310000"),
        ("alpha:4090:us:spot", "0.330000"),
        ("beta:4090:eu:spot", "0.340000"),
    ]


def test_history_since_starts_each_offer_at_its_level(client: TestClient) -> None:
    points = history(client, gpu="RTX 4090", tier="spot", since=iso(hours_ago(10)))
    assert points == [
        ("alpha:4090:us:spot", "0.330000"),  # @30h, unchanged since: its level at `since`
        ("alpha:4090:eu:spot", "0.295000"),  # @18h, not 0.310000 @30h
        ("beta:4090:eu:spot", "0.320000"),  # @12h
        ("alpha:4090:eu:spot", "0.287000"),  # @6h, inside the range
        ("beta:4090:eu:spot", "0.300000"),  # @3h, inside the range
    ]


def test_history_pages_with_a_cursor(client: TestClient) -> None:
    everything = history(client, limit=500)
    seen: list[tuple[str, str]] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        body = client.get("/v1/spot-prices/history", params=params).json()
        seen += [(p["offer_id"], p["price"]) for p in body["data"]]
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    assert seen == everything
    assert len(everything) == len(set(everything)) > 4


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-13-45T00:00:00Z"}, "until"),
        ({"since": "2026-11-21T00:00:00Z", "until": "2026-11-20T00:00:00Z"}, "since"),
        ({"tier": "cheap"}, "tier"),
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ],
)
def test_bad_history_input_is_422_naming_the_parameter(
    client: TestClient, params: dict[str, object], param: str
) -> None:
    error = assert_refused(client.get("/v1/spot-prices/history", params=params), param)
    assert param in error["message"]


def test_times_without_an_offset_are_utc(client: TestClient) -> None:
    naive = hours_ago(24).replace(tzinfo=None).isoformat()
    assert history(client, gpu="4090", tier="spot", until=naive) == history(
        client, gpu="4090", tier="spot", until=iso(hours_ago(24))
    )
