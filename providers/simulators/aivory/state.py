"""The simulated AIVory account: offers with finite capacity and the rentals started on them.

A rent takes one place from its offer, which the listing shows unavailable once none is left;
terminating, or losing a spot rental, gives it back. A rental is `provisioning` until
`knobs.provision_seconds` have passed since the rent (worked out on each read against the knob's
current value, so a test may shorten the wait), then `running` with an `endpoint` under this
simulator (`/v1/gpu/rentals/{id}/endpoint`, served elsewhere). The rent holds an hour of the
price; ending a rental bills the seconds it ran, as `cost`.

Readings of what the document leaves open: a rent names its offer by `gpu_model`, `provider_id`,
`region` and `spot` (default true: the API lists spot GPUs); needs `model_id` or `docker_image`;
a missing offer is 409 `offer_unavailable`, an exhausted one 409 `no_capacity`; a second DELETE
returns the ended rental; an ended rental shows `ended_at`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_UP, Decimal
from typing import Any, ClassVar

from fastapi import Request

from providers.simulators.aivory.seed import GpuOffer, seed_offers
from providers.simulators.book import AccountBook, Answer, known, new_id
from providers.simulators.kit import Refusal, SimError, SimulatorKnobs, rfc3339

_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
SECONDS_PER_HOUR = Decimal(3600)


def _model_key(name: str) -> str:
    return _NOT_ALNUM.sub("", name.lower())


@dataclass
class SimRental:
    """One rental; `offer` is set while it holds a place of that offer's capacity."""

    rental_id: str
    listing: GpuOffer
    offer: GpuOffer | None
    model_id: str | None
    docker_image: str | None
    fine_tuned: bool
    price: Decimal
    created_at: datetime
    pending_since: float
    status: str = "provisioning"
    running_since: float | None = None
    ended_at: datetime | None = None
    reason: str | None = None
    cost: Decimal | None = None

    def to_json(self, base_url: str) -> dict[str, object]:
        body: dict[str, object] = {
            "rental_id": self.rental_id,
            "status": self.status,
            "gpu_model": self.listing.gpu_model,
            "provider_id": self.listing.provider_id,
            "region": self.listing.region,
            "spot": self.listing.spot,
            "model_id": self.model_id,
            "docker_image": self.docker_image,
            "fine_tuned": self.fine_tuned,
            "price_per_gpu_hour": f"{self.price:.4f}",
            "hold": str(self.price.quantize(Decimal("0.01"), rounding=ROUND_UP)),
            "created_at": rfc3339(self.created_at),
        }
        if self.status == "running":
            body["endpoint"] = f"{base_url}/v1/gpu/rentals/{self.rental_id}/endpoint"
        if self.reason is not None:
            body["reason"] = self.reason
        if self.ended_at is not None:
            body["ended_at"] = rfc3339(self.ended_at)
        if self.cost is not None:
            body["cost"] = f"{self.cost:.4f}"
        return body


