"""The public catalog: `GET /v1/offers`, `GET /v1/offers/{id}`, `GET /v1/gpus`.

Query parameters are validated here and turned into an `OfferQuery`; the search itself is the
index's. Rendered pages are cached for a moment, per catalog and keyed by its version, so a burst
of identical searches costs one search (and two apps in one process never share pages).
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Annotated, Any, Literal, cast, get_args
from weakref import WeakKeyDictionary

from cachetools import TTLCache
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from broker.api.errors import invalid, not_found
from broker.api.openapi import errors
from broker.api.params import (
    MAX_GPU_COUNT,
    MAX_PRICE_USD,
    MAX_VRAM_GB,
    SLICES,
    SLICES_HELP,
    SlicesParam,
)
from broker.api.render import gpu_row_json, json_response, offer_json
from broker.schemas.catalog import GpuPage, Offer, OfferPage
from pricing.catalog import Catalog
from pricing.gpus import normalize_gpu_key, resolve_gpu_query, suggest_gpus
from pricing.index import InvalidCursor
from pricing.money import to_micros
from pricing.offer import InstanceType, Tier
from pricing.query import MAX_LIMIT, SORTS, OfferQuery

router = APIRouter(tags=["catalog"])

SortName = Literal[
    "price", "-price", "effective_price", "vram", "-vram", "interruption", "price_per_vram"
]
assert set(get_args(SortName)) == set(SORTS)

MAX_TERMS = 20

_page_caches: WeakKeyDictionary[Catalog, TTLCache[tuple[Any, ...], bytes]] = WeakKeyDictionary()


def catalog_of(request: Request) -> Catalog:
    catalog: Catalog = request.app.state.catalog
    return catalog


def page_cache(catalog: Catalog) -> TTLCache[tuple[Any, ...], bytes]:
    """The rendered-page cache of one catalog."""
    cache = _page_caches.get(catalog)
    if cache is None:
        cache = _page_caches.setdefault(catalog, TTLCache(maxsize=2048, ttl=2.0))
    return cache


def resolve_gpu_terms(catalog: Catalog, terms: list[str]) -> tuple[str, ...]:
    """Canonical names for the user's GPU terms; 422 with suggestions for an unknown term."""
    names: list[str] = []
    for term in terms:
        resolved = resolve_gpu_query(term)
        if resolved is not None:
            names.extend(sorted(resolved))
        elif catalog.index.has_gpu_key(normalize_gpu_key(term)):
            names.append(term)
        else:
            hint = suggest_gpus(term)
            did_you_mean = f"; did you mean {', '.join(hint)}?" if hint else ""
            raise invalid(f"unknown GPU {term!r}{did_you_mean}", param="gpu", suggestions=hint)
    return tuple(names)


def check_terms(param: str, terms: list[str]) -> None:
    """A repeatable text filter: at most MAX_TERMS values of at most 100 characters each."""
    if len(terms) > MAX_TERMS:
        raise invalid(f"{param} is repeated more than {MAX_TERMS} times", param=param)
    if any(len(term) > 100 for term in terms):
        raise invalid(f"{param} values are at most 100 characters", param=param)


def check_providers(catalog: Catalog, providers: list[str]) -> tuple[str, ...]:
    known = catalog.provider_names
    unknown = [p for p in providers if p not in known]
    if unknown:
        raise invalid(
            f"unknown provider {unknown[0]!r}; enabled providers: {', '.join(known)}",
            param="provider",
        )
    return tuple(providers)


@router.get("/v1/offers", response_model=OfferPage, responses=errors(422))
async def list_offers(
    request: Request,
    gpu: Annotated[list[str], Query(description="GPU model, any spelling; repeatable")] = [],  # noqa: B006
    min_vram: Annotated[
        float | None, Query(ge=0, le=MAX_VRAM_GB, allow_inf_nan=False, description="GB per GPU")
    ] = None,
    max_price: Annotated[
        Decimal | None,
        Query(ge=0, le=MAX_PRICE_USD, decimal_places=6, description="USD per GPU-hour"),
    ] = None,
    gpu_count: Annotated[int | None, Query(ge=1, le=MAX_GPU_COUNT)] = None,
    min_gpu_count: Annotated[int | None, Query(ge=1, le=MAX_GPU_COUNT)] = None,
    provider: Annotated[list[str], Query(description="repeatable")] = [],  # noqa: B006
    region: Annotated[str | None, Query(max_length=100)] = None,
    tier: Tier | None = None,
    max_interruption: Annotated[float | None, Query(ge=0, le=1, allow_inf_nan=False)] = None,
    instance_type: InstanceType | None = None,
    available: Literal["true", "false", "any"] = "true",
    slices: Annotated[SlicesParam, Query(description=SLICES_HELP)] = "false",
    model: Annotated[
        str | None, Query(max_length=300, description="served, or any model can be loaded")
    ] = None,
    sort: SortName = "price",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> Response:
    catalog = catalog_of(request)
    cache_key = (catalog.version, str(request.query_params))
    cached = page_cache(catalog).get(cache_key)
    if cached is not None:
        return Response(cached, media_type="application/json")
    check_terms("gpu", gpu)
    check_terms("provider", provider)
    query = OfferQuery(
        gpus=resolve_gpu_terms(catalog, gpu),
        min_vram=math.ceil(min_vram) if min_vram is not None else None,
        max_price=to_micros(max_price) if max_price is not None else None,
        gpu_count=gpu_count,
        min_gpu_count=min_gpu_count,
        providers=check_providers(catalog, provider),
        region=region or None,
        tier=tier,
        max_interruption=max_interruption,
        instance_type=instance_type,
        available={"true": True, "false": False, "any": None}[available],
        slices=SLICES[slices],
        model=model or None,
        sort=sort,
        limit=limit,
        cursor=cursor or None,
    )
    try:
        page = catalog.index.search(query)
    except InvalidCursor as exc:
        raise invalid(str(exc), param="cursor") from None
    stale = catalog.stale_providers()
    response = json_response(
        {
            "object": "list",
            "data": [offer_json(o, o.provider in stale) for o in page.offers],
            "next_cursor": page.next_cursor,
            "providers": catalog.status(),
        }
    )
    page_cache(catalog)[cache_key] = cast(bytes, response.body)  # json_response encodes to bytes
    return response


@router.get("/v1/offers/{offer_id}", response_model=Offer, responses=errors(404))
async def get_offer(request: Request, offer_id: str) -> Response:
    catalog = catalog_of(request)
    offer = catalog.index.get(offer_id)
    if offer is None:
        raise not_found(f"no offer {offer_id!r}; it may have left its provider's catalog")
    return json_response(offer_json(offer, offer.provider in catalog.stale_providers()))


@router.get("/v1/gpus", response_model=GpuPage)
async def list_gpus(request: Request) -> Response:
    catalog = catalog_of(request)
    return json_response({"object": "list", "data": [gpu_row_json(r) for r in catalog.gpu_rows]})
