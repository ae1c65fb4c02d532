"""Renting through the winning provider: rank, hold, provision with failover, bill, reconcile."""
