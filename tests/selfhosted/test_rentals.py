"""Renting self-hosted GPUs through the broker API, on a real Docker engine with simulated GPUs.

The workload is busybox httpd (scripts/docker_test_engine.sh builds the image). Each test is its
own simulated host; every container it started is removed afterwards (see conftest).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from broker.rentals.billing import cost_of
from pricing.money import to_micros
from tests.selfhosted.conftest import WORKLOAD, Host, SelfHostedBroker

Build = Callable[..., SelfHostedBroker]


def get_with_retries(url: str) -> httpx.Response:
    """GET the workload directly; httpd may take a moment to listen once the container runs."""
    for _ in range(100):
        try:
            return httpx.get(url, timeout=5)
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError(f"nothing answered at {url}")


def offer_ids(broker: SelfHostedBroker) -> dict[str, int | None]:
    broker.refresh()
    return {o["id"]: o["available_count"] for o in broker.offers(provider="selfhosted")}


def test_rent_reach_and_terminate(make_broker: Build, host: Host) -> None:
    broker = make_broker("2xRTX 4090")
    region = f"{host.region} (simulated)"
    offers = broker.offers(provider="selfhosted", gpu="rtx4090")
    assert [(o["gpu_count"], o["region"], o["available_count"]) for o in offers] == [
        (1, region, 2),
        (2, region, 1),
    ]
    response = broker.rent({"gpu": "RTX 4090", "providers": ["selfhosted"], **WORKLOAD})
    assert response.status_code == 201, response.text
    rental = response.json()
    assert rental["provider"] == "selfhosted" and rental["gpu_count"] == 1
    running = broker.wait_status(rental["id"], "running")
    assert running["price_per_hour"] == "0.450000"  # the default price of an RTX 4090

    [container] = host.containers()
    labels = container["Labels"]
    assert labels["gpubroker.rental"] == rental["id"]
    assert labels["gpubroker.gpus"] == f"GPU-sim-{host.region}-0"
    assert container["State"] == "running"
    assert [(p["IP"], p["PrivatePort"]) for p in container["Ports"]] == [("127.0.0.1", 80)]
    assert offer_ids(broker) == {f"selfhosted:sim:{host.region}:rtx-4090:1x": 1}

    upstream = broker.adapter.upstream(container["Id"])
    assert upstream is not None and upstream.base_url.startswith("http://127.0.0.1:")
    direct = get_with_retries(f"{upstream.base_url}/index.html")  # httpd is listening
    assert direct.status_code == 200 and direct.text == "hello from gpubroker-test\n"
    proxied = broker.client.get(f"{rental['connect_url']}index.html", headers=broker.headers)
    assert proxied.status_code == 200, proxied.text
    assert proxied.text == "hello from gpubroker-test\n"
    with_rental_key = broker.client.get(
        rental["connect_url"], headers={"Authorization": f"Bearer {rental['rental_key']}"}
    )
    assert with_rental_key.text == "hello from gpubroker-test\n"

    broker.clock.advance(90)
    ended = broker.client.delete(f"/v1/rentals/{rental['id']}", headers=broker.headers).json()
    assert ended["status"] == "terminated"
    assert to_micros(ended["cost"]) == cost_of(450_000, 90)
    assert host.containers() == []
    assert broker.micros()["held"] == 0
    assert offer_ids(broker) == {
        f"selfhosted:sim:{host.region}:rtx-4090:1x": 2,
        f"selfhosted:sim:{host.region}:rtx-4090:2x": 1,
    }
    broker.invariants()


def test_env_and_a_two_gpu_bundle(make_broker: Build, host: Host) -> None:
    broker = make_broker("2xRTX 4090")
    offer_id = f"selfhosted:sim:{host.region}:rtx-4090:2x"
    body = {"offer_id": offer_id, **WORKLOAD, "env": {"MODEL_NAME": "demo", "_X": "1"}}
    rental = broker.rent(body).json()
    broker.wait_status(rental["id"], "running")
    [container] = host.containers()
    inspected = host.api.inspect_container(container["Id"])
    assert {"MODEL_NAME=demo", "_X=1"} <= set(inspected["Config"]["Env"])
    assert container["Labels"]["gpubroker.gpus"] == (
        f"GPU-sim-{host.region}-0,GPU-sim-{host.region}-1"
    )
    assert inspected["HostConfig"]["DeviceRequests"] is None  # simulated: no GPU requested
    assert offer_ids(broker) == {}


def test_two_rents_for_the_last_free_gpu(make_broker: Build, host: Host) -> None:
    broker = make_broker("1xRTX 4090")
    offer_id = f"selfhosted:sim:{host.region}:rtx-4090:1x"
    start = threading.Barrier(2)
    answers: list[httpx.Response] = []

    def rent() -> None:
        start.wait()
        answers.append(broker.rent({"offer_id": offer_id, **WORKLOAD}))

    threads = [threading.Thread(target=rent) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.status_code for r in answers) == [201, 503], [r.text for r in answers]
    lost = next(r.json()["error"] for r in answers if r.status_code == 503)
    assert [a["error"] for a in lost["attempts"]] == ["no_capacity"]
    won = next(r.json() for r in answers if r.status_code == 201)
    assert [c["Labels"]["gpubroker.rental"] for c in host.containers()] == [won["id"]]
    assert broker.micros()["held"] == to_micros(won["hold"])
    broker.invariants()


def test_a_restarted_broker_recovers_allocations_and_rentals(
    make_broker: Build, host: Host
) -> None:
    first = make_broker("2xRTX 4090")
    rental_id = first.rent({"gpu": "RTX 4090", "providers": ["selfhosted"], **WORKLOAD}).json()[
        "id"
    ]
    first.wait_status(rental_id, "running")

    again = make_broker("2xRTX 4090", restart_of=first)
    assert again.adapter is not first.adapter
    assert again.adapter.allocated() == {f"GPU-sim-{host.region}-0"}
    assert offer_ids(again) == {f"selfhosted:sim:{host.region}:rtx-4090:1x": 1}
    report = again.app.state.reconciler.run()
    assert report.orphans_terminated == [] and report.rentals_lost == []
    assert again.wait_status(rental_id, "running")["provider"] == "selfhosted"
    [instance] = again.adapter.list_instances()
    assert instance.rental_id == rental_id

    second = again.rent({"gpu": "RTX 4090", "providers": ["selfhosted"], **WORKLOAD}).json()
    again.wait_status(second["id"], "running")
    labelled = {
        c["Labels"]["gpubroker.rental"]: c["Labels"]["gpubroker.gpus"] for c in host.containers()
    }
    assert labelled == {
        rental_id: f"GPU-sim-{host.region}-0",
        second["id"]: f"GPU-sim-{host.region}-1",
    }
    ended = again.client.delete(f"/v1/rentals/{rental_id}", headers=again.headers)
    assert ended.json()["status"] == "terminated"
    assert [c["Labels"]["gpubroker.rental"] for c in host.containers()] == [second["id"]]


def test_reconciliation_removes_an_orphan_container(make_broker: Build, host: Host) -> None:
    broker = make_broker("2xRTX 4090")
    offer = broker.app.state.catalog.index.get(f"selfhosted:sim:{host.region}:rtx-4090:1x")
    from providers.rental import Workload

    orphan = broker.adapter.provision(
        offer, Workload(image=WORKLOAD["image"], ports=(80,)), "rnt_unknown_to_this_broker"
    )
    assert [c["Id"] for c in host.containers()] == [orphan.handle]
    report = broker.app.state.reconciler.run()
    assert report.orphans_terminated == [orphan.handle]
    assert host.containers() == []
    assert offer_ids(broker)[f"selfhosted:sim:{host.region}:rtx-4090:2x"] == 1


def test_a_workload_that_exits_fails_the_rental_with_its_logs(
    make_broker: Build, host: Host
) -> None:
    broker = make_broker("1xRTX 4090")
    env = {"GPUBROKER_TEST_EXIT": "3", "GPUBROKER_TEST_MESSAGE": "CUDA error: no kernel image"}
    rental = broker.rent({"gpu": "RTX 4090", **WORKLOAD, "env": env}).json()
    failed = broker.wait_status(rental["id"], "failed")
    assert "exited with code 3" in failed["reason"]
    assert "gpubroker-test: starting\nCUDA error: no kernel image" in failed["reason"]
    assert failed["cost"] == "0.000000" and broker.micros()["held"] == 0
    assert offer_ids(broker) == {f"selfhosted:sim:{host.region}:rtx-4090:1x": 1}  # freed
    broker.app.state.reconciler.run()  # the exited container is nobody's now: removed
    assert host.containers() == []


def test_a_running_workload_that_dies_fails_the_rental(make_broker: Build, host: Host) -> None:
    broker = make_broker("1xRTX 4090")
    rental_id = broker.rent({"gpu": "RTX 4090", **WORKLOAD}).json()["id"]
    broker.wait_status(rental_id, "running")
    broker.clock.advance(120)
    broker.sync()
    [container] = host.containers()
    host.api.kill(container["Id"])
    broker.clock.advance(30)
    failed = broker.wait_status(rental_id, "failed")
    assert "exited with code 137" in failed["reason"]
    assert "gpubroker-test: starting" in failed["reason"]
    assert to_micros(failed["cost"]) == cost_of(450_000, 120)  # billed to the last sighting
    broker.invariants()


def test_stop_frees_the_gpu_and_start_takes_it_back(make_broker: Build, host: Host) -> None:
    broker = make_broker("1xRTX 4090")
    first = broker.rent({"gpu": "RTX 4090", **WORKLOAD}).json()["id"]
    broker.wait_status(first, "running")
    stopped = broker.client.post(f"/v1/rentals/{first}/stop", headers=broker.headers).json()
    assert stopped["status"] == "stopped"
    assert [c["State"] for c in host.containers()] == ["exited"]
    assert offer_ids(broker) == {f"selfhosted:sim:{host.region}:rtx-4090:1x": 1}
    assert broker.app.state.reconciler.run().orphans_terminated == []  # a stopped rental stays

    started = broker.client.post(f"/v1/rentals/{first}/start", headers=broker.headers)
    assert started.status_code == 200, started.text
    broker.wait_status(first, "running")
    assert offer_ids(broker) == {}

    broker.client.post(f"/v1/rentals/{first}/stop", headers=broker.headers)
    broker.refresh()  # the catalog shows the freed GPU from its next refresh on
    second = broker.rent({"gpu": "RTX 4090", **WORKLOAD}).json()["id"]  # takes the GPU
    broker.wait_status(second, "running")
    refused = broker.client.post(f"/v1/rentals/{first}/start", headers=broker.headers)
    assert refused.status_code == 503, refused.text
    assert "rented to another container" in refused.json()["error"]["message"]
    assert broker.rental(first)["status"] == "stopped"
    broker.invariants()


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"gpu": "RTX 4090", "gpu_count": 3, "providers": ["selfhosted"]}, "gpu_count"),
        ({"gpu": "RTX 4090", "ports": [70000]}, "ports.0"),
        ({"gpu": "RTX 4090", "env": {"1NOT_A_NAME": "x"}}, "env"),
        ({"gpu": "RTX 4090", "mode": "model", "model": "Qwen/Qwen2.5-0.5B"}, "mode"),
        ({"gpu": "RTX 4090", "mode": "template", "template": "jupyter"}, "mode"),
        ({"gpu": "RTX 4090", "mode": "ssh", "ssh_key": "ssh-ed25519 AAAA"}, "mode"),
    ],
    ids=["too-many-gpus", "port", "env-name", "model", "template", "ssh"],
)
def test_bad_input_is_422_and_starts_nothing(
    make_broker: Build, host: Host, body: dict[str, Any], param: str
) -> None:
    broker = make_broker("2xRTX 4090")
    request = {**WORKLOAD, **body}
    if body.get("mode") in ("model", "template", "ssh"):
        request.pop("image")
        request.pop("ports")
    response = broker.rent(request)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and error["param"] == param
    assert host.containers() == []
    assert broker.micros()["held"] == 0


def test_an_image_that_cannot_be_pulled_is_refused(make_broker: Build, host: Host) -> None:
    broker = make_broker("1xRTX 4090")
    absent = f"gpubroker-test/absent-{host.region}:latest"
    response = broker.rent({"gpu": "RTX 4090", "mode": "custom", "image": absent, "ports": [80]})
    assert response.status_code == 503, response.text
    [attempt] = response.json()["error"]["attempts"]
    assert attempt["error"] == "refused" and attempt["blocked"] == "offer"
    assert f"image {absent} is not on this host and could not be pulled" in attempt["message"]
    assert host.containers() == []
    assert broker.micros()["held"] == 0
