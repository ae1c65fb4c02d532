"""The outbox: events written in the same transaction as the change they report.

`emit` runs inside the caller's transaction and only inserts rows: the event (its body serialized
once, so every attempt sends and signs the same bytes) and one pending delivery for each of the
account's endpoints that wants it. Nothing is sent from here: the delivery job (`delivery`)
picks the rows up once the transaction has committed, so an event is never announced for a
change that rolled back, and never lost for one that committed, whatever happens to the process
in between.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import event, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, object_session

from broker.ledger_tables import new_id
from broker.rentals.tables import Rental
from broker.rentals.view import rental_data
from broker.webhooks.tables import WebhookDelivery, WebhookEndpoint, WebhookEvent
from pricing.dbtypes import table_of, utcnow

EVENT_TYPES = (
    "rental.running",
    "rental.stopped",
    "rental.interrupted",
    "rental.recovered",
    "rental.terminated",
    "rental.failed",
    "rental.limit_reached",
    "wallet.low_balance",
    "budget.alert",
    "budget.exceeded",
)
ALL_EVENTS = "*"
TEST_EVENT = "webhook.test"  # sent by a test delivery only, to the one endpoint tested
_ANNOUNCED = "gpubroker_webhook_events"  # the session's events to write before it commits

_endpoints = table_of(WebhookEndpoint)
_events = table_of(WebhookEvent)
_deliveries = table_of(WebhookDelivery)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def event_body(type: str, data: Mapping[str, Any], at: datetime) -> str:
    """The JSON body of an event, as every attempt sends it."""
    payload = {"type": type, "timestamp": at, "data": dict(data)}
    option = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS
    return orjson.dumps(payload, default=_default, option=option).decode()


def _connection(session: Session | Connection) -> Connection:
    return session.connection() if isinstance(session, Session) else session


def wants(events: Iterable[str], type: str) -> bool:
    return any(event in (ALL_EVENTS, type) for event in events)


def emit(
    session: Session | Connection, account_id: str, type: str, data: Mapping[str, Any]
) -> None:
    """Record `type` with `data` for every endpoint of the account that wants it, inside the
    caller's transaction (nothing is written when none does)."""
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {type!r}")
    conn = _connection(session)
    rows = conn.execute(
        select(_endpoints.c.id, _endpoints.c.events).where(_endpoints.c.account_id == account_id)
    ).all()
    wanted = [endpoint_id for endpoint_id, events in rows if wants(events, type)]
    if wanted:
        enqueue(conn, account_id, type, data, wanted)


def enqueue(
    conn: Connection,
    account_id: str,
    type: str,
    data: Mapping[str, Any],
    endpoint_ids: list[str],
) -> str:
    """Write one event owed to `endpoint_ids`, due now; returns its id (the `webhook-id`)."""
    now = utcnow()
    event_id = new_id("msg")
    conn.execute(
        _events.insert().values(
            id=event_id,
            account_id=account_id,
            type=type,
            body=event_body(type, data, now),
            created_at=now,
        )
    )
    conn.execute(
        _deliveries.insert(),
        [
            {
                "event_id": event_id,
                "endpoint_id": endpoint_id,
                "state": "pending",
                "attempts": 0,
                "next_at": now,
            }
            for endpoint_id in endpoint_ids
        ],
    )
    return event_id


def announce(rental: Rental, type: str) -> None:
    """Emit `type` about `rental` when the transaction it is loaded in commits.

    The status changes in the rentals' code happen on a locked row, often before the rest of
    the transaction's changes to it (its reason, its SSH details); the event is therefore
    rendered, and written, just before the commit, with the rental as the API will show it.
    """
    session = object_session(rental)
    if session is None:
        raise RuntimeError(f"rental {rental.id} is not in a transaction; its event would be lost")
    session.info.setdefault(_ANNOUNCED, []).append((rental, type))


@event.listens_for(Session, "before_commit")
def _write_announced(session: Session) -> None:
    for rental, type in session.info.pop(_ANNOUNCED, []):
        emit(session, rental.account_id, type, rental_data(session, rental))


@event.listens_for(Session, "after_rollback")
def _forget_announced(session: Session) -> None:
    session.info.pop(_ANNOUNCED, None)
