"""AIVory Smart Inference: spot and on-demand GPUs from many upstream providers."""

from providers.aivory.adapter import AivoryAdapter
from providers.spec import ProviderSpec

DEFAULT_BASE_URL = "https://api.aivory.net"

SPEC = ProviderSpec.simulated(
    "aivory", "AIVory Smart Inference", DEFAULT_BASE_URL, AivoryAdapter, demo_api_key="si_demo"
)
