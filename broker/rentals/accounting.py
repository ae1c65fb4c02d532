"""Where a rental's life meets the ledger: billing up to a moment, keeping the hold ahead, closing.

Every function here runs inside the caller's transaction, beside the rental's state change, so
the money and the state commit together or not at all (never from an in-memory queue). The
caller holds the locks in the broker's one order (the account, then the hold, then the rental:
`broker.rentals.locking.lock_rental` takes all three), and every status change goes through the
lifecycle's transition table, so a path that comes second finds the change and an illegal one
raises instead of being written.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import Session

from broker import ledger
from broker.ledger_tables import Hold
from broker.rentals.billing import Billing
from broker.rentals.lifecycle import ENDING, Event, RentalStatus, advance
from broker.rentals.tables import Rental
from broker.webhooks.outbox import announce

log = logging.getLogger("gpubroker.rentals")


def start_billing(rental: Rental, at: datetime) -> None:
    """The rental is running from `at`: billing starts there (again, after a stop)."""
    if rental.status != RentalStatus.RUNNING:
        announce(rental, "rental.running")
    rental.status = advance(rental.status, Event.STARTED)
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
    """End the rental's billing at `at` and move it to `status` (stopped or a final status):
    the final charge, the rest of the hold released, any action in flight finished."""
    target = advance(rental.status, ENDING[RentalStatus(status)])
    bill_to(session, rental, at)
    release_hold(session, rental)
    rental.status = target
    rental.billed_until = None
    rental.ended_at = at if target is not RentalStatus.STOPPED else None
    finish_action(rental)
    if reason:
        rental.reason = reason
    announce(rental, f"rental.{target.value}")


def begin_action(rental: Rental, action: str, at: datetime) -> None:
    """Mark `action` in flight on the (locked) rental before its provider call."""
    rental.action, rental.action_at = action, at


def finish_action(rental: Rental) -> None:
    rental.action, rental.action_at = None, None


def release_hold(session: Session, rental: Rental) -> None:
    """Give back whatever the rental's hold still sets aside (a no-op once it is resolved)."""
    if rental.hold_id is None:
        return
    hold = session.get(Hold, rental.hold_id, populate_existing=True)
    if hold is not None and hold.status == "open":
        ledger.settle(session, hold.id, 0)


def undo_start(session: Session, rental: Rental) -> None:
    """A start the provider did not carry out: its hold is given back and it is stopped."""
    release_hold(session, rental)
    rental.status = advance(rental.status, Event.START_FAILED)
