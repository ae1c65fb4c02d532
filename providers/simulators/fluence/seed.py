"""The Fluence simulator's starting catalog: plans as Fluence spells and prices them.

Everything random is drawn from one `random.Random(seed)`, so a seed always gives the same
catalog. Prices are drawn per GPU from a realistic range and stored, as Fluence sends them, for
the whole plan or option. Capacity is finite: a plan or option holds a few instances at a time,
and the listing shows it unavailable while none is free.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TypedDict

from providers.simulators.stock import Stocked


@dataclass(frozen=True)
class GpuKind:
    """A GPU as Fluence names it, with its memory and a per-GPU hourly price range in USD."""

    model: str
    label: str
    memory_gb: int
    low: float
    high: float


H100 = GpuKind("NVIDIA H100 80GB HBM3", "H100 80GB", 80, 1.80, 3.50)
H200 = GpuKind("NVIDIA H200", "H200 141GB", 141, 3.00, 4.50)
A100_80 = GpuKind("NVIDIA A100 80GB", "A100 80GB", 80, 1.10, 2.00)
A100_40 = GpuKind("NVIDIA A100-SXM4-40GB", "A100 40GB", 40, 0.90, 1.40)
L40S = GpuKind("NVIDIA L40S", "L40S", 48, 0.70, 1.20)
RTX_4090 = GpuKind("NVIDIA GeForce RTX 4090", "RTX 4090", 24, 0.30, 0.80)
RTX_3090 = GpuKind("NVIDIA GeForce RTX 3090", "RTX 3090", 24, 0.15, 0.35)
L4 = GpuKind("NVIDIA L4", "L4", 24, 0.30, 0.60)
A10 = GpuKind("NVIDIA A10", "A10", 24, 0.40, 0.80)

# location id -> (city, country)
LOCATIONS: dict[str, tuple[str, str]] = {
    "loc_fr1": ("Paris", "FR"),
    "loc_de1": ("Frankfurt", "DE"),
    "loc_nl1": ("Amsterdam", "NL"),
    "loc_fi1": ("Helsinki", "FI"),
    "loc_pl1": ("Warsaw", "PL"),
    "loc_us1": ("Ashburn", "US"),
    "loc_us2": ("Dallas", "US"),
    "loc_sg1": ("Singapore", "SG"),
}

# GPU, GPU count, vCPUs, RAM in GB, location ids, available
CONTAINER_PLANS: tuple[tuple[GpuKind, int, int, int, tuple[str, ...], bool], ...] = (
    (H100, 1, 16, 128, ("loc_fr1", "loc_us1"), True),
    (H100, 8, 128, 1024, ("loc_us1",), True),
    (H200, 1, 24, 192, ("loc_fi1",), True),
    (A100_80, 1, 12, 96, ("loc_de1", "loc_nl1"), True),
    (A100_80, 4, 48, 384, ("loc_de1",), False),
    (A100_40, 1, 8, 64, ("loc_us2", "loc_pl1"), True),
    (L40S, 1, 8, 64, ("loc_fr1", "loc_fi1"), True),
    (L40S, 2, 16, 128, ("loc_nl1",), True),
    (RTX_4090, 1, 8, 48, ("loc_pl1", "loc_de1", "loc_sg1"), True),
    (RTX_4090, 2, 16, 96, ("loc_pl1",), True),
    (RTX_3090, 1, 6, 32, ("loc_pl1", "loc_us2"), True),
    (L4, 1, 4, 32, ("loc_fr1", "loc_sg1"), True),
    (A10, 1, 6, 48, ("loc_us1",), False),
)

# GPU, GPU count, (compute provider, location id) for each option
MachineTable = tuple[tuple[GpuKind, int, tuple[tuple[str, str], ...]], ...]
VM_OPTIONS: MachineTable = (
    (H100, 1, (("hyperion-compute", "loc_fi1"), ("northgrid", "loc_us1"))),
    (H100, 8, (("hyperion-compute", "loc_fi1"),)),
    (A100_80, 1, (("northgrid", "loc_de1"),)),
    (A100_80, 8, (("polar-dc", "loc_fi1"), ("northgrid", "loc_us2"))),
    (L40S, 1, (("polar-dc", "loc_fi1"), ("hyperion-compute", "loc_nl1"))),
    (RTX_4090, 1, (("vistula-gpu", "loc_pl1"),)),
    (L4, 1, (("northgrid", "loc_fr1"),)),
)
BAREMETAL_OPTIONS: MachineTable = (
    (H100, 8, (("northgrid", "loc_us1"), ("hyperion-compute", "loc_fi1"))),
    (H200, 8, (("northgrid", "loc_us1"),)),
    (A100_80, 8, (("polar-dc", "loc_fi1"), ("northgrid", "loc_de1"))),
    (L40S, 4, (("hyperion-compute", "loc_nl1"),)),
)
VM_OS_OPTIONS = ("ubuntu-22.04", "ubuntu-24.04", "debian-12")
# Instances a plan (across its locations) or a VM / bare-metal option can hold at once.
CONTAINER_CAPACITY = 3
MACHINE_CAPACITY = 2
BAREMETAL_OS_OPTIONS = ("ubuntu-22.04", "ubuntu-24.04")


def location_json(location_id: str) -> dict[str, str]:
    city, country = LOCATIONS[location_id]
    return {"id": location_id, "country": country, "city": city}


def money(amount: float) -> str:
    """An amount as Fluence sends it: a decimal string."""
    return f"{amount:.4f}"


@dataclass
class ContainerPlan(Stocked):
    """One container plan; `price` is for all its GPUs and walks as prices drift; `free` is how
    many more instances it can hold."""

    id: str
    gpu: GpuKind
    gpu_count: int
    vcpus: int
    memory_gb: int
    price: float
    location_ids: tuple[str, ...]
    free: int

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": f"{self.gpu_count}x {self.gpu.label}",
            "gpu": {
                "model": self.gpu.model,
                "count": self.gpu_count,
                "memory_gb": self.gpu.memory_gb,
            },
            "vcpus": self.vcpus,
            "memory_gb": self.memory_gb,
            "storage_gb": 100 * self.gpu_count,
            "price": {"amount": money(self.price), "currency": "USD", "period": "hour"},
            "locations": [location_json(location_id) for location_id in self.location_ids],
            "available": self.available,
        }


@dataclass
class MachineOption(Stocked):
    """One VM or bare-metal option; `price` is for all its GPUs and walks as prices drift; `free`
    is how many more instances it can hold."""

    id: str
    gpu: GpuKind
    gpu_count: int
    provider: str
    location_id: str
    price: float
    os_options: tuple[str, ...]
    free: int = MACHINE_CAPACITY

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "provider": self.provider,
            "location": location_json(self.location_id),
            "price_per_hour": money(self.price),
            "os_options": list(self.os_options),
            "available": self.available,
        }


@dataclass
class FluenceCatalog:
    plans: list[ContainerPlan]
    vms: list[MachineOption]
    baremetal: list[MachineOption]


def seed_catalog(seed: int) -> FluenceCatalog:
    """The catalog for `seed`: the plan tables above with drawn prices and ids."""
    rng = random.Random(seed)
    plans = [
        ContainerPlan(
            **_drawn(rng, "plan", gpu, count),
            vcpus=vcpus,
            memory_gb=ram_gb,
            location_ids=location_ids,
            free=CONTAINER_CAPACITY if available else 0,
        )
        for gpu, count, vcpus, ram_gb, location_ids, available in CONTAINER_PLANS
    ]
    return FluenceCatalog(
        plans=plans,
        vms=_options(rng, VM_OPTIONS, VM_OS_OPTIONS),
        baremetal=_options(rng, BAREMETAL_OPTIONS, BAREMETAL_OS_OPTIONS),
    )


def _options(
    rng: random.Random, table: MachineTable, os_options: tuple[str, ...]
) -> list[MachineOption]:
    return [
        MachineOption(
            **_drawn(rng, "opt", gpu, count),
            provider=provider,
            location_id=location_id,
            os_options=os_options,
        )
        for gpu, count, placements in table
        for provider, location_id in placements
    ]


class Drawn(TypedDict):
    """What every plan and option draws from the seed: its id, then its price."""

    id: str
    gpu: GpuKind
    gpu_count: int
    price: float


def _drawn(rng: random.Random, prefix: str, gpu: GpuKind, count: int) -> Drawn:
    drawn_id = f"{prefix}_{rng.getrandbits(40):010x}"
    price = round(round(rng.uniform(gpu.low, gpu.high), 2) * count, 2)
    return Drawn(id=drawn_id, gpu=gpu, gpu_count=count, price=price)
