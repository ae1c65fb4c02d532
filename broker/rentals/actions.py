"""Stop, start and terminate: a user's actions on a rental that already exists.

Every transaction that changes a rental takes its row locks in one order, the account, then the
hold, then the rental (`lock_rental`), and runs through `Database.transact`, which retries one
that a deadlock or serialization failure rolled back. Each action decides under the rental's lock
with the lifecycle's pure rules (`broker.rentals.lifecycle.decide`) and marks itself in flight
before its provider call, outside any transaction. A second action arriving meanwhile is a 409,
or a replay when what it asks for is already done (a stop of a stopped rental, a terminate of
an ended one): never a second hold, never a second provider call. The outcome is recorded only
while the mark is still the action's own; a mark left by a broker that died is finished by the
status job (`broker.rentals.sync`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime

from sqlmodel import Session, select

from broker import ledger
from broker.db import Contention, Database
from broker.errors import APIError, conflict, not_found
from broker.rentals.accounting import (
    begin_action,
    close,
    finish_action,
    release_hold,
    start_billing,
)
from broker.rentals.billing import hold_for
from broker.rentals.lifecycle import Action, Decision, Event, RentalStatus, advance, decide
from broker.rentals.tables import Rental
from providers.base import ProviderError, ProviderRefused
from providers.rental import InstanceStatus, NotSupported, RentalProvider

log = logging.getLogger("gpubroker.rentals")


def lock_rental(session: Session, rental_id: str, account_id: str | None = None) -> Rental:
    """The rental row, locked for this transaction; 404 for another account's rental.

    Takes the broker's one lock order: the rental's account, then its current hold, then the
    rental. Every hold change of a rental happens under its account's lock, so once that lock is
    held the hold read here is the one the locked rental names; the check after locking says so.
    """
    owner = session.exec(select(Rental.account_id).where(Rental.id == rental_id)).first()
    if owner is None or (account_id is not None and owner != account_id):
        raise not_found(f"no rental {rental_id}")
    ledger.lock_account(session, owner)
    for _ in range(2):
        hold_id = session.exec(select(Rental.hold_id).where(Rental.id == rental_id)).one()
        if hold_id is not None:
            ledger.lock_hold(session, hold_id)
        statement = select(Rental).where(Rental.id == rental_id).with_for_update()
        rental = session.exec(statement.execution_options(populate_existing=True)).one()
        if rental.hold_id == hold_id:
            return rental
        log.warning("rental %s changed its hold without its account's lock", rental_id)
    raise Contention(2)


def refuse(decision: Decision, rental_id: str) -> None:
    """Raise the 409 of a decision that neither proceeds nor replays."""
    if not (decision.proceed or decision.replay):
        raise conflict(f"rental {rental_id}: {decision.reason}")


class RentalActions:
    """The actions of `RentalService` on existing rentals (it provides these attributes)."""

    db: Database
    adapters: Mapping[str, RentalProvider]
    clock: Callable[[], datetime]
    min_hold_seconds: int

    def terminate(self, account_id: str, rental_id: str) -> Rental:
        """End it at the provider, bill to the second, release the rest. Twice is harmless."""
        now = self.clock()

        def begin(session: Session) -> tuple[Rental, bool]:
            rental = lock_rental(session, rental_id, account_id)
            decision = decide(rental.status, rental.action, Action.TERMINATE)
            refuse(decision, rental_id)
            if decision.replay:
                return rental, False
            if rental.handle is None or rental.provider is None:
                # Nothing to call: a placement still under way terminates what it lands on.
                close(session, rental, RentalStatus.TERMINATED, now, "terminated by the user")
            else:
                begin_action(rental, Action.TERMINATE, now)
            session.add(rental)
            return rental, rental.action is not None

        rental, call = self.db.transact(begin)
        if not call:
            return rental
        provider, handle = rental.provider or "", rental.handle or ""
        try:
            self.adapters[provider].terminate(handle)
        except ProviderRefused as exc:
            if exc.reason != "not_found":
                self._abandon(rental)
                if exc.reason == "conflict":
                    raise conflict(
                        f"{provider} cannot terminate this instance yet ({exc.message}); "
                        "it is still starting: retry in a moment"
                    ) from None
                raise provider_error(provider, exc) from None
        except ProviderError as exc:
            self._abandon(rental)
            raise provider_error(provider, exc) from None
        return self._finish(
            rental,
            lambda session, locked: close(
                session, locked, RentalStatus.TERMINATED, self.clock(), "terminated by the user"
            ),
        )

    def stop(self, account_id: str, rental_id: str) -> Rental:
        now = self.clock()

        def begin(session: Session) -> tuple[Rental, bool]:
            rental = lock_rental(session, rental_id, account_id)
            decision = decide(rental.status, rental.action, Action.STOP)
            refuse(decision, rental_id)
            if decision.replay:
                return rental, False
            if rental.handle is None or rental.provider is None:
                raise conflict(f"rental {rental_id} has no instance to stop yet")
            begin_action(rental, Action.STOP, now)
            session.add(rental)
            return rental, True

        rental, call = self.db.transact(begin)
        if not call:
            return rental
        provider = rental.provider or ""
        try:
            self.adapters[provider].stop(rental.handle or "")
        except ProviderError as exc:
            self._abandon(rental)
            if isinstance(exc, NotSupported):
                raise conflict(f"{provider} cannot stop this rental: {exc.message}") from None
            raise provider_error(provider, exc) from None
        return self._finish(
            rental,
            lambda session, locked: close(
                session, locked, RentalStatus.STOPPED, self.clock(), "stopped by the user"
            ),
        )

    def start(self, account_id: str, rental_id: str) -> Rental:
        """Resume a stopped rental: a new hold first (402 if it does not fit), then the provider."""
        now = self.clock()

        def begin(session: Session) -> Rental:
            rental = lock_rental(session, rental_id, account_id)
            refuse(decide(rental.status, rental.action, Action.START), rental_id)
            if rental.handle is None or rental.provider is None:
                raise conflict(f"rental {rental_id} has no instance to start")
            amount = hold_for(rental.price_per_hour, self.min_hold_seconds)
            rental.hold_id = ledger.place_hold(session, account_id, amount, ref=rental.id).id
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
                raise conflict(f"{provider} cannot start this rental: {exc.message}") from None
            if isinstance(exc, ProviderRefused) and exc.reason == "no_capacity":
                raise APIError(
                    503,
                    "no_capacity",
                    f"{provider} has no capacity to start this rental now "
                    f"({exc.message}); it stays stopped and nothing was charged",
                ) from None
            raise provider_error(provider, exc) from None

        def started(_: Session, locked: Rental) -> None:
            if instance.status is InstanceStatus.RUNNING:
                start_billing(locked, self.clock())

        return self._finish(rental, started)

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


def undo_start(session: Session, rental: Rental) -> None:
    """A start the provider did not carry out: its hold is given back and it is stopped."""
    release_hold(session, rental)
    rental.status = advance(rental.status, Event.START_FAILED)


def provider_error(provider: str, exc: ProviderError) -> APIError:
    """A provider's failure as the 502 the caller sees; nothing changed on the broker's side."""
    return APIError(
        502, "provider_error", f"{provider} failed: {exc.message}; nothing was changed, retry"
    )
