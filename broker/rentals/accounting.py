"""Where a rental's life meets the ledger: billing up to a moment, keeping the hold ahead, closing.

Every function here runs inside the caller's transaction, beside the rental's state change, so
the money and the state commit together or not at all (never from an in-memory queue).
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import Session

from broker import ledger
from broker.ledger_tables import Hold
from broker.rentals.billing import Billing
from broker.rentals.tables import Rental

log = logging.getLogger("gpubroker.rentals")


def start_billing(rental: Rental, at: datetime) -> None:
    """The rental is running from `at`: billing starts there (again, after a stop)."""
    rental.status = "running"
    rental.started_at = rental.started_at or at
    rental.billed_until = at
    rental.running_since = at
    rental.last_seen_running_at = at


def bill_to(session: Session, rental: Rental, at: datetime) -> bool:
    """Charge the whole seconds run up to `at`; False when the account could not cover them all.

    The charge comes from the rental's hold, and past it from available credit. When even that
    runs out, what is available is charged and the rest is never billed: the customer is never
    overdrawn, and the caller stops the rental.
    """
    if rental.billed_until is None or rental.hold_id is None or at <= rental.billed_until:
        return True
    before = Billing(rental.billed_seconds, rental.billed_until, rental.charged)
    after, amount = before.advance(rental.price_per_hour, at)
    covered = True
    if amount > 0:
        try:
            ledger.charge(session, rental.hold_id, amount)
        except ledger.InsufficientCredit as short:
            covered = False
            affordable = amount - short.missing
            if affordable > 0:
                ledger.charge(session, rental.hold_id, affordable)
            log.warning(
                "rental %s: credit ran out; %d micro-dollars of running were not billed",
                rental.id,
                short.missing,
            )
            after = Billing(after.billed_seconds, after.billed_until, before.charged + affordable)
    rental.billed_seconds = after.billed_seconds
    rental.billed_until = after.billed_until
    rental.charged = after.charged
    return covered


def close(
    session: Session, rental: Rental, status: str, at: datetime, reason: str | None = None
) -> None:
    """End the rental's billing at `at`: the final charge, the rest of the hold released."""
    bill_to(session, rental, at)
    release_hold(session, rental)
    rental.status = status
    rental.billed_until = None
    rental.ended_at = at if status in ("terminated", "interrupted", "failed") else None
    if reason:
        rental.reason = reason


def release_hold(session: Session, rental: Rental) -> None:
    """Give back whatever the rental's hold still sets aside (a no-op once it is resolved)."""
    if rental.hold_id is None:
        return
    hold = session.get(Hold, rental.hold_id, populate_existing=True)
    if hold is not None and hold.status == "open":
        ledger.settle(session, hold.id, 0)
