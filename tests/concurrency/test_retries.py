"""Transactions that a concurrent one forced to roll back are run again; when every attempt
fails that way the caller gets a 503 in the error shape, never a 500."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from broker import ledger
from broker.db import TRANSACTION_ATTEMPTS, Contention, Database, is_retryable
from tests.concurrency.conftest import WORKLOAD, Served


class _DriverError(Exception):
    def __init__(self, message: str, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def deadlock() -> OperationalError:
    return OperationalError("UPDATE accounts", {}, _DriverError("deadlock detected", "40P01"))


def test_which_errors_are_retried() -> None:
    assert is_retryable(deadlock())
    assert is_retryable(OperationalError("x", {}, _DriverError("could not serialize", "40001")))
    assert is_retryable(OperationalError("x", {}, _DriverError("database is locked")))
    assert not is_retryable(OperationalError("x", {}, _DriverError("syntax error", "42601")))
    assert not is_retryable(ValueError("deadlock detected"))


def test_a_real_deadlock_is_retried_and_both_transactions_commit(database: Database) -> None:
    with database.session() as session:
        session.execute(text("CREATE TABLE counters (id INTEGER PRIMARY KEY, n INTEGER)"))
        session.execute(text("INSERT INTO counters VALUES (1, 0), (2, 0)"))
    postgres = database.engine.dialect.name == "postgresql"
    # On PostgreSQL both transactions hold their first row before either asks for its second,
    # in opposite orders: the server must break the deadlock. SQLite runs writers one at a time.
    barrier = threading.Barrier(2)
    attempts: list[str] = []

    def bump(first: int, second: int) -> Callable[[Session], None]:
        def work(session: Session) -> None:
            attempts.append(f"{first}{second}")
            session.execute(text("UPDATE counters SET n = n + 1 WHERE id = :i"), {"i": first})
            if postgres and len(attempts) <= 2:
                barrier.wait(timeout=30)
            session.execute(text("UPDATE counters SET n = n + 1 WHERE id = :i"), {"i": second})

        return work

    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = [pool.submit(database.transact, bump(*pair)) for pair in ((1, 2), (2, 1))]
        for run in runs:
            run.result(timeout=60)
    with database.session(read_only=True) as session:
        counts = dict(session.execute(text("SELECT id, n FROM counters")).all())
    assert counts == {1: 2, 2: 2}  # each transaction counted exactly once
    assert len(attempts) == (3 if postgres else 2)


def test_retries_run_out_into_contention(database: Database) -> None:
    calls: list[int] = []

    def always_deadlocked(session: Session) -> None:
        calls.append(1)
        raise deadlock()

    with pytest.raises(Contention):
        database.transact(always_deadlocked)
    assert len(calls) == TRANSACTION_ATTEMPTS


def test_exhausted_retries_answer_503_in_the_error_shape(
    serve: Callable[..., Served], monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = serve()
    offer = broker.offer()

    def deadlocked(*_: Any, **__: Any) -> None:
        raise deadlock()

    monkeypatch.setattr(ledger, "place_hold", deadlocked)
    with broker.client() as client:
        response = client.post("/v1/rentals", json={"offer_id": offer["id"], **WORKLOAD})
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "busy"
    assert set(response.json()) == {"error"}
    monkeypatch.undo()
    assert broker.wallet()["held"] == 0
    broker.invariants()
