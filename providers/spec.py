"""How the registry describes a backend: its adapter, and its simulator where it has one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import FastAPI

from providers.base import Provider, ProviderConfig
from providers.simkit import SimulatorKnobs


@dataclass(frozen=True)
class ProviderSpec:
    """One backend. `demo_api_key` is a key its simulator accepts, for the demo and tests."""

    name: str
    title: str
    default_base_url: str | None
    make_adapter: Callable[[ProviderConfig], Provider]
    make_simulator: Callable[[SimulatorKnobs], FastAPI] | None = None
    demo_api_key: str = "demo-key"
