"""Every simulated provider ends a rental at its limits alike: at the right second and cost.

Driven by the registry: each provider in `providers.registry.PROVIDERS` that has a simulator is
rented through the broker (its plain workload, as the connect-proxy suite rents it) with a
duration limit and with a cost limit; the meter, run every tick on the broker's hand-moved clock,
must end each rental within one tick of reaching its limit, terminated at the provider, having
billed exactly up to the limit and never past it.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from broker.rentals.billing import cost_of
from broker.rentals.tables import Rental
from pricing.money import format_usd, to_micros
from providers.rental import InstanceStatus
from tests.limits.conftest import TICK, Broker
from tests.providers.support import SIMULATED


def instance_status(broker: Broker, provider: str, rental_id: str) -> InstanceStatus:
    """What the provider says of the instance it runs for the rental."""
    with broker.app.state.db.session(read_only=True) as session:
        handle = session.get(Rental, rental_id).handle
    return broker.app.state.rentals.adapters[provider].status(handle).status


@pytest.mark.parametrize("provider", SIMULATED)
def test_max_duration_ends_the_rental_at_that_billed_second(limited: Broker, provider: str) -> None:
    rental = limited.rent_limited(provider, max_duration_seconds=100)
    assert rental["max_duration_seconds"] == 100
    assert rental["limits_left"]["max_duration_seconds"] == 100
    price = to_micros(rental["price_per_hour"])

    limited.tick()
    assert limited.get(rental["id"])["limits_left"]["max_duration_seconds"] == 100 - TICK
    ticks = 1 + limited.ticks_until_ended(rental["id"])

    ended = limited.get(rental["id"])
    assert ticks == -(-100 // TICK)  # the tick that reached the limit ended it
    assert ended["status"] == "terminated" and ended["reason"] == "max_duration"
    assert ended["billed_seconds"] == 100
    assert to_micros(ended["cost"]) == cost_of(price, 100)
    assert ended["limits_left"]["max_duration_seconds"] == 0
    assert instance_status(limited, provider, rental["id"]) is InstanceStatus.TERMINATED
    wallet = limited.api.get("/v1/wallet", headers=limited.headers).json()
    assert to_micros(wallet["balance"]) == 100_000_000 - cost_of(price, 100)
    assert to_micros(wallet["held"]) == 0


@pytest.mark.parametrize("provider", SIMULATED)
def test_max_cost_is_never_passed_the_last_second_prorated(limited: Broker, provider: str) -> None:
    price = to_micros(limited.offer(provider)["price_per_hour"])
    limit = cost_of(price, 250) + 1  # reached inside second 251: that second is billed in part
    rental = limited.rent_limited(provider, max_cost=format_usd(limit))
    assert to_micros(rental["max_cost"]) == limit

    ticks = limited.ticks_until_ended(rental["id"])

    ended = limited.get(rental["id"])
    seconds = ended["billed_seconds"]
    assert ended["status"] == "terminated" and ended["reason"] == "max_cost"
    assert to_micros(ended["cost"]) == limit
    assert cost_of(price, seconds - 1) < limit <= cost_of(price, seconds)
    assert ticks == -(-seconds // TICK)
    assert Decimal(ended["limits_left"]["max_cost"]) == 0
    assert instance_status(limited, provider, rental["id"]) is InstanceStatus.TERMINATED
    wallet = limited.api.get("/v1/wallet", headers=limited.headers).json()
    assert to_micros(wallet["balance"]) == 100_000_000 - limit
