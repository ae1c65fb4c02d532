"""What the connect proxy counts: requests and their outcome, bytes each way, upstream latency.

The objects live in prometheus_client's default registry, which the broker's `/metrics` serves
next to its own, so the proxy needs nothing from the broker to be observed. Labels are small
closed sets (protocol, direction, outcome): never a rental id, a path or a key.

An outcome is the upstream's status class (`2xx` .. `5xx`, `101` for an accepted WebSocket) when
it answered, else why it did not (`timeout`, `unreachable`, `refused` for a declined handshake).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Histogram

REQUESTS = Counter(
    "gpubroker_proxy_requests_total",
    "Requests relayed to rented workloads, by protocol and outcome",
    ["protocol", "outcome"],
)
BYTES = Counter(
    "gpubroker_proxy_bytes_total",
    "Body bytes relayed by the connect proxy (WebSocket: payloads, text in characters)",
    ["protocol", "direction"],
)
UPSTREAM_LATENCY = Histogram(
    "gpubroker_proxy_upstream_latency_seconds",
    "From sending a request upstream to its response headers (WebSocket: the handshake)",
    ["protocol"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)

HTTP_UP = BYTES.labels("http", "upstream")
HTTP_DOWN = BYTES.labels("http", "downstream")
WS_UP = BYTES.labels("websocket", "upstream")
WS_DOWN = BYTES.labels("websocket", "downstream")
# The hot path's children, looked up once rather than per request.
HTTP_LATENCY = UPSTREAM_LATENCY.labels("http")
HTTP_OUTCOMES = {klass: REQUESTS.labels("http", f"{klass}xx") for klass in range(1, 6)}
HTTP_TIMEOUTS = REQUESTS.labels("http", "timeout")
HTTP_UNREACHABLE = REQUESTS.labels("http", "unreachable")


def count(protocol: str, outcome: str) -> None:
    REQUESTS.labels(protocol, outcome).inc()


@contextmanager
def upstream_timer(protocol: str) -> Iterator[None]:
    """Observe the time the block takes (the wait for the upstream), failed or not."""
    started = time.perf_counter()
    try:
        yield
    finally:
        UPSTREAM_LATENCY.labels(protocol).observe(time.perf_counter() - started)
