"""GPU-name canonicalization: provider spellings, memory, unknown names, queries, suggestions."""

from __future__ import annotations

import logging

import pytest

from pricing.gpus import (
    GpuModel,
    GpuName,
    canonical_gpu,
    known_gpus,
    normalize_gpu_key,
    resolve_gpu_query,
    suggest_gpus,
)

H100S = frozenset({"H100 SXM", "H100 PCIe", "H100 NVL"})
A100S = frozenset({"A100 80GB", "A100 40GB"})

# Every GPU spelling in the provider documents (provider-docs/*.txt and SHAPES.md).
DOC_SPELLINGS = [
    ("RTX 4090", "RTX 4090"),  # aivory gpu_model, computegpu gpuType, empiriolabs name
    ("rtx-4090", "RTX 4090"),  # empiriolabs slug
    ("RTX4090", "RTX 4090"),  # computegpu search --gpu
    ("RTX 5090", "RTX 5090"),  # empiriolabs catalog
    ("L40S", "L40S"),
    ("A100", "A100 80GB"),
    ("H100", "H100 SXM"),
    ("H200", "H200"),
    ("a100-80gb", "A100 80GB"),  # empiriolabs gpu_slug
    ("NVIDIA H100 80GB HBM3", "H100 SXM"),  # fluence container plan
    ("NVIDIA A100 80GB", "A100 80GB"),  # fluence VM plan
    ("H100 80GB", "H100 SXM"),  # icgpu tier, fluence plan name
]

VENDOR_STRINGS = [
    ("NVIDIA H100 80GB HBM3", "H100 SXM", 80),
    ("NVIDIA H100 PCIe", "H100 PCIe", 80),
    ("NVIDIA H100 NVL", "H100 NVL", 94),
    ("NVIDIA A100-SXM4-80GB", "A100 80GB", 80),
    ("NVIDIA A100-SXM4-40GB", "A100 40GB", 40),
    ("NVIDIA A100 80GB PCIe", "A100 80GB", 80),
    ("NVIDIA A100-PCIE-40GB", "A100 40GB", 40),
    ("NVIDIA GeForce RTX 4090", "RTX 4090", 24),
    ("NVIDIA GeForce RTX 3080", "RTX 3080", 10),
    ("Tesla T4", "T4", 16),
    ("Tesla V100-SXM2-16GB", "V100 16GB", 16),
    ("Tesla V100-PCIE-32GB", "V100 32GB", 32),
    ("NVIDIA RTX A6000", "RTX A6000", 48),
    ("NVIDIA RTX 6000 Ada Generation", "RTX 6000 Ada", 48),
    ("NVIDIA RTX 4000 Ada Generation", "RTX 4000 Ada", 20),
    ("NVIDIA L40S", "L40S", 48),
    ("NVIDIA A10G", "A10G", 24),
    ("NVIDIA H200", "H200", 141),
    ("NVIDIA GH200 480GB", "GH200", 96),
    ("NVIDIA B200", "B200", 180),
    ("NVIDIA A800-SXM4-80GB", "A800", 80),
    ("AMD Instinct MI300X", "MI300X", 192),
    ("AMD Instinct MI250X", "MI250X", 128),
]

OTHER_SPELLINGS = [
    ("h100-sxm", "H100 SXM"),
    ("h100-pcie", "H100 PCIe"),
    ("h100-80gb", "H100 SXM"),
    ("H100SXM", "H100 SXM"),
    ("H100 SXM5", "H100 SXM"),
    ("8x H100 SXM", "H100 SXM"),
    ("rtx 4090", "RTX 4090"),
    ("Rtx_4090", "RTX 4090"),
    ("  RTX  4090 ", "RTX 4090"),
    ("RTX 4090 24GB", "RTX 4090"),
    ("RTX 4090 24 GB", "RTX 4090"),
    ("4090", "RTX 4090"),
    ("A100 40GB", "A100 40GB"),
    ("A100 80GB", "A100 80GB"),
    ("A100_80GB", "A100 80GB"),
    ("A6000", "RTX A6000"),
    ("RTX 6000Ada", "RTX 6000 Ada"),
    ("L40", "L40"),
    ("L4", "L4"),
    ("A10", "A10"),
    ("RTX PRO 6000 Blackwell", "RTX PRO 6000"),
    ("V100S", "V100 32GB"),
    ("V100", "V100 16GB"),
    ("VOLTA_32", "V100 32GB"),  # a class with one member names it
]


