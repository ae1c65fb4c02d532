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
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import update
from sqlmodel import col

from broker import credentials, ledger
from broker.db import Database
from broker.dbtypes import utcnow
from broker.rentals.billing import hold_for
from broker.rentals.ranking import Blocklist
from broker.rentals.tables import Placement as PlacementRow
from pricing.offer import Offer
from providers.base import ProviderError
from providers.rental import Instance, RentalProvider, Workload, scope_of

log = logging.getLogger("gpubroker.rentals")


@dataclass
class Placement:
    """Where a rental landed (offer and instance), or None, and every attempt on the way."""

    offer: Offer | None = None
    instance: Instance | None = None
    attempts: list[dict[str, str]] = field(default_factory=list)


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
