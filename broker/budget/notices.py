"""The owner's notices about money: `budget.alert`, `budget.exceeded`, `wallet.low_balance`.

After each metering tick, in the tick's own transaction, the accounts it charged that have a
budget row are looked at: each alert fraction of the monthly limit crossed this month, the limit
reached, and available credit under `low_balance` is announced once (the low-balance notice is
armed again once credit is back above it; the others once a new month begins). The events go
through the webhooks outbox, so they commit with the charges that caused them.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from decimal import Decimal

from sqlmodel import Session, col, select

from broker import ledger
from broker.budget.service import state_of
from broker.budget.tables import Budget
from broker.webhooks.outbox import emit
from pricing.money import format_usd

EXCEEDED, LOW_BALANCE = "exceeded", "low_balance"


def after_charges(session: Session, account_ids: Collection[str], now: datetime) -> None:
    """Send the notices that the accounts' spend and credit now call for (once each)."""
    if not account_ids:
        return
    budgets = session.exec(
        select(Budget).where(col(Budget.account_id).in_(sorted(account_ids)))
    ).all()
    for budget in budgets:
        _notify(session, budget, now)


def _notify(session: Session, budget: Budget, now: datetime) -> None:
    state = state_of(session, budget.account_id, now)
    period = state.period.name
    sent = set(budget.notified) if budget.notified_period == period else set()
    before = set(sent)
    body = state.json()
    limit = budget.monthly_limit
    if limit is not None:
        for fraction in state.alert_at:
            if str(fraction) not in sent and state.spent >= Decimal(limit) * fraction:
                sent.add(str(fraction))
                emit(session, budget.account_id, "budget.alert", {**body, "alert": str(fraction)})
        if EXCEEDED not in sent and state.spent >= limit:
            sent.add(EXCEEDED)
            emit(session, budget.account_id, "budget.exceeded", body)
    if budget.low_balance is not None:
        balances = ledger.balances(session, budget.account_id)
        if balances.available >= budget.low_balance:
            sent.discard(LOW_BALANCE)
        elif LOW_BALANCE not in sent:
            sent.add(LOW_BALANCE)
            wallet = {
                "object": "wallet",
                "balance": format_usd(balances.balance),
                "held": format_usd(balances.held),
                "available": format_usd(balances.available),
                "low_balance": format_usd(budget.low_balance),
            }
            emit(session, budget.account_id, "wallet.low_balance", wallet)
    if sent != before or budget.notified_period != period:
        budget.notified_period, budget.notified = period, sorted(sent)
        session.add(budget)