@pytest.mark.parametrize(("raw", "expected"), DOC_SPELLINGS + OTHER_SPELLINGS)
def test_spellings_map_to_one_canonical_name(raw: str, expected: str) -> None:
    gpu = canonical_gpu(raw)
    assert gpu.name == expected
    assert gpu.known


@pytest.mark.parametrize(("raw", "expected", "vram"), VENDOR_STRINGS)
def test_vendor_strings(raw: str, expected: str, vram: int) -> None:
    assert canonical_gpu(raw) == GpuName(expected, vram, True, canonical_gpu(expected).family)


def test_result_carries_family() -> None:
    assert canonical_gpu("NVIDIA H100 PCIe").family == "H100"
    assert canonical_gpu("a100-80gb").family == "A100"
    assert canonical_gpu("RTX 4090").family == "RTX 4090"


@pytest.mark.parametrize(
    ("raw", "hint", "expected", "vram"),
    [
        ("H100", 79, "H100 SXM", 80),
        ("H100 SXM", 81.5, "H100 SXM", 80),
        ("NVIDIA H100 80GB HBM3", 85.5, "H100 SXM", 80),
        ("RTX 4090", 23.6, "RTX 4090", 24),
        ("NVIDIA H100 NVL", 93.6, "H100 NVL", 94),
        ("H200", 140.4, "H200", 141),
        ("RTX 3080", 12.1, "RTX 3080", 12),
        ("GH200", 144, "GH200", 144),
    ],
)
def test_memory_snaps_to_known_size(raw: str, hint: float, expected: str, vram: int) -> None:
    assert canonical_gpu(raw, hint) == GpuName(expected, vram, True, canonical_gpu(expected).family)


@pytest.mark.parametrize(
    ("hint", "expected", "vram"),
    [(40, "A100 40GB", 40), (39.4, "A100 40GB", 40), (80, "A100 80GB", 80),
     (79.2, "A100 80GB", 80), (None, "A100 80GB", 80), (48, "A100 80GB", 48)],
)  # fmt: skip
def test_bare_a100_follows_the_memory_hint(hint: float | None, expected: str, vram: int) -> None:
    gpu = canonical_gpu("A100", hint)
    assert (gpu.name, gpu.vram_gb) == (expected, vram)


def test_bare_h100_with_nvl_memory_is_the_nvl() -> None:
    assert canonical_gpu("H100", 94).name == "H100 NVL"
    assert canonical_gpu("nvidia h100", 95.8) == GpuName("H100 NVL", 94, True, "H100")


def test_memory_in_the_name_picks_the_variant_over_the_hint() -> None:
    """A MIG slice of an A100 80GB reports the slice's memory; the card stays the 80GB one."""
    assert canonical_gpu("A100 80GB", 40) == GpuName("A100 80GB", 40, True, "A100")
    assert canonical_gpu("H100 80GB", 10) == GpuName("H100 SXM", 10, True, "H100")


def test_memory_far_from_every_size_is_kept() -> None:
    assert canonical_gpu("H100 SXM", 20).vram_gb == 20
    assert canonical_gpu("L40S", 12.4).vram_gb == 12


@pytest.mark.parametrize("hint", [None, 0, -8, float("nan"), float("inf"), 0.2])
def test_unusable_hint_falls_back_to_the_known_size(hint: float | None) -> None:
    assert canonical_gpu("RTX 4090", hint) == GpuName("RTX 4090", 24, True, "RTX 4090")


def test_unknown_name_kept_flagged_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="gpubroker.pricing"):
        first = canonical_gpu("  Quantum QPU-9000 ", 15.7)
        again = canonical_gpu("Quantum QPU-9000", 15.7)
        no_hint = canonical_gpu("Quantum QPU-9000")
    assert first == again == GpuName("Quantum QPU-9000", 16, False, "")
    assert no_hint == GpuName("Quantum QPU-9000", 0, False, "")
    records = [r for r in caplog.records if "Quantum QPU-9000" in r.getMessage()]
    assert len(records) == 1
    assert records[0].name == "gpubroker.pricing"
    assert records[0].levelno == logging.WARNING


def test_each_distinct_unknown_name_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="gpubroker.pricing"):
        canonical_gpu("Photon Tile P1")
        canonical_gpu("Photon Tile P2")
        canonical_gpu("Photon Tile P1", 8)
    messages = [r.getMessage() for r in caplog.records if "Photon Tile" in r.getMessage()]
    assert len(messages) == 2


@pytest.mark.parametrize("raw", ["", "   ", "???", "RTX", "AMPERE_24"])
def test_unmatched_input_never_raises(raw: str) -> None:
    gpu = canonical_gpu(raw, 24)
    assert gpu == GpuName(raw.strip(), 24, False, "")