class AivoryState(AccountBook):
    """The simulated provider's offers and rentals, plus what it has been asked."""

    REFUSALS: ClassVar[Mapping[Refusal, Answer]] = {
        "capacity": (409, "No GPU of that offer is free right now", "no_capacity"),
        "payment": (402, "Not enough credit for the rental's hold", "insufficient_credit"),
        "conflict": (409, "A rental of this offer is already being started", "conflict"),
        "gone": (409, "That offer is no longer listed", "offer_unavailable"),
    }

    def __init__(self, knobs: SimulatorKnobs) -> None:
        super().__init__(knobs)
        self.offers: list[GpuOffer] = seed_offers(knobs.seed)
        self.rentals: dict[str, SimRental] = {}
        self.last_query: dict[str, str] = {}

    def record(self, request: Request) -> None:
        """Count the request; keep the query of the latest offer listing."""
        super().record(request)
        if request.url.path.endswith("/offers"):
            self.last_query = dict(request.query_params)

    def read_offers(
        self,
        gpu_model: str | None,
        provider: str | None,
        min_vram: float | None,
        max_price: float | None,
    ) -> list[dict[str, object]]:
        """Drift every price, then list the offers passing all the given filters."""
        with self.settled():
            for offer in self.offers:
                offer.price = self.knobs.drift(offer.price)
            return [
                offer.to_json()
                for offer in self.offers
                if (gpu_model is None or _model_key(gpu_model) in _model_key(offer.gpu_model))
                and (provider is None or provider.lower() == offer.provider_id)
                and (min_vram is None or offer.vram_gb >= min_vram)
                and (max_price is None or offer.price <= max_price)
            ]

    def rent(self, body: Any, base_url: str) -> dict[str, object]:
        request = read_rent_request(body)
        with self.settled():
            self.refuse_if_told()
            offer = next(
                (
                    offer
                    for offer in self.offers
                    if (offer.gpu_model, offer.provider_id, offer.region, offer.spot)
                    == request.identity
                ),
                None,
            )
            if offer is None:
                raise SimError(409, "That offer is no longer listed", "offer_unavailable")
            if offer.free <= 0:
                raise SimError(
                    409,
                    f"No {offer.gpu_model} is free at {offer.provider_id} in {offer.region}",
                    "no_capacity",
                )
            offer.free -= 1
            rental = SimRental(
                rental_id=new_id("ar_", 8),
                listing=offer,
                offer=offer,
                model_id=request.model_id,
                docker_image=request.docker_image,
                fine_tuned=request.fine_tuned,
                price=Decimal(str(offer.price)),
                created_at=datetime.now(UTC),
                pending_since=time.monotonic(),
            )
            self.rentals[rental.rental_id] = rental
            return rental.to_json(base_url)

    def get(self, rental_id: str, base_url: str) -> dict[str, object]:
        with self.settled():
            return self._find(rental_id).to_json(base_url)

    def terminate(self, rental_id: str, base_url: str) -> dict[str, object]:
        """End the rental and bill it; an ended rental is returned as it ended."""
        with self.settled():
            rental = self._find(rental_id)
            if rental.status != "terminated":
                self._end(rental, reason=None)
            return rental.to_json(base_url)

    def interrupt_json(self, rental_id: str, base_url: str) -> dict[str, Any]:
        """The upstream takes a spot GPU back: `terminated` with `reason: interrupted`."""
        with self.settled():
            rental = self._find(rental_id)
            if not rental.listing.spot:
                raise SimError(409, "Only spot rentals can be interrupted", "conflict")
            if rental.status == "terminated":
                raise SimError(409, f"Rental {rental_id} has already ended", "conflict")
            self._end(rental, reason="interrupted")
            return rental.to_json(base_url)

    def status_of(self, rental_id: str) -> str | None:
        """The rental's status now, or None for a rental this account never had."""
        with self.settled():
            rental = self.rentals.get(rental_id)
            return None if rental is None else rental.status

    def instances_json(self, base_url: str) -> list[dict[str, Any]]:
        with self.settled():
            return [
                {"id": rental.rental_id, **rental.to_json(base_url)}
                for rental in self.rentals.values()
            ]

    def _find(self, rental_id: str) -> SimRental:
        return known(self.rentals, rental_id, f"No rental {rental_id}", "not_found")

    def _end(self, rental: SimRental, reason: str | None) -> None:
        now = time.monotonic()
        ran = 0.0 if rental.running_since is None else now - rental.running_since
        rental.status = "terminated"
        rental.reason = reason
        rental.ended_at = datetime.now(UTC)
        rental.cost = rental.price * Decimal(str(ran)) / SECONDS_PER_HOUR
        if rental.offer is not None:
            rental.offer.free += 1
            rental.offer = None

    def settle(self) -> None:
        """Move every provisioning rental whose time has come to running."""
        for rental in self.provisioned(self.rentals.values(), "provisioning"):
            rental.status = "running"
            rental.running_since = rental.pending_since + self.knobs.provision_seconds


@dataclass(frozen=True)
class RentRequest:
    """A rent body that validated: the offer it names and what to run there."""

    identity: tuple[str, str, str, bool]  # gpu_model, provider_id, region, spot
    model_id: str | None
    docker_image: str | None
    fine_tuned: bool


def read_rent_request(body: Any) -> RentRequest:
    """The rent body's fields, or a 400 `invalid_request` naming the first bad one."""
    if not isinstance(body, dict):
        raise SimError(400, "The body must be a JSON object", "invalid_request")
    names = []
    for name in ("gpu_model", "provider_id", "region"):
        value = body.get(name)
        if not isinstance(value, str) or not value.strip():
            raise SimError(400, f"{name} is required", "invalid_request")
        names.append(value)
    texts: dict[str, str | None] = {}
    for name in ("model_id", "docker_image", "ssh_key"):
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            raise SimError(400, f"{name} must be a string", "invalid_request")
        texts[name] = value or None
    if texts["model_id"] is None and texts["docker_image"] is None:
        raise SimError(400, "model_id or docker_image is required", "invalid_request")
    flags: dict[str, bool] = {}
    for name, default in (("spot", True), ("fine_tuned", False)):
        value = body.get(name, default)
        if not isinstance(value, bool):
            raise SimError(400, f"{name} must be a boolean", "invalid_request")
        flags[name] = value
    return RentRequest(
        identity=(names[0], names[1], names[2], flags["spot"]),
        model_id=texts["model_id"],
        docker_image=texts["docker_image"],
        fine_tuned=flags["fine_tuned"],
    )
