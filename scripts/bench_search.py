"""Catalog search at scale: refresh time, query latency, stalls during a refresh, memory.

One provider (AIVory's API shape) answers a list of `--offers` items from its own process, over
HTTP; the broker side reads it through the real adapter into a real `Catalog`, as the broker does:

- time from the request to the provider until the catalog answers searches from the new index;
- in-process p50/p99 of five filter sets (first page, limit 50) on the loaded index;
- the slowest of those queries while a second refresh (10% of prices changed) runs on another
  thread: the interpreter lock is what a refresh could take from the queries;
- this process's RSS before loading, after loading, at its peak during the refresh and after it;
- HTTP: a real uvicorn (one worker, separate process) over the same provider, GET /v1/offers
  with the same filter sets against GET /healthz on that server, the floor of the HTTP stack.

Each row shows its ratio to a baseline measured in the same run (the idle query for the queries
during a refresh, the RSS before loading for memory, /healthz for HTTP).

    python scripts/bench_search.py [--offers 1000000] [--requests 2000] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import orjson
import psutil
from rich.console import Console
from rich.table import Table

from pricing.catalog import Catalog
from pricing.gpus import normalize_gpu_key, resolve_gpu_query
from pricing.offer import InstanceType, Tier
from pricing.query import OfferQuery
from pricing.refresh import Refresher
from providers.aivory.adapter import AivoryAdapter
from providers.base import ProviderConfig

GPUS = [
    ("RTX 4090", 24, 0.30, 0.80),
    ("rtx-3090", 24, 0.15, 0.35),
    ("H100", 80, 1.8, 3.5),
    ("NVIDIA A100 80GB", 80, 1.1, 2.0),
    ("L40S", 48, 0.7, 1.2),
    ("RTX5090", 32, 0.6, 1.1),
    ("H200", 141, 3.0, 4.5),
    ("L4", 24, 0.3, 0.6),
    ("A10", 24, 0.4, 0.8),
    ("T4", 16, 0.1, 0.3),
]
REGIONS = [
    "US-East",
    "US-West",
    "Quebec, CA",
    "Paris, FR",
    "Frankfurt, DE",
    "eu-west",
    "Tokyo, JP",
    "Singapore, SG",
    "Sydney, AU",
    "London, GB",
]
MiB = 1024 * 1024


def provider_answers(size: int, changed: float, seed: int = 1) -> list[bytes]:
    """Two versions of one AIVory offers answer: the second with `changed` of its prices moved."""
    rng = random.Random(seed)
    items = []
    for i in range(size):
        name, vram, low, high = rng.choice(GPUS)
        items.append(
            {
                "gpu_model": name,
                "vram_gb": vram,
                "provider_id": f"host-{i}",
                "region": rng.choice(REGIONS),
                "price_per_gpu_hour": str(round(rng.uniform(low, high), 3)),
                "interruption_probability": rng.choice([0.01, 0.02, 0.05, 0.1, 0.2]),
                "spot": rng.random() < 0.7,
                "available": rng.random() < 0.9,
            }
        )
    first = orjson.dumps({"object": "list", "data": items})
    for item in items:
        if rng.random() < changed:
            price = float(str(item["price_per_gpu_hour"]))
            item["price_per_gpu_hour"] = str(round(price * 1.05, 3))
    return [first, orjson.dumps({"object": "list", "data": items})]


def serve_provider(port: int, size: int, changed: float) -> None:
    """The provider's process: answers its offers list, alternating the two versions."""
    answers = provider_answers(size, changed)
    served = [0]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = answers[served[0] % len(answers)] if self.path.startswith("/v1/") else b"{}"
            served[0] += self.path.startswith("/v1/")
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    print("ready", flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def adapter(url: str) -> AivoryAdapter:
    return AivoryAdapter(ProviderConfig(base_url=url, timeout_seconds=300, retry_attempts=1))


def gpus(term: str) -> tuple[str, ...]:
    return tuple(sorted(resolve_gpu_query(term) or ()))


QUERIES: list[tuple[str, OfferQuery, dict[str, Any]]] = [
    (
        "4090 under $0.40, cheapest",
        OfferQuery(gpus=gpus("RTX 4090"), max_price=400_000),
        {"gpu": "RTX 4090", "max_price": "0.40"},
    ),
    (
        "spot, p<=5%, by effective price",
        OfferQuery(tier=Tier.SPOT, max_interruption=0.05, sort="effective_price"),
        {"tier": "spot", "max_interruption": 0.05, "sort": "effective_price"},
    ),
    (
        "80 GB+ in eu, cheapest",
        OfferQuery(min_vram=80, region="eu"),
        {"min_vram": 80, "region": "eu"},
    ),
    (
        "H100 containers, priciest",
        OfferQuery(gpus=gpus("H100"), instance_type=InstanceType.CONTAINER, sort="-price"),
        {"gpu": "H100", "instance_type": "container", "sort": "-price"},
    ),
    ("everything, $ per GB", OfferQuery(sort="price_per_vram"), {"sort": "price_per_vram"}),
]


def percentiles(samples: Sequence[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def time_calls(call: Callable[[], object], runs: int) -> tuple[float, float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return percentiles(samples)


class RssSampler(threading.Thread):
    """This process's peak RSS, sampled every 20 ms while running."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = rss()
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.02):
            self.peak = max(self.peak, rss())

    def stop(self) -> int:
        self.done.set()
        self.join()
        return self.peak


def timed_refresh(refresher: Refresher) -> tuple[float, float, int]:
    """One refresh of the provider: its seconds, this process's CPU seconds meanwhile (what a
    busy, shared machine does not inflate) and its peak RSS."""
    sampler = RssSampler()
    sampler.start()
    started, cpu = time.perf_counter(), time.process_time()
    refresher.refresh("aivory")
    return time.perf_counter() - started, time.process_time() - cpu, sampler.stop()


def rss() -> int:
    return int(psutil.Process().memory_info().rss)


class QueryLoop(threading.Thread):
    """Runs the five filter sets one after another, 1 ms apart, timing each, until stopped."""

    def __init__(self, catalog: Catalog) -> None:
        super().__init__(daemon=True)
        self.catalog = catalog
        self.samples: list[float] = []
        self.done = threading.Event()

    def run(self) -> None:
        i = 0
        while not self.done.is_set():
            query = QUERIES[i % len(QUERIES)][1]
            started = time.perf_counter()
            self.catalog.index.search(query)
            self.samples.append(time.perf_counter() - started)
            i += 1
            time.sleep(0.001)

    def stop(self) -> list[float]:
        self.done.set()
        self.join()
        return self.samples


def start(
    args: list[str], ready: Callable[[subprocess.Popen[bytes]], bool]
) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE)
    deadline = time.monotonic() + 900
    while not ready(process):
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise SystemExit(f"{args[0]} did not start")
        time.sleep(0.5)
    return process


def provider_ready(process: subprocess.Popen[bytes]) -> bool:
    assert process.stdout is not None
    return process.stdout.readline().strip() == b"ready"


def serve_broker(port: int, provider_url: str) -> None:
    """The broker's process: one uvicorn worker over the benchmark provider."""
    import uvicorn

    from broker.app import create_app
    from broker.settings import Settings

    db = os.path.join(tempfile.mkdtemp(), "bench.db")
    settings = Settings(_env_file=None, database_url=f"sqlite:///{db}", refresh_seconds=3600)
    app = create_app(settings, adapters={"aivory": adapter(provider_url)}, start_jobs=False)
    refresher = app.state.refresher
    refresher.refresh_all()

    def refresh_now(*_: object) -> None:
        threading.Thread(target=refresher.refresh, args=["aivory"], daemon=True).start()

    signal.signal(signal.SIGUSR1, refresh_now)  # the benchmark's cue for a refresh
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


async def load(
    url: str, paths: list[tuple[str, dict[str, Any]]], concurrency: int
) -> tuple[float, float, float]:
    """Send every request with `concurrency` in flight; returns (req/s, p50 s, p99 s)."""
    latencies: list[float] = []
    queue = list(reversed(paths))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def worker() -> None:
            while queue:
                path, params = queue.pop()
                started = time.perf_counter()
                response = await client.get(path, params=params)
                latencies.append(time.perf_counter() - started)
                response.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    p50, p99 = percentiles(latencies)
    return len(latencies) / elapsed, p50, p99


def during_refresh(url: str, server: subprocess.Popen[bytes]) -> tuple[float, int, int, float]:
    """Searches one at a time while the server refreshes: (slowest s, count, peak RSS, s)."""
    process = psutil.Process(server.pid)
    with httpx.Client(base_url=url, timeout=60) as client:

        def updated(params: dict[str, Any]) -> object:
            response = client.get("/v1/offers", params=params)
            response.raise_for_status()
            return response.json()["providers"]["aivory"]["updated_at"]

        before = updated({"limit": 1})
        latencies: list[float] = []
        peak = process.memory_info().rss
        server.send_signal(signal.SIGUSR1)
        started = time.perf_counter()
        while True:
            params = dict(QUERIES[len(latencies) % len(QUERIES)][2])
            params["max_price"] = (
                f"{float(params.get('max_price', 50)) + len(latencies) * 1e-6:.6f}"
            )
            sent = time.perf_counter()
            at = updated(params)
            latencies.append(time.perf_counter() - sent)
            peak = max(peak, process.memory_info().rss)
            if at != before:
                return max(latencies), len(latencies), peak, time.perf_counter() - started
            time.sleep(0.005)


def http_rows(provider_url: str, requests: int, concurrency: int) -> list[tuple[float, ...]]:
    """(req/s, p50, p99) of /healthz, then of the searches, on a separate broker process (with
    `concurrency` in flight, then one at a time); then the slowest search while it refreshes
    (s), their count, its peak RSS and the refresh's seconds, and its RSS after loading."""
    port = 18000 + os.getpid() % 1000
    url = f"http://127.0.0.1:{port}"

    def up(process: subprocess.Popen[bytes]) -> bool:
        try:
            return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    server = start(["--serve", str(port), "--provider-url", provider_url], up)
    try:
        searches = []
        for i in range(requests):
            params = dict(QUERIES[i % len(QUERIES)][2])
            # A distinct max_price per request keeps the page cache out of the measurement.
            ceiling = float(params.get("max_price", 50))
            params["max_price"] = f"{ceiling + i * 1e-6:.6f}"
            params["limit"] = 50
            searches.append(("/v1/offers", params))
        asyncio.run(load(url, searches[:200], concurrency))  # warm-up
        floor = asyncio.run(load(url, [("/healthz", {})] * requests, concurrency))
        search = asyncio.run(load(url, searches, concurrency))
        floor_alone = asyncio.run(load(url, [("/healthz", {})] * requests, 1))
        search_alone = asyncio.run(load(url, searches, 1))
        loaded = psutil.Process(server.pid).memory_info().rss
        refresh = during_refresh(url, server)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return [floor, search, floor_alone, search_alone, (*refresh, loaded)]


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms" if seconds < 1 else f"{seconds:.1f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--offers", type=int, default=1_000_000)
    parser.add_argument("--changed", type=float, default=0.1)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP rows")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-provider", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--provider-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_provider:
        serve_provider(args.serve_provider, args.offers, args.changed)
        return
    if args.serve:
        serve_broker(args.serve, args.provider_url)
        return

    port = 17000 + os.getpid() % 1000
    provider_url = f"http://127.0.0.1:{port}"
    provider = start(
        [
            "--serve-provider",
            str(port),
            "--offers",
            str(args.offers),
            "--changed",
            str(args.changed),
        ],
        provider_ready,
    )
    load_before = os.getloadavg()[0]
    try:
        rows = run(provider_url, args)
    finally:
        provider.terminate()
        provider.wait(timeout=30)
    title = (
        f"catalog at scale, {args.offers:,} offers from one provider; {os.cpu_count()} CPUs, "
        f"load average {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    )
    table = Table(title=title)
    for column in ("measure", "value", "baseline", "ratio", "target"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    for row in rows:
        table.add_row(*row)
    Console(width=150).print(table)


Row = tuple[str, str, str, str, str]


def run(provider_url: str, args: argparse.Namespace) -> list[Row]:
    rows = in_process(provider_url, args)
    if not args.no_http:
        rows += http_part(provider_url, args)
    return rows


def in_process(provider_url: str, args: argparse.Namespace) -> list[Row]:
    rows: list[Row] = []
    catalog = Catalog(["aivory"], gpu_key=normalize_gpu_key)
    refresher = Refresher(catalog, {"aivory": adapter(provider_url)})
    before = rss()
    first_load, first_cpu, first_peak = timed_refresh(refresher)
    loaded = rss()
    assert len(catalog.index) == args.offers, len(catalog.index)
    cpu = f"CPU {ms(first_cpu)}"
    rows.append(("first load: request -> searchable", ms(first_load), cpu, "", "<= 30 s"))

    idle: list[float] = []
    for name, query, _ in QUERIES:
        p50, p99 = time_calls(functools.partial(catalog.index.search, query), 200)
        idle.append(p99)
        rows.append((f"query p50 / p99: {name}", f"{ms(p50)} / {ms(p99)}", "", "", "p50 <= 2 ms"))
    idle_worst = max(idle)

    queries = QueryLoop(catalog)
    queries.start()
    time.sleep(0.2)
    second_load, second_cpu, during_peak = timed_refresh(refresher)
    time.sleep(0.2)
    samples = queries.stop()
    after = rss()
    slowest = max(samples)
    cpu = f"CPU {ms(second_cpu)}"
    rows.append(("refresh (10% moved): request -> swapped", ms(second_load), cpu, "", "<= 30 s"))
    rows.append(
        (
            f"slowest query during refresh ({len(samples)} queries)",
            ms(slowest),
            ms(idle_worst),
            f"{slowest / idle_worst:.0f}x",
            "<= 250 ms",
        )
    )
    for name, value in (
        ("RSS after first load", loaded),
        ("RSS peak during first load", first_peak),
        ("RSS peak during refresh", during_peak),
        ("RSS after refresh", after),
    ):
        rows.append(
            (name, f"{value / MiB:,.0f} MiB", f"{before / MiB:,.0f} MiB", "", "<= 2048 MiB")
        )
    rows.append(
        (
            "RSS per offer (after refresh - before)",
            f"{(after - before) / args.offers:,.0f} B",
            "",
            "",
            "",
        )
    )
    return rows


def http_part(provider_url: str, args: argparse.Namespace) -> list[Row]:
    rows: list[Row] = []
    measured = http_rows(provider_url, args.requests, args.concurrency)
    floor, search, floor_alone, search_alone, refresh = measured
    for how, healthz, offers, target in (
        (f"{args.concurrency} in flight", floor, search, "p50 <= 2x"),
        ("one at a time", floor_alone, search_alone, "p50 <= 2 ms, <= 2x"),
    ):
        rows.append(
            (
                f"HTTP GET /healthz p50 / p99, {how}",
                f"{ms(healthz[1])} / {ms(healthz[2])}",
                "",
                f"{healthz[0]:,.0f} req/s",
                "",
            )
        )
        rows.append(
            (
                f"HTTP GET /v1/offers p50 / p99, {how}",
                f"{ms(offers[1])} / {ms(offers[2])}",
                ms(healthz[1]),
                f"{offers[1] / healthz[1]:.2f}x",
                target,
            )
        )
    slowest_http, count, peak, seconds = refresh[:4]
    rows.append(
        (
            f"HTTP slowest search during a refresh ({count:.0f}, one at a time)",
            ms(slowest_http),
            ms(search[2]),
            f"{slowest_http / search[2]:.1f}x p99",
            "<= 250 ms",
        )
    )
    rows.append(
        (
            "server: RSS loaded / peak during the refresh",
            f"{refresh[4] / MiB:,.0f} / {peak / MiB:,.0f} MiB",
            "",
            f"refresh {seconds:.1f} s",
            "<= 2048 MiB",
        )
    )
    return rows


if __name__ == "__main__":
    main()
