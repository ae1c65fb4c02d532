"""Connect proxy speed: one upstream reached directly, through the broker and through nginx.

All three are measured in one run on this machine against the same upstream: the simulators'
workload app (`providers.simulators.workload`) under uvicorn, one worker. The broker runs in its own
process (one uvicorn worker, SQLite, no background jobs) with one running rental whose
upstream is that app; nginx (Debian's package) runs a plain `proxy_pass` config written to a
temporary directory, one worker, upstream keep-alive on and `proxy_buffering off` for SSE.

Load comes from `wrk` (C, one thread), not from Python, so the client is not what saturates:

- small JSON requests (`GET /v1/models`): req/s and p50/p99 under load (`--concurrency`
  connections), the serving process's CPU time per request, and p50/p99 over one connection,
  one request at a time, which is where "added latency" is read;
- SSE first byte: a streamed `POST /v1/chat/completions`, from the request's last byte to the
  first `data:` event, one at a time over a kept-alive raw socket (p50 and p99);
- one long SSE stream (`--tokens` tokens): MB/s and tokens/s;
- resident memory (VmRSS) idle and with `--streams` SSE streams open at once (0: not measured,
  and the table says so).

With `--profile`, `py-spy` (in the dev extras) samples the broker's process during one more
loaded run and a second table lists the functions it spent its time in (own samples).

Needs `wrk` and `nginx` (`apt-get install -y wrk nginx`); without them it stops and says so.

    python scripts/bench_proxy.py [--duration 5] [--concurrency 32] [--rounds 3] [--streams 1000]
                                  [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
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
class Load:
    rps: float
    p50: float  # seconds
    p99: float
    cpu: float  # the server's CPU seconds per request


_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}


def wrk(path: Via, url: str, connections: int, seconds: int) -> Load:
    """`wrk` against `url`; every answer must be a 2xx, or the run stops."""
    command = [
        *("wrk", "--latency", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"),
        *(arg for name, value in path.headers.items() for arg in ("-H", f"{name}: {value}")),
        url,
    ]
    spent = cpu_seconds(path.pid)
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    cpu = cpu_seconds(path.pid) - spent
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"wrk saw failures through {path.name}:\n{out}")

    def latency(percent: str) -> float:
        found = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        if found is None:
            raise SystemExit(f"no {percent}% line in wrk's output:\n{out}")
        return float(found[1]) * _UNITS[found[2]]

    total = re.search(r"^\s+(\d+) requests in", out, re.MULTILINE)
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.MULTILINE)
    if total is None or rps is None:
        raise SystemExit(f"unexpected wrk output:\n{out}")
    return Load(float(rps[1]), latency("50"), latency("99"), cpu / int(total[1]))


def sse_first_byte(path: Via, count: int) -> tuple[float, float]:
    """p50 and p99 (seconds) from sending a streamed completion request to its first event."""
    split = httpx.URL(path.base)
    body = json.dumps({**PROMPT, "max_tokens": 2}).encode()
    headers = {**path.headers, "Content-Type": "application/json"}
    connection = http.client.HTTPConnection(split.host, split.port, timeout=30)
    samples: list[float] = []
    try:
        for index in range(WARM_UP // 4 + count):
            started = time.perf_counter()
            connection.request(
                "POST", split.raw_path.decode() + "v1/chat/completions", body, headers
            )
            response = connection.getresponse()
            if response.status != 200:
                raise SystemExit(f"SSE through {path.name} answered {response.status}")
            seen = b""
            while b"data:" not in seen:
                chunk = response.read1(65536)
                if not chunk:
                    raise SystemExit(f"SSE through {path.name} ended before its first event")
                seen += chunk
            elapsed = time.perf_counter() - started
            response.read()  # the rest, so the connection is reused
            if index >= WARM_UP // 4:
                samples.append(elapsed)
    finally:
        connection.close()
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.99)]


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


def profile(path: Via, args: argparse.Namespace) -> Table:
    """The functions `path`'s process spends its time in under load, by py-spy's own samples."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        raise SystemExit("py-spy is not installed: pip install -e '.[dev]'")
    own: Counter[str] = Counter()
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        raw = Path(tmp) / "samples.txt"
        recorder = subprocess.Popen(
            [
                *(spy, "record", "--pid", str(path.pid), "--format", "raw", "--nonblocking"),
                *("--rate", "500", "--duration", str(args.duration), "--output", str(raw)),
            ],
            stdout=subprocess.DEVNULL,
        )
        time.sleep(1)  # py-spy attaches
        wrk(path, path.base + "v1/models", args.concurrency, args.duration)
        if recorder.wait(timeout=60) != 0:
            raise SystemExit("py-spy failed (it needs ptrace: run as root or with CAP_SYS_PTRACE)")
        for line in raw.read_text().splitlines():
            stack, _, samples = line.rpartition(" ")
            own[re.sub(r":\d+\)$", ")", stack.rpartition(";")[2])] += int(samples)
    total = sum(own.values()) or 1
    table = Table(title=f"where the {path.name} process spends its time under load (py-spy)")
    table.add_column("own samples", justify="right")
    table.add_column("function (file)")
    for frame, count in own.most_common(args.profile_lines):
        table.add_row(f"{count / total:.1%}", frame)
    return table