def test_repeated_calls_are_served_from_the_cache() -> None:
    assert canonical_gpu("NVIDIA GeForce RTX 4090", 23.6) is canonical_gpu(
        "NVIDIA GeForce RTX 4090", 24.2
    )


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("H100", H100S),
        ("h100", H100S),
        ("NVIDIA H100", H100S),
        ("h100-80gb", {"H100 SXM", "H100 PCIe"}),
        ("H100 80GB", {"H100 SXM", "H100 PCIe"}),
        ("H100 SXM", {"H100 SXM"}),
        ("h100-sxm", {"H100 SXM"}),
        ("H100 NVL", {"H100 NVL"}),
        ("A100", A100S),
        ("a100", A100S),
        ("A100 80GB", {"A100 80GB"}),
        ("a100-80gb", {"A100 80GB"}),
        ("A100 40GB", {"A100 40GB"}),
        ("RTX4090", {"RTX 4090"}),
        ("rtx 4090", {"RTX 4090"}),
        ("4090", {"RTX 4090"}),
        ("NVIDIA GeForce RTX 4090", {"RTX 4090"}),
        ("H200", {"H200"}),
        ("V100", {"V100 16GB", "V100 32GB"}),
        ("A10", {"A10"}),
        ("AMPERE_24", {"RTX A5000", "RTX 3090", "A30", "A10", "A10G"}),
        ("ADA_48", {"L40S", "L40", "L20", "RTX 6000 Ada"}),
    ],
)
def test_query_resolves_to_canonical_names(term: str, expected: set[str]) -> None:
    assert resolve_gpu_query(term) == frozenset(expected)


@pytest.mark.parametrize("term", ["Quantum QPU-9000", "", "RTX 4909", "A100 24GB", "ADA_99"])
def test_query_for_nothing_known_is_none(term: str) -> None:
    assert resolve_gpu_query(term) is None


def test_unknown_names_share_a_normalised_key() -> None:
    key = normalize_gpu_key("Quantum QPU-9000")
    assert key == normalize_gpu_key("quantum_qpu 9000") == normalize_gpu_key(" QUANTUM QPU9000")
    assert key != normalize_gpu_key("Quantum QPU-9001")
    assert normalize_gpu_key("NVIDIA GeForce RTX 4090") == normalize_gpu_key("rtx-4090")
    assert normalize_gpu_key("Quantum 16GB") != normalize_gpu_key("Quantum 32GB")


def test_suggestions_for_typos() -> None:
    assert suggest_gpus("RTX 4909")[0] == "RTX 4090"
    assert set(suggest_gpus("H10")) == H100S
    assert len(suggest_gpus("RTX 40", limit=2)) == 2
    assert suggest_gpus("zzzzzz") == []
    assert suggest_gpus("RTX 4909", limit=0) == []


def test_table_covers_the_required_models() -> None:
    names = [model.name for model in known_gpus()]
    assert len(names) >= 25
    assert len(set(names)) == len(names)
    required = {
        "B200", "H200", "H100 SXM", "H100 PCIe", "H100 NVL", "GH200", "A100 80GB", "A100 40GB",
        "L40S", "L40", "L4", "A10", "A10G", "A40", "RTX A6000", "RTX 6000 Ada", "RTX 5090",
        "RTX 4090", "RTX 4080", "RTX 3090", "RTX 3080", "T4", "V100 16GB", "V100 32GB", "MI300X",
        "MI250X", "RTX 4000 Ada", "RTX A5000", "RTX A4000", "A800", "L20",
    }  # fmt: skip
    assert required <= set(names)


@pytest.mark.parametrize("model", known_gpus(), ids=lambda model: model.name)
def test_every_row_resolves_from_its_own_spellings(model: GpuModel) -> None:
    """No spelling in the table is shadowed by another row or by a family alias."""
    assert model.vendor in {"NVIDIA", "AMD"}
    assert model.vram_sizes[0] == model.vram_gb
    for spelling in (model.name, *model.aliases):
        assert canonical_gpu(spelling) == GpuName(model.name, model.vram_gb, True, model.family)
        assert resolve_gpu_query(spelling) == {model.name}
    for size in model.vram_sizes:
        assert canonical_gpu(model.name, size).vram_gb == size


def test_known_gpus_returns_a_fresh_list() -> None:
    rows = known_gpus()
    rows.clear()
    assert known_gpus()
    assert {row.form_factor for row in known_gpus() if row.family == "H100"} == {
        "SXM",
        "PCIe",
        "NVL",
    }
