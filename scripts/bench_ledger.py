"""Ledger throughput on PostgreSQL: hold + capture pairs per second, and still exact.

Each pair is two transactions, as a rental makes them: `place_hold` (commit), then `settle`
capturing part of it and releasing the rest (commit). Scenarios, each for `--seconds`:

- 1 worker over its own account: the baseline for the ratios;
- N workers (default 16), each on its own account: throughput when accounts do not contend;
- N workers on ONE account: every pair serializes on that account's row lock.

The database is a fresh schema (dropped at the end) on `GPUBROKER_BENCH_POSTGRES_URL`, default
`postgresql+psycopg://postgres@127.0.0.1:5432/test`. After each scenario `check_invariants`
verifies every account it touched; a violation fails the run.

    .venv/bin/python scripts/bench_ledger.py [--seconds 5] [--workers 16]
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from broker import ledger
from broker.db import Database, scratch_schema
from broker.ledger_tables import Account
from broker.migrations import upgrade

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
HOLD = 10_000  # 0.01 USD, the hold each pair places
CAPTURE = 6_000  # of which each pair captures 0.006 USD
CREDIT = 10**15  # enough that no scenario runs out


@dataclass(frozen=True)
class Result:
    name: str
    workers: int
    accounts: int
    pairs: int
    seconds: float
    violation: str | None

    @property
    def rate(self) -> float:
        return self.pairs / self.seconds


def funded_accounts(db: Database, count: int) -> list[str]:
    with db.session() as session:
        accounts = [Account(name=f"bench-{i}") for i in range(count)]
        session.add_all(accounts)
        session.flush()
        for account in accounts:
            ledger.grant(session, account.id, CREDIT, "benchmark credit")
        return [account.id for account in accounts]


def pair(db: Database, account_id: str) -> None:
    with db.session() as session:
        hold_id = ledger.place_hold(session, account_id, HOLD, ref="bench").id
    with db.session() as session:
        ledger.settle(session, hold_id, CAPTURE)


def run(db: Database, name: str, account_ids: list[str], workers: int, seconds: float) -> Result:
    """`workers` threads making pairs for `seconds`; worker i uses account i mod len(accounts)."""
    counts = [0] * workers
    start = threading.Barrier(workers + 1)
    stop = threading.Event()

    def work(index: int) -> None:
        account_id = account_ids[index % len(account_ids)]
        start.wait()
        while not stop.is_set():
            pair(db, account_id)
            counts[index] += 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    return Result(name, workers, len(account_ids), sum(counts), elapsed, violation(db, account_ids))


def violation(db: Database, account_ids: list[str]) -> str | None:
    """What is wrong with the accounts after a scenario, or None when every invariant holds."""
    with db.session(read_only=True) as session:
        for account_id in account_ids:
            try:
                state = ledger.check_invariants(session, account_id)
            except ledger.InvariantViolation as exc:
                return str(exc)
            if state.held != 0:
                return f"{account_id} still holds {state.held} after every hold was settled"
    return None


def report(results: list[Result]) -> Table:
    baseline = results[0].rate
    table = Table(title="Ledger: hold + capture pairs per second (PostgreSQL)")
    for column in ("scenario", "workers", "accounts", "pairs", "seconds", "pairs/s", "vs 1 worker"):
        table.add_column(column, justify="left" if column == "scenario" else "right")
    table.add_column("invariants")
    for r in results:
        table.add_row(
            r.name,
            str(r.workers),
            str(r.accounts),
            str(r.pairs),
            f"{r.seconds:.2f}",
            f"{r.rate:,.0f}",
            f"{r.rate / baseline:.2f}x",
            "ok" if r.violation is None else "VIOLATED",
        )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each scenario")
    parser.add_argument("--workers", type=int, default=16, help="concurrent workers")
    args = parser.parse_args()
    base_url = os.environ.get("GPUBROKER_BENCH_POSTGRES_URL", DEFAULT_URL)

    with scratch_schema(base_url, "bench_ledger") as url:
        upgrade(url)
        db = Database(url)
        try:
            many = funded_accounts(db, args.workers)
            one = funded_accounts(db, 1)
            run(db, "warm-up", many, args.workers, min(1.0, args.seconds))
            results = [
                run(db, "1 worker", many[:1], 1, args.seconds),
                run(db, f"{args.workers} workers, many accounts", many, args.workers, args.seconds),
                run(db, f"{args.workers} workers, one account", one, args.workers, args.seconds),
            ]
        finally:
            db.dispose()
    console = Console(width=120)
    console.print(report(results))
    broken = [r for r in results if r.violation]
    for r in broken:
        console.print(f"[red]{r.name}: {r.violation}[/red]")
    if broken:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
