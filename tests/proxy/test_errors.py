"""Methods, redirects and failures: what the caller gets when the workload misbehaves.

Nothing here waits on a clock: a slow workload is slower than a tiny read timeout by a wide
margin, and pytest-timeout turns any hang into a failure.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from tests.proxy.conftest import Broker


def instance_of(broker: Broker, provider: str) -> str:
    (instance,) = [i for i in broker.sims[provider].instances() if i["status"] == "ACTIVE"]
    return str(instance["id"])


def test_a_workload_that_is_down_is_a_quick_502(broker: Broker) -> None:
    rental = broker.rent("fluence")
    url = broker.connect_url(rental["id"]) + "v1/models"
    assert httpx.get(url, headers=broker.headers).status_code == 200
    broker.sims["fluence"].server.app.state.sim.listeners.close(instance_of(broker, "fluence"))  # type: ignore[attr-defined]

    first = httpx.get(url, headers=broker.headers)
    again = httpx.get(url, headers=broker.headers)

    for response in (first, again):
        assert response.status_code == 502
        error = response.json()["error"]
        assert error["code"] == "provider_error" and rental["id"] in error["message"]


def test_a_slow_workload_is_a_504(make_broker: Callable[..., Broker]) -> None:
    broker = make_broker(read_timeout_seconds=0.2)
    rental = broker.rent("fluence")

    response = httpx.get(
        broker.connect_url(rental["id"]) + "sleep/1.5", headers=broker.headers, timeout=30
    )

    assert response.status_code == 504
    assert response.json()["error"]["code"] == "provider_error"


def test_a_stream_that_stalls_is_cut_not_left_hanging(make_broker: Callable[..., Broker]) -> None:
    broker = make_broker(read_timeout_seconds=0.2)
    rental = broker.rent("fluence")
    url = broker.connect_url(rental["id"]) + "events?count=3&interval=1.5"

    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream("GET", url, headers=broker.headers, timeout=30) as response,
    ):
        assert response.status_code == 200
        for _ in response.iter_lines():
            pass


def test_a_caller_that_leaves_closes_the_upstream_stream(broker: Broker) -> None:
    rental = broker.rent("fluence")
    workload = broker.workload("fluence")
    url = broker.connect_url(rental["id"]) + "events?count=100000&interval=0.05"

    with httpx.stream("GET", url, headers=broker.headers) as response:
        lines = response.iter_lines()
        assert next(lines) == 'data: {"n":0}'
        assert workload.open_requests == 1

    while workload.open_requests:  # pytest-timeout fails the test if it never closes
        time.sleep(0.01)


def test_a_caller_that_leaves_before_the_answer_closes_the_upstream_request(
    broker: Broker,
) -> None:
    rental = broker.rent("fluence")
    workload = broker.workload("fluence")
    url = broker.connect_url(rental["id"]) + "sleep/600"  # far past pytest's timeout

    with pytest.raises(httpx.ReadTimeout):
        httpx.get(url, headers=broker.headers, timeout=httpx.Timeout(10, read=0.5))

    while workload.open_requests:  # closed by the proxy, not by the end of the sleep
        time.sleep(0.01)


def test_every_method_reaches_the_workload_with_path_query_and_body(broker: Broker) -> None:
    rental = broker.rent("empiriolabs")
    url = broker.connect_url(rental["id"]) + "echo/a%20b/c?x=1&y=%2F"

    for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
        response = httpx.request(method, url, headers=broker.headers, content=b"12345")
        assert response.status_code == 200, (method, response.text)
        assert response.json() == {
            "method": method,
            "path": "/a b/c",
            "query": "x=1&y=%2F",
            "body_bytes": 5,
        }
    head = httpx.head(url, headers=broker.headers)
    webdav = httpx.request("PROPFIND", url, headers=broker.headers)
    trace = httpx.request("TRACE", url, headers=broker.headers)

    assert head.status_code == 200 and head.headers["x-echo-method"] == "HEAD"
    assert head.content == b""
    assert webdav.status_code == 405 and webdav.json() == {"detail": "Method Not Allowed"}
    assert trace.status_code == 405 and trace.json()["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize("provider", ["empiriolabs", "fluence"])
def test_redirects_and_cookies_stay_under_the_connect_path(broker: Broker, provider: str) -> None:
    rental = broker.rent(provider)
    prefix = f"/v1/rentals/{rental['id']}/connect/"

    response = httpx.get(broker.connect_url(rental["id"]) + "login", headers=broker.headers)
    after = httpx.get(broker.connect_url(rental["id"]) + "echo/next", headers=broker.headers)

    assert after.status_code == 200
    assert "cookie" not in broker.workload(provider).last_headers  # the proxy keeps no jar
    assert response.status_code == 303
    assert response.headers["location"] == f"{prefix}v1/models"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("session=s3ss10n;") and cookie.endswith(f"Path={prefix}")
    assert "Domain" not in cookie


def test_workload_errors_pass_through_untouched(broker: Broker) -> None:
    rental = broker.rent("aivory")

    missing = httpx.get(broker.connect_url(rental["id"]) + "no/such/page", headers=broker.headers)

    assert missing.status_code == 404
    assert missing.json() == {"detail": "Not Found"}  # the workload's own body
