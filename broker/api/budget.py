"""The account's monthly budget: `GET /v1/budget` and `PUT /v1/budget` (account key).

The month is the calendar month in UTC; `spent` is what was charged in it and `held` what the
account's open holds set aside now. See `broker.budget.service` for what the budget refuses and
stops.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from broker.api import usd_amount
from broker.api.openapi import errors
from broker.api.render import json_response
from broker.auth import current_account
from broker.budget import notices, service
from broker.ledger_tables import Account
from broker.schemas.account import Budget

router = APIRouter(prefix="/v1/budget", tags=["budget"])

MAX_BUDGET = 10_000_000_000_000  # ten million dollars a month
Amount = Annotated[int, usd_amount(decimals=6, minimum=1, maximum=MAX_BUDGET)]
Fraction = Annotated[Decimal, Field(gt=0, le=1, decimal_places=4)]


class BudgetIn(BaseModel):
    """The settings to change; a field left out keeps its value, `null` clears it."""

    model_config = ConfigDict(extra="forbid")

    monthly_limit: Amount | None = None
    alert_at: list[Fraction] = Field(default_factory=list, max_length=10)
    low_balance: Amount | None = None


def _now(request: Request) -> datetime:
    now: datetime = request.app.state.rentals.clock()
    return now


@router.get("", response_model=Budget, responses=errors(401))
def get_budget(request: Request, account: Annotated[Account, Depends(current_account)]) -> Any:
    """The month's limit, spend and holds, and when the owner is told."""
    with request.app.state.db.session(read_only=True) as session:
        state = service.state_of(session, account.id, _now(request))
    return json_response(state.json())


@router.put("", response_model=Budget, responses=errors(401, 422))
def put_budget(
    request: Request, body: BudgetIn, account: Annotated[Account, Depends(current_account)]
) -> Any:
    """Set the monthly limit (null: none), the alert fractions and the low-balance level."""
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    now = _now(request)

    def work(session: Session) -> service.BudgetState:
        state = service.set_budget(session, account.id, now, changes=changes)
        notices.after_charges(session, [account.id], now)  # a limit already reached, say so
        return state

    return json_response(request.app.state.db.transact(work).json())
