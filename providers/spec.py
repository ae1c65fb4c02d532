"""How the registry describes a backend: its adapter, and its simulator where it has one.

The simulator is named, not imported: `simulator` is a `module:function` path under
`providers.simulators`, resolved only when `make_simulator` is called, so reading the registry
(as the settings do) loads no web framework and no fake provider. `ProviderSpec.simulated`
declares a backend whose simulator sits in the package of its own name there.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypedDict, Unpack

from providers.base import Provider, ProviderConfig

# A simulator's factory: `SimulatorKnobs` (or None for the defaults) in, a FastAPI app out. Both
# are named loosely here, where neither the kit nor the web framework may be imported.
SimulatorFactory = Callable[[Any], Any]


class SimulatedFlags(TypedDict, total=False):
    """What `ProviderSpec.simulated` takes beyond the name, title, base URL and adapter."""

    demo_api_key: str
    tags_instances: bool
    credentials_once: bool


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
    simulator: str | None = None
    demo_api_key: str = "demo-key"
    options: Mapping[str, tuple[Any, Any]] = field(default_factory=dict)
    tags_instances: bool = False
    credentials_once: bool = False

    @classmethod
    def simulated(
        cls,
        name: str,
        title: str,
        default_base_url: str | None,
        make_adapter: Callable[[ProviderConfig], Provider],
        **flags: Unpack[SimulatedFlags],
    ) -> ProviderSpec:
        """A backend whose simulator is `create_simulator` in `providers.simulators.<name>`."""
        simulator = f"providers.simulators.{name}:create_simulator"
        return cls(name, title, default_base_url, make_adapter, simulator, **flags)

    @property
    def make_simulator(self) -> SimulatorFactory | None:
        """The simulator's factory, imported when called; None for a backend without one."""
        if self.simulator is None:
            return None
        return partial(build_simulator, self.simulator)


def build_simulator(path: str, knobs: Any = None) -> Any:
    """Import the `module:function` at `path` and build its simulator app with `knobs`."""
    module, _, function = path.partition(":")
    factory: SimulatorFactory = getattr(importlib.import_module(module), function)
    return factory(knobs)
