"""The metering job: bill every running rental per second, keep its hold ahead, stop it at zero.

Each tick charges the whole seconds each rental has been seen running since its last charge
(the status job moves "seen running" forward), then tops its hold up when it covers less than
two ticks. A rental whose hold and the account's available credit together cannot pay for the
next tick is stopped at its provider (terminated where the provider cannot stop) and billed to
that moment: a customer is never run into debt, and every cent charged is a ledger entry.

A tick locks in the broker's one order (the batch's accounts, then their holds, then the
rentals), so it never deadlocks with a user's rent, stop or terminate on the same account; a
tick that still meets a concurrent transaction's deadlock runs again (`Database.transact`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from sqlmodel import Session, select

from broker.db import Database, bulk_update
from broker.ledger_batch import HoldState, lock_holds, move_locked
from broker.ledger_core import Balances, Move
from broker.rentals.accounting import begin_action, close, finish_action
from broker.rentals.billing import Billing, hold_for
from broker.rentals.lifecycle import Action, RentalStatus, decide
from broker.rentals.locking import lock_rental
from broker.rentals.tables import Rental
from pricing.dbtypes import table_of
from providers.base import ProviderError, ProviderRefused
from providers.rental import NotSupported, RentalProvider

log = logging.getLogger("gpubroker.rentals")
BATCH = 2500


_rentals = table_of(Rental)
_BILLING_COLUMNS = [
    _rentals.c[name]
    for name in (
        "id",
        "hold_id",
        "price_per_hour",
        "billed_seconds",
        "billed_until",
        "charged",
        "last_seen_running_at",
    )
]


@dataclass
class TickPlan:
    """One rental's part of a tick: charge `amount`, then keep the hold ahead.

    The charge comes from the hold, then from available credit; what neither covers is never
    charged. The hold is then refilled towards `refill` when it covers less than `need`.
    `broke` says the account can no longer pay for what comes next.
    """

    rental_id: str
    charged: int
    billed_seconds: int
    after: Billing
    amount: int
    need: int
    refill: int
    broke: bool = False

    def moves(self, hold: HoldState, state: Balances) -> list[Move]:
        held, available = hold.held, state.available
        moves: list[Move] = []
        if self.amount <= held:
            moves.append(("charge", self.amount))
            held -= self.amount
        else:
            extra = min(self.amount - held, available)
            moves += [("hold", extra), ("charge", held + extra)]
            available -= extra
            self.broke = held + extra < self.amount
            held = 0
        if held < self.need:
            top_up = max(0, min(self.refill - held, available))
            moves.append(("hold", top_up))
            self.broke = self.broke or held + top_up < self.need
        return moves


@dataclass
class MeterReport:
    billed: int = 0
    out_of_credit: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)


class Meter:
    def __init__(
        self,
        db: Database,
        adapters: Mapping[str, RentalProvider],
        clock: Callable[[], datetime],
        *,
        meter_seconds: float,
        min_hold_seconds: int,
    ) -> None:
        self.db = db
        self.adapters = adapters
        self.clock = clock
        self.ahead_seconds = max(1, int(2 * meter_seconds))
        self.min_hold_seconds = min_hold_seconds

    def run(self) -> MeterReport:
        report = MeterReport()
        with self.db.session(read_only=True) as session:
            ids = list(session.exec(select(Rental.id).where(Rental.status == RentalStatus.RUNNING)))
        broke: list[str] = []
        for start in range(0, len(ids), BATCH):
            batch = ids[start : start + BATCH]
            broke += self.db.transact(partial(self._tick, ids=batch))
            report.billed += min(BATCH, len(ids) - start)
        report.out_of_credit = broke
        for rental_id in broke:
            if self.stop_for_credit(rental_id):
                report.stopped.append(rental_id)
        return report

    def _tick(self, session: Session, ids: list[str]) -> list[str]:
        """Bill one batch of rentals in one transaction; returns those out of credit."""
        now = self.clock()
        running = (_rentals.c.id.in_(ids), _rentals.c.status == RentalStatus.RUNNING)
        hold_ids = session.connection().execute(
            select(_rentals.c.hold_id).where(*running, _rentals.c.hold_id.is_not(None))
        )
        # The broker's lock order: the accounts, then their holds, then the rentals.
        locked = lock_holds(session, list(hold_ids.scalars()))
        held = {hold.id for hold in locked.holds}
        rentals = session.connection().execute(
            select(*_BILLING_COLUMNS).where(*running).order_by(_rentals.c.id).with_for_update()
        )
        plans: dict[str, TickPlan] = {}
        for rental in rentals:
            if rental.hold_id not in held or rental.billed_until is None:
                continue
            seen = min(now, rental.last_seen_running_at or now)
            billing = Billing(rental.billed_seconds, rental.billed_until, rental.charged)
            after, amount = billing.advance(rental.price_per_hour, seen)
            plans[rental.hold_id] = TickPlan(
                rental.id,
                rental.charged,
                rental.billed_seconds,
                after,
                amount,
                need=hold_for(rental.price_per_hour, self.ahead_seconds),
                refill=hold_for(rental.price_per_hour, self.min_hold_seconds),
            )
        moved = move_locked(
            session,
            locked,
            lambda hold, state: plans[hold.id].moves(hold, state) if hold.id in plans else [],
        )
        broke: list[str] = []
        updates = []
        for hold_id, plan in plans.items():
            charged = moved[hold_id].charged if hold_id in moved else 0
            if hold_id not in moved or plan.broke:
                broke.append(plan.rental_id)
            if plan.after.billed_seconds == plan.billed_seconds:
                continue
            updates.append(
                {
                    "id": plan.rental_id,
                    "billed_seconds": plan.after.billed_seconds,
                    "billed_until": plan.after.billed_until,
                    "charged": plan.charged + charged,
                }
            )
        bulk_update(session.connection(), _rentals, "id", updates)
        return broke

    def stop_for_credit(self, rental_id: str) -> bool:
        """Stop (or terminate) a rental whose account ran out of credit; True when it ended.

        Like a user's stop, it marks itself in flight first, so it never races a user's action;
        a rental with an action under way is left to the next tick.
        """
        now = self.clock()

        def begin(session: Session) -> Rental | None:
            rental = lock_rental(session, rental_id)
            if not decide(rental.status, rental.action, Action.STOP).proceed:
                return None
            if not rental.handle or not rental.provider or rental.provider not in self.adapters:
                log.warning(
                    "rental %s is out of credit, but %s is not enabled", rental_id, rental.provider
                )
                return None
            begin_action(rental, Action.STOP, now)
            session.add(rental)
            return rental

        marked = self.db.transact(begin)
        if marked is None:
            return False
        adapter = self.adapters[marked.provider or ""]
        ended = RentalStatus.STOPPED
        try:
            try:
                adapter.stop(marked.handle or "")
            except NotSupported:
                ended = RentalStatus.TERMINATED
                adapter.terminate(marked.handle or "")
        except ProviderError as exc:
            if not (isinstance(exc, ProviderRefused) and exc.reason == "not_found"):
                log.warning("could not stop rental %s out of credit: %s", rental_id, exc.message)
                self.db.transact(lambda session: _clear(session, marked))
                return False

        def finish(session: Session) -> bool:
            locked = lock_rental(session, rental_id)
            if (locked.action, locked.action_at) != (marked.action, marked.action_at):
                return False
            close(session, locked, ended, self.clock(), "stopped: the account ran out of credit")
            session.add(locked)
            return True

        if not self.db.transact(finish):
            return False
        log.info("rental %s %s: out of credit", rental_id, ended)
        return True


def _clear(session: Session, marked: Rental) -> None:
    """Take back an in-flight mark the provider call did not act on (if it is still ours)."""
    locked = lock_rental(session, marked.id)
    if (locked.action, locked.action_at) == (marked.action, marked.action_at):
        finish_action(locked)
        session.add(locked)
