"""This host's GPUs as the broker sees them: read through NVML, or declared as simulated.

Pure functions. `nvml.read_devices` gathers the driver's raw answers into `NvmlReading`s and
`device_from_reading` interprets them, so the interpretation is tested on values recorded from
real devices without a driver. Simulated devices (`GPUBROKER_SELFHOSTED_FAKE_GPUS`) let the whole
backend run, containers included, on a machine with no GPU: for development, the demo and tests.

A GPU is `busy` when a compute process runs on it. Graphics processes (a desktop's X server) do
not count: they share a workstation GPU without stopping a CUDA workload from using it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pricing.gpus import canonical_gpu, suggest_gpus
from pricing.offer import slug

GIB = 1 << 30
MAX_FAKE_GPUS = 64


@dataclass(frozen=True)
class NvmlReading:
    """What NVML said about one device; `name` and `uuid` are bytes on old bindings."""

    index: int
    name: str | bytes
    uuid: str | bytes
    memory_total_bytes: int
    memory_used_bytes: int
    utilization_pct: int | None  # None where the device does not report it
    compute_processes: int


@dataclass(frozen=True)
class GpuDevice:
    """One GPU of this host. `model` is the canonical name the catalog uses."""

    index: int
    uuid: str
    model: str
    raw_name: str
    vram_gb: int
    known: bool
    memory_total_bytes: int
    memory_used_bytes: int = 0
    utilization_pct: int | None = None
    busy: bool = False
    simulated: bool = False


def _text(value: str | bytes) -> str:
    return (value.decode("utf-8", "replace") if isinstance(value, bytes) else value).strip()


def device_from_reading(reading: NvmlReading) -> GpuDevice:
    """One NVML device as a `GpuDevice`, its name canonicalised with its memory in GiB."""
    raw_name = _text(reading.name)
    name = canonical_gpu(raw_name, reading.memory_total_bytes / GIB)
    return GpuDevice(
        index=reading.index,
        uuid=_text(reading.uuid),
        model=name.name,
        raw_name=raw_name,
        vram_gb=name.vram_gb,
        known=name.known,
        memory_total_bytes=reading.memory_total_bytes,
        memory_used_bytes=reading.memory_used_bytes,
        utilization_pct=reading.utilization_pct,
        busy=reading.compute_processes > 0,
    )


# Simulated devices

_FAKE_ITEM = re.compile(r"^(?:(\d+)\s*[x*]\s*)?(.+)$", re.IGNORECASE)


def parse_fake_gpus(spec: str | None, region: str) -> list[GpuDevice]:
    """The simulated devices of a spec such as `2xRTX 4090` or `1xH100, 2x RTX 4090`.

    Each device gets a stable UUID, `GPU-sim-<region>-<index>`: stable so that allocations read
    back from container labels after a restart still name the same devices, and carrying the
    region so that two simulated hosts sharing one Docker engine never share a device. A name
    the GPU table does not know is refused (a `ValueError` naming close matches): a simulated
    device exists only to stand in for a real model.
    """
    devices: list[GpuDevice] = []
    for item in (part.strip() for part in re.split(r"[,;]", spec or "")):
        if not item:
            continue
        found = _FAKE_ITEM.match(item)
        count = int(found.group(1)) if found and found.group(1) else 1
        raw_name = found.group(2).strip() if found else item
        name = canonical_gpu(raw_name)
        if not name.known:
            close = ", ".join(suggest_gpus(raw_name)) or "none"
            raise ValueError(f"unknown GPU {raw_name!r} in {item!r}; close names: {close}")
        if count < 1:
            raise ValueError(f"{item!r} declares no GPU; write e.g. 2xRTX 4090")
        for _ in range(count):
            index = len(devices)
            devices.append(
                GpuDevice(
                    index=index,
                    uuid=f"GPU-sim-{slug(region)}-{index}",
                    model=name.name,
                    raw_name=raw_name,
                    vram_gb=name.vram_gb,
                    known=True,
                    memory_total_bytes=name.vram_gb * GIB,
                    simulated=True,
                )
            )
        if len(devices) > MAX_FAKE_GPUS:
            raise ValueError(f"at most {MAX_FAKE_GPUS} simulated GPUs may be declared")
    return devices


def check_fake_gpus(spec: str | None) -> str | None:
    """Settings validator: a spec that parses, kept as written (None or blank: no devices)."""
    parse_fake_gpus(spec, "local")
    return spec.strip() if spec and spec.strip() else None
