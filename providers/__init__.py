"""Provider adapters, each beside the simulator that speaks its API."""
