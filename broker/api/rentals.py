"""Rentals: `POST /v1/rentals` and the lifecycle endpoints of one rental (account key).

The body takes an `offer_id` or constraints, plus the workload (flat, as in the API contract, or
nested under `workload`). Everything is validated here, before any money moves: unknown fields,
GPU names, providers, ports, env names and amounts are 422s naming the field.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from sqlmodel import col, select

from broker.api.errors import invalid
from broker.api.offers import check_providers, resolve_gpu_terms
from broker.api.openapi import errors
from broker.api.params import (
    MAX_PRICE_USD,
    decode_cursor_text,
    moment_in_range,
    one_or_many,
    text,
)
from broker.api.render import json_response
from broker.auth import current_account
from broker.ledger_tables import Account, Hold
from broker.rentals.limits import RentalLimits
from broker.rentals.ranking import Constraints
from broker.rentals.request import Recovery, RentRequest, rent_request
from broker.rentals.service import RentalService
from broker.rentals.tables import RENTAL_STATUSES, Rental
from broker.rentals.view import rental_body
from broker.schemas.rentals import Rental as RentalOut
from broker.schemas.rentals import RentalPage
from pricing.money import to_micros
from pricing.offer import Tier
from providers.rental import Workload, WorkloadMode

router = APIRouter(tags=["rentals"])
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
Port = Annotated[int, Field(ge=1, le=65535)]
GpuTerm = Annotated[str, text(100)]
MAX_LIMIT_SECONDS = 366 * 24 * 3600  # a year: longer is a typo, not a limit
MAX_COST_USD = Decimal(1_000_000)
StatusName = Literal["provisioning", "running", "stopped", "interrupted", "terminated", "failed"]
assert get_args(StatusName) == RENTAL_STATUSES


class WorkloadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: WorkloadMode | None = None
    image: Annotated[str, text(500)] | None = None
    model: Annotated[str, text(300)] | None = None
    template: Annotated[str, text(100)] | None = None
    ports: list[Port] = Field(default_factory=list, max_length=20)
    env: dict[str, Annotated[str, text(10_000, min_length=0)]] = Field(
        default_factory=dict, max_length=64
    )
    ssh_key: Annotated[str, text(10_000)] | None = None

    @field_validator("env")
    @classmethod
    def _env_names(cls, env: dict[str, str]) -> dict[str, str]:
        for name in env:
            if not _ENV_NAME.match(name):
                raise ValueError(f"{name!r} is not a valid environment variable name")
        return env

    def to_workload(self) -> Workload:
        mode = self.mode or (
            WorkloadMode.MODEL
            if self.model
            else WorkloadMode.TEMPLATE
            if self.template
            else WorkloadMode.SSH
            if self.ssh_key and not self.image
            else WorkloadMode.CUSTOM
        )
        return Workload(
            mode=mode,
            image=self.image,
            model=self.model,
            template=self.template,
            ports=tuple(self.ports),
            env=dict(self.env),
            ssh_key=self.ssh_key,
        )


class RecoverIn(BaseModel):
    """A spot recovery policy: recover until `max_interruptions`, then fall back or stop."""

    model_config = ConfigDict(extra="forbid")

    max_interruptions: int | None = Field(None, ge=0, le=1000)
    fallback: Literal["on_demand"] | None = None


class RentIn(WorkloadIn):
    offer_id: Annotated[str, text(300)] | None = None
    gpu: (
        Annotated[
            list[GpuTerm],
            BeforeValidator(one_or_many, json_schema_input_type=GpuTerm | list[GpuTerm]),
            Field(max_length=20),
        ]
        | None
    ) = None
    gpu_count: int = Field(1, ge=1, le=64)
    tier: Literal["on_demand", "spot", "any"] = "any"
    max_price: Decimal | None = Field(None, gt=0, le=MAX_PRICE_USD, decimal_places=6)
    region: Annotated[str, text(100)] | None = None
    max_interruption: float | None = Field(None, ge=0, le=1, allow_inf_nan=False)
    providers: list[Annotated[str, text(100)]] = Field(default_factory=list, max_length=10)
    recover: bool | RecoverIn = False
    workload: WorkloadIn | None = None
    max_duration_seconds: int | None = Field(None, gt=0, le=MAX_LIMIT_SECONDS)
    max_cost: Decimal | None = Field(None, gt=0, le=MAX_COST_USD, decimal_places=6)
    idle_timeout_seconds: int | None = Field(None, gt=0, le=MAX_LIMIT_SECONDS)
    # With offer_id: the offer's price per GPU-hour as shown; dearer now is a 409 price_changed.
    expected_price: Decimal | None = Field(None, gt=0, le=MAX_PRICE_USD, decimal_places=6)

    def limits(self) -> RentalLimits:
        return RentalLimits(
            max_duration_seconds=self.max_duration_seconds,
            max_cost=to_micros(self.max_cost) if self.max_cost is not None else None,
            idle_timeout_seconds=self.idle_timeout_seconds,
        )

    def recovery(self) -> bool | Recovery:
        if isinstance(self.recover, RecoverIn):
            return Recovery(self.recover.max_interruptions, self.recover.fallback)
        return self.recover


def service_of(request: Request) -> RentalService:
    service: RentalService = request.app.state.rentals
    return service


def to_request(request: Request, body: RentIn) -> RentRequest:
    """Resolve names and amounts into a request with its canonical body (`rent_request`)."""
    flat = body.model_dump(include=set(WorkloadIn.model_fields), exclude_defaults=True)
    if body.workload is not None and flat:
        raise invalid(
            "give the workload either flat or under `workload`, not both", param="workload"
        )
    workload_in = body.workload or WorkloadIn(**flat)
    workload = workload_in.to_workload()
    max_price = to_micros(body.max_price) if body.max_price is not None else None
    given = workload_in.model_dump(exclude_none=True)
    constraint_fields = body.model_fields_set & {
        "gpu",
        "gpu_count",
        "tier",
        "region",
        "max_interruption",
        "providers",
    }
    if body.offer_id is not None:
        if constraint_fields:
            raise invalid(
                f"give either offer_id or constraints ({', '.join(sorted(constraint_fields))})",
                param="offer_id",
            )
        return rent_request(
            workload,
            given,
            recover=body.recovery(),
            offer_id=body.offer_id,
            max_price=max_price,
            limits=body.limits(),
            expected_price=to_micros(body.expected_price) if body.expected_price else None,
        )
    if body.expected_price is not None:
        raise invalid(
            "expected_price goes with offer_id: the price that offer showed", param="expected_price"
        )
    catalog = request.app.state.catalog
    terms = [body.gpu] if isinstance(body.gpu, str) else list(body.gpu or [])
    constraints = Constraints(
        gpus=resolve_gpu_terms(catalog, terms),
        gpu_count=body.gpu_count,
        tier=None if body.tier == "any" else Tier(body.tier),
        max_price=max_price,
        region=body.region,
        max_interruption=body.max_interruption,
        providers=check_providers(catalog, body.providers),
        model=workload.model if workload.mode is WorkloadMode.MODEL else None,
    )
    return rent_request(
        workload,
        given,
        recover=body.recovery(),
        max_price=max_price,
        constraints=constraints,
        limits=body.limits(),
    )


def held_amounts(request: Request, rentals: list[Rental]) -> dict[str, int]:
    """What each rental's hold still sets aside, in one query for a whole page."""
    hold_ids = [r.hold_id for r in rentals if r.hold_id is not None]
    if not hold_ids:
        return {}
    with request.app.state.db.session(read_only=True) as session:
        rows = session.exec(select(Hold.id, Hold.held).where(col(Hold.id).in_(hold_ids)))
        return dict(rows.all())


