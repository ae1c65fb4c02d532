"""Catalog search speed: the index against a plain linear scan, in process and over HTTP.

Builds 100,000 offers from provider-shaped JSON (AIVory offers and ComputeGPU listings), then
prints one table:
- refresh: parse + price + index build of the whole catalog (best of 3);
- in-process queries (first page, limit 50) for several filter sets: index vs linear scan;
- HTTP: a real uvicorn (one worker, separate process) under an async httpx load, against
  GET /healthz on the same server as the floor of the HTTP stack.
Each request varies `max_price` slightly so the page cache does not answer it.

    python scripts/bench_search.py [--offers 100000] [--requests 4000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from pricing.gpus import normalize_gpu_key, resolve_gpu_query
from pricing.index import CatalogIndex
from pricing.offer import InstanceType, Tier
from pricing.policy import PricingPolicy, apply_policy
from pricing.query import OfferQuery
from pricing.scan import linear_search
from providers.aivory.parse import parse_offers
from providers.base import OfferFilters, OfferPage
from providers.computegpu.parse import parse_listings

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
NOW = datetime(2026, 11, 20, tzinfo=UTC)


def raw_catalog(size: int, seed: int = 1) -> tuple[dict[str, Any], dict[str, Any]]:
    """Provider-shaped payloads: 60% AIVory offers, 40% ComputeGPU listings."""
    rng = random.Random(seed)
    aivory, listings = [], []
    for i in range(size):
        name, vram, low, high = rng.choice(GPUS)
        price = round(rng.uniform(low, high), 3)
        if i % 5 < 3:
            aivory.append(
                {
                    "gpu_model": name,
                    "vram_gb": vram,
                    "provider_id": f"host-{i}",
                    "region": rng.choice(REGIONS),
                    "price_per_gpu_hour": str(price),
                    "interruption_probability": rng.choice([0.01, 0.02, 0.05, 0.1, 0.2]),
                    "spot": rng.random() < 0.7,
                }
            )
        else:
            listings.append(
                {
                    "id": f"lst_{i}",
                    "gpuModel": name,
                    "gpuCount": rng.choice([1, 1, 2, 4, 8]),
                    "vramGb": vram,
                    "pricePerHour": price,
                    "location": rng.choice(REGIONS),
                    "pricingTier": rng.choice(["on-demand", "spot"]),
                    "instanceType": "ollama",
                    "available": rng.random() < 0.9,
                }
            )
    return (
        {"object": "list", "data": aivory},
        {"listings": listings, "total": len(listings), "limit": len(listings), "offset": 0},
    )


def refresh(
    payloads: tuple[dict[str, Any], dict[str, Any]],
) -> tuple[CatalogIndex, dict[str, float]]:
    """Parse, price and index the payloads; returns the index and each stage's seconds."""
    started = time.perf_counter()
    offers = parse_offers(payloads[0], NOW).offers + parse_listings(payloads[1], NOW).page.offers
    parsed = time.perf_counter()
    apply_policy(offers, PricingPolicy())
    priced = time.perf_counter()
    index = CatalogIndex(offers, normalize_gpu_key)
    built = time.perf_counter()
    return index, {"parse": parsed - started, "price": priced - parsed, "index": built - priced}


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
        "H100 at aivory, priciest",
        OfferQuery(gpus=gpus("H100"), providers=("aivory",), sort="-price"),
        {"gpu": "H100", "provider": "aivory", "sort": "-price"},
    ),
    (
        "2+ GPUs containers, most VRAM",
        OfferQuery(min_gpu_count=2, instance_type=InstanceType.CONTAINER, sort="-vram"),
        {"min_gpu_count": 2, "instance_type": "container", "sort": "-vram"},
    ),
    ("everything, $ per GB", OfferQuery(sort="price_per_vram"), {"sort": "price_per_vram"}),
]


