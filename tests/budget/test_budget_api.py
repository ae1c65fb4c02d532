"""`GET/PUT /v1/budget`: the calendar month in UTC, the settings, and bad input named."""

from __future__ import annotations

from typing import Any

import pytest

from tests.limits.conftest import Broker


def budget(broker: Broker) -> dict[str, Any]:
    response = broker.api.get("/v1/budget", headers=broker.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_new_account_has_no_limit_and_the_calendar_month(limited: Broker) -> None:
    body = budget(limited)  # the broker's clock reads 2026-11-24 12:00 UTC
    assert body["monthly_limit"] is None and body["low_balance"] is None
    assert body["spent"] == "0.000000" and body["held"] == "0.000000"
    assert body["alert_at"] == ["0.5", "0.9"]
    assert body["period_start"] == "2026-11-01T00:00:00Z"
    assert body["period_end"] == "2026-12-01T00:00:00Z"


def test_put_sets_what_it_names_and_keeps_the_rest(limited: Broker) -> None:
    put = limited.api.put(
        "/v1/budget",
        json={"monthly_limit": "50.00", "alert_at": ["0.9", "0.25"], "low_balance": "5"},
        headers=limited.headers,
    )
    assert put.status_code == 200, put.text
    assert put.json()["monthly_limit"] == "50.000000"
    assert put.json()["alert_at"] == ["0.25", "0.9"]
    limited.api.put("/v1/budget", json={"low_balance": None}, headers=limited.headers)
    body = budget(limited)
    assert body["monthly_limit"] == "50.000000" and body["low_balance"] is None
    assert body["alert_at"] == ["0.25", "0.9"]
    other = limited.account()
    assert limited.api.get("/v1/budget", headers=other.headers).json()["monthly_limit"] is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("monthly_limit", "0"),
        ("monthly_limit", "-5"),
        ("monthly_limit", "1.0000001"),
        ("monthly_limit", "lots"),
        ("low_balance", "-1"),
        ("alert_at", ["1.5"]),
        ("alert_at", ["0"]),
    ],
)
def test_bad_budget_input_is_422_naming_the_field(limited: Broker, field: str, value: Any) -> None:
    refused = limited.api.put("/v1/budget", json={field: value}, headers=limited.headers)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["param"].split(".")[0] == field
