"""A rent request, and the canonical body the broker stores for it, in both directions.

Renting keeps the request it was asked for on the rental row (`Rental.request`), in one canonical
form: the workload as given (its mode always spelled out), `recover` (true, or a policy: how
many interruptions before it falls back to on-demand or stops recovering), the spending limits
where given, and either the offer id with the price cap, or the resolved constraints.
Idempotency compares a hash of that body, and a spot rental that asked to `recover` is placed
again from it long after the HTTP request has gone. Both directions live here, so what is
written and what is read back cannot drift apart: `rent_request` builds the body beside the
typed request, `workload_of`, `constraints_of` and `recovery_of` read it back.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from broker.rentals.limits import RentalLimits
from broker.rentals.ranking import Constraints
from broker.rentals.tables import Rental
from pricing.offer import Tier
from providers.rental import Workload, WorkloadMode


@dataclass(frozen=True)
class RentRequest:
    """A validated rent request; `body` is its canonical JSON (hashed for idempotency)."""

    workload: Workload
    body: dict[str, object]
    offer_id: str | None = None
    constraints: Constraints | None = None
    max_price: int | None = None
    recover: bool = False
    limits: RentalLimits = field(default_factory=RentalLimits)
    # The offer's price per GPU-hour the caller was shown: renting it dearer is refused.
    expected_price: int | None = None


ON_DEMAND = "on_demand"  # the one fallback a recovery policy names


@dataclass(frozen=True)
class Recovery:
    """How an interrupted spot rental is placed again: on spot until `max_interruptions`
    (None: always), then on on-demand when `fallback` says so, else no more."""

    max_interruptions: int | None = None
    fallback: str | None = None  # "on_demand"

    def json(self) -> dict[str, object]:
        return {"max_interruptions": self.max_interruptions, "fallback": self.fallback}

    def spot_spent(self, interruptions: int) -> bool:
        """True once spot may no longer be tried after this many interruptions."""
        return self.max_interruptions is not None and interruptions >= self.max_interruptions


def rent_request(
    workload: Workload,
    workload_fields: Mapping[str, object],
    *,
    recover: bool | Recovery,
    offer_id: str | None = None,
    max_price: int | None = None,
    constraints: Constraints | None = None,
    limits: RentalLimits | None = None,
    expected_price: int | None = None,
) -> RentRequest:
    """The request for an offer (`offer_id`) or for the best match of `constraints`.

    `workload_fields` are the workload's fields as the caller gave them (unset ones left out).
    """
    body: dict[str, Any] = {
        "workload": {**workload_fields, "mode": workload.mode.value},
        "recover": recover.json() if isinstance(recover, Recovery) else recover,
    }
    limits = limits or RentalLimits()
    if limits.json():
        body["limits"] = limits.json()
    recovers = bool(recover)
    if offer_id is not None:
        body.update(offer_id=offer_id, max_price=max_price)
        if expected_price is not None:
            body["expected_price"] = expected_price
        return RentRequest(
            workload,
            body,
            offer_id=offer_id,
            max_price=max_price,
            recover=recovers,
            limits=limits,
            expected_price=expected_price,
        )
    if constraints is None:
        raise ValueError("a rent request names an offer or gives constraints")
    body["constraints"] = {
        "gpus": list(constraints.gpus),
        "gpu_count": constraints.gpu_count,
        "tier": constraints.tier.value if constraints.tier else None,
        "max_price": max_price,
        "region": constraints.region,
        "max_interruption": constraints.max_interruption,
        "providers": list(constraints.providers),
    }
    return RentRequest(
        workload,
        body,
        constraints=constraints,
        max_price=max_price,
        recover=recovers,
        limits=limits,
    )


def recovery_of(body: Mapping[str, object]) -> Recovery:
    """The recovery policy of a stored request body (plain `true`: recover without limit)."""
    raw = body.get("recover")
    if not isinstance(raw, dict):
        return Recovery()
    count = raw.get("max_interruptions")
    fallback = raw.get("fallback")
    return Recovery(
        count if isinstance(count, int) else None, fallback if isinstance(fallback, str) else None
    )


def request_hash(body: Mapping[str, object]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def workload_of(body: Mapping[str, object]) -> Workload:
    """The workload of a stored request body."""
    raw = body.get("workload") or {}
    assert isinstance(raw, dict)
    return Workload(
        mode=WorkloadMode(raw.get("mode", WorkloadMode.CUSTOM.value)),
        image=raw.get("image"),
        model=raw.get("model"),
        template=raw.get("template"),
        ports=tuple(raw.get("ports") or ()),
        env=dict(raw.get("env") or {}),
        ssh_key=raw.get("ssh_key"),
    )


def constraints_of(rental: Rental) -> Constraints:
    """What a recovery may land on: the request's constraints, or the rented offer's shape."""
    body = rental.request
    raw = body.get("constraints")
    if isinstance(raw, dict):
        return Constraints(
            gpus=tuple(raw.get("gpus") or ()),
            gpu_count=int(raw.get("gpu_count") or 1),
            tier=Tier(raw["tier"]) if raw.get("tier") else None,
            max_price=raw.get("max_price"),
            region=raw.get("region"),
            max_interruption=raw.get("max_interruption"),
            providers=tuple(raw.get("providers") or ()),
            model=_model_of(body),
        )
    max_price = body.get("max_price")
    return Constraints(
        gpus=(rental.gpu,) if rental.gpu else (),
        gpu_count=rental.gpu_count,
        max_price=max_price if isinstance(max_price, int) else None,
        model=_model_of(body),
    )


def _model_of(body: Mapping[str, object]) -> str | None:
    """The model a stored `model` workload runs, which a placement must be able to serve."""
    workload = workload_of(body)
    return workload.model if workload.mode is WorkloadMode.MODEL else None
