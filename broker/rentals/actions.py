"""Stop, start and terminate: a user's actions on a rental that already exists.

Every transaction that changes a rental takes its row locks in one order, the account, then the
hold, then the rental (`broker.rentals.locking`), and runs through `Database.transact`, which
retries one that a deadlock or serialization failure rolled back. Each action decides under the
rental's lock with the lifecycle's pure rules (`broker.rentals.lifecycle.decide`) and marks
itself in flight before its provider call, outside any transaction. A second action arriving
meanwhile is refused as a conflict, or is a replay when what it asks for is already done (a stop
of a stopped rental, a terminate of an ended one): never a second hold, never a second provider
call. The outcome is recorded only while the mark is still the action's own; a mark left by a
broker that died is finished by the status job (`broker.rentals.sync`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime

from sqlmodel import Session

from broker import ledger
from broker.budget import service as budget
from broker.db import Database
from broker.domain_errors import Conflict, NoCapacity, ProviderFailed
from broker.rentals.accounting import (
    begin_action,
    close,
    finish_action,
    start_billing,
    undo_start,
)
from broker.rentals.billing import hold_for
from broker.rentals.lifecycle import Action, Event, RentalStatus, advance, decide
from broker.rentals.locking import lock_rental
from broker.rentals.tables import Rental
from providers.base import ProviderError, ProviderRefused
from providers.rental import InstanceStatus, NotSupported, RentalProvider

log = logging.getLogger("gpubroker.rentals")


def lock_for(
    session: Session, rental_id: str, account_id: str, action: Action
) -> tuple[Rental, bool]:
    """The rental, locked, once `action` may begin on it, and whether it is already done (a
    replay); a conflict when another action is under way or its status does not allow it."""
    rental = lock_rental(session, rental_id, account_id)
    decision = decide(rental.status, rental.action, action)
    if not (decision.proceed or decision.replay):
        raise Conflict(f"rental {rental_id}: {decision.reason}")
    return rental, decision.replay


class RentalActions:
    """The actions of `RentalService` on existing rentals (it provides these attributes)."""

    db: Database
    adapters: Mapping[str, RentalProvider]
    clock: Callable[[], datetime]
    min_hold_seconds: int

    def terminate(self, account_id: str, rental_id: str) -> Rental:
        """End it at the provider, bill to the second, release the rest. Twice is harmless."""
        # Without an instance there is nothing to call: a placement still under way terminates
        # what it lands on.
        rental, call = self._begin(
            account_id, rental_id, Action.TERMINATE, self._end_as(RentalStatus.TERMINATED)
        )
        if not call:
            return rental
        provider, handle = rental.provider or "", rental.handle or ""
        try:
            self.adapters[provider].terminate(handle)
        except ProviderRefused as exc:
            if exc.reason != "not_found":
                self._abandon(rental)
                if exc.reason == "conflict":
                    raise Conflict(
                        f"{provider} cannot terminate this instance yet ({exc.message}); "
                        "it is still starting: retry in a moment"
                    ) from None
                raise provider_failed(provider, exc) from None
        except ProviderError as exc:
            self._abandon(rental)
            raise provider_failed(provider, exc) from None
        return self._finish(rental, self._end_as(RentalStatus.TERMINATED))

    def stop(self, account_id: str, rental_id: str) -> Rental:
        def no_instance(_: Session, rental: Rental) -> None:
            raise Conflict(f"rental {rental.id} has no instance to stop yet")

        rental, call = self._begin(account_id, rental_id, Action.STOP, no_instance)
        if not call:
            return rental
        provider = rental.provider or ""
        try:
            self.adapters[provider].stop(rental.handle or "")
        except ProviderError as exc:
            self._abandon(rental)
            if isinstance(exc, NotSupported):
                raise Conflict(f"{provider} cannot stop this rental: {exc.message}") from None
            raise provider_failed(provider, exc) from None
        return self._finish(rental, self._end_as(RentalStatus.STOPPED))

    def start(self, account_id: str, rental_id: str) -> Rental:
        """Resume a stopped rental: a new hold first (refused if the credit does not cover it), then
        the provider."""
        now = self.clock()

        def begin(session: Session) -> Rental:
            rental, _ = lock_for(session, rental_id, account_id, Action.START)  # never a replay
            if rental.handle is None or rental.provider is None:
                raise Conflict(f"rental {rental_id} has no instance to start")
            amount = hold_for(rental.price_per_hour, self.min_hold_seconds)
            rental.hold_id = ledger.place_hold(session, account_id, amount, ref=rental.id).id
            budget.check_hold(session, account_id, amount, now)
            rental.status = advance(rental.status, Event.START)
            rental.reason = None
            begin_action(rental, Action.START, now)
            session.add(rental)
            return rental

        rental = self.db.transact(begin)
        provider = rental.provider or ""
        try:
            instance = self.adapters[provider].start(rental.handle or "")
        except ProviderError as exc:
            self._finish(rental, undo_start)
            if isinstance(exc, NotSupported):
                raise Conflict(f"{provider} cannot start this rental: {exc.message}") from None
            if isinstance(exc, ProviderRefused) and exc.reason == "no_capacity":
                raise NoCapacity(
                    f"{provider} has no capacity to start this rental now "
                    f"({exc.message}); it stays stopped and nothing was charged",
                ) from None
            raise provider_failed(provider, exc) from None

        def started(_: Session, locked: Rental) -> None:
            if instance.status is InstanceStatus.RUNNING:
                start_billing(locked, self.clock())

        return self._finish(rental, started)

    def _begin(
        self,
        account_id: str,
        rental_id: str,
        action: Action,
        no_instance: Callable[[Session, Rental], None],
    ) -> tuple[Rental, bool]:
        """Lock the rental and mark `action` in flight; the rental, and whether the provider is
        to be called (not for a replay, nor after `no_instance` dealt with a rental that has no
        instance yet)."""
        now = self.clock()

        def begin(session: Session) -> tuple[Rental, bool]:
            rental, replay = lock_for(session, rental_id, account_id, action)
            if replay:
                return rental, False
            if rental.handle is None or rental.provider is None:
                no_instance(session, rental)
            else:
                begin_action(rental, action, now)
            session.add(rental)
            return rental, rental.action is not None

        return self.db.transact(begin)

    def _end_as(self, status: RentalStatus) -> Callable[[Session, Rental], None]:
        """Close a locked rental as `status`, by the user's action, now."""
        reason = f"{status.value} by the user"
        return lambda session, locked: close(session, locked, status, self.clock(), reason)

    def _finish(self, marked: Rental, apply: Callable[[Session, Rental], None]) -> Rental:
        """Record an action's outcome with `apply`, if the action is still the one in flight
        (the status job may have finished it already, after a long provider call)."""

        def work(session: Session) -> Rental:
            locked = lock_rental(session, marked.id)
            if (locked.action, locked.action_at) == (marked.action, marked.action_at):
                apply(session, locked)
                finish_action(locked)
                session.add(locked)
            return locked

        return self.db.transact(work)

    def _abandon(self, marked: Rental) -> None:
        """The provider refused: nothing changed there, so only the in-flight mark goes."""
        self._finish(marked, lambda _session, _locked: None)


def provider_failed(provider: str, exc: ProviderError) -> ProviderFailed:
    """A provider's failure as the caller sees it; nothing changed on the broker's side."""
    return ProviderFailed(f"{provider} failed: {exc.message}; nothing was changed, retry")
