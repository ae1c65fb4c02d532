"""From this host's free GPUs to catalog offers, and from an offer back to the GPUs to run it on.

Pure functions. The operator prices GPUs per model (`GPUBROKER_SELFHOSTED_PRICES`, USD per
GPU-hour, keyed by any spelling the GPU table knows); the host offers every free model alone and
in bundles of 2, 4 and 8 up to its free count. An offer names a model and a count, never specific
devices, so its id stays the same across refreshes while any such GPUs are free; the devices are
picked when a rental is placed (`pick_devices`), under the allocation lock.

Offers from simulated devices say so twice: their id has a `sim` segment
(`selfhosted:sim:local:rtx-4090:2x`) and their region a suffix (`local (simulated)`).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from pricing.gpus import normalize_gpu_key, resolve_gpu_query
from pricing.money import InvalidAmount, to_micros
from pricing.offer import InstanceType, InterruptionSource, Offer, Tier, offer_id
from providers.base import OfferPage
from providers.selfhosted.devices import GpuDevice

PROVIDER = "selfhosted"
BUNDLE_SIZES = (1, 2, 4, 8)
ANY_MODEL = "*"
SIMULATED_SUFFIX = " (simulated)"

# USD per GPU-hour when GPUBROKER_SELFHOSTED_PRICES is not set: near what the clouds ask for
# on-demand capacity, so the operator's own GPUs sort sensibly beside them until priced.
DEFAULT_PRICES: dict[str, Decimal] = {
    "B200": Decimal("4.50"),
    "H200": Decimal("3.20"),
    "H100": Decimal("2.40"),
    "A100": Decimal("1.30"),
    "L40S": Decimal("0.90"),
    "RTX 4090": Decimal("0.45"),
    "L4": Decimal("0.45"),
    "RTX 3090": Decimal("0.25"),
    ANY_MODEL: Decimal("0.60"),
}

log = logging.getLogger("gpubroker.selfhosted")


@dataclass(frozen=True)
class PriceTable:
    """Micro-dollars per GPU-hour by GPU key; the most specific entry wins.

    A key naming one model ("H100 PCIe") beats a key naming its family ("H100"), which beats the
    `*` default. Keys the GPU table does not know still price devices of that exact name (an
    operator may own a model the table has not learnt), matched as the catalog matches names.
    """

    models: Mapping[str, int]
    families: Mapping[str, int]
    default: int | None

    def price_of(self, model: str) -> int | None:
        key = normalize_gpu_key(model)
        if key in self.models:
            return self.models[key]
        if key in self.families:
            return self.families[key]
        return self.default


def parse_prices(raw: Mapping[str, object]) -> PriceTable:
    """Read a price map such as `{"H100": "2.40", "RTX 4090": 0.45, "*": "0.60"}`.

    Raises `ValueError` naming the entry at fault: a price that is not a non-negative amount.
    """
    models: dict[str, int] = {}
    families: dict[str, int] = {}
    default: int | None = None
    for key, value in raw.items():
        try:
            micros = to_micros(value)
        except InvalidAmount:
            raise ValueError(f"price of {key!r} is not an amount: {value!r}") from None
        if micros < 0:
            raise ValueError(f"price of {key!r} is negative")
        if key.strip() == ANY_MODEL:
            default = micros
            continue
        names = resolve_gpu_query(key)
        if names is None:
            log.info("price for %r: a GPU the table does not know, matched by exact name", key)
            models[normalize_gpu_key(key)] = micros
        elif len(names) == 1:
            models[normalize_gpu_key(next(iter(names)))] = micros
        else:
            for name in names:
                families[normalize_gpu_key(name)] = micros
    return PriceTable(models, families, default)


def check_prices(raw: dict[str, Decimal]) -> dict[str, Decimal]:
    """Settings validator for `GPUBROKER_SELFHOSTED_PRICES`."""
    parse_prices(raw)
    return raw


def free_devices(devices: Iterable[GpuDevice], allocated: Collection[str]) -> list[GpuDevice]:
    """Devices no container holds and no outside process is computing on, by index."""
    free = [d for d in devices if d.uuid not in allocated and not d.busy]
    return sorted(free, key=lambda device: device.index)


def build_offers(
    devices: Iterable[GpuDevice],
    allocated: Collection[str],
    prices: PriceTable,
    region: str,
    now: datetime,
) -> OfferPage:
    """One offer per free model and bundle size; a model without a price is skipped, noted."""
    page = OfferPage()
    groups: dict[tuple[str, int, bool], list[GpuDevice]] = {}
    for device in free_devices(devices, allocated):
        groups.setdefault((device.model, device.vram_gb, device.simulated), []).append(device)
    for (model, _, simulated), group in groups.items():
        price = prices.price_of(model)
        if price is None:
            page.skipped.append(f"{model}: no price in GPUBROKER_SELFHOSTED_PRICES and no '*'")
            continue
        for count in BUNDLE_SIZES:
            if count > len(group):
                break
            page.offers.append(
                _offer(group[0], count, len(group) // count, price, region, simulated, now)
            )
    return page


def _offer(
    device: GpuDevice,
    count: int,
    bundles: int,
    price: int,
    region: str,
    simulated: bool,
    now: datetime,
) -> Offer:
    id_parts = ("sim", region) if simulated else (region,)
    return Offer(
        id=offer_id(PROVIDER, *id_parts, device.model, f"{count}x"),
        provider=PROVIDER,
        gpu=device.model,
        gpu_count=count,
        vram_gb=device.vram_gb,
        base_price_per_gpu_hour=price,
        tier=Tier.ON_DEMAND,
        region=region + SIMULATED_SUFFIX if simulated else region,
        instance_type=InstanceType.CONTAINER,
        available=True,
        available_count=bundles,
        updated_at=now,
        interruption_probability=0.0,
        interruption_source=InterruptionSource.NONE,
        gpu_known=device.known,
        ref={
            "gpu": device.model,
            "vram_gb": str(device.vram_gb),
            "gpu_count": str(count),
            "simulated": "true" if simulated else "false",
        },
    )


def pick_devices(
    devices: Iterable[GpuDevice], allocated: Collection[str], offer: Offer
) -> list[GpuDevice]:
    """The free devices `offer` would run on, lowest index first; fewer than it needs if short."""
    count = int(offer.ref.get("gpu_count", offer.gpu_count))
    matching = [
        device
        for device in free_devices(devices, allocated)
        if device.model == offer.ref.get("gpu", offer.gpu)
        and str(device.vram_gb) == offer.ref.get("vram_gb", str(offer.vram_gb))
        and device.simulated == (offer.ref.get("simulated") == "true")
    ]
    return matching[:count]
