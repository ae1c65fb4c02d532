"""The simulated provider: its documented API served from memory, by `create_simulator(knobs)`."""

from providers.simulators.empiriolabs.app import EmpirioLabsState, create_simulator

__all__ = ["EmpirioLabsState", "create_simulator"]
