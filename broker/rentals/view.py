"""A rental as the API shows it (`GET /v1/rentals/{id}`), built from its row alone.

The API answers with it and the webhooks about a rental carry it as their `data`, so both always
say the same; it lives beside the rentals (free of HTTP) so the code that changes a status can
render it inside its own transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from broker.ledger_tables import Hold
from broker.rentals import limits
from broker.rentals.tables import Rental
from pricing.dbtypes import table_of, utcnow
from pricing.money import format_usd

_holds = table_of(Hold)


def rental_body(rental: Rental, held: int) -> dict[str, Any]:
    """The rental's public fields; `held` is what its hold still sets aside (micro-dollars)."""
    body: dict[str, Any] = {
        "id": rental.id,
        "object": "rental",
        "status": rental.status,
        "provider": rental.provider,
        "offer_id": rental.offer_id,
        "gpu": rental.gpu,
        "gpu_count": rental.gpu_count,
        "tier": rental.tier,
        "region": rental.region,
        "price_per_hour": format_usd(rental.price_per_hour),
        "hold": format_usd(held),
        "cost": format_usd(rental.earlier_charged + rental.charged),
        "billed_seconds": rental.earlier_seconds + rental.billed_seconds,
        "attempts": rental.attempts,
        "connect_url": f"/v1/rentals/{rental.id}/connect/",
        "recover": rental.request.get("recover", rental.recover) or rental.recover,
        "interruptions": rental.interruptions,
        "reason": rental.reason,
        "created_at": rental.created_at,
        "started_at": rental.started_at,
        "ended_at": rental.ended_at,
    }
    if rental.ssh is not None:
        body["ssh"] = rental.ssh
    body.update(limits_body(rental))
    return body


def limits_body(rental: Rental) -> dict[str, Any]:
    """The rental's spending limits as asked, and what is left of each (None: no such limit)."""
    cost = limits.cost_left(rental)
    return {
        "max_duration_seconds": rental.max_duration_seconds,
        "max_cost": None if rental.max_cost is None else format_usd(rental.max_cost),
        "idle_timeout_seconds": rental.idle_timeout_seconds,
        "last_activity_at": rental.last_activity_at,
        "limits_left": {
            "max_duration_seconds": limits.duration_left(rental),
            "max_cost": None if cost is None else format_usd(cost),
            "idle_timeout_seconds": limits.idle_left(rental, utcnow()),
        },
    }


def rental_data(session: Session, rental: Rental) -> dict[str, Any]:
    """`rental_body` with its hold read in `session`, inside the caller's transaction (from the
    database, which the ledger's statements update, not from a loaded `Hold`)."""
    held = None
    if rental.hold_id is not None:
        query = select(_holds.c.held).where(_holds.c.id == rental.hold_id)
        held = session.connection().execute(query).scalar()
    return rental_body(rental, held or 0)
