"""How the registry describes a backend: its adapter, and its simulator where it has one."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI

from providers.base import Provider, ProviderConfig
from providers.simkit import SimulatorKnobs


@dataclass(frozen=True)
class ProviderSpec:
    """One backend. `demo_api_key` is a key its simulator accepts, for the demo and tests.

    `options` declares settings of its own beyond the API key and base URL, as pydantic field
    definitions (`name: (type, default)`): each becomes `GPUBROKER_<NAME>_<OPTION>` and reaches the
    adapter in `ProviderConfig.options` under `name`.

    `tags_instances` says the provider takes a name, label or tag on each instance and echoes it
    in its instance listing, so every instance can carry the broker's deployment id (SkyPilot
    keeps the same fact per cloud). Where it is False, reconciliation touches untagged instances
    only when the operator declares the account the broker's alone. `credentials_once` says the
    provider returns a rental's workload credentials in the provision answer only, so the broker
    must keep them (encrypted with `GPUBROKER_SECRET_KEY`) to reach the workload later.
    """

    name: str
    title: str
    default_base_url: str | None
    make_adapter: Callable[[ProviderConfig], Provider]
    make_simulator: Callable[[SimulatorKnobs], FastAPI] | None = None
    demo_api_key: str = "demo-key"
    options: Mapping[str, tuple[Any, Any]] = field(default_factory=dict)
    tags_instances: bool = False
    credentials_once: bool = False
