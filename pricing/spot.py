"""Spot against on-demand, side by side: the logic behind `GET /v1/spot-prices` and its charts.

"Is spot worth it for my job, and where?" needs, for each place a GPU can be rented, the cheapest
spot price, the cheapest on-demand price, what spot saves, and what its interruptions cost. So
the comparison has one row per (GPU, provider, region):

- Only available offers count, and only whole cards unless asked (`slices`): a slice of a card
  (`Offer.slice`: MIG, time-sliced) is left out, as in the GPU overview, since its per-GPU price
  is the price of a fraction of one. Asked for, slices get rows of their own.
- A search term may name several models ("H100" is the SXM, PCIe and NVL parts); they are never
  compared with each other, hence the GPU in the row key.
- A row's `effective_price` is what an hour of useful work costs there: the spot offer's
  effective price (price / (1 - p*L), see pricing.policy), or the on-demand price where that is
  lower or there is no spot offer. The cheapest row is the one with the lowest effective price,
  spot or not, so when on-demand is the better deal the comparison says so (`best_tier`).
- Interruption risk is also given in the buckets AWS's Spot Instance Advisor uses, lower bound
  inclusive: `<5%`, `5-10%`, `10-15%`, `15-20%`, `>20%` per hour.

The history helpers turn recorded change points into per-provider levels over time: a provider's
level at a moment is the cheapest price among its offers, each offer holding its last price.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from pricing.history import HistoryPoint
from pricing.offer import Offer, Tier
from pricing.places import region_needle

RISK_BUCKETS: tuple[tuple[float, str], ...] = (
    (0.05, "<5%"),
    (0.10, "5-10%"),
    (0.15, "10-15%"),
    (0.20, "15-20%"),
)
HIGHEST_RISK = ">20%"
SPARK_BARS = "▁▂▃▄▅▆▇█"


def risk_bucket(probability: float) -> str:
    """The AWS-style bucket of an hourly interruption probability."""
    for ceiling, label in RISK_BUCKETS:
        if probability < ceiling:
            return label
    return HIGHEST_RISK


@dataclass(frozen=True, slots=True)
class SpotRow:
    """The cheapest spot and on-demand offers of one GPU at one provider, in one region."""

    gpu: str
    provider: str
    region: str
    spot: Offer | None
    on_demand: Offer | None
    slice: str | None = None

    @property
    def savings_pct(self) -> float | None:
        """How much cheaper spot is than on-demand here, in percent (negative when dearer)."""
        if self.spot is None or self.on_demand is None or self.on_demand.price_per_gpu_hour <= 0:
            return None
        on_demand = Decimal(self.on_demand.price_per_gpu_hour)
        saved = (on_demand - self.spot.price_per_gpu_hour) * 100 / on_demand
        return float(saved.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))

    @property
    def interruption_probability(self) -> float | None:
        return None if self.spot is None else self.spot.interruption_probability or 0.0

    @property
    def risk_bucket(self) -> str | None:
        probability = self.interruption_probability
        return None if probability is None else risk_bucket(probability)

    @property
    def best_tier(self) -> Tier:
        """The tier whose hour of useful work is cheaper here (spot on a tie)."""
        if self.spot is None:
            return Tier.ON_DEMAND
        if self.on_demand is None:
            return Tier.SPOT
        spot_hour = self.spot.effective_price_per_gpu_hour
        return Tier.ON_DEMAND if self.on_demand.price_per_gpu_hour < spot_hour else Tier.SPOT

    @property
    def effective_price(self) -> int:
        """What an hour of useful work costs in this row's better tier."""
        if self.best_tier is Tier.SPOT and self.spot is not None:
            return self.spot.effective_price_per_gpu_hour
        assert self.on_demand is not None  # a row holds at least one offer
        return self.on_demand.price_per_gpu_hour

    @property
    def updated_at(self) -> datetime:
        """When the fresher of the row's two offers was last seen at its provider."""
        return max(o.updated_at for o in (self.spot, self.on_demand) if o is not None)

    def sort_key(self) -> tuple[int, str, str, str, str]:
        """Cheapest useful hour first, spot or on-demand."""
        return (self.effective_price, self.provider, self.region, self.gpu, self.slice or "")


@dataclass(frozen=True)
class SpotComparison:
    rows: list[SpotRow]

    @property
    def cheapest(self) -> SpotRow | None:
        """The row with the lowest effective price over every row, or None when there are none."""
        return self.rows[0] if self.rows else None


def _cheaper(current: Offer | None, candidate: Offer) -> Offer:
    if current is None:
        return candidate
    candidate_key = (candidate.price_per_gpu_hour, candidate.id)
    return candidate if candidate_key < (current.price_per_gpu_hour, current.id) else current


def compare_spot(
    offers: Iterable[Offer],
    gpus: Collection[str],
    region: str | None = None,
    slices: bool | None = False,
) -> SpotComparison:
    """Compare spot and on-demand for the GPUs named `gpus`, optionally in matching regions.

    `region` and `slices` mean what they mean in the offers search (pricing.query.OfferQuery).
    """
    needle = region_needle(region) if region else None
    best: dict[tuple[str, str, str, str | None], dict[Tier, Offer]] = {}
    for offer in offers:
        if not (
            offer.available
            and offer.gpu in gpus
            and (slices is None or (offer.slice is not None) is slices)
            and (needle is None or needle.matches(offer.region, offer.country, offer.continent))
        ):
            continue
        tiers = best.setdefault((offer.gpu, offer.provider, offer.region, offer.slice), {})
        tiers[offer.tier] = _cheaper(tiers.get(offer.tier), offer)
    rows = [
        SpotRow(gpu, provider, place, tiers.get(Tier.SPOT), tiers.get(Tier.ON_DEMAND), part)
        for (gpu, provider, place, part), tiers in best.items()
    ]
    return SpotComparison(sorted(rows, key=SpotRow.sort_key))


def provider_levels(
    points: Iterable[HistoryPoint], start: datetime, end: datetime, samples: int
) -> dict[str, list[int | None]]:
    """Each provider's cheapest price at `samples` evenly spaced moments from start to end.

    A moment before a provider's first point has no level (None). Points may come in any order.
    """
    if samples < 2 or end <= start:
        raise ValueError("need at least two samples over a non-empty time range")
    step = (end - start) / (samples - 1)
    moments = [start + step * i for i in range(samples)]
    ordered = sorted(points, key=lambda p: p.at)
    levels: dict[str, list[int | None]] = {p.provider: [] for p in ordered}
    current: dict[str, dict[str, int]] = {provider: {} for provider in levels}
    position = 0
    for moment in moments:
        while position < len(ordered) and ordered[position].at <= moment:
            point = ordered[position]
            current[point.provider][point.offer_id] = point.price
            position += 1
        for provider, prices in current.items():
            levels[provider].append(min(prices.values()) if prices else None)
    return levels


def sparkline(values: Sequence[int | None]) -> str:
    """Values as block characters scaled from their minimum to their maximum; gaps as spaces."""
    known = [v for v in values if v is not None]
    if not known:
        return " " * len(values)
    low, high = min(known), max(known)
    top = len(SPARK_BARS) - 1
    bars = []
    for value in values:
        if value is None:
            bars.append(" ")
        elif high == low:
            bars.append(SPARK_BARS[0])
        else:
            bars.append(SPARK_BARS[round((value - low) * top / (high - low))])
    return "".join(bars)
