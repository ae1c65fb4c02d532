"""Connect proxy speed: one upstream reached directly, through the broker and through nginx.

All three are measured in one run on this machine against the same upstream: the simulators'
workload app (`providers.simulators.workload`) under uvicorn, one worker. The broker runs in its own
process (one uvicorn worker, SQLite, no background jobs) with one running rental whose
upstream is that app; nginx (Debian's package) runs a plain `proxy_pass` config written to a
temporary directory, one worker, upstream keep-alive on and `proxy_buffering off` for SSE.
The load client is async httpx in this process. Prints one table:

- small JSON requests (`GET /v1/models`): req/s and p50/p99 under load (`--concurrency`), the
  serving process's CPU time per request, and p50/p99 one request at a time, which is where
  "added latency" is read;
- one long SSE stream (`POST /v1/chat/completions`, `--tokens` tokens): MB/s and tokens/s;
- resident memory (VmRSS) with `--streams` SSE streams open at once.

    python scripts/bench_proxy.py [--requests 6000] [--concurrency 32] [--streams 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

UPSTREAM_KEY = "bench-upstream-key"
RENTAL_KEY = "rk_bench_rental_key"
RENTAL_ID = "rnt_bench"
WARM_UP = 200
PROMPT = {"model": "llama3", "messages": [{"role": "user", "content": "go"}], "stream": True}
NGINX_CONF = """
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    upstream workload {{ server 127.0.0.1:{upstream}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://workload;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_request_buffering off;
        }}
    }}
}}
"""


# -- the three servers --------------------------------------------------------------------


def serve_upstream(port: int) -> None:
    """The workload app alone: the upstream every path ends at."""
    import uvicorn
    from fastapi.responses import JSONResponse, Response
    from starlette.datastructures import Headers

    from providers.simulators.workload import WorkloadState, bearer_key, create_workload_app

    def gate(_: str | None, headers: Headers) -> Response | None:
        if headers.get("authorization") and bearer_key(headers) != UPSTREAM_KEY:
            return JSONResponse({"error": "wrong upstream key"}, status_code=401)
        return None

    app = create_workload_app(WorkloadState("bench"), gate)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def serve_broker(port: int, database_url: str, upstream_url: str) -> None:
    """The broker, one worker, with one running rental whose upstream is the workload app."""
    import uvicorn

    from broker import accounts
    from broker.accounts import hash_key
    from broker.app import create_app
    from broker.rentals.tables import Rental
    from broker.settings import Settings
    from providers.base import OfferFilters, OfferPage
    from providers.rental import Upstream

    class BenchAdapter:
        """A provider whose one instance is the benchmark's upstream."""

        name = "bench"

        def list_offers(self, filters: OfferFilters | None = None) -> OfferPage:
            return OfferPage()

        def upstream(self, handle: str) -> Upstream:
            return Upstream(upstream_url, {"Authorization": f"Bearer {UPSTREAM_KEY}"})

        def close(self) -> None:
            return None

    settings = Settings(_env_file=None, database_url=database_url)
    app = create_app(settings, adapters={"bench": BenchAdapter()}, start_jobs=False)
    with app.state.db.session() as session:
        account, _ = accounts.create_account(session, "bench")
        session.add(
            Rental(
                id=RENTAL_ID,
                account_id=account.id,
                status="running",
                request_hash="bench",
                request={},
                rental_key_hash=hash_key(RENTAL_KEY),
                provider="bench",
                handle="bench-1",
            )
        )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def process(*args: str) -> Iterator[subprocess.Popen[bytes]]:
    child = subprocess.Popen([sys.executable, __file__, *args])
    try:
        yield child
    finally:
        child.terminate()
        child.wait(timeout=30)


@contextmanager
def nginx(upstream_port: int) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        raise SystemExit("nginx is not installed: apt-get install -y nginx")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-nginx-") as tmp:
        conf = Path(tmp) / "nginx.conf"
        conf.write_text(NGINX_CONF.format(tmp=tmp, upstream=upstream_port, port=port))
        child = subprocess.Popen([binary, "-c", str(conf), "-p", tmp, "-g", "daemon off;"])
        try:
            yield port, child
        finally:
            child.terminate()
            child.wait(timeout=30)


