"""An idle timeout: traffic through the connect proxy (HTTP or WebSocket) keeps a rental alive;
without it for `idle_timeout_seconds` the meter stops it where the provider can stop, else
terminates it, with `reason` "idle". A workload reached only over SSH, on a backend that reports
no GPU utilisation, cannot be watched for idleness: that rent is refused, naming the field; where
the backend reports it, GPUs busy above the threshold count as activity."""

from __future__ import annotations

import pytest
from websockets.sync.client import connect

from tests.limits.conftest import TICK, Broker
from tests.proxy.conftest import WORKLOADS

IDLE = 300


def idle_ticks(broker: Broker, rental_id: str, seconds: int) -> None:
    """Let `seconds` pass tick by tick, the rental running all along."""
    for _ in range(seconds // TICK):
        broker.tick()
        assert broker.get(rental_id)["status"] == "running"


def test_http_requests_reset_the_idle_timer(limited: Broker) -> None:
    rental = limited.rent_limited("empiriolabs", idle_timeout_seconds=IDLE)
    assert rental["idle_timeout_seconds"] == IDLE
    key = limited.headers
    idle_ticks(limited, rental["id"], 240)

    answer = limited.api.get(limited.connect_url(rental["id"]) + "v1/models", headers=key)
    assert answer.status_code == 200, answer.text
    idle_ticks(limited, rental["id"], IDLE - TICK)  # past 300 s from the start, still running
    ticks = limited.ticks_until_ended(rental["id"])

    ended = limited.get(rental["id"])
    assert ticks == 1  # ended by the tick at 300 s after the request
    assert ended["status"] == "stopped" and ended["reason"] == "idle"  # EmpirioLabs can stop
    assert ended["billed_seconds"] == 240 + IDLE
    assert ended["last_activity_at"] is not None


def test_websocket_messages_reset_the_idle_timer(limited: Broker) -> None:
    rental = limited.rent_limited("fluence", idle_timeout_seconds=IDLE)
    url = limited.connect_url(rental["id"]).replace("http://", "ws://") + "ws"
    key = limited.headers
    with connect(url, additional_headers=key) as socket:
        idle_ticks(limited, rental["id"], 240)
        socket.send("still here")  # on a socket opened 240 s ago: the message counts
        assert socket.recv(timeout=10) == "still here"
        idle_ticks(limited, rental["id"], IDLE - TICK)
        ticks = limited.ticks_until_ended(rental["id"])

    ended = limited.get(rental["id"])
    assert ticks == 1
    assert ended["status"] == "terminated" and ended["reason"] == "idle"  # Fluence cannot stop
    assert ended["billed_seconds"] == 240 + IDLE


def test_idle_on_an_ssh_only_workload_without_utilisation_is_422(limited: Broker) -> None:
    workload, _, _ = WORKLOADS["icgpu"]
    offer = limited.offer("icgpu")
    body = {"offer_id": offer["id"], **workload, "idle_timeout_seconds": IDLE}
    refused = limited.api.post("/v1/rentals", json=body, headers=limited.headers)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["param"] == "idle_timeout_seconds"
    wallet = limited.api.get("/v1/wallet", headers=limited.headers).json()
    assert wallet["held"] == "0.000000"


def test_busy_gpus_keep_an_ssh_rental_alive_where_the_backend_reports_them(
    limited: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The backend reads its GPUs' utilisation (as the self-hosted one does from NVML).
    busy = {"percent": 80}
    adapter = limited.app.state.rentals.adapters["icgpu"]
    monkeypatch.setattr(adapter, "gpu_utilisation", lambda _: busy["percent"], raising=False)
    rental = limited.rent_limited("icgpu", idle_timeout_seconds=IDLE)  # SSH only: accepted now
    idle_ticks(limited, rental["id"], 2 * IDLE)  # no request ever, but the GPUs are busy

    busy["percent"] = 5  # below GPUBROKER_IDLE_GPU_BUSY_PERCENT (10)
    ticks = limited.ticks_until_ended(rental["id"])

    ended = limited.get(rental["id"])
    assert ticks == IDLE // TICK
    assert ended["reason"] == "idle" and ended["billed_seconds"] == 3 * IDLE
