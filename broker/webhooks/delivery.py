"""The delivery job: claim due deliveries, send them signed, record every attempt.

Each replica runs it on a thread of its own, beside (never inside) the request handlers. A pass
claims a batch of due deliveries in one short transaction: on PostgreSQL `FOR UPDATE SKIP
LOCKED` lets two replicas claim at the same moment without waiting on or taking each other's
rows, and the claim sets `lease_until`, so the rows stay theirs after the claim commits, while
the HTTP calls run outside any transaction. A replica that dies mid-delivery leaves its lease to
run out; then another replica claims the row again (so delivery is at least once: a receiver
may see an event twice, always under the same `webhook-id`, and should deduplicate on it).

An attempt that gets a 2xx answer delivers the event. Anything else (another status, a timeout,
a refused connection, an address the SSRF guard refuses) is recorded, and the delivery is due
again after the next pause of `GPUBROKER_WEBHOOK_RETRY_SECONDS`; after the last pause's attempt
it is given up, which the attempt log shows (`gave_up`). Every attempt is signed afresh the
Standard Webhooks way (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import httpx
from cryptography.fernet import InvalidToken
from sqlalchemy import or_, select, update
from sqlmodel import Session
from standardwebhooks import Webhook

from broker.credentials import Sealer
from broker.db import Database
from broker.webhooks import guard
from broker.webhooks.tables import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from pricing.dbtypes import table_of, utcnow

log = logging.getLogger("gpubroker.webhooks")
_deliveries = table_of(WebhookDelivery)
_events = table_of(WebhookEvent)
_endpoints = table_of(WebhookEndpoint)
_attempts = table_of(WebhookAttempt)
_ERROR_LENGTH = 500


@dataclass(frozen=True)
class Claimed:
    """A delivery this replica holds the lease of, with what sending it needs."""

    id: int
    event_id: str
    endpoint_id: str
    type: str
    body: str
    url: str
    secret_sealed: str
    attempts: int
    lease_until: datetime


@dataclass(frozen=True)
class Outcome:
    status_code: int | None = None
    error: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class Deliverer:
    """Sends what the outbox owes; `start` runs it every `poll_seconds` on a thread."""

    def __init__(
        self,
        db: Database,
        sealer: Sealer | None,
        *,
        retry_seconds: Sequence[float],
        timeout_seconds: float,
        allow_private: bool,
        poll_seconds: float,
        batch: int = 16,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.sealer = sealer
        self.retry_seconds = tuple(retry_seconds)
        self.timeout_seconds = timeout_seconds
        self.allow_private = allow_private
        self.poll_seconds = poll_seconds
        self.batch = batch
        self.clock = clock
        # Long enough for every call of a batch (they run side by side) to time out, then some.
        self.lease = timedelta(seconds=2 * timeout_seconds + 30)
        self._client = httpx.Client(
            timeout=timeout_seconds, follow_redirects=False, trust_env=False
        )
        self._pool = ThreadPoolExecutor(max_workers=batch, thread_name_prefix="webhook")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the schedule

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="webhooks", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout_seconds + 5)
            self._thread = None

    def close(self) -> None:
        self.stop()
        self._pool.shutdown(wait=True)
        self._client.close()

    def _loop(self) -> None:
        pause = 0.0
        while not self._stop.wait(pause):
            try:
                full = self.run_once() >= self.batch
            except Exception:  # a failed pass is tried again at the next one
                log.exception("webhook delivery pass failed")
                full = False
            pause = 0.0 if full else self.poll_seconds

    # -- one pass

    def run_once(self) -> int:
        """Claim due deliveries, send them side by side and record each; how many were sent."""
        claimed = self.db.transact(self._claim)
        outcomes = list(self._pool.map(self.send, claimed))
        for delivery, outcome in zip(claimed, outcomes, strict=True):
            self.db.transact(partial(self._record, delivery=delivery, outcome=outcome))
        return len(claimed)

    def _claim(self, session: Session) -> list[Claimed]:
        conn = session.connection()
        now = self.clock()
        d = _deliveries
        due = (
            select(d.c.id)
            .where(
                d.c.state == "pending",
                d.c.next_at <= now,
                or_(d.c.lease_until.is_(None), d.c.lease_until < now),
            )
            .order_by(d.c.next_at)
            .limit(self.batch)
            .with_for_update(skip_locked=True)
        )
        ids = list(conn.execute(due).scalars())
        if not ids:
            return []
        lease_until = now + self.lease
        conn.execute(update(d).where(d.c.id.in_(ids)).values(lease_until=lease_until))
        rows = conn.execute(
            select(
                d.c.id,
                d.c.event_id,
                d.c.endpoint_id,
                _events.c.type,
                _events.c.body,
                _endpoints.c.url,
                _endpoints.c.secret_sealed,
                d.c.attempts,
            )
            .join(_events, _events.c.id == d.c.event_id)
            .join(_endpoints, _endpoints.c.id == d.c.endpoint_id)
            .where(d.c.id.in_(ids))
            .order_by(d.c.next_at)
        ).all()
        return [Claimed(*row, lease_until=lease_until) for row in rows]

    def send(self, delivery: Claimed) -> Outcome:
        """One signed attempt; never raises."""
        if self.sealer is None:
            return Outcome(error="no GPUBROKER_SECRET_KEY: the signing secret cannot be opened")
        try:
            secret = self.sealer.open_text(delivery.secret_sealed)
        except InvalidToken:
            return Outcome(error="the signing secret opens with none of GPUBROKER_SECRET_KEY")
        try:
            target = guard.target(delivery.url, allow_private=self.allow_private)
        except guard.UnsafeUrl as exc:
            return Outcome(error=f"refused: {exc}")
        at = self.clock()
        headers = {
            **target.headers,
            "content-type": "application/json",
            "user-agent": "gpubroker-webhooks",
            "webhook-id": delivery.event_id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": Webhook(secret).sign(delivery.event_id, at, delivery.body),
        }
        try:
            response = self._client.post(
                target.url,
                content=delivery.body.encode(),
                headers=headers,
                extensions=target.extensions,
            )
        except httpx.TimeoutException:
            return Outcome(error=f"timed out after {self.timeout_seconds:g} s")
        except httpx.HTTPError as exc:
            return Outcome(error=f"{type(exc).__name__}: {exc}"[:_ERROR_LENGTH])
        return Outcome(status_code=response.status_code)

    def _record(self, session: Session, delivery: Claimed, outcome: Outcome) -> None:
        conn = session.connection()
        now = self.clock()
        attempt = delivery.attempts + 1
        gave_up = not outcome.delivered and attempt > len(self.retry_seconds)
        if outcome.delivered:
            state, next_at = "delivered", now
        elif gave_up:
            state, next_at = "failed", now
        else:
            state, next_at = "pending", now + timedelta(seconds=self.retry_seconds[attempt - 1])
        d = _deliveries
        changed = conn.execute(
            update(d)
            .where(d.c.id == delivery.id, d.c.lease_until == delivery.lease_until)
            .values(state=state, attempts=attempt, next_at=next_at, lease_until=None)
        ).rowcount
        if not changed:  # the lease ran out (another replica has it now) or it was deleted
            log.warning("webhook delivery %s: no longer held; attempt not recorded", delivery.id)
            return
        conn.execute(
            _attempts.insert().values(
                endpoint_id=delivery.endpoint_id,
                event_id=delivery.event_id,
                type=delivery.type,
                attempt=attempt,
                status_code=outcome.status_code,
                error=outcome.error,
                gave_up=gave_up,
                at=now,
            )
        )
        if gave_up:
            log.warning(
                "webhook %s for endpoint %s given up after %d attempts",
                delivery.event_id,
                delivery.endpoint_id,
                attempt,
            )
