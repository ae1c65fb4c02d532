"""GPU names: one table for every provider adapter and every user query.

Providers spell one GPU many ways ("NVIDIA H100 80GB HBM3", "h100-sxm", "H100SXM", "H100 80GB")
and users search with others again ("h100", "rtx 4090", "4090"). Offers are only comparable
across providers when they carry one canonical name, so every spelling goes through here:
adapters call `canonical_gpu` while parsing, the catalog calls `resolve_gpu_query` for its `gpu`
filter, and `known_gpus` / `suggest_gpus` feed `GET /v1/gpus` and "unknown GPU: did you mean ...".

Matching is data, not per-provider code: pricing/gpu_table.py lists the models and their
spellings, and one normaliser turns any spelling into a lookup key plus the memory size it states.
The rules that data alone cannot settle:

- A spelling that names several rows ("H100", "A100", "NVIDIA A100-SXM4-80GB") is settled by
  memory: the size stated in the name, else the provider's figure, picks the row whose known size
  it is near; with neither, the family's first row wins. So "H100" and "H100 80GB" are the
  H100 SXM (the part clouds mean by a bare H100; PCIe and NVL offers say so), "H100" with 94 GB is
  the NVL, and "A100" is the 80 GB part unless the memory says 40.
- A provider's memory figure near one of the model's sizes (within 10%, at least 1 GB) snaps to
  it: 79 or 81.5 GB on an H100 is 80. A figure far from every size is a partition of the card
  (a MIG slice, a time-sliced share), so it is kept, rounded, rather than inflated to the card.
- A name that matches nothing is kept as given, flagged `known=False` and logged once: an offer
  is never dropped for a name this table has not learnt yet.
- Class names such as ComputeGPU's "AMPERE_24" (architecture and memory) search as every model
  of that architecture with that memory. As an offer's GPU a class names a model only when it
  has one member; otherwise it is kept as an unknown name rather than priced as one of them.
"""

from __future__ import annotations

import difflib
import logging
import math
import re
from dataclasses import dataclass
from functools import lru_cache

from pricing.gpu_table import FAMILY_ALIASES, MODELS, GpuModel

__all__ = [
    "GpuModel",
    "GpuName",
    "canonical_gpu",
    "known_gpus",
    "normalize_gpu_key",
    "resolve_gpu_query",
    "suggest_gpus",
]

log = logging.getLogger("gpubroker.pricing")


@dataclass(frozen=True, slots=True)
class GpuName:
    """An offer's GPU: canonical name, memory per GPU, and whether the table knows the model.

    `family` is the model's family ("H100" for the H100 SXM) and empty for an unknown name.
    """

    name: str
    vram_gb: int
    known: bool
    family: str = ""


# Normalising spellings

_MEMORY = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s*gi?b(?![a-z0-9])")
_SEPARATORS = re.compile(r"[^a-z0-9]+")
_GPU_COUNT = re.compile(r"\d+x")
_NOISE_WORDS = frozenset(
    {"nvidia", "geforce", "tesla", "amd", "instinct", "generation", "gpu"}
    | {"hbm2", "hbm2e", "hbm3", "hbm3e", "gddr6", "gddr6x", "gddr7"}
)


def _parse(text: str) -> tuple[str, float | None]:
    """Split a spelling into its model key and the memory size it states, if any.

    "NVIDIA A100-SXM4-80GB" -> ("a100sxm4", 80.0); "RTX4090" and "Rtx_4090" -> ("rtx4090", None).
    Vendor words, memory types and counts such as "8x" say nothing about the model and are dropped.
    """
    lowered = text.lower()
    memory = None
    if found := _MEMORY.search(lowered):
        memory = float(found.group(1))
        lowered = f"{lowered[: found.start()]} {lowered[found.end() :]}"
    tokens = _SEPARATORS.split(lowered)
    return "".join(
        token
        for token in tokens
        if token and token not in _NOISE_WORDS and not _GPU_COUNT.fullmatch(token)
    ), memory


def normalize_gpu_key(text: str) -> str:
    """The case-, spacing- and vendor-word-insensitive key of a GPU name, memory included.

    Lets the catalog match names the table does not know by exact name: "Quantum QPU-9000" and
    "quantum_qpu 9000" share a key.
    """
    key, memory = _parse(text)
    return key if memory is None else f"{key}{memory:g}gb"


# Indexes built once from the table


def _add(index: dict[str, list[GpuModel]], key: str, model: GpuModel) -> None:
    models = index.setdefault(key, [])
    if model not in models:
        models.append(model)


def _build_aliases() -> dict[str, tuple[GpuModel, ...]]:
    """Key -> the rows a spelling may mean, in table order so that the default comes first.

    A row's own spellings win over its family's: "H200" is the H200 row alone, while "H100",
    which no row is called, means every H100.
    """
    by_model: dict[str, list[GpuModel]] = {}
    by_family: dict[str, list[GpuModel]] = {}
    for model in MODELS:
        for spelling in (model.name, *model.aliases):
            _add(by_model, _parse(spelling)[0], model)
        for spelling in (model.family, *FAMILY_ALIASES.get(model.family, ())):
            _add(by_family, _parse(spelling)[0], model)
    return {key: tuple(models) for key, models in (by_family | by_model).items()}


