"""Database engines and sessions for SQLite (embedded) and PostgreSQL (shared by replicas).

Correctness of the ledger rests on how each backend serializes writers:

- PostgreSQL: row locks (`SELECT ... FOR UPDATE`) under READ COMMITTED, a sized connection pool
  and pre-ping so a restarted server costs one retry, not a burst of errors.
- SQLite: one writer at a time. pysqlite's own transaction handling is switched off and every
  session transaction starts with `BEGIN IMMEDIATE` (SQLAlchemy's documented recipe), so a writer
  takes the write lock before it reads the rows it will change; WAL lets readers run beside it and
  a busy timeout makes contenders wait instead of failing. Sessions opened with `read_only=True`
  start a plain deferred `BEGIN` and never block writers.

Even with one lock order everywhere (account, then hold, then rental: see `broker.ledger` and
`broker.rentals.actions.lock_rental`), PostgreSQL may still end a transaction with a
serialization failure or a deadlock (SQLSTATE 40001, 40P01), and SQLite may give up waiting for
its write lock ("database is locked"). Such a transaction did nothing, so `Database.transact`
runs it again, a bounded number of times with a short jittered pause; when the attempts run out it
raises `Contention`, which the API answers as 503 `busy` (retry later), never as a 500.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from prometheus_client import Counter
from sqlalchemy import Table, bindparam, event, text
from sqlalchemy.engine import URL, Connection, Engine, create_engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool, StaticPool
from sqlalchemy.sql import Executable
from sqlmodel import Session
from tenacity import (
    RetryCallState,
    Retrying,
    before_sleep_log,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

SQLITE_BUSY_TIMEOUT_MS = 30_000
TRANSACTION_ATTEMPTS = 5
_READ_ONLY = "gpubroker_read_only"
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected
T = TypeVar("T")
log = logging.getLogger("gpubroker.db")
RETRIES = Counter(
    "gpubroker_db_retries",
    "Write transactions rolled back by a concurrent one: retried, or given up (a 503 busy).",
    ["outcome"],
)


_log_retry = before_sleep_log(log, logging.INFO)


def _count_and_log_retry(state: RetryCallState) -> None:
    RETRIES.labels("retried").inc()
    _log_retry(state)


class Contention(Exception):
    """A transaction kept meeting concurrent ones (deadlocks, serialization failures, a busy
    SQLite file) after every retry; nothing it did was kept, and the caller may try again."""

    def __init__(self, attempts: int) -> None:
        super().__init__(f"the database stayed busy with concurrent changes after {attempts} tries")
        self.attempts = attempts


def is_retryable(exc: BaseException) -> bool:
    """True for an error that rolled its transaction back only because of a concurrent one."""
    if not isinstance(exc, DBAPIError):
        return False
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate in _RETRYABLE_SQLSTATES:
        return True
    return "database is locked" in str(exc.orig)


def normalize_url(url: str | URL) -> URL:
    """Parse a database URL; a bare `postgresql://` gets the psycopg (v3) driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _is_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:")


