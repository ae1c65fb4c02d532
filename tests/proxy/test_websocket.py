"""WebSockets through the proxy: both message types, subprotocols, closes and refusals."""

from __future__ import annotations

import pytest
from websockets.exceptions import ConnectionClosedError, InvalidStatus
from websockets.sync.client import connect

from providers.simulators.workload import CLOSE_CODE
from tests.proxy.conftest import Broker


def ws_url(broker: Broker, rental_id: str, path: str = "ws") -> str:
    return broker.connect_url(rental_id).replace("http://", "ws://") + path


@pytest.mark.parametrize("provider", ["fluence", "empiriolabs"])
def test_text_and_binary_round_trip(broker: Broker, provider: str) -> None:
    rental = broker.rent(provider)
    payload = bytes(range(256)) * 512  # 128 KiB, every byte value

    with connect(
        ws_url(broker, rental["id"]),
        additional_headers={"Authorization": f"Bearer {rental['rental_key']}"},
        subprotocols=["jupyter.v1", "chat"],  # type: ignore[list-item]
    ) as socket:
        socket.send("hello")
        text = socket.recv(timeout=10)
        socket.send(payload)
        binary = socket.recv(timeout=10)
        chosen = socket.subprotocol

    assert text == "hello"
    assert binary == payload and isinstance(binary, bytes)
    assert chosen == "jupyter.v1"


def test_the_workloads_close_reaches_the_caller(broker: Broker) -> None:
    rental = broker.rent("fluence")

    with connect(ws_url(broker, rental["id"]), additional_headers=broker.headers) as socket:
        socket.send("bye")
        with pytest.raises(ConnectionClosedError) as closed:
            socket.recv(timeout=10)

    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == CLOSE_CODE
    assert closed.value.rcvd.reason == "closed by the workload"


def test_a_browser_socket_authorised_by_the_rental_key_in_the_url(broker: Broker) -> None:
    rental = broker.rent("fluence")
    url = ws_url(broker, rental["id"], f"ws?gpubroker_key={rental['rental_key']}")

    with connect(url) as socket:
        socket.send("from a browser")
        assert socket.recv(timeout=10) == "from a browser"

    assert "gpubroker_key" not in broker.workload("fluence").last_headers.get("cookie", "")


def test_refused_handshakes_carry_the_error_status(broker: Broker) -> None:
    rental = broker.rent("fluence")
    ssh_only = broker.rent("icgpu")

    with pytest.raises(InvalidStatus) as keyless:
        connect(ws_url(broker, rental["id"])).close()
    with pytest.raises(InvalidStatus) as foreign:
        connect(ws_url(broker, rental["id"]), additional_headers=broker.account().headers)
    with pytest.raises(InvalidStatus) as ssh:
        connect(ws_url(broker, ssh_only["id"]), additional_headers=broker.headers)
    with pytest.raises(InvalidStatus) as missing_route:
        connect(ws_url(broker, rental["id"], "no-such-socket"), additional_headers=broker.headers)

    assert keyless.value.response.status_code == 401
    assert foreign.value.response.status_code == 404
    assert ssh.value.response.status_code == 409
    assert b'"conflict"' in ssh.value.response.body  # the API's error shape
    assert missing_route.value.response.status_code == 502