# -- the run --------------------------------------------------------------------------------


def require_tools() -> None:
    """Stop, saying how to install them, when the load generator or nginx is missing."""
    missing = [
        tool
        for tool in ("wrk", "nginx")
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists()
    ]
    if missing:
        raise SystemExit(
            f"missing {' and '.join(missing)}: install with `apt-get install -y wrk nginx` (root)"
        )


def measure(args: argparse.Namespace) -> list[Table]:
    require_tools()
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
            tables = [tabulate(paths, args)]
            if args.profile:
                tables.append(profile(paths[1], args))
            return tables


def tabulate(paths: list[Via], args: argparse.Namespace) -> Table:
    """Every measure, in `--rounds` rounds that alternate the paths, each path's best round
    kept: on a shared machine, noise only ever slows a round down."""
    loaded: dict[str, Load] = {}
    single: dict[str, Load] = {}
    first: dict[str, tuple[float, float]] = {}
    sse: dict[str, tuple[float, float]] = {}
    for _ in range(args.rounds):
        for p in paths:
            url = p.base + "v1/models"
            wrk(p, url, args.concurrency, 1)  # warm up connections and caches
            run = wrk(p, url, args.concurrency, args.duration)
            if p.name not in loaded or run.rps > loaded[p.name].rps:
                loaded[p.name] = run
            alone = wrk(p, url, 1, args.duration)
            if p.name not in single or alone.p50 < single[p.name].p50:
                single[p.name] = alone
            byte = sse_first_byte(p, args.sse_requests)
            if p.name not in first or byte[0] < first[p.name][0]:
                first[p.name] = byte
            stream = asyncio.run(sse_stream(p, args.tokens))
            if p.name not in sse or stream[0] > sse[p.name][0]:
                sse[p.name] = stream
    idle = {p.name: rss_mib(p.pid) for p in paths}
    streams = {p.name: asyncio.run(open_streams(p, args.streams)) for p in paths if args.streams}

    title = (
        f"connect proxy: {os.cpu_count()} CPUs, wrk, best of {args.rounds} rounds; "
        f"load average {os.getloadavg()[0]:.1f} at the end"
    )
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
    row(f"small JSON, req/s ({c} connections)", {k: v.rps for k, v in loaded.items()}, "")
    row(f"  p50 ({c} connections)", {k: v.p50 * 1e3 for k, v in loaded.items()}, "ms", 2)
    row(f"  p99 ({c} connections)", {k: v.p99 * 1e3 for k, v in loaded.items()}, "ms", 2)
    row("  server CPU per request", {k: v.cpu * 1e6 for k, v in loaded.items()}, "us")
    row("  p50 (one at a time)", {k: v.p50 * 1e3 for k, v in single.items()}, "ms", 3)
    row("  p99 (one at a time)", {k: v.p99 * 1e3 for k, v in single.items()}, "ms", 3)
    row("SSE first event, p50", {k: v[0] * 1e3 for k, v in first.items()}, "ms", 3)
    row("  p99", {k: v[1] * 1e3 for k, v in first.items()}, "ms", 3)
    row(f"SSE stream, {args.tokens:,} tokens", {k: v[0] for k, v in sse.items()}, "MB/s", 1)
    row("  tokens/s", {k: v[1] for k, v in sse.items()}, "")
    row("resident memory, idle", idle, "MiB", 1)
    if streams:
        row(f"resident memory, {args.streams:,} open SSE streams", streams, "MiB", 1)
    else:
        table.add_row("resident memory with open SSE streams", "not measured (--streams 0)")
    added = (single["broker"].p50 - single["direct"].p50) * 1e3
    first_added = (first["broker"][0] - first["direct"][0]) * 1e3
    share = loaded["broker"].rps / loaded["nginx"].rps
    cpu_ratio = loaded["broker"].cpu / loaded["nginx"].cpu
    verdicts = [
        ("added p50 on a small request <= 0.5 ms", f"{added:.3f} ms", added <= 0.5),
        ("first SSE event within 1 ms of direct", f"{first_added:.3f} ms", first_added <= 1.0),
        ("req/s >= 50% of nginx", f"{share:.0%}", share >= 0.5),
        ("CPU per request <= 4x nginx", f"{cpu_ratio:.1f}x", cpu_ratio <= 4.0),
    ]
    for target, value, met in verdicts:
        table.add_row(f"target: {target}", value, "met" if met else "NOT met", "", "", "")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--sse-requests", type=int, default=300)
    parser.add_argument("--tokens", type=int, default=100_000)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="py-spy the broker under load")
    parser.add_argument("--profile-lines", type=int, default=15)
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
        for table in measure(args):
            Console(width=160).print(table)


if __name__ == "__main__":
    main()
