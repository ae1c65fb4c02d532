"""Failover: try the ranked candidates until one provider starts the instance.

Each failure blocks what it rules out (the offer, the provider's region, the provider) and is
recorded as an attempt, so the response can say exactly what was tried and why it failed.
Transient faults have already been retried inside the adapter (tenacity) before they count.
A pricier fallback first grows the credit hold; if the account cannot cover it, that candidate
is skipped without blaming its provider.

Every provision call is written down before it is made (a `placements` row: rental, provider,
offer, time) and closed when the provider answers, with the handle it gave or the refusal. A
broker that dies in between leaves an open row that names exactly where an orphan may be
running; reconciliation reports it, and ends the instance where the provider shows it. The
credentials a provider returns only in its answer (`Instance.upstream`) are sealed onto the
rental in the same transaction that closes the row, so they survive any crash after it.

Renting and recovering an interrupted spot rental both place a rental this one way
(`place_rental`): fail over through the candidates, then, under the rental's lock, record where it
landed (provider, offer, handle, shape, price, SSH details; billing starts if it already runs) or
what it becomes when nothing would start it. A rental that ended meanwhile keeps its end, and the
instance that landed for it is terminated.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session, col

from broker import credentials, ledger
from broker.db import Database
from broker.rentals.accounting import close, start_billing
from broker.rentals.billing import hold_for
from broker.rentals.lifecycle import RentalStatus
from broker.rentals.locking import lock_rental
from broker.rentals.ranking import Blocklist
from broker.rentals.tables import Placement as PlacementRow
from broker.rentals.tables import Rental
from broker.webhooks.outbox import announce
from pricing.dbtypes import utcnow
from pricing.offer import Offer
from providers.base import ProviderError
from providers.rental import Instance, InstanceStatus, RentalProvider, Workload, scope_of

log = logging.getLogger("gpubroker.rentals")


@dataclass
class Placement:
    """Where a rental landed (offer and instance), or None, and every attempt on the way."""

    offer: Offer | None = None
    instance: Instance | None = None
    attempts: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Unplaced:
    """What a rental becomes when no candidate would start it, and the reason it records."""

    status: RentalStatus
    reason: str


def place_rental(
    db: Database,
    adapters: Mapping[str, RentalProvider],
    clock: Callable[[], datetime],
    *,
    rental_id: str,
    hold_id: str,
    candidates: Sequence[Offer],
    workload: Workload,
    hold_seconds: int,
    max_attempts: int,
    unplaced: Unplaced,
    landed_reason: Callable[[Offer], str] | None = None,
) -> Rental:
    """Place a provisioning rental whose hold covers `candidates[0]`, and record the outcome."""
    placement = place(
        db,
        adapters,
        rental_id=rental_id,
        hold_id=hold_id,
        held_for_price=candidates[0].price_per_hour,
        hold_seconds=hold_seconds,
        candidates=candidates,
        workload=workload,
        max_attempts=max_attempts,
    )
    offer, instance = placement.offer, placement.instance

    def record(session: Session) -> Rental:
        rental = lock_rental(session, rental_id)
        rental.attempts = [*rental.attempts, *placement.attempts]
        if rental.status != RentalStatus.PROVISIONING or rental.handle is not None:
            log.info("rental %s ended while it was being placed", rental_id)
        elif offer is None or instance is None:
            close(session, rental, unplaced.status, clock(), unplaced.reason)
        else:
            land(rental, offer, instance, clock())
            if landed_reason is not None:
                rental.reason = landed_reason(offer)
        session.add(rental)
        return rental

    rental = db.transact(record)
    if offer is not None and instance is not None and rental.handle != instance.handle:
        adapters[offer.provider].terminate(instance.handle)
    return rental


def land(rental: Rental, offer: Offer, instance: Instance, now: datetime) -> None:
    """Record that the rental runs (or starts) as `instance` of `offer`.

    The placement is billed at its own price from zero seconds: what an earlier placement of the
    same rental ran and was charged moves to `earlier_*` (nothing, for a new rental).
    """
    rental.provider, rental.offer_id, rental.handle = offer.provider, offer.id, instance.handle
    rental.region, rental.tier, rental.gpu = offer.region, offer.tier.value, offer.gpu
    rental.gpu_count, rental.price_per_hour = offer.gpu_count, offer.price_per_hour
    rental.ssh, rental.ended_at = ssh_json(instance), None
    rental.earlier_seconds += rental.billed_seconds
    rental.earlier_charged += rental.charged
    rental.billed_seconds, rental.charged = 0, 0
    if rental.interruptions:  # placed again after a spot interruption
        announce(rental, "rental.recovered")
    if instance.status is InstanceStatus.RUNNING:
        start_billing(rental, now)


def ssh_json(instance: Instance) -> dict[str, object] | None:
    """An instance's SSH details as the rental stores them, or None where it has none."""
    if instance.ssh is None:
        return None
    ssh = instance.ssh
    return {"host": ssh.host, "port": ssh.port, "user": ssh.user, "command": ssh.command}