def _build_classes() -> dict[str, tuple[GpuModel, ...]]:
    """Class key ("ampere24" for "AMPERE_24") -> every row of that architecture and memory size."""
    classes: dict[str, list[GpuModel]] = {}
    for model in MODELS:
        for size in model.vram_sizes:
            _add(classes, _parse(f"{model.arch}_{size}")[0], model)
    return {key: tuple(models) for key, models in classes.items()}


_ALIASES = _build_aliases()
_CLASSES = _build_classes()
_UNKNOWN_LOGGED: set[str] = set()


# Memory


def _snap(model: GpuModel, gb: float) -> int | None:
    """The model's known size nearest to `gb`, or None when `gb` is near none of them."""
    near = [size for size in model.vram_sizes if abs(gb - size) <= max(1.0, 0.1 * size)]
    return min(near, key=lambda size: abs(gb - size)) if near else None


def _pick(candidates: tuple[GpuModel, ...], gb: float | None) -> GpuModel:
    """The row whose known size is nearest to `gb`; the first row when `gb` fits none."""
    if gb is None:
        return candidates[0]
    fits = [
        (abs(gb - size), index)
        for index, model in enumerate(candidates)
        if (size := _snap(model, gb)) is not None
    ]
    return candidates[min(fits)[1]] if fits else candidates[0]


def _rounded_hint(vram_gb: float | None) -> int | None:
    """A provider's memory figure as whole GB, or None when it says nothing usable."""
    if vram_gb is None or not math.isfinite(vram_gb) or vram_gb <= 0:
        return None
    return math.floor(vram_gb + 0.5) or None


# Offers


def canonical_gpu(raw: str, vram_gb: float | None = None) -> GpuName:
    """The canonical GPU for a provider's name and, when it gives one, memory figure in GB.

    Never raises and never drops: an unknown name comes back as given. Results are memoised, so
    a refresh parsing 100,000 offers over a few dozen spellings pays for each spelling once.
    """
    return _resolve(raw.strip(), _rounded_hint(vram_gb))


@lru_cache(maxsize=4096)
def _resolve(raw: str, hint: int | None) -> GpuName:
    key, stated = _parse(raw)
    candidates = _ALIASES.get(key)
    if candidates is None and len(members := _CLASSES.get(key, ())) == 1:
        candidates = members
    if not candidates:
        _log_unknown(raw)
        return GpuName(raw, hint or 0, False)
    if stated is not None and any(_snap(model, stated) is not None for model in candidates):
        model = _pick(candidates, stated)
    else:
        model = _pick(candidates, hint)
    return GpuName(model.name, _vram(model, hint, stated), True, model.family)


def _vram(model: GpuModel, hint: int | None, stated: float | None) -> int:
    """Memory per GPU: the provider's figure, snapped when near a known size; else the name's."""
    if hint is not None:
        return _snap(model, hint) or hint
    if stated is not None and (size := _snap(model, stated)) is not None:
        return size
    return model.vram_gb


def _log_unknown(raw: str) -> None:
    """Warn once per distinct name, so a new model shows up in the log without flooding it."""
    if raw not in _UNKNOWN_LOGGED:
        _UNKNOWN_LOGGED.add(raw)
        log.warning("unknown GPU name %r: kept as given; add it to pricing/gpu_table.py", raw)


# Queries


@lru_cache(maxsize=1024)
def resolve_gpu_query(term: str) -> frozenset[str] | None:
    """The canonical names a user's search term means, or None when it means nothing known.

    A family matches all its rows ("H100" -> SXM, PCIe and NVL), a stated memory narrows them
    ("h100-80gb" -> SXM and PCIe; the NVL has 94 GB), and a row's own name matches that row.
    """
    key, stated = _parse(term)
    candidates = _ALIASES.get(key)
    if candidates is None:
        members = _CLASSES.get(key)
        return frozenset(model.name for model in members) if members else None
    if stated is not None:
        candidates = tuple(model for model in candidates if _snap(model, stated) is not None)
    return frozenset(model.name for model in candidates) or None


def known_gpus() -> list[GpuModel]:
    """Every model in the table, in table order (newest first within each vendor line-up)."""
    return list(MODELS)


def suggest_gpus(term: str, limit: int = 3) -> list[str]:
    """Up to `limit` canonical names close to a term that matched nothing, closest first."""
    key = _parse(term)[0]
    names: list[str] = []
    for close in difflib.get_close_matches(key, _ALIASES, n=len(_ALIASES), cutoff=0.6):
        for model in _ALIASES[close]:
            if model.name not in names:
                names.append(model.name)
    return names[: max(limit, 0)]
