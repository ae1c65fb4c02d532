"""The metering job: bill every running rental per second, keep its hold ahead, stop it at zero.

Each tick charges the whole seconds each rental has been seen running since its last charge
(the status job moves "seen running" forward), then tops its hold up when it covers less than
two ticks. A rental whose hold and the account's available credit together cannot pay for the
next tick is stopped at its provider (terminated where the provider cannot stop) and billed to
that moment: a customer is never run into debt, and every cent charged is a ledger entry.

The same tick enforces each rental's limits (`broker.rentals.limits`: billing stops at the second
a duration or cost limit is reached, the last charge prorated; an idle rental is flagged) and the
account's monthly budget (`broker.budget`: charges capped at what the month has left), then ends
the rentals that reached one, with `reason` naming it.

A tick locks in the broker's one order (the batch's accounts, then their holds, then the
rentals), so it never deadlocks with a user's rent, stop or terminate on the same account; a
tick that still meets a concurrent transaction's deadlock runs again (`Database.transact`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from sqlmodel import Session, select

from broker.budget import notices
from broker.budget.service import left_this_month
from broker.db import Database, bulk_update
from broker.ledger_batch import HoldState, lock_holds, move_locked
from broker.ledger_core import Balances, Move
from broker.rentals.accounting import begin_action, close, finish_action
from broker.rentals.billing import Billing, hold_for
from broker.rentals.lifecycle import Action, RentalStatus, decide
from broker.rentals.limits import (
    BUDGET,
    END_BY,
    IDLE,
    MAX_COST,
    MAX_DURATION,
    Activity,
    capped,
    is_idle,
)
from broker.rentals.locking import lock_rental
from broker.rentals.tables import Rental
from broker.rentals.view import rental_data
from broker.webhooks.outbox import emit
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
        "account_id",
        "earlier_seconds",
        "earlier_charged",
        "max_duration_seconds",
        "max_cost",
        "idle_timeout_seconds",
        "last_activity_at",
        "running_since",
    )
]
CREDIT = "credit"  # why a tick ends a rental: out of credit, or a limit (`limits.END_BY`)
REASONS = {
    CREDIT: "stopped: the account ran out of credit",
    BUDGET: "stopped: the account's monthly budget is spent",
}
# Ended where the tick stopped billing them, so the final close charges nothing more.
BILLED_TO_THE_LIMIT = frozenset({MAX_COST, MAX_DURATION, BUDGET})


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
    account_id: str = ""
    reached: str | None = None  # a limit this tick reached (`broker.rentals.limits`)
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
    limited: dict[str, str] = field(default_factory=dict)  # rental id -> the limit reached
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
        activity: Activity | None = None,
        busy_percent: int = 10,
    ) -> None:
        self.db = db
        self.adapters = adapters
        self.clock = clock
        self.ahead_seconds = max(1, int(2 * meter_seconds))
        self.min_hold_seconds = min_hold_seconds
        self.activity = activity
        self.busy_percent = busy_percent

    def run(self) -> MeterReport:
        report = MeterReport()
        if self.activity is not None:  # traffic and busy GPUs, before idleness is judged
            self.activity.sample(self.adapters, self.busy_percent)
            self.activity.flush()
        with self.db.session(read_only=True) as session:
            ids = list(session.exec(select(Rental.id).where(Rental.status == RentalStatus.RUNNING)))
        ending: list[tuple[str, str]] = []
        for start in range(0, len(ids), BATCH):
            batch = ids[start : start + BATCH]
            ending += self.db.transact(partial(self._tick, ids=batch))
            report.billed += min(BATCH, len(ids) - start)
        report.out_of_credit = [rental_id for rental_id, why in ending if why == CREDIT]
        report.limited = {rental_id: why for rental_id, why in ending if why != CREDIT}
        for rental_id, why in ending:
            if self.end(rental_id, why):
                report.stopped.append(rental_id)
        return report

    def _tick(self, session: Session, ids: list[str]) -> list[tuple[str, str]]:
        """Bill one batch of rentals in one transaction; returns those to end, and why."""
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
            tick = capped(
                rental.price_per_hour,
                billing,
                seen,
                earlier_seconds=rental.earlier_seconds,
                earlier_charged=rental.earlier_charged,
                max_duration_seconds=rental.max_duration_seconds,
                max_cost=rental.max_cost,
            )
            idle = is_idle(
                rental.idle_timeout_seconds, rental.running_since, rental.last_activity_at, now
            )
            plans[rental.hold_id] = TickPlan(
                rental.id,
                rental.charged,
                rental.billed_seconds,
                tick.after,
                tick.amount,
                need=hold_for(rental.price_per_hour, self.ahead_seconds),
                refill=hold_for(rental.price_per_hour, self.min_hold_seconds),
                account_id=rental.account_id,
                reached=tick.reached or (IDLE if idle else None),
            )
        _cap_to_budgets(session, plans.values(), now)
        moved = move_locked(
            session,
            locked,
            lambda hold, state: plans[hold.id].moves(hold, state) if hold.id in plans else [],
        )
        ending: list[tuple[str, str]] = []
        updates = []
        for hold_id, plan in plans.items():
            charged = moved[hold_id].charged if hold_id in moved else 0
            if plan.reached is not None:
                ending.append((plan.rental_id, plan.reached))
            elif hold_id not in moved or plan.broke:
                ending.append((plan.rental_id, CREDIT))
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
        notices.after_charges(session, {plan.account_id for plan in plans.values()}, now)
        return ending

    def end(self, rental_id: str, why: str = CREDIT) -> bool:
        """End a rental out of credit or at a limit (`why`); True when it ended.

        Out of credit, over the budget or idle, it is stopped (terminated where the provider
        cannot stop); at `max_duration` or `max_cost` it is terminated, billed only to the
        moment the tick stopped its billing. Like a user's action it marks itself in flight
        first, so it never races one; a rental with an action under way is left to the next
        tick, which finds the limit reached again.
        """
        now = self.clock()
        action = END_BY.get(why, Action.STOP)

        def begin(session: Session) -> Rental | None:
            rental = lock_rental(session, rental_id)
            if not decide(rental.status, rental.action, action).proceed:
                return None
            if not rental.handle or not rental.provider or rental.provider not in self.adapters:
                log.warning(
                    "rental %s is to end (%s), but %s is not enabled",
                    rental_id,
                    why,
                    rental.provider,
                )
                return None
            begin_action(rental, action, now)
            session.add(rental)
            return rental

        marked = self.db.transact(begin)
        if marked is None:
            return False
        adapter = self.adapters[marked.provider or ""]
        ended = RentalStatus.STOPPED if action is Action.STOP else RentalStatus.TERMINATED
        try:
            try:
                if action is Action.STOP:
                    adapter.stop(marked.handle or "")
                else:
                    adapter.terminate(marked.handle or "")
            except NotSupported:
                ended = RentalStatus.TERMINATED
                adapter.terminate(marked.handle or "")
        except ProviderError as exc:
            if not (isinstance(exc, ProviderRefused) and exc.reason == "not_found"):
                log.warning("could not end rental %s (%s): %s", rental_id, why, exc.message)
                self.db.transact(lambda session: _clear(session, marked))
                return False

        def finish(session: Session) -> bool:
            locked = lock_rental(session, rental_id)
            if (locked.action, locked.action_at) != (marked.action, marked.action_at):
                return False
            at = self.clock()
            if why in BILLED_TO_THE_LIMIT and locked.billed_until is not None:
                at = min(at, locked.billed_until)
            close(session, locked, ended, at, REASONS.get(why, why))
            session.add(locked)
            if why in END_BY and why != BUDGET:
                data = {**rental_data(session, locked), "limit": why}
                emit(session, locked.account_id, "rental.limit_reached", data)
            return True

        if not self.db.transact(finish):
            return False
        log.info("rental %s %s: %s", rental_id, ended, why)
        return True


def _clear(session: Session, marked: Rental) -> None:
    """Take back an in-flight mark the provider call did not act on (if it is still ours)."""
    locked = lock_rental(session, marked.id)
    if (locked.action, locked.action_at) == (marked.action, marked.action_at):
        finish_action(locked)
        session.add(locked)


def _cap_to_budgets(session: Session, plans: Iterable[TickPlan], now: datetime) -> None:
    """Charge no account past what its monthly budget has left; a rental of an account whose
    budget is spent reaches `BUDGET` (its seconds still run on, unbilled, as at zero credit)."""
    plans = sorted(plans, key=lambda plan: plan.rental_id)
    left = left_this_month(session, sorted({plan.account_id for plan in plans}), now)
    for plan in plans:
        if plan.account_id not in left:
            continue
        plan.amount = min(plan.amount, left[plan.account_id])
        left[plan.account_id] -= plan.amount
    for plan in plans:
        if left.get(plan.account_id) == 0 and plan.reached is None:
            plan.reached = BUDGET
