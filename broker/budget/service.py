"""Monthly budgets: how much an account may spend in a calendar month (UTC), and the refusals.

The month's spend is the sum of the account's charges since the month began (ledger entries of
kind `charge`), so it counts every way a rental is billed (the meter, a stop, a terminate) and a
new month starts clean without any reset. A rent is refused when its hold would take what was
spent plus what is held past the limit (`check_hold`, run in the rent's own transaction after
its hold locked the account, so concurrent rents on one account are judged one after another);
the meter caps what it charges at what the month has left (`left_this_month`) and stops the
account's running rentals once nothing is left, as it does at zero credit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import cast

from sqlalchemy import func
from sqlmodel import Session, col, select

from broker import ledger
from broker.budget.tables import Budget
from broker.domain_errors import DomainError
from broker.ledger_tables import LedgerEntry
from pricing.money import format_usd

DEFAULT_ALERTS = (Decimal("0.5"), Decimal("0.9"))


class BudgetExceeded(DomainError):
    """A rent whose hold would take the month's spend plus what is held past the budget."""


@dataclass(frozen=True)
class Period:
    """One calendar month in UTC: [start, end)."""

    start: datetime
    end: datetime

    @property
    def name(self) -> str:
        return self.start.strftime("%Y-%m")


def month_of(moment: datetime) -> Period:
    at = moment.astimezone(UTC)
    start = datetime(at.year, at.month, 1, tzinfo=UTC)
    end = datetime(at.year + at.month // 12, at.month % 12 + 1, 1, tzinfo=UTC)
    return Period(start, end)


@dataclass(frozen=True)
class BudgetState:
    """An account's budget as of one moment: the settings, and the month's spend and holds."""

    monthly_limit: int | None
    alert_at: tuple[Decimal, ...]
    low_balance: int | None
    spent: int
    held: int
    period: Period

    @property
    def left(self) -> int | None:
        """What the month may still be charged (None: no limit)."""
        return None if self.monthly_limit is None else max(0, self.monthly_limit - self.spent)

    def json(self) -> dict[str, object]:
        return {
            "object": "budget",
            "monthly_limit": _usd(self.monthly_limit),
            "spent": format_usd(self.spent),
            "held": format_usd(self.held),
            "period_start": self.period.start,
            "period_end": self.period.end,
            "alert_at": [str(fraction) for fraction in self.alert_at],
            "low_balance": _usd(self.low_balance),
        }


def _usd(micros: int | None) -> str | None:
    return None if micros is None else format_usd(micros)


def spent_since(session: Session, account_id: str, start: datetime) -> int:
    """What the account was charged from `start` on, in micro-dollars."""
    total = session.exec(
        select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
            LedgerEntry.account_id == account_id,
            LedgerEntry.kind == "charge",
            col(LedgerEntry.created_at) >= start,
        )
    ).one()
    return int(total)


def state_of(session: Session, account_id: str, now: datetime) -> BudgetState:
    budget = session.get(Budget, account_id)
    period = month_of(now)
    return BudgetState(
        monthly_limit=budget.monthly_limit if budget else None,
        alert_at=tuple(Decimal(a) for a in budget.alert_at) if budget else DEFAULT_ALERTS,
        low_balance=budget.low_balance if budget else None,
        spent=spent_since(session, account_id, period.start),
        held=ledger.balances(session, account_id).held,
        period=period,
    )


def set_budget(
    session: Session,
    account_id: str,
    now: datetime,
    *,
    changes: Mapping[str, object],
) -> BudgetState:
    """Change the settings named in `changes` (`monthly_limit`, `alert_at`, `low_balance`; the
    others keep their value); notices already sent this month stay sent."""
    budget = session.get(Budget, account_id) or Budget(
        account_id=account_id, alert_at=[str(fraction) for fraction in DEFAULT_ALERTS]
    )
    if "monthly_limit" in changes:
        budget.monthly_limit = cast(int | None, changes["monthly_limit"])
    if "alert_at" in changes:
        fractions = cast(list[Decimal], changes["alert_at"])
        budget.alert_at = [str(fraction) for fraction in sorted(set(fractions))]
    if "low_balance" in changes:
        budget.low_balance = cast(int | None, changes["low_balance"])
    budget.updated_at = now
    session.add(budget)
    session.flush()
    return state_of(session, account_id, now)


def check_hold(session: Session, account_id: str, amount: int, now: datetime) -> None:
    """Refuse a hold of `amount` that the month's budget cannot take.

    Call it after the hold is placed, inside the same transaction (the account is locked and
    `held` already includes `amount`); raising rolls the hold back.
    """
    budget = session.get(Budget, account_id)
    if budget is None or budget.monthly_limit is None:
        return
    state = state_of(session, account_id, now)
    limit = budget.monthly_limit
    if state.spent + state.held > limit:
        room = max(0, limit - state.spent - (state.held - amount))
        raise BudgetExceeded(
            f"this rental's hold of {format_usd(amount)} USD would pass the monthly budget of "
            f"{format_usd(limit)} USD: {format_usd(room)} USD is left this month "
            f"({format_usd(state.spent)} spent, {format_usd(state.held - amount)} held); "
            "raise the budget or end other rentals",
            left=format_usd(room),
        )


def left_this_month(session: Session, account_ids: list[str], now: datetime) -> dict[str, int]:
    """What each account with a monthly limit may still be charged this month."""
    if not account_ids:
        return {}
    budgets = session.exec(
        select(Budget.account_id, Budget.monthly_limit).where(
            col(Budget.account_id).in_(account_ids), col(Budget.monthly_limit).is_not(None)
        )
    ).all()
    start = month_of(now).start
    return {
        account_id: max(0, int(limit or 0) - spent_since(session, account_id, start))
        for account_id, limit in budgets
    }
