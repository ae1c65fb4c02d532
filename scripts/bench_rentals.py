"""Rental speed: the broker's overhead on a rent, and one metering tick over 10,000 rentals.

Prints one table:
- `POST /v1/rentals` through the broker (uvicorn on loopback, PostgreSQL) against the same
  provision sent straight to the provider's simulator by its adapter, measured in the same run;
  the difference is the broker's overhead (rank, hold, two commits, the HTTP hop);
- one metering tick over N running rentals on PostgreSQL (batched), against billing the same
  kind of rentals one by one through `accounting.bill_to` (the per-rental path), per rental.

    python scripts/bench_rentals.py [--rents 150] [--rentals 10000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
from rich.console import Console
from rich.table import Table
from sqlmodel import select

from broker import accounts, ledger
from broker.app import create_app
from broker.db import Database, scratch_schema
from broker.migrations import upgrade
from broker.rentals.accounting import bill_to
from broker.rentals.meter import Meter
from broker.rentals.tables import Rental
from broker.settings import Settings
from providers.base import ProviderConfig
from providers.empiriolabs.adapter import EmpirioLabsAdapter
from providers.rental import Workload, WorkloadMode
from providers.simulators.empiriolabs import create_simulator
from providers.simulators.kit import SimulatorKnobs, serve_in_thread

POSTGRES_URL = os.environ.get(
    "GPUBROKER_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
T0 = datetime(2026, 11, 24, 12, tzinfo=UTC)
WORKLOAD = {"mode": "custom", "image": "busybox", "ports": [80]}


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def serve_broker(port: int, url: str, sim_url: str) -> None:
    """The broker process of the rent benchmark: one uvicorn worker, no background jobs."""
    import uvicorn

    settings = Settings(
        _env_file=None,
        database_url=url,
        admin_key="bench-admin",
        providers="empiriolabs",
        empiriolabs_base_url=sim_url,
        empiriolabs_api_key="bench-key",
    )
    config = ProviderConfig(sim_url, "bench-key", retry_attempts=1)
    app = create_app(
        settings, adapters={"empiriolabs": EmpirioLabsAdapter(config)}, start_jobs=False
    )
    app.state.refresher.refresh_all()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def rent_overhead(url: str, rents: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """(direct p50, p99), (through the broker p50, p99), in seconds."""
    sim = serve_in_thread(create_simulator(SimulatorKnobs(provision_seconds=0)))
    adapter = EmpirioLabsAdapter(ProviderConfig(sim.url, "bench-key", retry_attempts=1))
    port = 19000 + os.getpid() % 1000
    server = subprocess.Popen([sys.executable, __file__, "--serve-broker", str(port), url, sim.url])
    base = f"http://127.0.0.1:{port}"
    admin = {"Authorization": "Bearer bench-admin"}
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            for _ in range(600):
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            made = client.post("/v1/admin/accounts", json={"name": "bench"}, headers=admin).json()
            client.post(
                f"/v1/admin/accounts/{made['account_id']}/credits",
                json={"amount": "100000", "reason": "bench"},
                headers=admin,
            )
            headers = {"Authorization": f"Bearer {made['api_key']}"}
            offers = [o for o in adapter.list_offers().offers if o.available and o.gpu_count == 1]
            offer = offers[0]
            workload = Workload(mode=WorkloadMode.CUSTOM, image="busybox", ports=(80,))
            direct, brokered = [], []
            for i in range(rents + 10):
                started = time.perf_counter()
                instance = adapter.provision(offer, workload, f"bench-{i}")
                elapsed = time.perf_counter() - started
                adapter.terminate(instance.handle)
                started = time.perf_counter()
                response = client.post(
                    "/v1/rentals", json={"offer_id": offer.id, **WORKLOAD}, headers=headers
                )
                through = time.perf_counter() - started
                assert response.status_code == 201, response.text
                client.delete(f"/v1/rentals/{response.json()['id']}", headers=headers)
                if i >= 10:  # the first few warm connections and caches up
                    direct.append(elapsed)
                    brokered.append(through)
    finally:
        server.terminate()
        server.wait(timeout=20)
        sim.stop()
    return percentiles(direct), percentiles(brokered)


def seed_running(db: Database, count: int, per_account: int = 10) -> None:
    """`count` running rentals, each with its hold, billed up to T0 and seen running at T0+60s."""
    for first in range(0, count, per_account):
        with db.session() as session:
            account, _ = accounts.create_account(session, f"bench-{first}")
            ledger.grant(session, account.id, 10_000_000_000, "bench")
            for n in range(first, min(first + per_account, count)):
                rental = Rental(
                    account_id=account.id,
                    request_hash="bench",
                    request={},
                    rental_key_hash=f"bench-{n}",
                    status="running",
                    provider="empiriolabs",
                    handle=f"h-{n}",
                    gpu="RTX 4090",
                    tier="on_demand",
                    price_per_hour=400_000,
                    billed_until=T0,
                    last_seen_running_at=T0 + timedelta(seconds=60),
                    running_since=T0,
                    started_at=T0,
                )
                session.add(rental)
                session.flush()
                rental.hold_id = ledger.place_hold(session, account.id, 400_000, ref=rental.id).id
                session.add(rental)


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def per_rental_billing(db: Database) -> float:
    """Seconds to bill every running rental one by one (the path without batching)."""
    with db.session(read_only=True) as session:
        ids = list(session.exec(select(Rental.id)))

    def run() -> None:
        for rental_id in ids:
            with db.session() as session:
                rental = session.get(Rental, rental_id, with_for_update=True)
                assert rental is not None
                bill_to(session, rental, T0 + timedelta(seconds=60))
                session.add(rental)

    return timed(run)


def meter_rows(count: int, baseline_count: int) -> list[tuple[str, str, str]]:
    rows = []
    with scratch_schema(POSTGRES_URL, "bench_meter") as url:
        upgrade(url)
        db = Database(url)
        seed_running(db, baseline_count)
        one_by_one = per_rental_billing(db) / baseline_count
        db.dispose()
    with scratch_schema(POSTGRES_URL, "bench_meter") as url:
        upgrade(url)
        db = Database(url)
        seed_running(db, count)
        meter = Meter(
            db, {}, lambda: T0 + timedelta(seconds=61), meter_seconds=15, min_hold_seconds=3600
        )
        tick = timed(meter.run)
        with db.session(read_only=True) as session:
            for account_id in session.exec(select(accounts.Account.id).limit(20)):
                ledger.check_invariants(session, account_id)
        db.dispose()
    rows.append(
        (
            f"billing one by one ({baseline_count:,} rentals), per rental",
            f"{one_by_one * 1e3:.3f} ms",
            "1.00x",
        )
    )
    rows.append(
        (
            f"one metering tick, {count:,} running rentals",
            f"{tick * 1e3:.0f} ms",
            f"{one_by_one * count / tick:.1f}x faster than one by one",
        )
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rents", type=int, default=150)
    parser.add_argument("--rentals", type=int, default=10_000)
    parser.add_argument("--baseline-rentals", type=int, default=1_000)
    parser.add_argument("--serve-broker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_broker:
        port, url, sim_url = args.serve_broker
        serve_broker(int(port), url, sim_url)
        return
    table = Table(title="rentals", header_style="bold")
    for column in ("measure", "p50 / time", "p99", "ratio"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    with scratch_schema(POSTGRES_URL, "bench_rent") as url:
        upgrade(url)
        (d50, d99), (b50, b99) = rent_overhead(url, args.rents)
    table.add_row(
        "provision straight to the simulator (adapter)",
        f"{d50 * 1e3:.2f} ms",
        f"{d99 * 1e3:.2f} ms",
        "1.00x",
    )
    table.add_row(
        "POST /v1/rentals through the broker",
        f"{b50 * 1e3:.2f} ms",
        f"{b99 * 1e3:.2f} ms",
        f"{b50 / d50:.2f}x",
    )
    table.add_row(
        "broker overhead (difference)",
        f"{(b50 - d50) * 1e3:.2f} ms",
        f"{(b99 - d99) * 1e3:.2f} ms",
        "",
    )
    for measure, value, ratio in meter_rows(args.rentals, args.baseline_rentals):
        table.add_row(measure, value, "", ratio)
    Console(width=150).print(table)


if __name__ == "__main__":
    main()
