"""The rental lifecycle as users drive it: rent (rank, hold, fail over), stop, start, terminate.

No database transaction spans a provider call. Renting commits the rental and its credit hold
first, then tries the ranked candidates one by one, then commits where it landed (or releases
the hold). A crash between a provider accepting and that last commit leaves a rental without a
handle and an instance nobody knows; the reconciliation job ends the first and terminates the
second, so neither money nor instances leak.

Concurrency. Every transaction that changes a rental takes its row locks in one order: the account,
then the hold, then the rental (`broker.rentals.locking`); a new rental row is inserted only after
its account is locked by the hold. Transactions run through `Database.transact`, which retries the
ones a deadlock or serialization failure rolled back. Stop, start and terminate decide under the
rental's lock with the lifecycle's pure rules (`broker.rentals.lifecycle`) and mark themselves in
flight before the provider call, so a second action arriving meanwhile is refused as a conflict (or
is a replay of a stop or terminate already done), never a second hold or provider call.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from broker import ledger
from broker.accounts import hash_key
from broker.budget import service as budget
from broker.domain_errors import Conflict, DomainError, Invalid, NoCapacity, NotFound
from broker.ledger_tables import new_id
from broker.rentals.actions import RentalActions
from broker.rentals.billing import hold_for
from broker.rentals.context import RentalContext
from broker.rentals.lifecycle import RentalStatus
from broker.rentals.limits import idle_unsupported
from broker.rentals.placement import Unplaced, place_rental
from broker.rentals.ranking import Constraints, check_expected_price, offered_counts, rank
from broker.rentals.request import RentRequest, request_hash
from broker.rentals.tables import Rental
from pricing.offer import Offer
from providers.rental import (
    UnsupportedWorkload,
    Workload,
)

log = logging.getLogger("gpubroker.rentals")


@dataclass(frozen=True)
class Created:
    rental: Rental
    rental_key: str | None  # shown once, when the rental was created by this call
    replayed: bool


@dataclass
class RentalService(RentalContext, RentalActions):
    """Rents: ranks the catalog, holds credit, places the rental and records it."""

    # -- renting ---------------------------------------------------------------------------

    def rent(self, account_id: str, request: RentRequest, idempotency_key: str | None) -> Created:
        """Rent the best candidate that starts; refused (credit, request, capacity) before any
        money moves."""
        digest = request_hash(request.body)
        if idempotency_key:
            replay = self._replay(account_id, idempotency_key, digest)
            if replay is not None:
                return replay
        candidates = self.candidates(request)
        if request.limits.idle_timeout_seconds is not None:
            candidates = self._idle_honoured(candidates, request.workload)
        rental_key = "rk_" + secrets.token_urlsafe(24)
        rental_id = new_id("rnt")
        amount = self._hold_amount(candidates[0])

        def record(session: Session) -> Rental:
            # The account is locked (by the hold) before the rental row that refers to it is
            # inserted: the other way round, the insert's key-share lock on the account would
            # deadlock with a concurrent rent's FOR UPDATE.
            hold = ledger.place_hold(session, account_id, amount, ref=rental_id)
            budget.check_hold(session, account_id, amount, self.clock())
            rental = Rental(
                id=rental_id,
                account_id=account_id,
                idempotency_key=idempotency_key,
                request_hash=digest,
                request=request.body,
                recover=request.recover,
                rental_key_hash=hash_key(rental_key),
                hold_id=hold.id,
                **vars(request.limits),
            )
            session.add(rental)
            session.flush()
            return rental

        try:
            rental = self.db.transact(record)
        except IntegrityError:
            replay = self._replay(account_id, idempotency_key or "", digest)
            if replay is None:
                raise
            return replay
        return Created(
            place_rental(
                self.db,
                self.adapters,
                self.clock,
                rental_id=rental.id,
                hold_id=rental.hold_id or "",
                candidates=candidates,
                workload=request.workload,
                hold_seconds=self.min_hold_seconds,
                max_attempts=self.max_attempts,
                unplaced=Unplaced(RentalStatus.FAILED, "no provider could start it"),
            ),
            rental_key,
            replayed=False,
        )

    def candidates(self, request: RentRequest) -> list[Offer]:
        """The offers this request may land on, best first, each able to run the workload."""
        if request.offer_id is not None:
            offer = self.catalog.index.get(request.offer_id)
            if offer is None:
                raise NotFound(f"no offer {request.offer_id}; search the offers again")
            if not offer.available:
                raise Conflict(f"offer {offer.id} is not available at {offer.provider} now")
            if offer.provider in self.catalog.stale_providers():
                raise Conflict(
                    f"offer {offer.id} is stale: {offer.provider} could not be refreshed; "
                    "pick a fresh offer or retry shortly"
                )
            if request.max_price is not None and offer.price_per_gpu_hour > request.max_price:
                raise Conflict(f"offer {offer.id} costs more than max_price per GPU-hour")
            if request.expected_price is not None:
                check_expected_price(offer, request.expected_price)
            self._check_workload(offer, request.workload)
            return [offer]
        constraints = request.constraints or Constraints()
        ranked = [o for o in rank(self.catalog.index, constraints) if o.provider in self.adapters]
        if not ranked:
            counts = offered_counts(self.catalog.index, constraints)
            if counts:
                raise Invalid(
                    f"no offer matching {describe(constraints)} has {constraints.gpu_count} GPUs; "
                    f"they come with {', '.join(map(str, counts))}: ask for fewer",
                    param="gpu_count",
                )
            raise NoCapacity(
                f"no available offer matches {describe(constraints)}",
                attempts=[],
            )
        runnable: list[Offer] = []
        first_refusal: DomainError | None = None
        for offer in ranked:
            try:
                self._check_workload(offer, request.workload)
                runnable.append(offer)
            except Invalid as refusal:
                first_refusal = first_refusal or refusal
        if not runnable and first_refusal is not None:
            raise first_refusal
        return runnable

    def _idle_honoured(self, offers: list[Offer], workload: Workload) -> list[Offer]:
        """The offers where an idle timeout can be told (traffic, or GPU utilisation)."""
        honoured = [o for o in offers if not idle_unsupported(workload, self.adapters[o.provider])]
        if not honoured and offers:
            raise Invalid(
                "an idle timeout needs traffic through the connect proxy or a backend that "
                "reports GPU utilisation; this SSH-only workload has neither here",
                param="idle_timeout_seconds",
            )
        return honoured

    def _check_workload(self, offer: Offer, workload: Workload) -> None:
        try:
            self.adapters[offer.provider].check_workload(offer, workload)
        except UnsupportedWorkload as exc:
            raise Invalid(
                f"{offer.provider} cannot run this workload on {offer.id}: {exc.message}",
                param=exc.field,
            ) from None

    def _hold_amount(self, offer: Offer) -> int:
        return hold_for(offer.price_per_hour, self.min_hold_seconds)

    def _replay(self, account_id: str, key: str, digest: str) -> Created | None:
        with self.db.session(read_only=True) as session:
            existing = session.exec(
                select(Rental).where(Rental.account_id == account_id, Rental.idempotency_key == key)
            ).first()
        if existing is None:
            return None
        if existing.request_hash != digest:
            raise Conflict(
                "this Idempotency-Key was used with a different request body; use a new key",
                param="Idempotency-Key",
            )
        return Created(existing, None, replayed=True)

    # -- reading ---------------------------------------------------------------------------

    def get(self, account_id: str, rental_id: str) -> Rental:
        with self.db.session(read_only=True) as session:
            rental = session.get(Rental, rental_id)
        if rental is None or rental.account_id != account_id:
            raise NotFound(f"no rental {rental_id}")
        return rental

    def list(
        self, account_id: str, *, status: str | None, limit: int, before: datetime | None
    ) -> list[Rental]:
        statement = select(Rental).where(Rental.account_id == account_id)
        if status:
            statement = statement.where(Rental.status == status)
        if before is not None:
            statement = statement.where(col(Rental.created_at) < before)
        statement = statement.order_by(col(Rental.created_at).desc()).limit(limit)
        with self.db.session(read_only=True) as session:
            return list(session.exec(statement))


def describe(constraints: Constraints) -> str:
    """The constraints in words, for "nothing matches" messages."""
    parts = [
        f"gpu={'|'.join(constraints.gpus)}" if constraints.gpus else "any gpu",
        f"gpu_count={constraints.gpu_count}",
    ]
    if constraints.tier:
        parts.append(f"tier={constraints.tier.value}")
    if constraints.max_price is not None:
        parts.append(f"max_price={constraints.max_price / 1e6:g}")
    if constraints.region:
        parts.append(f"region~{constraints.region}")
    if constraints.max_interruption is not None:
        parts.append(f"max_interruption={constraints.max_interruption:g}")
    if constraints.providers:
        parts.append(f"providers={','.join(constraints.providers)}")
    return ", ".join(parts)
