"""An account's webhook endpoints: register (the secret is shown once), list, remove, test, and
read the log of delivery attempts. Another account's endpoint is "not found", never "forbidden".

The signing secret (`whsec_` and 24 random bytes, base64) has to be used again for every
signature, so it cannot be hashed: it is sealed with `GPUBROKER_SECRET_KEY` like the providers'
once-only credentials (`broker.credentials`), and without that key no endpoint can be made.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete
from sqlmodel import Session, col, select

from broker.credentials import Sealer
from broker.db import Database
from broker.domain_errors import Invalid, NotConfigured, NotFound
from broker.webhooks import guard
from broker.webhooks.outbox import ALL_EVENTS, EVENT_TYPES, TEST_EVENT, enqueue
from broker.webhooks.tables import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from pricing.dbtypes import table_of

_deliveries = table_of(WebhookDelivery)
_attempts = table_of(WebhookAttempt)


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


@dataclass(frozen=True)
class Created:
    endpoint: WebhookEndpoint
    secret: str  # shown in this answer only


def check_events(events: Sequence[str]) -> list[str]:
    """The event filter, deduplicated in order; `Invalid` naming `events` for an unknown one."""
    unknown = sorted(set(events) - {*EVENT_TYPES, ALL_EVENTS})
    if unknown:
        raise Invalid(
            f"unknown event(s) {', '.join(unknown)}; known: {', '.join(EVENT_TYPES)}, or *",
            param="events",
        )
    if not events:
        raise Invalid("name at least one event, or *", param="events")
    return list(dict.fromkeys(events))


class Webhooks:
    """The webhook endpoints of every account, on one database."""

    def __init__(self, db: Database, sealer: Sealer | None, *, allow_private: bool) -> None:
        self.db = db
        self.sealer = sealer
        self.allow_private = allow_private

    def create(self, account_id: str, url: str, events: Sequence[str]) -> Created:
        try:
            clean = guard.check_registration(url, allow_private=self.allow_private)
        except guard.UnsafeUrl as exc:
            raise Invalid(f"url {exc}", param="url") from None
        wanted = check_events(events)
        if self.sealer is None:
            raise NotConfigured(
                "webhooks need GPUBROKER_SECRET_KEY set, to keep their signing secrets sealed"
            )
        secret = new_secret()
        endpoint = WebhookEndpoint(
            account_id=account_id,
            url=clean,
            events=wanted,
            secret_sealed=self.sealer.seal_text(secret),
        )

        def work(session: Session) -> WebhookEndpoint:
            session.add(endpoint)
            return endpoint

        return Created(self.db.transact(work), secret)

    def endpoints(self, account_id: str) -> list[WebhookEndpoint]:
        with self.db.session(read_only=True) as session:
            query = (
                select(WebhookEndpoint)
                .where(col(WebhookEndpoint.account_id) == account_id)
                .order_by(col(WebhookEndpoint.created_at), col(WebhookEndpoint.id))
            )
            return list(session.exec(query))

    def _owned(self, session: Session, account_id: str, endpoint_id: str) -> WebhookEndpoint:
        endpoint = session.get(WebhookEndpoint, endpoint_id)
        if endpoint is None or endpoint.account_id != account_id:
            raise NotFound(f"no webhook {endpoint_id}", param="webhook_id")
        return endpoint

    def delete(self, account_id: str, endpoint_id: str) -> None:
        """Remove the endpoint, what is still owed to it and its attempt log."""

        def work(session: Session) -> None:
            endpoint = self._owned(session, account_id, endpoint_id)
            conn = session.connection()
            conn.execute(delete(_deliveries).where(_deliveries.c.endpoint_id == endpoint_id))
            conn.execute(delete(_attempts).where(_attempts.c.endpoint_id == endpoint_id))
            session.delete(endpoint)

        self.db.transact(work)

    def test(self, account_id: str, endpoint_id: str) -> str:
        """Queue a `webhook.test` event for this endpoint only; returns its id."""

        def work(session: Session) -> str:
            endpoint = self._owned(session, account_id, endpoint_id)
            data = {"webhook_id": endpoint.id, "url": endpoint.url}
            return enqueue(session.connection(), account_id, TEST_EVENT, data, [endpoint.id])

        return self.db.transact(work)

    def attempts(self, account_id: str, endpoint_id: str, limit: int) -> list[WebhookAttempt]:
        """The endpoint's delivery attempts, newest first."""
        with self.db.session(read_only=True) as session:
            self._owned(session, account_id, endpoint_id)
            query = (
                select(WebhookAttempt)
                .where(col(WebhookAttempt.endpoint_id) == endpoint_id)
                .order_by(col(WebhookAttempt.id).desc())
                .limit(limit)
            )
            return list(session.exec(query))
