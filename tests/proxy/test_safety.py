"""The proxy reaches the rental's own upstream and nothing else, whatever the request says.

A canary server on another loopback port records every request it gets; each escape attempt
is sent raw (`http.client` sends the target byte for byte, where httpx would normalise it)
and must be refused or stay on the rental's upstream, with no hit on the canary.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse

from providers.simulators.kit import RunningServer, serve_in_thread
from tests.proxy.conftest import Broker


@pytest.fixture
def canary() -> Iterator[tuple[RunningServer, list[str]]]:
    hits: list[str] = []
    app = FastAPI()

    @app.api_route("/{anything:path}", methods=["GET", "POST", "PUT", "DELETE"])
    async def record(anything: str, request: Request) -> PlainTextResponse:
        hits.append(f"{request.method} /{anything}")
        return PlainTextResponse("canary")

    with serve_in_thread(app) as server:
        yield server, hits


@pytest.fixture
def prefix(broker: Broker) -> str:
    """The connect path of a fresh fluence rental, ending in a slash."""
    rental = broker.rent("fluence")
    return f"/v1/rentals/{rental['id']}/connect/"


def send_raw(
    broker: Broker, target: str, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(broker.server.host, broker.server.port, timeout=10)
    try:
        connection.putrequest("GET", target, skip_host=True, skip_accept_encoding=True)
        sent = {"Host": f"{broker.server.host}:{broker.server.port}", **(headers or {})}
        for name, value in sent.items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


ESCAPES = [
    "../../../../canary",
    "v1/../../../canary",
    "%2e%2e/%2e%2e/%2E%2E/canary",
    ".%2e/canary",
    "v1%2f..%2f..%2fcanary",
    "v1%2F%2E%2E%2Fcanary",
    "..%5c..%5ccanary",
    "v1/%00/canary",
    "http://127.0.0.1:{port}/canary",
    "HTTP:/127.0.0.1:{port}/canary",
    "//127.0.0.1:{port}/canary",
    "/127.0.0.1:{port}/canary",
    "./canary",
]


def test_escape_attempts_are_refused_and_never_reach_anything_else(
    broker: Broker, canary: tuple[RunningServer, list[str]], prefix: str
) -> None:
    server, hits = canary

    for attempt in ESCAPES:
        status, body = send_raw(broker, prefix + attempt.format(port=server.port), broker.headers)
        # 400 from the proxy's path check; a NUL is refused (422) before routing even starts.
        assert status in (400, 422), (attempt, body)
        assert json.loads(body)["error"]["code"] == "invalid_request", attempt

    assert hits == []


def test_a_backslash_is_refused_by_the_server_or_the_proxy(
    broker: Broker, canary: tuple[RunningServer, list[str]], prefix: str
) -> None:
    _, hits = canary

    status, _ = send_raw(broker, prefix + "..\\..\\canary", broker.headers)

    assert status == 400
    assert hits == []


def test_host_headers_and_absolute_targets_never_choose_the_upstream(
    broker: Broker, canary: tuple[RunningServer, list[str]], prefix: str
) -> None:
    server, hits = canary
    canary_host = f"127.0.0.1:{server.port}"

    by_host, body = send_raw(
        broker,
        prefix + "v1/models",
        {
            **broker.headers,
            "Host": canary_host,
            "X-Forwarded-Host": canary_host,
            "Forwarded": f"host={canary_host}",
        },
    )
    absolute, _ = send_raw(broker, f"http://{canary_host}{prefix}v1/models", broker.headers)
    double_encoded, _ = send_raw(broker, prefix + "%252e%252e/%252e%252e/canary", broker.headers)

    assert by_host == 200 and json.loads(body)["data"][0]["owned_by"] == "fluence"
    seen = broker.workload("fluence").last_headers
    assert "x-forwarded-host" not in seen and "forwarded" not in seen
    assert absolute == 200  # the server takes the path of an absolute target; same rental
    assert double_encoded == 404  # one decoding by the workload leaves a harmless name
    assert hits == []


def test_oversized_headers_are_431_with_the_error_shape(broker: Broker, prefix: str) -> None:
    large = {f"X-Filler-{n}": "x" * 1000 for n in range(17)}

    status, body = send_raw(broker, prefix + "v1/models", {**broker.headers, **large})

    assert status == 431
    assert json.loads(body)["error"]["code"] == "invalid_request"
