"""Telling every replica, at commit, that a key or a rental it may remember has changed.

The connect proxy remembers a key's account, a running rental and its upstream, so that a
proxied request costs no database query. Remembering is only safe if forgetting is prompt: a
revoked key or an ended rental must be refused at once, on this replica and on every other one
that shares the database. This module watches the changes that matter where they are made, in
the ORM session, instead of at each call site that makes them:

- After every flush it looks at the `Rental` rows whose `status`, `provider`, `handle` or
  `rental_key_hash` changed (or that were deleted) and at the `ApiKey` rows whose `revoked_at` or
  `key_hash` changed. A Core `UPDATE`/`DELETE` of those tables outside a flush (a bulk update, a
  hand-written statement) that touches those columns cannot name its rows, so it invalidates
  everything of that kind: rare, and always safe.
- On PostgreSQL the change is published with `pg_notify` on the channel `gpubroker_invalidate`
  in the very transaction that makes it: PostgreSQL delivers it at commit, and never for a
  transaction that rolls back. Each process runs one `Listener` thread on a dedicated psycopg
  connection doing `LISTEN`; it reconnects after any failure (logging the reason) and, since it
  may have missed notifications while it was away, invalidates everything once it is back.
- In every process, and so also on SQLite where the single process is the only one, the change
  is delivered to the local subscribers right after the session commits.

The same hook sees every rental status change, so it also logs the lifecycle events (created,
running, stopped, terminated, failed, interrupted, recovered) after commit, as structured records
on the `gpubroker.rentals` logger with `rental_id`, `provider` and `status`.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import weakref
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import psycopg
from sqlalchemy import Delete, TextClause, Update, event, inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, UOWTransaction

from broker.db import Database
from broker.ledger_tables import ApiKey
from broker.rentals.tables import Rental

log = logging.getLogger("gpubroker.invalidation")
lifecycle_log = logging.getLogger("gpubroker.rentals")

CHANNEL = "gpubroker_invalidate"
PAYLOAD_BYTES = 7000  # PostgreSQL refuses a payload of 8000 bytes or more
RECONNECT_SECONDS = (0.5, 1.0, 2.0, 5.0)
STOP_CHECK_SECONDS = 0.5  # the longest the listener waits on notifications before it looks at stop
_PENDING = "gpubroker_invalidation"
_RENTAL_FIELDS = ("status", "provider", "handle", "rental_key_hash")
_KEY_FIELDS = ("revoked_at", "key_hash")
_WATCHED = {"rentals": _RENTAL_FIELDS, "api_keys": _KEY_FIELDS}
_STATEMENT = re.compile(r'^\s*(?:UPDATE|DELETE\s+FROM)\s+"?(\w+)"?(.*)$', re.I | re.S)
_in_flush: ContextVar[bool] = ContextVar("gpubroker_in_flush", default=False)
# A Core statement changed rows it cannot name since the last commit or rollback in this context.
_unnamed: ContextVar[bool] = ContextVar("gpubroker_unnamed_change", default=False)


@dataclass(frozen=True)
class Change:
    """Rentals by id and keys by hash that changed; `everything` when rows could not be named."""

    rentals: frozenset[str] = frozenset()
    keys: frozenset[str] = frozenset()
    everything: bool = False

    def __bool__(self) -> bool:
        return self.everything or bool(self.rentals or self.keys)

    def __or__(self, other: Change) -> Change:
        everything = self.everything or other.everything
        return Change(self.rentals | other.rentals, self.keys | other.keys, everything)

    def payloads(self) -> list[str]:
        """The change as JSON notification payloads, each under PostgreSQL's size limit."""
        if self.everything:
            return [json.dumps({"everything": True})]
        items = [("r", rental) for rental in sorted(self.rentals)]
        items += [("k", key) for key in sorted(self.keys)]
        payloads: list[str] = []
        batch: dict[str, list[str]] = {"r": [], "k": []}
        size = 0
        for kind, value in items:
            if size + len(value) + 4 > PAYLOAD_BYTES:
                payloads.append(json.dumps(batch))
                batch, size = {"r": [], "k": []}, 0
            batch[kind].append(value)
            size += len(value) + 4
        payloads.append(json.dumps(batch))
        return payloads

    @classmethod
    def parse(cls, payload: str) -> Change:
        """A payload from `payloads`; anything else invalidates everything, to be safe."""
        try:
            body = json.loads(payload)
            if body.get("everything"):
                return cls(everything=True)
            return cls(frozenset(map(str, body["r"])), frozenset(map(str, body["k"])))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("unreadable invalidation payload (%s): invalidating everything", exc)
            return cls(everything=True)


