"""The one list of backends. Settings, the CLI, the demo and the tests all read it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import FastAPI

from providers.base import Provider, ProviderConfig
from providers.simkit import SimulatorKnobs


@dataclass(frozen=True)
class ProviderSpec:
    """How to build one backend's adapter, and its simulator where it has one."""

    name: str
    title: str
    default_base_url: str | None
    make_adapter: Callable[[ProviderConfig], Provider]
    make_simulator: Callable[[SimulatorKnobs], FastAPI] | None = None


def _load() -> dict[str, ProviderSpec]:
    from providers import aivory, computegpu, empiriolabs, fluence, icgpu

    specs = (empiriolabs.SPEC, computegpu.SPEC, fluence.SPEC, aivory.SPEC, icgpu.SPEC)
    return {spec.name: spec for spec in specs}


PROVIDERS: dict[str, ProviderSpec] = _load()
PROVIDER_NAMES: tuple[str, ...] = tuple(PROVIDERS)