def percentiles(samples: Sequence[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def time_calls(call: Callable[..., object], runs: int) -> tuple[float, float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return percentiles(samples)


class PreparedProvider:
    """A provider whose catalog is a payload prepared in advance (the server process's input)."""

    def __init__(self, name: str, parse: Callable[[], OfferPage]) -> None:
        self.name = name
        self._parse = parse

    def list_offers(self, filters: OfferFilters | None = None) -> OfferPage:
        return self._parse()

    def close(self) -> None:
        return None


def serve(port: int, size: int) -> None:
    """The server process: the broker over the benchmark catalog, one uvicorn worker."""
    import uvicorn

    from broker.app import create_app
    from broker.settings import Settings

    aivory, listings = raw_catalog(size)
    adapters = {
        "aivory": PreparedProvider("aivory", lambda: parse_offers(aivory, NOW)),
        "computegpu": PreparedProvider("computegpu", lambda: parse_listings(listings, NOW).page),
    }
    db = os.path.join(tempfile.mkdtemp(), "bench.db")
    settings = Settings(_env_file=None, database_url=f"sqlite:///{db}", refresh_seconds=3600)
    app = create_app(settings, adapters=adapters, start_jobs=False)
    app.state.refresher.refresh_all()
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


def http_rows(size: int, requests: int, concurrency: int) -> list[tuple[str, float, float, float]]:
    port = 18000 + os.getpid() % 1000
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port), "--offers", str(size)]
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        searches = []
        for i in range(requests):
            params = dict(QUERIES[i % len(QUERIES)][2])
            # A distinct max_price per request (no narrowing where the query had none) keeps
            # the page cache out of the measurement.
            ceiling = float(params.get("max_price", 100))
            params["max_price"] = f"{ceiling + i * 1e-7:.7f}"
            params["limit"] = 50
            searches.append(("/v1/offers", params))
        asyncio.run(load(url, searches[:200], concurrency))  # warm-up
        floor = asyncio.run(load(url, [("/healthz", {})] * requests, concurrency))
        search = asyncio.run(load(url, searches, concurrency))
    finally:
        server.terminate()
        server.wait(timeout=10)
    return [("GET /healthz (HTTP floor)", *floor), ("GET /v1/offers (index)", *search)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--offers", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.offers)
        return

    payloads = raw_catalog(args.offers)
    runs = [refresh(payloads) for _ in range(3)]
    index, stages = min(runs, key=lambda run: sum(run[1].values()))
    offers = index.offers
    console = Console(width=150)
    table = Table(title=f"catalog search, {len(offers):,} offers", header_style="bold")
    for column in ("measure", "index p50", "index p99", "scan p50", "scan p99", "speed-up (p50)"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    total = sum(stages.values())
    table.add_row(
        "full refresh: parse + price + index",
        f"{total * 1e3:.0f} ms",
        "",
        "",
        "",
        f"parse {stages['parse'] * 1e3:.0f} / price {stages['price'] * 1e3:.0f}"
        f" / index {stages['index'] * 1e3:.0f} ms",
    )
    for name, query, _ in QUERIES:
        fast = time_calls(lambda q=query: index.search(q), 300)
        slow = time_calls(lambda q=query: linear_search(offers, q)[: q.limit], 7)
        table.add_row(
            f"query: {name}",
            f"{fast[0] * 1e3:.3f} ms",
            f"{fast[1] * 1e3:.3f} ms",
            f"{slow[0] * 1e3:.1f} ms",
            f"{slow[1] * 1e3:.1f} ms",
            f"{slow[0] / fast[0]:.0f}x",
        )
    rows = http_rows(args.offers, args.requests, args.concurrency)
    floor_rps = rows[0][1]
    for name, rps, p50, p99 in rows:
        table.add_row(
            f"HTTP {name}, {args.concurrency} in flight",
            f"{p50 * 1e3:.2f} ms",
            f"{p99 * 1e3:.2f} ms",
            "",
            "",
            f"{rps:,.0f} req/s ({rps / floor_rps:.2f}x floor)",
        )
    console.print(table)


if __name__ == "__main__":
    main()
