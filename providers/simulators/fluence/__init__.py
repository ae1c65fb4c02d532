"""The simulated provider: its documented API served from memory, by `create_simulator(knobs)`."""

from providers.simulators.fluence.app import create_simulator
from providers.simulators.fluence.state import FluenceState

__all__ = ["FluenceState", "create_simulator"]
