"""Who gets through the connect proxy, and what the workload sees of the caller's credentials."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from providers.registry import PROVIDERS
from tests.brokers import bearer
from tests.proxy.conftest import Broker


def error_of(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]  # type: ignore[no-any-return]


def reached_rental(make_broker: Callable[..., Broker]) -> tuple[Broker, dict[str, Any], str]:
    """A broker that caches nothing, a running EmpirioLabs rental on it, and a URL its owner's
    key has just been let through to."""
    broker = make_broker(cache_seconds=0)
    rental = broker.rent("empiriolabs")
    url = broker.connect_url(rental["id"]) + "v1/models"
    assert httpx.get(url, headers=broker.headers).status_code == 200
    return broker, rental, url


def test_the_rental_key_opens_its_own_rental_only(broker: Broker) -> None:
    first = broker.rent("empiriolabs")
    second = broker.rent("empiriolabs")

    own = httpx.get(
        broker.connect_url(first["id"]) + "v1/models", headers=bearer(first["rental_key"])
    )
    other = httpx.get(
        broker.connect_url(second["id"]) + "v1/models", headers=bearer(first["rental_key"])
    )

    assert own.status_code == 200 and own.json()["data"][0]["owned_by"] == "empiriolabs"
    assert other.status_code == 401
    assert error_of(other)["code"] == "unauthorized"


def test_the_account_key_opens_every_rental_of_its_account(broker: Broker) -> None:
    rentals = [broker.rent(provider) for provider in ("empiriolabs", "computegpu", "aivory")]

    for rental in rentals:
        response = httpx.get(broker.connect_url(rental["id"]) + "api/tags", headers=broker.headers)
        assert response.status_code == 200, response.text
        assert response.json()["models"][0]["name"] == "llama3:latest"


def test_another_accounts_rental_is_not_found_and_a_missing_key_is_401(broker: Broker) -> None:
    rental = broker.rent("empiriolabs")
    stranger = broker.account().headers
    url = broker.connect_url(rental["id"]) + "v1/models"

    foreign = httpx.get(url, headers=stranger)
    unknown = httpx.get(broker.connect_url("rnt_nosuchrental") + "v1/models", headers=stranger)
    keyless = httpx.get(url)
    wrong = httpx.get(url, headers=bearer("gbk_not-a-key"))

    assert foreign.status_code == 404 and error_of(foreign)["code"] == "not_found"
    assert unknown.status_code == 404 and error_of(unknown)["code"] == "not_found"
    assert keyless.status_code == 401 and error_of(keyless)["code"] == "unauthorized"
    assert keyless.headers["www-authenticate"] == "Bearer"
    assert wrong.status_code == 401 and error_of(wrong)["code"] == "unauthorized"


def test_a_rental_that_is_not_running_is_a_conflict_with_its_status(
    make_broker: Callable[..., Broker],
) -> None:
    broker, rental, url = reached_rental(make_broker)

    stopped = broker.api.post(f"/v1/rentals/{rental['id']}/stop", headers=broker.headers)
    assert stopped.status_code == 200, stopped.text
    paused = httpx.get(url, headers=broker.headers)
    broker.api.delete(f"/v1/rentals/{rental['id']}", headers=broker.headers)
    ended = httpx.get(url, headers=bearer(rental["rental_key"]))

    for response, status in ((paused, "stopped"), (ended, "terminated")):
        assert response.status_code == 409
        error = error_of(response)
        assert error["code"] == "conflict" and error["status"] == status
        assert status in str(error["message"])


def test_an_ssh_only_rental_points_at_its_ssh_details(broker: Broker) -> None:
    rental = broker.rent("icgpu")
    ssh = broker.api.get(f"/v1/rentals/{rental['id']}", headers=broker.headers).json()["ssh"]

    response = httpx.get(broker.connect_url(rental["id"]), headers=broker.headers)

    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "conflict"
    assert error["ssh"] == ssh
    assert ssh["command"] in str(error["message"])


def test_a_revoked_key_stops_working_when_nothing_is_cached(
    make_broker: Callable[..., Broker],
) -> None:
    broker, rental, url = reached_rental(make_broker)

    broker.revoke(broker.owner)

    assert httpx.get(url, headers=broker.headers).status_code == 401
    assert httpx.get(url, headers=bearer(rental["rental_key"])).status_code == 200


def test_the_workload_sees_the_providers_credentials_never_the_callers(broker: Broker) -> None:
    rental = broker.rent("empiriolabs")
    caller_key = broker.headers["Authorization"].removeprefix("Bearer ")
    workload = broker.workload("empiriolabs")

    response = httpx.get(
        broker.connect_url(rental["id"]) + "echo/x",
        headers={
            **broker.headers,
            "Cookie": f"theme=dark; gpubroker_key={rental['rental_key']}; lang=en",
            "X-Forwarded-Host": "evil.example",
            "Proxy-Authorization": "Basic c2VjcmV0",
            "Connection": "close, X-Drop-Me",
            "X-Drop-Me": "1",
            "X-Keep-Me": "2",
        },
    )

    assert response.status_code == 200, response.text
    seen = workload.last_headers
    assert seen["authorization"] == f"Bearer {PROVIDERS['empiriolabs'].demo_api_key}"
    assert seen["cookie"] == "theme=dark; lang=en"
    assert seen["x-keep-me"] == "2"
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-prefix"] == f"/v1/rentals/{rental['id']}/connect"
    for dropped in ("proxy-authorization", "x-drop-me", "x-forwarded-host"):
        assert dropped not in seen
    everything = " ".join(seen.values())
    assert caller_key not in everything and rental["rental_key"] not in everything


def test_a_browser_trades_the_key_in_the_url_for_a_scoped_cookie(broker: Broker) -> None:
    rental = broker.rent("fluence")
    prefix = f"/v1/rentals/{rental['id']}/connect/"
    browser = httpx.Client(base_url=broker.url)

    first = browser.get(f"{prefix}v1/models?gpubroker_key={rental['rental_key']}&x=1")
    followed = browser.get(first.headers["location"])
    other = broker.rent("fluence")
    not_sent = browser.get(f"/v1/rentals/{other['id']}/connect/v1/models")
    elsewhere = httpx.get(
        broker.connect_url(other["id"]) + "v1/models",
        headers={"Cookie": f"gpubroker_key={rental['rental_key']}"},
    )
    account_in_url = httpx.get(
        f"{broker.url}{prefix}v1/models?gpubroker_key="
        + broker.headers["Authorization"].removeprefix("Bearer ")
    )

    assert first.status_code == 303
    assert first.headers["location"] == f"{prefix}v1/models?x=1"
    cookie = first.headers["set-cookie"]
    assert f"Path={prefix}" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert followed.status_code == 200, followed.text
    assert followed.json()["data"][0]["owned_by"] == "fluence"
    assert not_sent.status_code == 401  # the cookie is scoped to its own rental's path
    assert elsewhere.status_code == 401  # and opens no other rental if sent there anyway
    assert account_in_url.status_code == 401  # only a rental key may travel in a URL
    browser.close()
