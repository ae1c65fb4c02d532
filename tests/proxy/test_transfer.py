"""200 MB each way through the proxy, streamed: the bytes arrive intact and memory stays flat.

The broker, the simulators and this client share one process, so its resident memory is an
upper bound on what the broker holds: a proxy that buffered a body whole would add ~200 MB.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import psutil

from providers.simulators.kit import serve_in_thread
from providers.simulators.workload import (
    WorkloadState,
    create_workload_app,
    pattern_chunks,
    pattern_sha256,
)
from proxy.settings import ProxySettings
from proxy.upstream import Pool
from tests.proxy.conftest import Broker

SIZE = 200 * 1024 * 1024
MAX_GROWTH = 100 * 1024 * 1024


@contextmanager
def peak_growth() -> Iterator[Callable[[], int]]:
    """Sample this process's RSS while the block runs; yields a getter of peak minus start."""
    process = psutil.Process()
    start = process.memory_info().rss
    peak = start
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.005):
            peak = max(peak, process.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield lambda: peak - start
    finally:
        done.set()
        sampler.join()


def test_a_200_mb_upload_streams_through(broker: Broker) -> None:
    rental = broker.rent("fluence")
    url = broker.connect_url(rental["id"]) + "upload"

    with peak_growth() as growth:
        response = httpx.post(
            url,
            content=pattern_chunks(SIZE),
            headers={**broker.headers, "Content-Length": str(SIZE)},
            timeout=60,
        )

    assert response.status_code == 200, response.text
    assert response.json() == {"bytes": SIZE, "sha256": pattern_sha256(SIZE)}
    assert growth() < MAX_GROWTH


def test_a_200_mb_download_streams_through(broker: Broker) -> None:
    rental = broker.rent("fluence")
    url = broker.connect_url(rental["id"]) + f"bytes/{SIZE}"
    digest, received = hashlib.sha256(), 0

    with (
        peak_growth() as growth,
        httpx.stream("GET", url, headers=broker.headers, timeout=60) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-length"] == str(SIZE)
        for chunk in response.iter_raw():
            digest.update(chunk)
            received += len(chunk)

    assert received == SIZE
    assert digest.hexdigest() == pattern_sha256(SIZE)
    assert growth() < MAX_GROWTH


def test_a_chunked_upload_of_unknown_length_streams_through(broker: Broker) -> None:
    rental = broker.rent("empiriolabs")
    size = 3 * 1024 * 1024 + 17

    response = httpx.post(
        broker.connect_url(rental["id"]) + "upload",
        content=pattern_chunks(size),  # a generator: sent chunked, with no length
        headers=broker.headers,
    )

    assert response.status_code == 200, response.text
    assert response.json() == {"bytes": size, "sha256": pattern_sha256(size)}


def test_one_upstream_connection_carries_request_after_request() -> None:
    server = serve_in_thread(create_workload_app(WorkloadState("fluence"), lambda *_: None))
    try:
        used = asyncio.run(exchanges(server.url, ["GET", "HEAD", "GET", "GET"]))
    finally:
        server.stop()
    assert [connection is used[0] for connection in used] == [True] * 4


async def exchanges(url: str, methods: list[str]) -> list[object]:
    """`/v1/models` with each method in turn through one pool; the connection of each.

    A HEAD's answer announces a body that never comes: the answer after it must still read."""
    used: list[object] = []
    async with Pool(ProxySettings(_env_file=None)) as pool:
        origin = pool.base(url).origin
        for method in methods:
            head = f"{method} /v1/models HTTP/1.1\r\nhost: workload\r\n\r\n".encode()
            connection = await pool.send(origin, head, None, head_only=method == "HEAD")
            body = connection.take()
            while not connection.complete:
                await connection.more()
                body += connection.take()
            if method == "HEAD":
                assert body == b""
            else:
                assert connection.status == 200
                assert json.loads(body)["data"]
            pool.release(connection)
            used.append(connection)
    return used
