"""ComputeGPU: community marketplace listings and a GPU cloud with on-demand and spot pods."""

from providers.computegpu.adapter import ComputeGpuAdapter
from providers.spec import ProviderSpec

DEFAULT_BASE_URL = "https://computegpu.com"

SPEC = ProviderSpec.simulated(
    "computegpu", "ComputeGPU", DEFAULT_BASE_URL, ComputeGpuAdapter, credentials_once=True
)
