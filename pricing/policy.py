"""What the broker shows on top of what a provider says: margin, interruption risk, effective price.

- Price: the provider's price per GPU-hour plus the operator's margin (`GPUBROKER_MARGIN`).
- Interruption probability (chance of losing the instance within the next hour): 0 for
  on-demand; for spot, the broker's own observation of that provider and GPU when it has one
  (`observed`), else the provider's figure (`provider`), else a documented prior (`estimated`).
- Effective price per GPU-hour = price / (1 - p * L), with L = `GPUBROKER_INTERRUPTION_LOSS_HOURS`:
  what an hour of useful work costs when each interruption throws away L hours of work.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

from pricing.offer import (
    ESTIMATED_SOURCE,
    NO_SOURCE,
    OBSERVED_SOURCE,
    ON_DEMAND,
    PROVIDER_SOURCE,
    SPOT,
    InterruptionSource,
    Offer,
)

# Hourly interruption priors for spot offers whose provider gives no figure. They follow the
# providers' own descriptions: ComputeGPU spot pods are preemptible with 5 minutes' grace on a
# busy community marketplace; IC GPU batch instances yield to any higher-priority workload.
SPOT_PRIORS: Mapping[str, float] = {"computegpu": 0.06, "icgpu": 0.10}
DEFAULT_SPOT_PRIOR = 0.05

# Below this, 1 - p*L would make the effective price explode; such an offer is priced as if
# only 1% of its hours were useful.
_MIN_USEFUL_FRACTION = Decimal("0.01")


@dataclass(frozen=True)
class PricingPolicy:
    """The operator's pricing settings plus the broker's observed interruption rates."""

    margin: Decimal = Decimal(0)
    interruption_loss_hours: Decimal = Decimal("0.5")
    observed_rates: Mapping[tuple[str, str], float] = field(default_factory=dict)

    def interruption(self, offer: Offer) -> tuple[float, InterruptionSource]:
        if offer.tier is ON_DEMAND:
            return 0.0, NO_SOURCE
        observed = self.observed_rates.get((offer.provider, offer.gpu))
        if observed is not None:
            return observed, OBSERVED_SOURCE
        given = offer.interruption_probability
        if given is not None and offer.interruption_source is PROVIDER_SOURCE:
            return given, PROVIDER_SOURCE
        return SPOT_PRIORS.get(offer.provider, DEFAULT_SPOT_PRIOR), ESTIMATED_SOURCE


@lru_cache(maxsize=4096)
def _useful_fraction(probability: float, loss_hours: Decimal) -> Decimal:
    fraction = Decimal(1) - Decimal(str(probability)) * loss_hours
    return max(fraction, _MIN_USEFUL_FRACTION)


def effective_price(price_micros: int, probability: float, loss_hours: Decimal) -> int:
    """Price of an hour of useful work, in micro-dollars (see the module docstring)."""
    if probability <= 0:
        return price_micros
    return _effective(price_micros, probability, loss_hours)


@lru_cache(maxsize=65536)
def _effective(price_micros: int, probability: float, loss_hours: Decimal) -> int:
    """`effective_price` in decimal, remembered: a catalog's prices and probabilities are few."""
    useful = _useful_fraction(probability, loss_hours)
    return int((Decimal(price_micros) / useful).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def apply_policy(offers: Iterable[Offer], policy: PricingPolicy) -> None:
    """Fill each offer's shown price, interruption estimate and effective price in place."""
    factor = Decimal(1) + policy.margin
    with_margin = factor != 1
    loss_hours = policy.interruption_loss_hours
    for offer in offers:
        if with_margin:
            offer.price_per_gpu_hour = int(
                (offer.base_price_per_gpu_hour * factor).quantize(Decimal(1), ROUND_HALF_UP)
            )
        else:
            offer.price_per_gpu_hour = offer.base_price_per_gpu_hour
        probability, source = policy.interruption(offer)
        if offer.tier is SPOT:
            offer.interruption_probability = probability
            offer.interruption_source = source
        else:
            offer.interruption_probability = 0.0
            offer.interruption_source = NO_SOURCE
        offer.effective_price_per_gpu_hour = effective_price(
            offer.price_per_gpu_hour, probability, loss_hours
        )
