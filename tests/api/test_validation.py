"""Out-of-range input is a 422 naming the parameter, on every endpoint and both databases.

Each case is a request that once reached code unable to handle it (a numpy comparison with a
huge integer, a datetime overflow, a naive time compared with aware ones, a NUL byte sent to
PostgreSQL) and answered 500.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.api.support import assert_refused

ADMIN = {"Authorization": "Bearer test-admin-key"}


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


QUERIES = [
    ("/v1/offers?max_price=1e22", "max_price"),
    ("/v1/offers?max_price=NaN", "max_price"),
    ("/v1/offers?max_price=-1", "max_price"),
    ("/v1/offers?max_price=0.0000001", "max_price"),
    ("/v1/offers?min_vram=inf", "min_vram"),
    ("/v1/offers?min_vram=1e308", "min_vram"),
    ("/v1/offers?gpu_count=99999999999999999999999", "gpu_count"),
    ("/v1/offers?min_gpu_count=0", "min_gpu_count"),
    ("/v1/offers?max_interruption=nan", "max_interruption"),
    ("/v1/offers?limit=501", "limit"),
    (f"/v1/offers?cursor={b64('price|99999999999999999999999|x')}", "cursor"),
    ("/v1/offers?cursor=%F0%9F%92%A5", "cursor"),
    ("/v1/offers?" + "&".join(["gpu=H100"] * 21), "gpu"),
    ("/v1/spot-prices/history?gpu=H100&since=0001-01-01T00:00:00%2B14:00", "since"),
    ("/v1/spot-prices/history?until=9999-12-31T23:59:59-14:00", "until"),
    ("/v1/spot-prices/history?since=1900-01-01T00:00:00Z", "since"),
    ("/v1/spot-prices/history?since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z", "since"),
    ("/v1/spot-prices/history?provider=%00", "provider"),
    ("/v1/spot-prices/history?region=eu%00", "region"),
    (f"/v1/spot-prices/history?cursor={b64('0001-01-01T00:00:00+00:00|1')}", "cursor"),
    (f"/v1/spot-prices/history?cursor={b64('2026-01-01T00:00:00+00:00|1' + '0' * 30)}", "cursor"),
    ("/v1/rentals?cursor=MjAyNi0wMS0wMQ==", "cursor"),
    (f"/v1/rentals?cursor={b64('0001-01-01T00:00:00+14:00')}", "cursor"),
    ("/v1/rentals?cursor=%00", "cursor"),
    ("/v1/rentals?limit=0", "limit"),
    ("/v1/rentals/rnt%00x", "path"),
    ("/v1/wallet/ledger?cursor=99999999999999999999999", "cursor"),
    ("/v1/wallet/ledger?cursor=-1", "cursor"),
    ("/v1/admin/accounts/acct%00", "path"),
]

BODIES: list[tuple[str, dict[str, Any], str]] = [
    ("/v1/rentals", {"gpu": "H100", "max_price": "1e22"}, "max_price"),
    ("/v1/rentals", {"gpu": "H100", "max_price": "NaN"}, "max_price"),
    ("/v1/rentals", {"gpu": "H100", "max_price": "-0.5"}, "max_price"),
    ("/v1/rentals", {"gpu": "H100", "max_price": "0.1234567"}, "max_price"),
    ("/v1/rentals", {"gpu": "H100", "gpu_count": 10**30}, "gpu_count"),
    ("/v1/rentals", {"gpu": "H100", "max_interruption": 1.5}, "max_interruption"),
    ("/v1/rentals", {"gpu": ["H100"] * 21}, "gpu"),
    ("/v1/rentals", {"gpu": "H100", "image": "x\u0000"}, "image"),
    ("/v1/rentals", {"gpu": "H100", "env": {"A": "\u0000"}}, "env.A"),
    ("/v1/wallet/topups", {"amount": "1e400"}, "amount"),
    ("/v1/wallet/topups", {"amount": "NaN"}, "amount"),
    ("/v1/wallet/topups", {"amount": "-25.00"}, "amount"),
    ("/v1/wallet/topups", {"amount": "25.001"}, "amount"),
    ("/v1/wallet/topups", {"amount": 1e300}, "amount"),
    ("/v1/admin/accounts", {"name": "ops\u0000"}, "name"),
    ("/v1/admin/accounts/acct_x/keys", {"replaces": "key\u0000"}, "replaces"),
    ("/v1/admin/accounts/acct_x/credits", {"amount": "1e30"}, "amount"),
    ("/v1/admin/accounts/acct_x/credits", {"amount": "0.0000001"}, "amount"),
    ("/v1/admin/accounts/acct_x/credits", {"amount": "1", "reason": "\u0000"}, "reason"),
]


@pytest.fixture
def client(catalog_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(catalog_app, raise_server_exceptions=False) as test_client:
        made = test_client.post("/v1/admin/accounts", json={"name": "v"}, headers=ADMIN).json()
        test_client.headers["Authorization"] = f"Bearer {made['api_key']}"
        yield test_client


def test_out_of_range_queries_are_422_naming_the_parameter(client: TestClient) -> None:
    for url, param in QUERIES:
        headers = ADMIN if url.startswith("/v1/admin") else {}
        assert_refused(client.get(url, headers=headers), param)


def test_out_of_range_bodies_are_422_naming_the_field(client: TestClient) -> None:
    for url, body, param in BODIES:
        headers = ADMIN if url.startswith("/v1/admin") else {}
        assert_refused(client.post(url, json=body, headers=headers), param)


def test_times_without_an_offset_are_utc_and_in_range_times_pass(client: TestClient) -> None:
    naive = client.get("/v1/spot-prices/history", params={"since": "2026-01-01T00:00:00"})
    aware = client.get("/v1/spot-prices/history", params={"since": "2026-01-01T00:00:00Z"})
    assert naive.status_code == aware.status_code == 200
    assert naive.json() == aware.json()
    edge = client.get("/v1/spot-prices/history", params={"since": "1970-01-01T00:00:00Z"})
    assert edge.status_code == 200


def test_the_largest_valid_values_are_accepted(client: TestClient) -> None:
    largest = {"max_price": "1000000", "min_vram": "10000", "gpu_count": "1024"}
    response = client.get("/v1/offers", params=largest)
    assert response.status_code == 200 and response.json()["data"] == []
    assert client.get("/v1/offers", params={"max_price": "0.400000"}).status_code == 200


def test_an_empty_idempotency_key_is_refused_not_stored(client: TestClient) -> None:
    for url, body in (("/v1/wallet/topups", {"amount": "25.00"}), ("/v1/rentals", {"gpu": "H100"})):
        for _ in range(2):
            response = client.post(url, json=body, headers={"Idempotency-Key": ""})
            assert_refused(response, "idempotency-key")
