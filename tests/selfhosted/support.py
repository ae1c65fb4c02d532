"""Helpers shared by the self-hosted tests: recorded NVML hosts, devices, the real engine."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import docker
import pynvml
import pytest

from providers.selfhosted.containers import LABEL_REGION
from providers.selfhosted.devices import GIB, GpuDevice

TEST_IMAGE = "gpubroker-test/busybox:latest"

FIXTURE = Path(__file__).parents[1] / "fixtures" / "selfhosted" / "nvml_devices.json"
HOSTS: dict[str, Any] = json.loads(FIXTURE.read_text())["hosts"]


class ReplayedNvml:
    """The NVML calls discovery makes, answering from one recorded host."""

    def __init__(self, host: str, *, as_bytes: bool = False) -> None:
        self.driver = HOSTS[host]["driver"]
        self.devices = HOSTS[host]["devices"]
        self.as_bytes = as_bytes
        self.initialised = False

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        calls = {
            "nvmlInit": self.init,
            "nvmlShutdown": self.shutdown,
            "nvmlSystemGetDriverVersion": lambda: self._text(self.driver),
            "nvmlDeviceGetCount": lambda: len(self.devices),
            "nvmlDeviceGetHandleByIndex": lambda index: self.devices[index],
            "nvmlDeviceGetName": lambda device: self._text(device["name"]),
            "nvmlDeviceGetUUID": lambda device: self._text(device["uuid"]),
            "nvmlDeviceGetMemoryInfo": lambda device: SimpleNamespace(
                total=device["memory_total"],
                used=device["memory_used"],
                free=device["memory_total"] - device["memory_used"],
            ),
            "nvmlDeviceGetUtilizationRates": self.utilization,
            "nvmlDeviceGetComputeRunningProcesses": lambda device: [
                SimpleNamespace(pid=4242 + n, usedGpuMemory=device["memory_used"])
                for n in range(device["compute_processes"])
            ],
        }
        for name, call in calls.items():
            monkeypatch.setattr(pynvml, name, call)

    def init(self) -> None:
        self.initialised = True

    def shutdown(self) -> None:
        self.initialised = False

    def utilization(self, device: dict[str, Any]) -> SimpleNamespace:
        if device["utilization_gpu"] is None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return SimpleNamespace(gpu=device["utilization_gpu"], memory=0)

    def _text(self, value: str) -> str | bytes:
        return value.encode() if self.as_bytes else value


def real(index: int, model: str, vram_gb: int, *, busy: bool = False) -> GpuDevice:
    """A device as NVML would describe it, with a UUID of the real shape."""
    return GpuDevice(
        index=index,
        uuid=f"GPU-0000000{index}-aaaa-bbbb-cccc-dddddddddddd",
        model=model,
        raw_name=f"NVIDIA {model}",
        vram_gb=vram_gb,
        known=True,
        memory_total_bytes=vram_gb * GIB,
        busy=busy,
    )


def containers_in(api: docker.APIClient, region: str) -> list[dict[str, Any]]:
    """Every container, running or not, that a test's simulated host (its region) started."""
    return list(api.containers(all=True, filters={"label": [f"{LABEL_REGION}={region}"]}))


def remove_all(api: docker.APIClient, region: str) -> None:
    for container in containers_in(api, region):
        api.remove_container(container["Id"], v=True, force=True)