@dataclass(frozen=True)
class Transition:
    """One rental lifecycle event, logged after its transaction commits."""

    event: str
    rental_id: str
    provider: str | None
    status: str
    previous: str | None


@dataclass
class _Pending:
    change: Change = field(default_factory=Change)
    transitions: list[Transition] = field(default_factory=list)


class Listener:
    """A thread holding a dedicated PostgreSQL connection that `LISTEN`s on `CHANNEL`."""

    def __init__(self, dsn: str, deliver: Callable[[Change], None]) -> None:
        self._dsn = dsn
        self._deliver = deliver
        self._stopping = threading.Event()
        self._listening = threading.Event()
        self.backend_pid: int | None = None  # of the listening connection, while it is up
        self._thread = threading.Thread(target=self._run, name="invalidation", daemon=True)

    def start(self, wait_seconds: float = 5.0) -> None:
        """Start, and wait (a bounded time) until it listens, so no change is missed."""
        self._thread.start()
        if not self._listening.wait(wait_seconds):
            log.warning("invalidation listener is not listening yet; it keeps trying")

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self._dsn, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.backend_pid = conn.info.backend_pid
                    if failures:  # notifications sent while away are lost: forget everything
                        self._deliver(Change(everything=True))
                        log.info("invalidation listener reconnected")
                    failures = 0
                    self._listening.set()
                    while not self._stopping.is_set():
                        for notice in conn.notifies(timeout=STOP_CHECK_SECONDS):
                            self._deliver(Change.parse(notice.payload))
            except psycopg.Error as exc:
                self.backend_pid = None
                delay = RECONNECT_SECONDS[min(failures, len(RECONNECT_SECONDS) - 1)]
                failures += 1
                log.warning(
                    "invalidation listener lost its database connection (%s: %s); "
                    "reconnecting in %.1f s",
                    type(exc).__name__,
                    str(exc).splitlines()[0] if str(exc) else "no detail",
                    delay,
                )
                self._stopping.wait(delay)


class InvalidationBus:
    """This process's subscribers to changes of one database, and its PostgreSQL listener."""

    def __init__(self, db: Database) -> None:
        self._url = _url_key(db.engine)
        self._dsn = db.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._postgres = db.engine.dialect.name == "postgresql"
        self._subscribers: list[Callable[[Change], None]] = []
        self._listener: Listener | None = None
        _buses.setdefault(self._url, weakref.WeakSet()).add(self)

    def subscribe(self, subscriber: Callable[[Change], None]) -> None:
        """Call `subscriber(change)` (from any thread) after each committed change."""
        self._subscribers.append(subscriber)

    def deliver(self, change: Change) -> None:
        for subscriber in self._subscribers:
            try:
                subscriber(change)
            except Exception:  # one broken subscriber must not starve the others
                log.exception("an invalidation subscriber failed; the others still run")

    def start(self) -> None:
        """On PostgreSQL, start listening for other replicas' changes (SQLite: nothing to do)."""
        if self._postgres and self._listener is None:
            self._listener = Listener(self._dsn, self.deliver)
            self._listener.start()

    def listener_pid(self) -> int | None:
        """The server process of the listening connection (None: not listening now)."""
        return None if self._listener is None else self._listener.backend_pid

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.stop()
            self._listener = None


_buses: dict[str, weakref.WeakSet[InvalidationBus]] = {}


def _url_key(bind: Engine | Connection) -> str:
    return bind.engine.url.render_as_string(hide_password=False)


def _pending(session: Session) -> _Pending:
    pending: _Pending | None = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = _Pending()
    return pending