def wait_ready(url: str, headers: dict[str, str]) -> None:
    for _ in range(600):
        try:
            if httpx.get(url, headers=headers, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} never answered")


def rss_mib(pid: int) -> float:
    """VmRSS of a process and its children (nginx's workers), in MiB."""
    total = 0
    for each in [pid, *children(pid)]:
        for line in Path(f"/proc/{each}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process and its children (nginx's workers)."""
    total = 0
    for each in [pid, *children(pid)]:
        fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


# -- the measurements ---------------------------------------------------------------------


@dataclass
class Via:
    name: str
    base: str  # where the workload's root is reached
    headers: dict[str, str]
    pid: int


@dataclass
class Latency:
    rps: float
    p50: float
    p99: float


async def small_json(path: Via, requests: int, concurrency: int) -> Latency:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    url = path.base + "v1/models"
    samples: list[float] = []
    async with httpx.AsyncClient(limits=limits, timeout=60, headers=path.headers) as client:
        for _ in range(min(WARM_UP, requests)):  # warm up connections and caches
            (await client.get(url)).raise_for_status()
        jobs = iter(range(requests))

        async def worker() -> None:
            for _ in jobs:
                started = time.perf_counter()
                response = await client.get(url)
                samples.append(time.perf_counter() - started)
                response.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    ordered = sorted(samples)
    p99 = ordered[int(len(ordered) * 0.99)]
    return Latency(requests / elapsed, statistics.median(ordered), p99)


async def sse_stream(path: Via, tokens: int) -> tuple[float, float]:
    """(MB/s, tokens/s) of one stream of `tokens` tokens, read as it comes."""
    body = {**PROMPT, "max_tokens": tokens}
    received = 0
    async with httpx.AsyncClient(timeout=120, headers=path.headers) as client:
        started = time.perf_counter()
        async with client.stream("POST", path.base + "v1/chat/completions", json=body) as reply:
            reply.raise_for_status()
            async for chunk in reply.aiter_raw():
                received += len(chunk)
        elapsed = time.perf_counter() - started
    return received / elapsed / 1e6, tokens / elapsed


async def open_streams(path: Via, count: int) -> float:
    """The process's RSS (MiB) once `count` SSE streams are all open and flowing."""
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    url = path.base + "events?count=1000000&interval=1"
    ready = asyncio.Event()
    opened = 0
    async with httpx.AsyncClient(limits=limits, timeout=120, headers=path.headers) as client:

        async def one() -> None:
            nonlocal opened
            async with client.stream("GET", url) as reply:
                reply.raise_for_status()
                lines = reply.aiter_lines()
                await anext(lines)
                opened += 1
                if opened == count:
                    ready.set()
                async for _ in lines:
                    pass

        tasks = [asyncio.create_task(one()) for _ in range(count)]
        await asyncio.wait_for(ready.wait(), timeout=120)
        await asyncio.sleep(2)  # a couple of events through every stream
        rss = rss_mib(path.pid)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return rss


# -- the run --------------------------------------------------------------------------------


def measure(args: argparse.Namespace) -> Table:
    upstream_port, broker_port = free_port(), free_port()
    upstream_url = f"http://127.0.0.1:{upstream_port}"
    auth = {"Authorization": f"Bearer {UPSTREAM_KEY}"}
    with (
        tempfile.TemporaryDirectory(prefix="bench-proxy-") as tmp,
        process("--serve-upstream", str(upstream_port)) as upstream,
        process(
            "--serve-broker", str(broker_port), f"sqlite:///{tmp}/broker.db", upstream_url
        ) as broker,
    ):
        wait_ready(upstream_url + "/v1/models", auth)
        with nginx(upstream_port) as (nginx_port, nginx_process):
            paths = [
                Via("direct", upstream_url + "/", auth, upstream.pid),
                Via(
                    "broker",
                    f"http://127.0.0.1:{broker_port}/v1/rentals/{RENTAL_ID}/connect/",
                    {"Authorization": f"Bearer {RENTAL_KEY}"},
                    broker.pid,
                ),
                Via("nginx", f"http://127.0.0.1:{nginx_port}/", auth, nginx_process.pid),
            ]
            for path in paths:
                wait_ready(path.base + "v1/models", path.headers)
            return tabulate(paths, args)


def tabulate(paths: list[Via], args: argparse.Namespace) -> Table:
    """Every measure, in `--rounds` rounds that alternate the paths, each path's best round
    kept: on a shared machine, noise only ever slows a round down."""
    loaded: dict[str, Latency] = {}
    cpu: dict[str, float] = {}
    single: dict[str, Latency] = {}
    sse: dict[str, tuple[float, float]] = {}
    for _ in range(args.rounds):
        for p in paths:
            spent = cpu_seconds(p.pid)
            run = asyncio.run(small_json(p, args.requests, args.concurrency))
            per_request = (cpu_seconds(p.pid) - spent) / (args.requests + WARM_UP) * 1e6
            if p.name not in loaded or run.rps > loaded[p.name].rps:
                loaded[p.name], cpu[p.name] = run, per_request
            alone = asyncio.run(small_json(p, args.latency_requests, 1))
            if p.name not in single or alone.p50 < single[p.name].p50:
                single[p.name] = alone
            stream = asyncio.run(sse_stream(p, args.tokens))
            if p.name not in sse or stream[0] > sse[p.name][0]:
                sse[p.name] = stream
    idle = {p.name: rss_mib(p.pid) for p in paths}
    streams = {p.name: asyncio.run(open_streams(p, args.streams)) for p in paths}

    title = f"connect proxy: {os.cpu_count()} CPUs, best of {args.rounds} rounds"
    table = Table(title=title, header_style="bold")
    table.add_column("measure")
    for p in paths:
        table.add_column(p.name, justify="right")
    table.add_column("broker / direct", justify="right")
    table.add_column("broker / nginx", justify="right")

    def row(measure: str, values: dict[str, float], unit: str, digits: int = 0) -> None:
        cells = [f"{values[p.name]:,.{digits}f} {unit}" for p in paths]
        ratios = [f"{values['broker'] / values[other]:.2f}x" for other in ("direct", "nginx")]
        table.add_row(measure, *cells, *ratios)

    c = args.concurrency
    row(f"small JSON, req/s (concurrency {c})", {k: v.rps for k, v in loaded.items()}, "")
    row(f"  p50 (concurrency {c})", {k: v.p50 * 1e3 for k, v in loaded.items()}, "ms", 2)
    row(f"  p99 (concurrency {c})", {k: v.p99 * 1e3 for k, v in loaded.items()}, "ms", 2)
    row("  p50 (one at a time)", {k: v.p50 * 1e3 for k, v in single.items()}, "ms", 3)
    row("  p99 (one at a time)", {k: v.p99 * 1e3 for k, v in single.items()}, "ms", 3)
    row("  server CPU per request", cpu, "us")
    row(f"SSE stream, {args.tokens:,} tokens", {k: v[0] for k, v in sse.items()}, "MB/s", 1)
    row("  tokens/s", {k: v[1] for k, v in sse.items()}, "")
    row("resident memory, idle", idle, "MiB", 1)
    row(f"resident memory, {args.streams:,} open SSE streams", streams, "MiB", 1)
    added = (single["broker"].p50 - single["direct"].p50) * 1e3
    verdicts = [
        ("added p50 latency <= 1 ms", f"{added:.3f} ms", added <= 1.0),
        (
            "req/s >= 40% of nginx",
            f"{loaded['broker'].rps / loaded['nginx'].rps:.0%}",
            loaded["broker"].rps >= 0.4 * loaded["nginx"].rps,
        ),
        (
            "SSE throughput >= 80% of direct",
            f"{sse['broker'][0] / sse['direct'][0]:.0%}",
            sse["broker"][0] >= 0.8 * sse["direct"][0],
        ),
        (
            f"< 300 MB with {args.streams:,} streams",
            f"{streams['broker']:.0f} MiB",
            streams["broker"] * 1.048576 < 300,
        ),
    ]
    for target, value, met in verdicts:
        table.add_row(f"target: {target}", value, "met" if met else "NOT met", "", "", "")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency-requests", type=int, default=1500)
    parser.add_argument("--tokens", type=int, default=100_000)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve-upstream", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-broker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    if args.serve_upstream:
        serve_upstream(args.serve_upstream)
    elif args.serve_broker:
        port, database_url, upstream_url = args.serve_broker
        serve_broker(int(port), database_url, upstream_url)
    else:
        Console(width=160).print(measure(args))


if __name__ == "__main__":
    main()
