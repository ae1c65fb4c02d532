"""The GPU models the broker knows: one row per priced model, with the spellings that mean it.

Data only. pricing/gpus.py normalises every spelling here with the same function it applies to
provider input and user queries, so spellings are written the way a provider or a user writes them
("RTX A6000", "A6000"), never pre-normalised, and the table cannot drift from the matcher. Vendor
words (NVIDIA, GeForce, Tesla, AMD, Instinct), memory types (HBM3, GDDR6X), "Generation",
punctuation, spacing and a stated memory size ("80GB") are stripped by the normaliser, so they need
no alias of their own.

Rows of one family come default first: a bare family name with no memory to go on ("H100",
"A100", "V100") resolves to the first row of that family. A form factor gets its own row only
where it changes the price (H100 SXM / PCIe / NVL); where providers rarely say which form factor
they rent and the price hardly differs (A100, V100, A800), one row covers both, and memory is what
splits the A100 and V100 rows.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class GpuModel:
    """One canonical GPU: its display name, where it belongs, and the memory it ships with.

    `vram_gb` is the usual size and the default when a provider states none; `other_vram_gb` lists
    the other sizes the same model is sold with (GH200 96 or 144 GB). `arch` names the
    architecture, which together with a size forms class names such as "AMPERE_24".
    """

    name: str
    family: str
    vendor: str
    arch: str
    vram_gb: int
    form_factor: str | None
    other_vram_gb: tuple[int, ...] = ()
    aliases: tuple[str, ...] = ()

    @property
    def vram_sizes(self) -> tuple[int, ...]:
        """Every memory size this model is sold with, the usual one first."""
        return (self.vram_gb, *self.other_vram_gb)


def _nvidia(
    name: str,
    arch: str,
    vram_gb: int,
    form_factor: str | None,
    *aliases: str,
    family: str | None = None,
    other_vram_gb: tuple[int, ...] = (),
) -> GpuModel:
    """A row for an NVIDIA model; most are a family of their own."""
    return GpuModel(
        name, family or name, "NVIDIA", arch, vram_gb, form_factor, other_vram_gb, aliases
    )


def _amd(name: str, arch: str, vram_gb: int, form_factor: str, *aliases: str) -> GpuModel:
    """A row for an AMD Instinct model."""
    return GpuModel(name, name, "AMD", arch, vram_gb, form_factor, (), aliases)


MODELS: tuple[GpuModel, ...] = (
    # Blackwell
    _nvidia("B200", "Blackwell", 180, "SXM", "B200 SXM", "HGX B200", other_vram_gb=(192,)),
    _nvidia(
        "RTX PRO 6000",
        "Blackwell",
        96,
        "PCIe",
        "RTX PRO 6000 Blackwell",
        "RTX PRO 6000 Blackwell Server Edition",
        "RTX PRO 6000 Blackwell Workstation Edition",
    ),
    _nvidia("RTX 5090", "Blackwell", 32, "PCIe", "5090"),
    _nvidia("RTX 5080", "Blackwell", 16, "PCIe", "5080"),
    # Hopper
    _nvidia("GH200", "Hopper", 96, "superchip", "GH200 Superchip", other_vram_gb=(144,)),
    _nvidia("H200", "Hopper", 141, "SXM", "H200 SXM", "H200 SXM5", "HGX H200"),
    _nvidia("H200 NVL", "Hopper", 141, "NVL", family="H200"),
    _nvidia("H100 SXM", "Hopper", 80, "SXM", "H100 SXM5", "HGX H100", family="H100"),
    _nvidia("H100 PCIe", "Hopper", 80, "PCIe", family="H100"),
    _nvidia("H100 NVL", "Hopper", 94, "NVL", family="H100"),
    _nvidia("H20", "Hopper", 96, "SXM"),
    # Ampere, data centre
    _nvidia("A100 80GB", "Ampere", 80, None, family="A100"),
    _nvidia("A100 40GB", "Ampere", 40, None, family="A100"),
    _nvidia("A800", "Ampere", 80, None, "A800 SXM4", "A800 PCIe", other_vram_gb=(40,)),
    _nvidia("A40", "Ampere", 48, "PCIe"),
    _nvidia("A30", "Ampere", 24, "PCIe"),
    _nvidia("A10", "Ampere", 24, "PCIe"),
    _nvidia("A10G", "Ampere", 24, "PCIe", family="A10"),
    # Ada, data centre
    _nvidia("L40S", "Ada", 48, "PCIe"),
    _nvidia("L40", "Ada", 48, "PCIe"),
    _nvidia("L20", "Ada", 48, "PCIe"),
    _nvidia("L4", "Ada", 24, "PCIe"),
    # Ada, workstation and consumer
    _nvidia("RTX 6000 Ada", "Ada", 48, "PCIe"),
    _nvidia("RTX 5000 Ada", "Ada", 32, "PCIe"),
    _nvidia("RTX 4000 Ada", "Ada", 20, "PCIe"),
    _nvidia("RTX 4090", "Ada", 24, "PCIe", "4090"),
    _nvidia("RTX 4080", "Ada", 16, "PCIe", "4080"),
    # Ampere, workstation and consumer
    _nvidia("RTX A6000", "Ampere", 48, "PCIe", "A6000"),
    _nvidia("RTX A5000", "Ampere", 24, "PCIe", "A5000"),
    _nvidia("RTX A4500", "Ampere", 20, "PCIe", "A4500"),
    _nvidia("RTX A4000", "Ampere", 16, "PCIe", "A4000"),
    _nvidia("RTX 3090", "Ampere", 24, "PCIe", "3090"),
    _nvidia("RTX 3080", "Ampere", 10, "PCIe", "3080", other_vram_gb=(12,)),
    # Turing and Volta
    _nvidia("T4", "Turing", 16, "PCIe"),
    _nvidia("RTX 2080 Ti", "Turing", 11, "PCIe", "2080 Ti"),
    _nvidia("V100 16GB", "Volta", 16, None, family="V100"),
    _nvidia("V100 32GB", "Volta", 32, None, "V100S", family="V100"),
    # AMD Instinct
    _amd("MI325X", "CDNA3", 256, "OAM"),
    _amd("MI300X", "CDNA3", 192, "OAM"),
    _amd("MI250X", "CDNA2", 128, "OAM"),
)

# Spellings that name a family without saying which row: the memory (stated in the name or given
# by the provider) picks the row, as in "NVIDIA A100-SXM4-40GB" or "Tesla V100-PCIE-32GB".
FAMILY_ALIASES: dict[str, tuple[str, ...]] = {
    "A100": ("A100 SXM", "A100 SXM4", "A100 PCIe", "HGX A100"),
    "V100": ("V100 SXM", "V100 SXM2", "V100 PCIe"),
}
