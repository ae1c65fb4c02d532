"""The one list of backends. Settings, the CLI, the demo and the tests all read it."""

from __future__ import annotations

from providers import aivory, computegpu, empiriolabs, fluence, icgpu, selfhosted
from providers.spec import ProviderSpec

PROVIDERS: dict[str, ProviderSpec] = {
    spec.name: spec
    for spec in (
        empiriolabs.SPEC,
        computegpu.SPEC,
        fluence.SPEC,
        aivory.SPEC,
        icgpu.SPEC,
        selfhosted.SPEC,
    )
}
PROVIDER_NAMES: tuple[str, ...] = tuple(PROVIDERS)
