"""IC GPU: dedicated, MIG and time-sliced GPU tiers, interactive or batch (preemptible).

IC GPU publishes no public base URL, so the operator must configure one to enable it."""

from providers.icgpu.adapter import IcGpuAdapter
from providers.icgpu.simulator import create_simulator
from providers.spec import ProviderSpec

SPEC = ProviderSpec(
    name="icgpu",
    title="IC GPU",
    default_base_url=None,
    make_adapter=IcGpuAdapter,
    tags_instances=True,
    make_simulator=create_simulator,
)