def rental_json(
    request: Request,
    rental: Rental,
    rental_key: str | None = None,
    held: dict[str, int] | None = None,
) -> dict[str, Any]:
    if held is None:
        held = held_amounts(request, [rental])
    body = rental_body(rental, held.get(rental.hold_id or "", 0))
    if rental_key is not None:
        body["rental_key"] = rental_key
    return body


@router.post(
    "/v1/rentals",
    status_code=201,
    response_model=RentalOut,
    responses=errors(401, 402, 404, 409, 422, 502, 503),
)
def create_rental(
    request: Request,
    body: RentIn,
    account: Annotated[Account, Depends(current_account)],
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=255)] = None,
) -> Response:
    """Rent the cheapest matching offer (by effective price) that starts, failing over."""
    created = service_of(request).rent(account.id, to_request(request, body), idempotency_key)
    rental = created.rental
    if rental.status == "failed" and rental.handle is None:
        return json_response(
            {
                "error": {
                    "code": "no_capacity",
                    "message": "no provider could start this rental; see attempts. Nothing was "
                    "charged and the credit hold was released.",
                    "rental_id": rental.id,
                    "attempts": rental.attempts,
                }
            },
            status_code=503,
        )
    response = json_response(rental_json(request, rental, created.rental_key), status_code=201)
    if created.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def _cursor(rental: Rental) -> str:
    return base64.urlsafe_b64encode(rental.created_at.isoformat().encode()).decode()


def _before(cursor: str | None) -> datetime | None:
    """The creation time a cursor points before: aware, in range, as `_cursor` wrote it."""
    if not cursor:
        return None
    try:
        before = datetime.fromisoformat(decode_cursor_text(cursor))
    except ValueError:
        before = None
    if before is None or before.tzinfo is None:
        raise invalid("cursor is not one this API returned", param="cursor")
    return moment_in_range(before, "cursor")


@router.get("/v1/rentals", response_model=RentalPage, responses=errors(401, 422))
def list_rentals(
    request: Request,
    account: Annotated[Account, Depends(current_account)],
    status: StatusName | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    rentals = service_of(request).list(
        account.id, status=status, limit=limit + 1, before=_before(cursor)
    )
    page = rentals[:limit]
    next_cursor = _cursor(page[-1]) if len(rentals) > limit else None
    held = held_amounts(request, page)
    return json_response(
        {
            "object": "list",
            "data": [rental_json(request, r, held=held) for r in page],
            "next_cursor": next_cursor,
        }
    )


@router.get("/v1/rentals/{rental_id}", response_model=RentalOut, responses=errors(401, 404))
def get_rental(
    request: Request, rental_id: str, account: Annotated[Account, Depends(current_account)]
) -> Response:
    return json_response(rental_json(request, service_of(request).get(account.id, rental_id)))


def _acting(action: Callable[[RentalService, str, str], Rental]) -> Callable[..., Response]:
    """The route of one user action on a rental (`stop`, `start`, `terminate`)."""

    def act(
        request: Request, rental_id: str, account: Annotated[Account, Depends(current_account)]
    ) -> Response:
        rental = action(service_of(request), account.id, rental_id)
        return json_response(rental_json(request, rental))

    return act


for _method, _path, _action, _codes in (
    ("POST", "/v1/rentals/{rental_id}/stop", RentalService.stop, (401, 404, 409, 502, 503)),
    ("POST", "/v1/rentals/{rental_id}/start", RentalService.start, (401, 402, 404, 409, 502, 503)),
    ("DELETE", "/v1/rentals/{rental_id}", RentalService.terminate, (401, 404, 409, 502, 503)),
):
    router.add_api_route(
        _path,
        _acting(_action),
        methods=[_method],
        name=f"{_action.__name__}_rental",
        response_model=RentalOut,
        responses=errors(*_codes),
    )
