"""The connect proxy: one authenticated, streaming entrance to every rented workload."""
