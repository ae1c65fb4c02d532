"""What keeping the catalog live costs and how often it fails: refresh durations, errors, retries.

The objects live in prometheus_client's default registry, which the broker's `/metrics` serves
next to its own; labels are provider names and a closed set of outcomes, nothing else.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REFRESH_SECONDS = Histogram(
    "gpubroker_provider_refresh_duration_seconds",
    "Time to read one provider's catalog, by outcome (ok, error)",
    ["provider", "outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
REFRESH_ERRORS = Counter(
    "gpubroker_provider_refresh_errors_total",
    "Failed catalog refreshes, by kind (provider: the provider's fault; unexpected: ours)",
    ["provider", "kind"],
)
PROVIDER_RETRIES = Counter(
    "gpubroker_provider_retries_total",
    "Provider API calls retried after a transient fault (429, 5xx, timeout, connection)",
    ["provider"],
)
