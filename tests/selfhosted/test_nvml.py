"""NVML discovery on readings recorded from real devices: names, memory, UUIDs, load, failures.

`read_devices` runs against a stand-in for the NVML library that replays the recorded answers
(tests/fixtures/selfhosted; no driver is needed); the interpretation is the real code throughout.
"""

from __future__ import annotations

from typing import Any

import pynvml
import pytest
from fastapi.testclient import TestClient

from broker.app import create_app
from broker.settings import CoreSettings
from providers.base import ProviderConfig, ProviderRefused
from providers.selfhosted.adapter import SelfHostedAdapter
from providers.selfhosted.devices import NvmlReading, device_from_reading
from providers.selfhosted.nvml import NvmlUnavailable, read_devices
from tests.selfhosted.support import HOSTS, ReplayedNvml


def reading(device: dict[str, Any], index: int = 0) -> NvmlReading:
    return NvmlReading(
        index=index,
        name=device["name"],
        uuid=device["uuid"],
        memory_total_bytes=device["memory_total"],
        memory_used_bytes=device["memory_used"],
        utilization_pct=device["utilization_gpu"],
        compute_processes=device["compute_processes"],
    )


@pytest.mark.parametrize(
    ("host", "index", "model", "vram_gb", "known", "busy"),
    [
        ("h100-sxm-node", 0, "H100 SXM", 80, True, False),
        ("h100-sxm-node", 1, "H100 SXM", 80, True, True),
        ("a100-node", 0, "A100 40GB", 40, True, False),
        ("rtx-4090-workstation", 0, "RTX 4090", 24, True, False),
        ("rtx-4090-workstation", 1, "NVIDIA GeForce GTX 1080 Ti", 11, False, False),
    ],
)
def test_recorded_devices_are_canonicalised(
    host: str, index: int, model: str, vram_gb: int, known: bool, busy: bool
) -> None:
    recorded = HOSTS[host]["devices"][index]
    device = device_from_reading(reading(recorded, index))
    assert (device.model, device.vram_gb, device.known, device.busy) == (
        model,
        vram_gb,
        known,
        busy,
    )
    assert device.uuid == recorded["uuid"] and device.uuid.startswith("GPU-")
    assert device.raw_name == recorded["name"]
    assert device.memory_total_bytes == recorded["memory_total"]
    assert device.utilization_pct == recorded["utilization_gpu"]
    assert not device.simulated


@pytest.mark.parametrize("as_bytes", [False, True], ids=["str", "bytes"])
def test_read_devices_replays_a_host(monkeypatch: pytest.MonkeyPatch, as_bytes: bool) -> None:
    nvml = ReplayedNvml("h100-sxm-node", as_bytes=as_bytes)
    nvml.install(monkeypatch)
    driver, readings = read_devices()
    assert driver == "550.54.15"
    devices = [device_from_reading(r) for r in readings]
    assert [(d.index, d.uuid, d.model, d.busy) for d in devices] == [
        (0, "GPU-7d5ea9b8-2f3c-4a1b-9e6d-0c8f1a2b3c4d", "H100 SXM", False),
        (1, "GPU-1c9a3e57-88d2-4b0f-a6e4-5f2d7c9b1e03", "H100 SXM", True),
    ]
    assert devices[1].utilization_pct == 98
    assert not nvml.initialised  # shut down after reading


def test_unsupported_utilization_reads_as_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    ReplayedNvml("rtx-4090-workstation").install(monkeypatch)
    _, readings = read_devices()
    assert [r.utilization_pct for r in readings] == [3, None]


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (pynvml.NVML_ERROR_LIBRARY_NOT_FOUND, "NVML is not installed"),
        (pynvml.NVML_ERROR_DRIVER_NOT_LOADED, "driver is installed but not loaded"),
        (pynvml.NVML_ERROR_NO_PERMISSION, "permission denied"),
        (pynvml.NVML_ERROR_UNKNOWN, "NVML failed to start"),
    ],
)
def test_no_usable_driver_says_why(monkeypatch: pytest.MonkeyPatch, error: int, words: str) -> None:
    def fail() -> None:
        raise pynvml.NVMLError(error)

    monkeypatch.setattr(pynvml, "nvmlInit", fail)
    with pytest.raises(NvmlUnavailable, match=words):
        read_devices()


def test_a_failure_while_reading_still_shuts_nvml_down(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = ReplayedNvml("a100-node")
    nvml.install(monkeypatch)

    def lost(_: object) -> None:
        raise pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)

    monkeypatch.setattr(pynvml, "nvmlDeviceGetMemoryInfo", lost)
    with pytest.raises(NvmlUnavailable, match="while reading the GPUs"):
        read_devices()
    assert not nvml.initialised


def test_adapter_discovers_through_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    ReplayedNvml("h100-sxm-node").install(monkeypatch)
    adapter = SelfHostedAdapter(ProviderConfig("unix:///nonexistent/docker.sock"))
    devices = adapter.devices()
    assert [(d.model, d.busy, d.simulated) for d in devices] == [
        ("H100 SXM", False, False),
        ("H100 SXM", True, False),
    ]


def test_without_nvml_the_provider_lists_nothing_and_says_why(
    monkeypatch: pytest.MonkeyPatch, make_settings: Any
) -> None:
    def missing() -> None:
        raise pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)

    monkeypatch.setattr(pynvml, "nvmlInit", missing)
    adapter = SelfHostedAdapter(ProviderConfig("unix:///nonexistent/docker.sock"))
    with pytest.raises(ProviderRefused) as refused:
        adapter.list_offers()
    assert refused.value.reason == "not_enabled"
    assert "GPUBROKER_SELFHOSTED_FAKE_GPUS" in refused.value.message

    settings: CoreSettings = make_settings(providers="selfhosted")
    app = create_app(settings, start_jobs=False)
    app.state.refresher.refresh_all()
    with TestClient(app) as client:
        block = client.get("/v1/offers").json()["providers"]["selfhosted"]
    assert block["status"] == "error" and block["offers"] == 0
    assert "NVML is not installed" in block["error"]