def place(
    db: Database,
    adapters: Mapping[str, RentalProvider],
    *,
    rental_id: str,
    hold_id: str,
    held_for_price: int,
    hold_seconds: int,
    candidates: Sequence[Offer],
    workload: Workload,
    max_attempts: int,
) -> Placement:
    """Provision through the first candidate that accepts; never raises a provider's error."""
    placement = Placement()
    blocked = Blocklist()
    for offer in candidates:
        if len(placement.attempts) >= max_attempts:
            break
        if blocked.blocks(offer):
            continue
        if offer.price_per_hour > held_for_price:
            extra = hold_for(offer.price_per_hour - held_for_price, hold_seconds)
            try:
                with db.session() as session:
                    ledger.extend_hold(session, hold_id, extra)
            except ledger.InsufficientCredit as short:
                placement.attempts.append(_attempt(offer, "insufficient_credit", short.message))
                continue
            held_for_price = offer.price_per_hour
        record = _record_attempt(db, rental_id, offer)
        try:
            placement.instance = adapters[offer.provider].provision(offer, workload, rental_id)
        except ProviderError as exc:
            _close_attempt(db, record, "refused")
            scope = scope_of(exc)
            blocked.block(offer, scope)
            reason = getattr(exc, "reason", "provider_error")
            placement.attempts.append(_attempt(offer, reason, exc.message, scope.value))
            log.info("rental %s: %s refused %s (%s)", rental_id, offer.provider, offer.id, reason)
            continue
        _close_attempt(db, record, "placed", rental_id=rental_id, instance=placement.instance)
        placement.offer = offer
        return placement
    return placement


def _record_attempt(db: Database, rental_id: str, offer: Offer) -> int:
    """Write the attempt down, committed, before the provider hears of it."""
    with db.session() as session:
        row = PlacementRow(rental_id=rental_id, provider=offer.provider, offer_id=offer.id)
        session.add(row)
        session.flush()
        assert row.id is not None
        return row.id


def _close_attempt(
    db: Database,
    record: int,
    outcome: str,
    *,
    rental_id: str | None = None,
    instance: Instance | None = None,
) -> None:
    """The provider's answer: the outcome and handle, and on success the rental's once-only
    credentials (sealed; or cleared, so an earlier placement's never reach this one)."""
    with db.session() as session:
        session.exec(
            update(PlacementRow)
            .where(col(PlacementRow.id) == record)
            .values(
                outcome=outcome,
                handle=instance.handle if instance is not None else None,
                finished_at=utcnow(),
            )
        )
        if rental_id is not None and instance is not None:
            credentials.store(session, credentials.sealer_of(db), rental_id, instance.upstream)


def _attempt(offer: Offer, error: str, message: str, blocked: str | None = None) -> dict[str, str]:
    attempt = {"provider": offer.provider, "offer_id": offer.id, "error": error, "message": message}
    if blocked:
        attempt["blocked"] = blocked
    return attempt
