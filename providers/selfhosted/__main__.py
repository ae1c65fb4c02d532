"""`python -m providers.selfhosted`: what discovery finds on this host, and what it would offer.

An operator's check before enabling the backend: it reads the same `GPUBROKER_SELFHOSTED_*`
settings as the broker (read here with the same field definitions, from the backend's spec, so
this check needs nothing from the broker), prints every GPU (from NVML, or the simulated ones),
then the offers the broker would list now, or the reason it would list none.
"""

from __future__ import annotations

import sys
from typing import Any

from pydantic import Field, create_model
from pydantic_settings import BaseSettings, SettingsConfigDict

from pricing.money import format_usd
from providers.base import ProviderConfig, ProviderError
from providers.selfhosted import SPEC
from providers.selfhosted.adapter import SelfHostedAdapter
from providers.selfhosted.devices import GIB, GpuDevice
from providers.selfhosted.nvml import NvmlUnavailable, read_devices
from providers.selfhosted.offers import PROVIDER


class _Environment(BaseSettings):
    """The broker's settings that reach this adapter, under the same `GPUBROKER_*` names."""

    model_config = SettingsConfigDict(
        env_prefix="GPUBROKER_", env_file=".env", extra="ignore", validate_default=True
    )

    provider_timeout_seconds: float = Field(10.0, gt=0)
    provider_retry_attempts: int = Field(3, ge=1)


def read_config() -> ProviderConfig | None:
    """The adapter's configuration as the broker would build it, or None without an engine URL."""
    fields: dict[str, Any] = {f"{PROVIDER}_base_url": (str | None, None)}
    fields.update({f"{PROVIDER}_{name}": field for name, field in SPEC.options.items()})
    environment = create_model("SelfHostedEnvironment", __base__=_Environment, **fields)()
    base_url = getattr(environment, f"{PROVIDER}_base_url") or SPEC.default_base_url
    if not base_url:
        return None
    return ProviderConfig(
        base_url=base_url,
        timeout_seconds=environment.provider_timeout_seconds,
        retry_attempts=environment.provider_retry_attempts,
        options={name: getattr(environment, f"{PROVIDER}_{name}") for name in SPEC.options},
    )


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
    config = read_config()
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
