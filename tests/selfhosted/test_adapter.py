"""The self-hosted adapter against the real Docker engine: GPUs pinned, locks held, errors clear."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pynvml
import pytest

from pricing.offer import Offer
from providers.base import ProviderConfig, ProviderRefused, ProviderUnavailable
from providers.rental import InstanceStatus, NotSupported, Workload
from providers.selfhosted.adapter import SelfHostedAdapter
from tests.selfhosted.conftest import Host
from tests.selfhosted.support import TEST_IMAGE, ReplayedNvml, remove_all

HTTPD = Workload(image=TEST_IMAGE, ports=(80,))
MakeAdapter = Callable[..., SelfHostedAdapter]

# Holds the allocation lock file from another process until its stdin closes.
HOLD_LOCK = """
import fcntl, os, sys
descriptor = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(descriptor, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()
"""


def offer(adapter: SelfHostedAdapter, count: int = 1) -> Offer:
    return next(o for o in adapter.list_offers().offers if o.gpu_count == count)


def test_another_broker_process_holding_the_lock_keeps_allocation_out(
    make_adapter: MakeAdapter, host: Host
) -> None:
    adapter = make_adapter("1xRTX 4090")
    only = offer(adapter)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(host.lock_file)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        adapter.lock.timeout_seconds = 0.2
        with pytest.raises(ProviderUnavailable, match="GPU allocation is busy"):
            adapter.provision(only, HTTPD, "rnt_waits")
        assert host.containers() == []
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
    adapter.lock.timeout_seconds = 30
    won = adapter.provision(only, HTTPD, "rnt_first")
    assert won.status is InstanceStatus.RUNNING and won.rental_id == "rnt_first"
    with pytest.raises(ProviderRefused) as refused:
        adapter.provision(only, HTTPD, "rnt_second")
    assert refused.value.reason == "no_capacity" and "gpu_count" in refused.value.message
    assert [c["Labels"]["gpubroker.rental"] for c in host.containers()] == ["rnt_first"]


def test_two_adapters_share_allocations_through_labels(make_adapter: MakeAdapter) -> None:
    one, other = make_adapter("2xRTX 4090"), make_adapter("2xRTX 4090")
    one.provision(offer(one), HTTPD, "rnt_a")
    assert [o.available_count for o in other.list_offers().offers] == [1]
    other.provision(offer(other), HTTPD, "rnt_b")
    assert one.list_offers().offers == []
    assert {i.rental_id for i in one.list_instances()} == {"rnt_a", "rnt_b"}


def test_real_gpus_are_requested_by_uuid(
    make_adapter: MakeAdapter, host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    ReplayedNvml("h100-sxm-node").install(monkeypatch)
    adapter = make_adapter(fake_gpus="")
    [only] = adapter.list_offers().offers  # GPU 1 computes for someone else: not offered
    assert only.id == f"selfhosted:{host.region}:h100-sxm:1x" and only.region == host.region
    requested: list[Any] = []
    start = adapter.engine.start

    def start_and_record(handle: str) -> None:
        requested.append(host.api.inspect_container(handle)["HostConfig"]["DeviceRequests"])
        start(handle)

    monkeypatch.setattr(adapter.engine, "start", start_and_record)
    # This engine has no NVIDIA runtime, so starting fails after the request was made.
    with pytest.raises(ProviderUnavailable, match="NVIDIA Container Toolkit"):
        adapter.provision(only, HTTPD, "rnt_h100")
    assert requested == [
        [
            {
                "Driver": "",
                "Count": 0,
                "DeviceIDs": ["GPU-7d5ea9b8-2f3c-4a1b-9e6d-0c8f1a2b3c4d"],
                "Capabilities": [["gpu"]],
                "Options": {},
            }
        ]
    ]
    assert host.containers() == []  # the container that could not start was removed


def test_terminate_twice_and_status_of_a_removed_container(make_adapter: MakeAdapter) -> None:
    adapter = make_adapter("1xRTX 4090")
    instance = adapter.provision(offer(adapter), HTTPD, "rnt_t")
    assert adapter.terminate(instance.handle).status is InstanceStatus.TERMINATED
    assert adapter.terminate(instance.handle).status is InstanceStatus.TERMINATED
    with pytest.raises(ProviderRefused) as gone:
        adapter.status(instance.handle)
    assert gone.value.reason == "not_found"


def test_upstream_without_ports_and_when_stopped(make_adapter: MakeAdapter) -> None:
    adapter = make_adapter("2xRTX 4090")
    portless = adapter.provision(offer(adapter), Workload(image=TEST_IMAGE), "rnt_p")
    assert adapter.upstream(portless.handle) is None
    served = adapter.provision(offer(adapter), HTTPD, "rnt_s")
    assert adapter.stop(served.handle).status is InstanceStatus.STOPPED
    assert adapter.status(served.handle).status is InstanceStatus.STOPPED  # asked for: no failure
    with pytest.raises(ProviderRefused, match="not published") as refused:
        adapter.upstream(served.handle)
    assert refused.value.reason == "conflict"


def test_another_simulated_host_on_the_same_engine_is_kept_apart(
    make_adapter: MakeAdapter, host: Host
) -> None:
    here = make_adapter("1xRTX 4090")
    neighbour_region = f"{host.region}-b"
    neighbour = SelfHostedAdapter(
        ProviderConfig(
            here.engine.base_url,
            options={"fake_gpus": "1xRTX 4090", "region": neighbour_region},
        )
    )
    try:
        mine = here.provision(offer(here), HTTPD, "rnt_here")
        theirs = neighbour.provision(offer(neighbour), HTTPD, "rnt_there")  # its own GPU
        assert [i.handle for i in here.list_instances()] == [mine.handle]
        assert [i.handle for i in neighbour.list_instances()] == [theirs.handle]
        assert here.allocated() >= {f"GPU-sim-{host.region}-0", f"GPU-sim-{neighbour_region}-0"}
    finally:
        remove_all(host.api, neighbour_region)
        neighbour.close()


def test_an_unreachable_engine_is_a_clear_provider_error(tmp_path: Path) -> None:
    socket = f"unix://{tmp_path / 'no-docker.sock'}"
    adapter = SelfHostedAdapter(ProviderConfig(socket, options={"fake_gpus": "1xL4"}))
    for call in (adapter.list_offers, adapter.list_instances):
        with pytest.raises(ProviderUnavailable, match=r"Docker engine at unix://.* is unreachable"):
            call()


def test_a_host_without_gpus_or_engine_has_nothing_to_reconcile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing() -> None:
        raise pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)

    monkeypatch.setattr(pynvml, "nvmlInit", missing)
    adapter = SelfHostedAdapter(ProviderConfig(f"unix://{tmp_path / 'no-docker.sock'}"))
    with pytest.raises(NotSupported, match="nothing to reconcile"):
        adapter.list_instances()
