"""The simulated provider: its documented API served from memory, by `create_simulator(knobs)`."""

from providers.simulators.aivory.app import create_simulator
from providers.simulators.aivory.state import AivoryState

__all__ = ["AivoryState", "create_simulator"]
