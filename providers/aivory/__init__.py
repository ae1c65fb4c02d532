"""AIVory Smart Inference: spot and on-demand GPUs from many upstream providers."""

from providers.aivory.adapter import AivoryAdapter
from providers.aivory.simulator import create_simulator
from providers.spec import ProviderSpec

DEFAULT_BASE_URL = "https://api.aivory.net"

SPEC = ProviderSpec(
    name="aivory",
    title="AIVory Smart Inference",
    default_base_url=DEFAULT_BASE_URL,
    make_adapter=AivoryAdapter,
    make_simulator=create_simulator,
    demo_api_key="si_demo",
)
