"""EmpirioLabs GPU Cloud: on-demand GPUs by slug, model / template / custom-image deploys."""

from providers.empiriolabs.adapter import EmpirioLabsAdapter
from providers.spec import ProviderSpec

DEFAULT_BASE_URL = "https://api.empiriolabs.ai"

SPEC = ProviderSpec.simulated(
    "empiriolabs", "EmpirioLabs GPU Cloud", DEFAULT_BASE_URL, EmpirioLabsAdapter
)
