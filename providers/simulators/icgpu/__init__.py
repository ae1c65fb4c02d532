"""The simulated provider: its documented API served from memory, by `create_simulator(knobs)`."""

from providers.simulators.icgpu.app import create_simulator
from providers.simulators.icgpu.state import IcGpuState

__all__ = ["IcGpuState", "create_simulator"]
