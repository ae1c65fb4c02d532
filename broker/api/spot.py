"""Spot prices: `GET /v1/spot-prices` (compared now) and `GET /v1/spot-prices/history` (over time).

Both are public, like the rest of the catalog. The comparison is computed from the in-memory
catalog (pricing.spot); the history is read from the recorded change points (pricing.history).
A GPU is named in any spelling; one that neither the GPU table nor the catalog knows is a 404
with the closest known names, so a typo gets a "did you mean" instead of an empty answer.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from broker.api.errors import invalid, not_found
from broker.api.offers import check_terms
from broker.api.openapi import errors
from broker.api.params import SLICES, SLICES_HELP, Moment, SlicesParam
from broker.api.render import json_response
from broker.schemas.catalog import PricePage, SpotComparison
from pricing.catalog import Catalog
from pricing.gpus import normalize_gpu_key, resolve_gpu_query, suggest_gpus
from pricing.history import (
    MAX_LIMIT,
    HistoryPoint,
    HistoryQuery,
    InvalidCursor,
    SessionFactory,
    query_history,
)
from pricing.money import format_usd
from pricing.offer import Tier
from pricing.query import OfferQuery
from pricing.spot import SpotRow, compare_spot

router = APIRouter(tags=["catalog"])
REGION_HELP = "a continent (eu, europe, na, asia), a country (code or name), or region text"


def resolve_gpu(catalog: Catalog, term: str) -> frozenset[str]:
    """The canonical names a term means, or the catalog's own names for a GPU the table lacks."""
    resolved = resolve_gpu_query(term)
    if resolved is not None:
        return resolved
    key = normalize_gpu_key(term)
    names = frozenset(name for name in catalog.index.gpu_names() if normalize_gpu_key(name) == key)
    if names:
        return names
    hint = suggest_gpus(term)
    did_you_mean = f"; did you mean {', '.join(hint)}?" if hint else ""
    raise not_found(f"unknown GPU {term!r}{did_you_mean}", param="gpu", suggestions=hint)


def _usd(micros: int | None) -> str | None:
    return None if micros is None else format_usd(micros)


def spot_row_json(row: SpotRow, stale: frozenset[str]) -> dict[str, Any]:
    spot, on_demand = row.spot, row.on_demand
    return {
        "gpu": row.gpu,
        "provider": row.provider,
        "region": row.region,
        "spot_price": _usd(spot.price_per_gpu_hour if spot else None),
        "on_demand_price": _usd(on_demand.price_per_gpu_hour if on_demand else None),
        "savings_pct": row.savings_pct,
        "interruption_probability": row.interruption_probability,
        "interruption_source": spot.interruption_source.value if spot else None,
        "risk_bucket": row.risk_bucket,
        "effective_price": _usd(row.effective_price),
        "best_tier": row.best_tier.value,
        "slice": row.slice,
        "updated_at": row.updated_at,
        "spot_offer_id": spot.id if spot else None,
        "on_demand_offer_id": on_demand.id if on_demand else None,
        "stale": row.provider in stale,
    }


def history_point_json(point: HistoryPoint) -> dict[str, Any]:
    return {
        "provider": point.provider,
        "gpu": point.gpu,
        "region": point.region,
        "tier": point.tier.value,
        "price": format_usd(point.price),
        "at": point.at,
        "offer_id": point.offer_id,
    }


@router.get("/v1/spot-prices", response_model=SpotComparison, responses=errors(404, 422))
async def spot_prices(
    request: Request,
    gpu: Annotated[str, Query(min_length=1, max_length=100, description="GPU, any spelling")],
    region: Annotated[str | None, Query(max_length=100, description=REGION_HELP)] = None,
    slices: Annotated[SlicesParam, Query(description=SLICES_HELP)] = "false",
) -> Response:
    """Every provider and region of a GPU side by side, and the cheapest by effective price."""
    catalog: Catalog = request.app.state.catalog
    names = resolve_gpu(catalog, gpu)
    comparison = compare_spot(catalog.index.offers, names, region or None, SLICES[slices])
    stale = catalog.stale_providers()
    cheapest = comparison.cheapest
    return json_response(
        {
            "gpu": next(iter(names)) if len(names) == 1 else gpu,
            "gpus": sorted(names),
            "region": region or None,
            "rows": [spot_row_json(row, stale) for row in comparison.rows],
            "cheapest": spot_row_json(cheapest, stale) if cheapest else None,
            "on_demand_wins": cheapest is not None and cheapest.best_tier is Tier.ON_DEMAND,
        }
    )


def shown_offer_ids(catalog: Catalog, query: OfferQuery) -> set[str]:
    """The ids of every offer the offers table shows for `query` (all pages)."""
    everything = replace(query, limit=max(len(catalog.index), 1), cursor=None)
    return {offer.id for offer in catalog.index.search(everything).offers}


@router.get("/v1/spot-prices/history", response_model=PricePage, responses=errors(404, 422))
def spot_price_history(
    request: Request,
    gpu: Annotated[list[str], Query(description="GPU, any spelling; repeatable")] = [],  # noqa: B006
    provider: Annotated[list[str], Query(description="repeatable")] = [],  # noqa: B006
    tier: Tier | None = None,
    region: Annotated[str | None, Query(max_length=100, description=REGION_HELP)] = None,
    available: Literal["true", "false", "any"] = "true",
    slices: Annotated[SlicesParam, Query(description=SLICES_HELP)] = "false",
    since: Annotated[Moment | None, Query(description="RFC 3339; no offset means UTC")] = None,
    until: Annotated[Moment | None, Query(description="RFC 3339; no offset means UTC")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """Recorded price changes, oldest first, with each offer's level at `since`: the points of
    the offers the offers table shows for the same filters, so a chart agrees with the table."""
    check_terms("gpu", gpu)
    check_terms("provider", provider)
    if since is not None and until is not None and since > until:
        raise invalid("since must not be after until", param="since")
    catalog: Catalog = request.app.state.catalog
    names: set[str] | None = None
    if gpu:
        names = set()
        for term in gpu:
            names |= resolve_gpu(catalog, term)
    shown = OfferQuery(
        gpus=tuple(sorted(names or ())),
        providers=tuple(provider),
        tier=tier,
        region=region or None,
        available={"true": True, "false": False, "any": None}[available],
        slices=SLICES[slices],
    )
    query = HistoryQuery(
        gpus=names,
        offer_ids=shown_offer_ids(catalog, shown),
        providers=tuple(provider),
        tier=tier,
        since=since,
        until=until,
        limit=limit,
        cursor=cursor or None,
    )
    db: SessionFactory = request.app.state.db
    try:
        page = query_history(db, query)
    except InvalidCursor as exc:
        raise invalid(str(exc), param="cursor") from None
    return json_response(
        {
            "object": "list",
            "data": [history_point_json(p) for p in page.points],
            "next_cursor": page.next_cursor,
        }
    )
