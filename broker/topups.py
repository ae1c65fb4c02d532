"""Stripe top-ups: a PaymentIntent per top-up, credit only from the signed webhook.

Creating a top-up never credits anything: it records a pending `topups` row, then asks Stripe for
a PaymentIntent with the top-up id as Stripe's idempotency key, so a retried request (ours or the
library's) can never produce a second PaymentIntent. Credit arrives only with
`payment_intent.succeeded`, verified against `GPUBROKER_STRIPE_WEBHOOK_SECRET`, and is applied
in one transaction that records the event, flips the locked top-up row from `pending` to
`succeeded` and appends the `topup` entry whose unique `dedupe_key` is the PaymentIntent id. A
duplicate or concurrent delivery finds the event recorded or the row already `succeeded` and
moves nothing; if it somehow got past both, the unique key would abort its transaction. The
account row is locked before the top-up row, the order every money path takes, and the
transaction is retried if a concurrent one still deadlocks it (`Database.transact`).

The Stripe client is built per call from settings (no module-level `stripe.api_key`), so tests
and replicas with different settings never see each other's configuration.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import stripe
from pydantic import SecretStr
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select, update

from broker import ledger
from broker.db import Database
from broker.domain_errors import Conflict, Malformed, NotConfigured, ProviderFailed
from broker.ledger_tables import StripeEvent, Topup
from pricing.dbtypes import utcnow
from pricing.money import format_usd

if TYPE_CHECKING:
    from broker.settings import CoreSettings

log = logging.getLogger("gpubroker.topups")

MICROS_PER_CENT = 10_000
SUCCEEDED = "payment_intent.succeeded"
Outcome = Literal["credited", "duplicate", "ignored", "already_credited", "unknown_topup"]


@dataclass(frozen=True)
class CreatedTopup:
    topup: Topup
    client_secret: str


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value else None


def stripe_client(settings: CoreSettings) -> stripe.StripeClient:
    api_key = _secret(settings.stripe_api_key)
    if not api_key:
        raise NotConfigured("top-ups are disabled: set GPUBROKER_STRIPE_API_KEY")
    base = settings.stripe_api_base
    # Network retries are safe: every create carries our idempotency key.
    return stripe.StripeClient(
        api_key, base_addresses={"api": base} if base else None, max_network_retries=2
    )


def _find_by_key(session: Session, account_id: str, idempotency_key: str) -> Topup | None:
    statement = select(Topup).where(
        Topup.account_id == account_id, Topup.idempotency_key == idempotency_key
    )
    return session.exec(statement).first()


def _record_topup(db: Database, account_id: str, amount: int, idempotency_key: str | None) -> Topup:
    """The pending row for this request: a new one, or the one a retry with the same key made."""
    try:
        with db.session() as session:
            if idempotency_key and (found := _find_by_key(session, account_id, idempotency_key)):
                return found
            topup = Topup(account_id=account_id, amount=amount, idempotency_key=idempotency_key)
            session.add(topup)
        return topup
    except IntegrityError:
        if not idempotency_key:
            raise
    # A concurrent request with the same key inserted first; its row is the answer.
    with db.session(read_only=True) as session:
        found = _find_by_key(session, account_id, idempotency_key)
    if found is None:
        raise RuntimeError("top-up vanished after a unique-key conflict")
    return found


def create_topup(
    db: Database,
    settings: CoreSettings,
    account_id: str,
    amount: int,
    idempotency_key: str | None = None,
) -> CreatedTopup:
    """Record a pending top-up of `amount` micro-dollars and its Stripe PaymentIntent."""
    client = stripe_client(settings)
    topup = _record_topup(db, account_id, amount, idempotency_key)
    if topup.amount != amount:
        raise Conflict(
            f"Idempotency-Key {idempotency_key!r} was already used for a top-up of "
            f"{format_usd(topup.amount)} USD; use a new key for a different amount"
        )
    try:
        if topup.payment_intent_id:
            intent = client.v1.payment_intents.retrieve(topup.payment_intent_id)
        else:
            intent = client.v1.payment_intents.create(
                params={
                    "amount": amount // MICROS_PER_CENT,
                    "currency": "usd",
                    "description": "gpubroker credit top-up",
                    "metadata": {"account_id": account_id, "topup_id": topup.id},
                    "automatic_payment_methods": {"enabled": True},
                },
                options={"idempotency_key": topup.id},
            )
    except stripe.StripeError as exc:
        log.warning("stripe refused top-up %s: %s", topup.id, type(exc).__name__)
        raise ProviderFailed(
            "the payment provider did not accept the top-up; retry later"
        ) from exc
    if topup.payment_intent_id is None:
        with db.session() as session:
            session.exec(
                update(Topup)
                .where(col(Topup.id) == topup.id, col(Topup.payment_intent_id).is_(None))
                .values(payment_intent_id=intent.id)
            )
        topup.payment_intent_id = intent.id
    return CreatedTopup(topup=topup, client_secret=intent.client_secret or "")


def verify_event(settings: CoreSettings, payload: bytes, signature: str | None) -> stripe.Event:
    """The event, if `Stripe-Signature` proves Stripe sent this exact payload recently."""
    secret = _secret(settings.stripe_webhook_secret)
    if not secret:
        raise NotConfigured("webhooks are disabled: set GPUBROKER_STRIPE_WEBHOOK_SECRET")
    try:
        event: stripe.Event = stripe.Webhook.construct_event(payload, signature, secret)
        return event
    except stripe.SignatureVerificationError as exc:
        log.warning("stripe webhook refused: signature does not verify")
        raise Malformed(
            "the Stripe-Signature header does not verify against this payload",
            param="Stripe-Signature",
        ) from exc
    except ValueError as exc:
        raise Malformed("the webhook payload is not a Stripe event") from exc


def _record_event(session: Session, event_id: str, event_type: str, intent_id: str | None) -> bool:
    """Insert the event once; False if it was already there (or a concurrent delivery has it)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(StripeEvent)
        .values(id=event_id, type=event_type, payment_intent_id=intent_id, received_at=utcnow())
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(col(StripeEvent.id))
    )
    return session.exec(statement).first() is not None


