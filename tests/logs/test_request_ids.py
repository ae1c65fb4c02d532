"""Every response carries an `X-Request-ID`, and every line logged while handling it the same id."""

from __future__ import annotations

import json

import httpx
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.logs.conftest import Captured
from tests.proxy.conftest import Broker

HEADER = "X-Request-ID"


def records(captured: Captured) -> list[dict[str, object]]:
    return [json.loads(line) for line in captured.lines()]


def test_a_plain_incoming_id_is_kept_and_anything_else_replaced(loud_broker: Broker) -> None:
    kept = loud_broker.api.get("/healthz", headers={HEADER: "trace-42.a:b"})
    long = loud_broker.api.get("/healthz", headers={HEADER: "x" * 200})
    odd = loud_broker.api.get("/healthz", headers={HEADER: "id with spaces"})
    fresh = loud_broker.api.get("/healthz")

    assert kept.headers[HEADER] == "trace-42.a:b"
    for response in (long, odd, fresh):
        assert response.headers[HEADER] and response.headers[HEADER] not in ("x" * 200,)
        assert " " not in response.headers[HEADER]
    assert len({long.headers[HEADER], odd.headers[HEADER], fresh.headers[HEADER]}) == 3


def test_errors_and_proxied_responses_carry_the_id(loud_broker: Broker) -> None:
    rental = loud_broker.rent("empiriolabs")
    base = loud_broker.connect_url(rental["id"])

    def boom() -> None:
        raise RuntimeError("unexpected")

    loud_broker.app.add_api_route("/boom", boom)
    responses = {
        "proxied": httpx.get(base + "v1/models", headers=loud_broker.headers),
        "refused": httpx.get(base + "v1/models", headers={"Authorization": "Bearer gbk_nope"}),
        "not found": loud_broker.api.get("/v1/nothing-here"),
        "invalid": loud_broker.api.get("/v1/offers", params={"limit": "many"}),
        "crashed": loud_broker.api.get("/boom", headers={HEADER: "crash-1"}),
    }

    assert {name: r.status_code for name, r in responses.items()} == {
        "proxied": 200,
        "refused": 401,
        "not found": 404,
        "invalid": 422,
        "crashed": 500,
    }
    assert all(r.headers.get(HEADER) for r in responses.values())
    assert responses["crashed"].headers[HEADER] == "crash-1"


def test_websocket_handshakes_carry_the_id(loud_broker: Broker) -> None:
    rental = loud_broker.rent("fluence")
    url = loud_broker.connect_url(rental["id"]).replace("http://", "ws://") + "ws"

    with connect(url, additional_headers={HEADER: "socket-1", **loud_broker.headers}) as socket:
        accepted = socket.response.headers.get(HEADER)
    try:
        connect(url, additional_headers={"Authorization": "Bearer gbk_nope"})
    except InvalidStatus as refused:
        denied = refused.response
    assert accepted == "socket-1"
    assert denied.status_code == 401 and denied.headers.get(HEADER)


def test_lines_logged_while_handling_a_request_carry_its_id(
    loud_broker: Broker, captured: Captured
) -> None:
    rental = loud_broker.rent("empiriolabs")
    ended = loud_broker.api.delete(
        f"/v1/rentals/{rental['id']}", headers={**loud_broker.headers, HEADER: "end-rental-7"}
    )
    assert ended.status_code == 200, ended.text

    lines = [r for r in records(captured) if r.get("request_id") == "end-rental-7"]
    assert {"rental.terminated"} <= {r.get("event") for r in lines}
    terminated = next(r for r in lines if r.get("event") == "rental.terminated")
    assert terminated["rental_id"] == rental["id"]
    assert terminated["provider"] == "empiriolabs" and terminated["status"] == "terminated"
    assert any(r["logger"] == "uvicorn.access" for r in lines)
