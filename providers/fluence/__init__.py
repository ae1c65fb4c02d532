"""Fluence GPU Cloud: container, VM and bare-metal plans from many compute providers."""

from providers.fluence.adapter import FluenceAdapter
from providers.fluence.simulator import create_simulator
from providers.spec import ProviderSpec

DEFAULT_BASE_URL = "https://api.fluence.dev"

SPEC = ProviderSpec(
    name="fluence",
    title="Fluence GPU Cloud",
    default_base_url=DEFAULT_BASE_URL,
    make_adapter=FluenceAdapter,
    tags_instances=True,
    make_simulator=create_simulator,
)
