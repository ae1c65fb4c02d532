"""Reading this host's GPUs from the NVIDIA driver through NVML (`nvidia-ml-py`).

The I/O edge of discovery: it only gathers NVML's raw answers into `NvmlReading`s;
`devices.device_from_reading` interprets them. NVML is initialised and shut down on every read,
so a driver installed, upgraded or reloaded while the broker runs is picked up at the next
refresh rather than needing a restart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import pynvml

from providers.selfhosted.devices import NvmlReading

T = TypeVar("T")


class NvmlUnavailable(Exception):
    """NVML cannot be used on this host; the message says why, in words an operator can act on."""


def describe_failure(error: pynvml.NVMLError) -> str:
    """Why NVML could not start, with what to do about it."""
    if isinstance(error, pynvml.NVMLError_LibraryNotFound):
        return "NVML is not installed (no NVIDIA driver on this host)"
    if isinstance(error, pynvml.NVMLError_DriverNotLoaded):
        return "the NVIDIA driver is installed but not loaded"
    if isinstance(error, pynvml.NVMLError_NoPermission):
        return "NVML refused access to the GPUs (permission denied)"
    return f"NVML failed to start: {error}"


def read_devices() -> tuple[str, list[NvmlReading]]:
    """The driver version and one reading per GPU, in NVML's index order.

    Raises `NvmlUnavailable` when there is no usable driver.
    """
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        raise NvmlUnavailable(describe_failure(exc)) from None
    try:
        driver = _optional(pynvml.nvmlSystemGetDriverVersion) or "unknown"
        readings = [_read(index) for index in range(pynvml.nvmlDeviceGetCount())]
    except pynvml.NVMLError as exc:
        raise NvmlUnavailable(f"NVML failed while reading the GPUs: {exc}") from None
    finally:
        pynvml.nvmlShutdown()
    return (driver.decode() if isinstance(driver, bytes) else str(driver)), readings


def _read(index: int) -> NvmlReading:
    handle = pynvml.nvmlDeviceGetHandleByIndex(index)
    memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
    utilization = _optional(lambda: pynvml.nvmlDeviceGetUtilizationRates(handle))
    processes = _optional(lambda: pynvml.nvmlDeviceGetComputeRunningProcesses(handle)) or []
    return NvmlReading(
        index=index,
        name=pynvml.nvmlDeviceGetName(handle),
        uuid=pynvml.nvmlDeviceGetUUID(handle),
        memory_total_bytes=int(memory.total),
        memory_used_bytes=int(memory.used),
        utilization_pct=int(utilization.gpu) if utilization is not None else None,
        compute_processes=len(processes),
    )


def _optional(call: Callable[[], T]) -> T | None:
    """A reading some devices do not support (utilization on some vGPUs): None there."""
    try:
        return call()
    except (pynvml.NVMLError_NotSupported, pynvml.NVMLError_NoPermission):
        return None
