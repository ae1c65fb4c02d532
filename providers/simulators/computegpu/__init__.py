"""The simulated provider: its documented API served from memory, by `create_simulator(knobs)`."""

from providers.simulators.computegpu.app import ComputeGpuState, create_simulator

__all__ = ["ComputeGpuState", "create_simulator"]