@dataclass(frozen=True)
class Payment:
    """What a succeeded PaymentIntent says it paid, read from our own metadata on it."""

    intent_id: str
    topup_id: str
    account_id: str
    amount: int  # micro-dollars


def _payment(intent: dict[str, Any]) -> Payment | None:
    metadata = intent.get("metadata") or {}
    intent_id, topup_id = intent.get("id"), metadata.get("topup_id")
    account_id, received = metadata.get("account_id"), intent.get("amount_received")
    if not (intent_id and topup_id and account_id) or intent.get("currency") != "usd":
        return None
    if not isinstance(received, int) or received <= 0:
        return None
    return Payment(intent_id, topup_id, account_id, received * MICROS_PER_CENT)


def apply_event(db: Database, event: stripe.Event) -> Outcome:
    """Credit a succeeded PaymentIntent exactly once; every other event changes nothing."""
    if event.type != SUCCEEDED:
        return "ignored"
    intent = event.data.object.to_dict()
    payment = _payment(intent)

    def work(session: Session) -> tuple[Outcome, Topup | None]:
        if not _record_event(session, event.id, event.type, intent.get("id")):
            return "duplicate", None
        topup = _lock_topup(session, payment.topup_id) if payment is not None else None
        if (
            payment is None
            or topup is None
            or topup.account_id != payment.account_id
            or topup.payment_intent_id not in (None, payment.intent_id)
        ):
            log.warning("stripe event %s pays no top-up of ours; nothing credited", event.id)
            return "unknown_topup", None
        if topup.status != "pending":
            return "already_credited", None
        if payment.amount != topup.amount:
            log.warning(
                "top-up %s: %s USD received for %s USD asked",
                topup.id,
                format_usd(payment.amount),
                format_usd(topup.amount),
            )
        ledger.credit_topup(
            session,
            topup.account_id,
            payment.amount,
            payment_intent_id=payment.intent_id,
            topup_id=topup.id,
        )
        topup.status = "succeeded"
        topup.payment_intent_id = payment.intent_id
        topup.credited = payment.amount
        topup.succeeded_at = utcnow()
        session.add(topup)
        return "credited", topup

    outcome, credited = db.transact(work)
    if credited is not None:
        log.info("top-up %s credited %s USD", credited.id, format_usd(credited.credited or 0))
    return outcome


def _lock_topup(session: Session, topup_id: str) -> Topup | None:
    """The top-up row, locked after its account's row (the order every money path takes)."""
    owner = session.exec(select(Topup.account_id).where(Topup.id == topup_id)).first()
    if owner is None:
        return None
    ledger.lock_account(session, owner)
    statement = select(Topup).where(Topup.id == topup_id).with_for_update()
    return session.exec(statement.execution_options(populate_existing=True)).first()
