"""What a simulated Fluence container serves: the shared workload on a port of its own.

Fluence reaches a container at `http://{domain}:{external}`, with no credentials of Fluence's in
between, so each forwarded port of an ACTIVE container gets its own loopback uvicorn running the
shared workload app, and that server's port is what the simulator reports as its `external`.
Nothing is expected in `Authorization`: the proxy must never pass the caller's broker key to a
container, so a request that carries one is refused.
"""

from __future__ import annotations

import threading

from fastapi.responses import JSONResponse, Response
from starlette.datastructures import Headers

from providers.simulators.kit import RunningServer, serve_in_thread, stop_all
from providers.simulators.workload import WorkloadState, create_workload_app


def no_credentials(_: str | None, headers: Headers) -> Response | None:
    """A container sees no caller credentials: the proxy strips them."""
    if "authorization" in headers:
        return JSONResponse(
            {"detail": "this container takes no Authorization header"}, status_code=401
        )
    return None


class WorkloadListeners:
    """Workload servers of ACTIVE containers, started on activation, stopped on terminate."""

    def __init__(self, state: WorkloadState) -> None:
        self.state = state
        self._servers: dict[str, list[RunningServer]] = {}
        self._lock = threading.Lock()

    def open(self, instance_id: str, count: int) -> list[int]:
        """Start `count` servers of the container's workload and return their loopback ports."""
        servers = [
            serve_in_thread(create_workload_app(self.state, no_credentials)) for _ in range(count)
        ]
        with self._lock:
            self._servers[instance_id] = servers
        return [server.port for server in servers]

    def close(self, instance_id: str) -> None:
        """Stop the container's workload; connections to its ports are refused from then on."""
        with self._lock:
            servers = self._servers.pop(instance_id, [])
        stop_all(servers)

    def close_all(self) -> None:
        with self._lock:
            every = [server for servers in self._servers.values() for server in servers]
            self._servers = {}
        stop_all(every)
