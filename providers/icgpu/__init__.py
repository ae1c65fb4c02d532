"""IC GPU: dedicated, MIG and time-sliced GPU tiers, interactive or batch (preemptible).

IC GPU publishes no public base URL, so the operator must configure one to enable it."""

from providers.icgpu.adapter import IcGpuAdapter
from providers.spec import ProviderSpec

SPEC = ProviderSpec.simulated("icgpu", "IC GPU", None, IcGpuAdapter, tags_instances=True)