def _changed(row: Any, names: Iterable[str]) -> bool:
    attrs = inspect(row).attrs
    return any(attrs[name].history.has_changes() for name in names)


def _previous(row: Any, name: str) -> Any:
    deleted = inspect(row).attrs[name].history.deleted
    return deleted[0] if deleted else None


def _transition(row: Rental) -> Transition | None:
    if _changed(row, ("status",)):
        previous = _previous(row, "status")
        status = str(row.status)
        return Transition(status, row.id, row.provider, status, previous and str(previous))
    if _changed(row, ("handle",)) and row.handle is not None and row.interruptions > 0:
        return Transition("recovered", row.id, row.provider, str(row.status), str(row.status))
    return None


def _publish(connection: Connection, change: Change) -> None:
    if connection.dialect.name != "postgresql" or not change:
        return
    for payload in change.payloads():
        connection.execute(
            text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": payload}
        )


@event.listens_for(Session, "before_flush")
def _before_flush(session: Session, _flush: UOWTransaction, _objects: Any) -> None:
    _in_flush.set(True)


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _flush: UOWTransaction) -> None:
    rentals: set[str] = set()
    keys: set[str] = set()
    transitions: list[Transition] = []
    for row in session.new:
        if isinstance(row, Rental):
            transitions.append(Transition("created", row.id, row.provider, str(row.status), None))
    for row in session.dirty:
        if isinstance(row, Rental) and _changed(row, _RENTAL_FIELDS):
            rentals.add(row.id)
            found = _transition(row)
            if found is not None:
                transitions.append(found)
        elif isinstance(row, ApiKey) and _changed(row, _KEY_FIELDS):
            keys.update(k for k in (row.key_hash, _previous(row, "key_hash")) if k)
    for row in session.deleted:
        if isinstance(row, Rental):
            rentals.add(row.id)
        elif isinstance(row, ApiKey):
            keys.add(row.key_hash)
    change = Change(frozenset(rentals), frozenset(keys))
    if change:
        _publish(session.connection(), change)
    if change or transitions:
        pending = _pending(session)
        pending.change |= change
        pending.transitions += transitions


@event.listens_for(Session, "after_flush_postexec")
def _after_flush_postexec(_session: Session, _flush: UOWTransaction) -> None:
    _in_flush.set(False)


@event.listens_for(Engine, "after_execute")
def _after_execute(
    conn: Connection, statement: Any, _multi: Any, _params: Any, _options: Any, _result: Any
) -> None:
    """A Core UPDATE or DELETE of rentals or keys outside a flush: invalidate that kind."""
    if _in_flush.get() or not isinstance(statement, Update | Delete | TextClause):
        return
    if isinstance(statement, TextClause):
        sql = statement.text
    elif getattr(statement.table, "name", None) in _WATCHED:
        sql = str(statement.compile(dialect=conn.dialect))
    else:
        return
    match = _STATEMENT.match(sql)
    if match is None or match.group(1).lower() not in _WATCHED:
        return
    rest = match.group(2)
    if sql.lstrip()[:6].upper() == "UPDATE":
        assignments = re.split(r"\s(?:WHERE|FROM|RETURNING)\s", rest, maxsplit=1, flags=re.I)[0]
        columns = "|".join(_WATCHED[match.group(1).lower()])
        if not re.search(rf"\b(?:{columns})\b", assignments):
            return
    _publish(conn, Change(everything=True))
    _unnamed.set(True)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    pending: _Pending | None = session.info.pop(_PENDING, None)
    if _unnamed.get():
        _unnamed.set(False)
        pending = pending or _Pending()
        pending.change |= Change(everything=True)
    if pending is None:
        return
    if pending.change:
        bind = session.get_bind()
        for bus in list(_buses.get(_url_key(bind), ())):
            bus.deliver(pending.change)
    for step in pending.transitions:
        lifecycle_log.info(
            "rental %s %s",
            step.rental_id,
            step.event,
            extra={
                "event": f"rental.{step.event}",
                "rental_id": step.rental_id,
                "provider": step.provider,
                "status": step.status,
                "previous_status": step.previous,
            },
        )


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    _in_flush.set(False)
    _unnamed.set(False)
    session.info.pop(_PENDING, None)