def _sqlite_engine(url: URL, **kwargs: Any) -> Engine:
    connect_args = {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    if _is_memory(url):
        # One shared connection, or every pooled connection would see its own empty database.
        kwargs.setdefault("poolclass", StaticPool)
    engine = create_engine(url, connect_args=connect_args, **kwargs)
    memory = _is_memory(url)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        if not memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        read_only = conn.get_execution_options().get(_READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def make_engine(url: str | URL, **kwargs: Any) -> Engine:
    """An engine configured for its backend; `kwargs` go to `create_engine` unchanged."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, **kwargs)
    if parsed.get_backend_name() == "postgresql" and "poolclass" not in kwargs:
        kwargs.setdefault("pool_size", 20)
        kwargs.setdefault("max_overflow", 20)
        kwargs.setdefault("pool_pre_ping", True)
    return create_engine(parsed, **kwargs)


class Database:
    """One engine and the sessions on it; the app keeps one on `app.state.db`."""

    def __init__(self, url: str | URL, **engine_kwargs: Any) -> None:
        self.url = normalize_url(url)
        self.engine = make_engine(self.url, **engine_kwargs)
        self._read_engine = self.engine.execution_options(**{_READ_ONLY: True})

    @contextmanager
    def session(self, *, read_only: bool = False) -> Iterator[Session]:
        """A session whose transaction commits when the block ends and rolls back on an error.

        Objects stay readable after the block (`expire_on_commit=False`). `read_only=True` is for
        blocks that only read: on SQLite they do not take the write lock.
        """
        bind = self._read_engine if read_only else self.engine
        with Session(bind, expire_on_commit=False) as session:
            yield session
            session.commit()

    def transact(
        self,
        work: Callable[[Session], T],
        *,
        attempts: int = TRANSACTION_ATTEMPTS,
    ) -> T:
        """Run `work(session)` in one write transaction, again if a concurrent one forced it to
        roll back; `Contention` once `attempts` are spent. `work` must build what it writes
        inside (an attempt that rolled back leaves nothing behind), and may raise to roll back.
        """

        def attempt() -> T:
            with self.session() as session:
                return work(session)

        retrying = Retrying(
            stop=stop_after_attempt(attempts),
            wait=wait_random_exponential(multiplier=0.01, max=0.25),
            retry=retry_if_exception(is_retryable),
            before_sleep=_count_and_log_retry,
            reraise=True,
        )
        try:
            return retrying(attempt)
        except DBAPIError as exc:
            if is_retryable(exc):
                RETRIES.labels("gave_up").inc()
                log.warning("transaction gave up after %d attempts: %s", attempts, exc.orig)
                raise Contention(attempts) from exc
            raise

    def dispose(self) -> None:
        self.engine.dispose()


@contextmanager
def scratch_schema(url: str | URL, prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL schema for a test or benchmark, dropped with its contents after.

    Yields a URL that selects it through `search_path`, so everything given only that URL (the
    migrations, a `Database`, the app's settings) works inside it.
    """
    base = normalize_url(url)
    schema = f"{prefix}_{secrets.token_hex(6)}"
    admin = create_engine(base, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        try:
            scoped = base.update_query_dict({"options": f"-csearch_path={schema}"})
            yield scoped.render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        admin.dispose()


def bulk_update(conn: Connection, table: Table, key: str, rows: list[dict[str, Any]]) -> None:
    """Update many rows by `key` in one statement (PostgreSQL: UPDATE ... FROM unnest(arrays)).

    Every row carries the same columns. On PostgreSQL the statement has one array parameter per
    column, so its text (and plan) is the same for any number of rows; other databases get an
    executemany, which is what they do well.
    """
    if not rows:
        return
    names = list(rows[0])
    statement: Executable
    if conn.dialect.name != "postgresql":
        statement = (
            table.update()
            .where(table.c[key] == bindparam(f"_{key}"))
            .values({name: bindparam(f"_{name}") for name in names if name != key})
        )
        conn.execute(statement, [{f"_{n}": row[n] for n in names} for row in rows])
        return
    arrays = ", ".join(
        f"CAST(:{name} AS {table.c[name].type.compile(conn.dialect)}[])" for name in names
    )
    assignments = ", ".join(f"{name} = v.{name}" for name in names if name != key)
    statement = text(
        f"UPDATE {table.name} SET {assignments} FROM unnest({arrays}) AS v({', '.join(names)}) "
        f"WHERE {table.name}.{key} = v.{key}"
    )
    conn.execute(statement, {name: [row[name] for row in rows] for name in names})


def bulk_insert(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert many rows in one statement (PostgreSQL: INSERT ... SELECT FROM unnest(arrays))."""
    if not rows:
        return
    names = list(rows[0])
    if conn.dialect.name != "postgresql":
        conn.execute(table.insert(), rows)
        return
    arrays = ", ".join(
        f"CAST(:{name} AS {table.c[name].type.compile(conn.dialect)}[])" for name in names
    )
    statement = text(
        f"INSERT INTO {table.name} ({', '.join(names)}) SELECT * FROM unnest({arrays})"
    )
    conn.execute(statement, {name: [row[name] for row in rows] for name in names})
