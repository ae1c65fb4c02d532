"""ComputeGPU: community marketplace listings and a GPU cloud with on-demand and spot pods."""

from providers.computegpu.adapter import ComputeGpuAdapter
from providers.computegpu.simulator import create_simulator
from providers.spec import ProviderSpec

DEFAULT_BASE_URL = "https://computegpu.com"

SPEC = ProviderSpec(
    name="computegpu",
    title="ComputeGPU",
    default_base_url=DEFAULT_BASE_URL,
    make_adapter=ComputeGpuAdapter,
    credentials_once=True,
    make_simulator=create_simulator,
)
