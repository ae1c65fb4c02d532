"""`python -m providers.selfhosted`: what discovery finds on this host, and what it would offer.

An operator's check before enabling the backend: it reads the same `GPUBROKER_SELFHOSTED_*`
settings as the broker, prints every GPU (from NVML, or the simulated ones), then the offers
the broker would list now, or the reason it would list none.
"""

from __future__ import annotations

import sys

from broker.settings import Settings, provider_config
from pricing.money import format_usd
from providers.base import ProviderError
from providers.selfhosted.adapter import SelfHostedAdapter
from providers.selfhosted.devices import GIB, GpuDevice
from providers.selfhosted.nvml import NvmlUnavailable, read_devices
from providers.selfhosted.offers import PROVIDER


def describe_device(device: GpuDevice) -> str:
    """One line per GPU: index, UUID, canonical model (NVML's name), memory, load."""
    used = f"{device.memory_used_bytes / GIB:.1f}/" if not device.simulated else ""
    utilization = "-" if device.utilization_pct is None else f"{device.utilization_pct}%"
    state = "busy" if device.busy else "idle"
    return (
        f"  #{device.index} {device.uuid}  {device.model} ({device.raw_name})  "
        f"{used}{device.memory_total_bytes / GIB:.1f} GiB  util {utilization}  {state}"
    )


def main() -> int:
    config = provider_config(Settings(), PROVIDER)
    if config is None:
        print("selfhosted has no Docker engine URL configured", file=sys.stderr)
        return 1
    adapter = SelfHostedAdapter(config)
    if adapter.simulated is not None:
        print(f"simulated GPUs (GPUBROKER_SELFHOSTED_FAKE_GPUS), region {adapter.region!r}:")
        devices = adapter.simulated
    else:
        try:
            driver, _ = read_devices()
        except NvmlUnavailable as exc:
            print(f"no GPUs: {exc}")
            return 1
        devices = adapter.devices()
        print(f"NVML, driver {driver}, {len(devices)} GPU(s), region {adapter.region!r}:")
    for device in devices:
        print(describe_device(device))
    print(f"offers (Docker engine at {config.base_url}):")
    try:
        page = adapter.list_offers()
    except ProviderError as exc:
        print(f"  none: {exc.message}")
        return 1
    finally:
        adapter.close()
    for offer in page.offers:
        print(
            f"  {offer.id}  {offer.gpu_count}x {offer.gpu}  "
            f"${format_usd(offer.base_price_per_gpu_hour)}/GPU-hour  {offer.region}  "
            f"{offer.available_count} available"
        )
    for note in page.skipped:
        print(f"  skipped: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
