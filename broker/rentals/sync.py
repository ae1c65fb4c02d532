"""The status job: follow every live rental at its provider and react to what changed.

- provisioning -> running: billing starts at that moment;
- provisioning -> failed: the hold is released, nothing was charged;
- running, still running: it was seen running now (the meter bills up to that moment);
- running -> interrupted (a spot loss, in each provider's own words): billing ends at the moment
  of loss, the loss feeds the observed interruption rate, and a rental that asked to `recover`
  is placed again on the next best offer under the same id and connect URL (with a policy, on
  spot until `max_interruptions`, then on on-demand if its `fallback` says so, else no more);
- running -> failed (the workload died; the provider's words, e.g. its last log lines, kept as
  the reason) or ended or stopped at the provider: billed to the last moment it was seen running.
A provider that cannot be reached changes nothing: the rental is looked at again next time.

A rental with a start, stop or terminate in flight is left to that action. If the action is
still marked after `action_timeout_seconds`, the broker that began it died during its provider
call; this job then finishes it from what the provider says (a terminate is sent again, since
the user asked for it; a stop or start is recorded if it happened, and undone if it did not), so
no rental stays stuck and no hold stays open for a start that never ran.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import cast

from sqlmodel import Session, col, select

from broker import ledger
from broker.budget import service as budget
from broker.rentals import observed
from broker.rentals.accounting import close, finish_action, start_billing, undo_start
from broker.rentals.billing import hold_for
from broker.rentals.context import RentalContext
from broker.rentals.lifecycle import Action, Event, RentalStatus, advance
from broker.rentals.locking import lock_rental
from broker.rentals.placement import Unplaced, place_rental, ssh_json
from broker.rentals.ranking import Blocklist, rank
from broker.rentals.request import ON_DEMAND, constraints_of, recovery_of, workload_of
from broker.rentals.tables import Rental
from pricing.offer import Tier
from providers.base import ProviderError, ProviderRefused
from providers.rental import (
    Instance,
    InstanceStatus,
    UnsupportedWorkload,
)

log = logging.getLogger("gpubroker.rentals")


@dataclass
class StatusSync(RentalContext):
    """Follows each rental's instance at its provider, and recovers interrupted spot rentals."""

    action_timeout_seconds: float = 120.0

    @property
    def action_timeout(self) -> timedelta:
        return timedelta(seconds=self.action_timeout_seconds)

    def run(self) -> None:
        """One pass over every rental that is provisioning or running, then over actions that
        were left in flight."""
        cutoff = self.clock() - self.action_timeout
        with self.db.session(read_only=True) as session:
            watched = session.exec(
                select(Rental.id, Rental.provider, Rental.handle).where(
                    col(Rental.status).in_((RentalStatus.PROVISIONING, RentalStatus.RUNNING)),
                    col(Rental.handle).is_not(None),
                    col(Rental.action).is_(None),
                )
            ).all()
            abandoned = session.exec(
                select(Rental.id).where(
                    col(Rental.action).is_not(None), col(Rental.action_at) < cutoff
                )
            ).all()
        for rental_id, provider, handle in watched:
            instance = self._observe(rental_id, provider, handle)
            if instance is not None and handle is not None:
                self.apply(rental_id, handle, instance)
        for rental_id in abandoned:
            self.finish_abandoned(rental_id)

    def _observe(self, rental_id: str, provider: str | None, handle: str | None) -> Instance | None:
        """The instance as its provider reports it; None when the provider cannot say now."""
        adapter = self.adapters.get(provider or "")
        if adapter is None or handle is None:
            return None
        try:
            return adapter.status(handle)
        except ProviderRefused as exc:
            if exc.reason != "not_found":
                log.warning("status of rental %s: %s", rental_id, exc.message)
                return None
            return Instance(provider or "", handle, InstanceStatus.TERMINATED, reason="gone")
        except ProviderError as exc:
            log.warning("status of rental %s: %s", rental_id, exc.message)
            return None

    def apply(self, rental_id: str, handle: str, instance: Instance) -> None:
        """Move one rental to what its provider reports."""
        now = self.clock()

        def work(session: Session) -> tuple[Rental, bool]:
            rental = lock_rental(session, rental_id)
            if (
                rental.handle != handle
                or rental.status not in (RentalStatus.PROVISIONING, RentalStatus.RUNNING)
                or rental.action is not None
            ):
                return rental, False
            interrupted = self._follow(session, rental, instance, now)
            session.add(rental)
            if interrupted:
                observed.refresh_catalog(session, self.catalog)
            return rental, interrupted

        rental, interrupted = self.db.transact(work)
        if interrupted and rental.recover:
            self.recover(rental_id)

    def _follow(self, session: Session, rental: Rental, instance: Instance, now: datetime) -> bool:
        """Apply the provider's view to a locked, live rental; True on a spot interruption."""
        state = instance.status
        if rental.status == RentalStatus.PROVISIONING:
            if state is InstanceStatus.RUNNING:
                start_billing(rental, now)
                rental.ssh = ssh_json(instance) or rental.ssh
            elif state in (InstanceStatus.FAILED, InstanceStatus.TERMINATED):
                close(
                    session,
                    rental,
                    RentalStatus.FAILED,
                    now,
                    f"the provider failed it: {instance.reason}",
                )
        elif state is InstanceStatus.RUNNING:
            rental.last_seen_running_at = now
        elif state is InstanceStatus.INTERRUPTED:
            loss = self._moment_of_loss(rental, instance)
            observed.record(session, rental, loss, interrupted=True)
            rental.interruptions += 1
            close(
                session,
                rental,
                RentalStatus.INTERRUPTED,
                loss,
                f"spot instance lost: {instance.reason}",
            )
            return True
        elif state is InstanceStatus.FAILED:
            seen = rental.last_seen_running_at or now
            observed.record(session, rental, seen, interrupted=False)
            close(
                session,
                rental,
                RentalStatus.FAILED,
                seen,
                f"the provider failed it: {instance.reason}",
            )
        elif state is not InstanceStatus.PROVISIONING:
            seen = rental.last_seen_running_at or now
            observed.record(session, rental, seen, interrupted=False)
            ended = (
                RentalStatus.STOPPED if state is InstanceStatus.STOPPED else RentalStatus.TERMINATED
            )
            close(session, rental, ended, seen, f"{state.value} at the provider")
        return False

    def finish_abandoned(self, rental_id: str) -> None:
        """Finish an action whose broker died during its provider call, from what the provider
        reports now; nothing changes while the provider cannot be asked."""
        with self.db.session(read_only=True) as session:
            marked = session.get(Rental, rental_id)
        if marked is None or marked.action is None:
            return
        adapter = self.adapters.get(marked.provider or "")
        instance: Instance | None = None
        if marked.handle is not None and adapter is not None:
            if marked.action == Action.TERMINATE:
                try:
                    adapter.terminate(marked.handle)
                except ProviderRefused as exc:
                    if exc.reason != "not_found":
                        log.warning("terminate of rental %s: %s", rental_id, exc.message)
                        return
                except ProviderError as exc:
                    log.warning("terminate of rental %s: %s", rental_id, exc.message)
                    return
            else:
                instance = self._observe(rental_id, marked.provider, marked.handle)
                if instance is None:
                    return
        now = self.clock()

        def work(session: Session) -> None:
            rental = lock_rental(session, rental_id)
            if (rental.action, rental.action_at) != (marked.action, marked.action_at):
                return
            log.warning("rental %s: finishing a %s left in flight", rental_id, rental.action)
            if rental.action == Action.TERMINATE:
                close(session, rental, RentalStatus.TERMINATED, now, "terminated by the user")
            elif instance is not None:
                action = cast(str, rental.action)  # equal to marked.action, not None
                finish_from(session, rental, Action(action), instance, now)
            elif rental.action == Action.START:
                undo_start(session, rental)  # its provider is gone from the configuration
            finish_action(rental)
            session.add(rental)

        self.db.transact(work)

    def _moment_of_loss(self, rental: Rental, instance: Instance) -> datetime:
        """When the instance was lost: the provider's own time where it falls after the last
        moment the broker saw it running (and not in the future), else that last moment."""
        now = self.clock()
        seen = rental.last_seen_running_at or rental.billed_until or now
        said = instance.ended_at
        return said if said is not None and seen <= said <= now else seen

    def recover(self, rental_id: str) -> None:
        """Place an interrupted rental again, same id and connect URL, on the next best offer."""
        with self.db.session(read_only=True) as session:
            rental = session.get(Rental, rental_id)
        if rental is None or rental.status != RentalStatus.INTERRUPTED:
            return
        constraints = constraints_of(rental)
        policy = recovery_of(rental.request)
        if policy.spot_spent(rental.interruptions):
            if policy.fallback != ON_DEMAND:
                why = f"interrupted {rental.interruptions} times (max_interruptions)"
                self._recovery_failed(rental_id, why)
                return
            constraints = replace(constraints, tier=Tier.ON_DEMAND)
        blocked = Blocklist()
        if rental.offer_id:
            blocked.offers.add(rental.offer_id)
        workload = workload_of(rental.request)
        candidates = []
        for offer in rank(self.catalog.index, constraints):
            if blocked.blocks(offer) or offer.provider not in self.adapters:
                continue
            try:
                self.adapters[offer.provider].check_workload(offer, workload)
            except UnsupportedWorkload:
                continue
            candidates.append(offer)
        if not candidates:
            self._recovery_failed(rental_id, "no other offer matches")
            return
        amount = hold_for(candidates[0].price_per_hour, self.min_hold_seconds)

        def begin(session: Session) -> Rental | None:
            locked = lock_rental(session, rental_id)
            if locked.status != RentalStatus.INTERRUPTED:
                return None
            locked.hold_id = ledger.place_hold(session, locked.account_id, amount, ref=rental_id).id
            budget.check_hold(session, locked.account_id, amount, self.clock())
            locked.status, locked.handle = advance(locked.status, Event.RECOVER), None
            session.add(locked)
            return locked

        try:
            locked = self.db.transact(begin)
        except (ledger.InsufficientCredit, budget.BudgetExceeded) as short:
            self._recovery_failed(rental_id, short.message)
            return
        if locked is None:
            return
        place_rental(
            self.db,
            self.adapters,
            self.clock,
            rental_id=rental_id,
            hold_id=locked.hold_id or "",
            candidates=candidates,
            workload=workload,
            hold_seconds=self.min_hold_seconds,
            max_attempts=self.max_attempts,
            unplaced=Unplaced(RentalStatus.INTERRUPTED, "recovery found no capacity"),
            landed_reason=lambda offer: f"recovered on {offer.id} after a spot interruption",
        )

    def _recovery_failed(self, rental_id: str, why: str) -> None:
        def work(session: Session) -> None:
            locked = lock_rental(session, rental_id)
            locked.reason = f"spot instance lost; recovery failed: {why}"
            session.add(locked)

        self.db.transact(work)


_ENDED_AT_PROVIDER = {
    InstanceStatus.TERMINATED: RentalStatus.TERMINATED,
    InstanceStatus.FAILED: RentalStatus.FAILED,
    InstanceStatus.INTERRUPTED: RentalStatus.INTERRUPTED,
}


def finish_from(
    session: Session, rental: Rental, action: Action, instance: Instance, now: datetime
) -> None:
    """Record what became of an abandoned stop or start, as the provider reports it."""
    state = instance.status
    if state in _ENDED_AT_PROVIDER:
        seen = rental.last_seen_running_at or now
        close(session, rental, _ENDED_AT_PROVIDER[state], seen, f"{state.value} at the provider")
    elif action is Action.STOP and state is InstanceStatus.STOPPED:
        close(session, rental, RentalStatus.STOPPED, rental.action_at or now, "stopped by the user")
    elif action is Action.START and state is InstanceStatus.RUNNING:
        start_billing(rental, now)
    elif action is Action.START and state is InstanceStatus.STOPPED:
        undo_start(session, rental)
    # Otherwise the action did not take effect (a stop) or is still under way at the provider
    # (a start, followed from here like any provisioning rental): only the mark goes.
