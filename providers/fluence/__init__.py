"""Fluence GPU Cloud: container, VM and bare-metal plans from many compute providers."""

from providers.fluence.adapter import FluenceAdapter
from providers.spec import ProviderSpec

DEFAULT_BASE_URL = "https://api.fluence.dev"

SPEC = ProviderSpec.simulated(
    "fluence", "Fluence GPU Cloud", DEFAULT_BASE_URL, FluenceAdapter, tags_instances=True
)
