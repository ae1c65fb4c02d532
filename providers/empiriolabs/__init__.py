"""EmpirioLabs GPU Cloud: on-demand GPUs by slug, model / template / custom-image deploys."""

from providers.empiriolabs.adapter import EmpirioLabsAdapter
from providers.empiriolabs.simulator import create_simulator
from providers.spec import ProviderSpec

DEFAULT_BASE_URL = "https://api.empiriolabs.ai"

SPEC = ProviderSpec(
    name="empiriolabs",
    title="EmpirioLabs GPU Cloud",
    default_base_url=DEFAULT_BASE_URL,
    make_adapter=EmpirioLabsAdapter,
    make_simulator=create_simulator,
)
