"""JSON rendering of catalog objects, shared by the API routes and the CLI's --json output."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import Response

from pricing.money import format_usd
from pricing.offer import Offer
from pricing.summary import GpuRow


def offer_json(offer: Offer, stale: bool) -> dict[str, Any]:
    return {
        "id": offer.id,
        "provider": offer.provider,
        "gpu": offer.gpu,
        "gpu_count": offer.gpu_count,
        "vram_gb": offer.vram_gb,
        "price_per_gpu_hour": format_usd(offer.price_per_gpu_hour),
        "price_per_hour": format_usd(offer.price_per_hour),
        "tier": offer.tier.value,
        "interruption_probability": offer.interruption_probability or 0.0,
        "interruption_source": offer.interruption_source.value,
        "effective_price_per_gpu_hour": format_usd(offer.effective_price_per_gpu_hour),
        "region": offer.region,
        "country": offer.country,
        "continent": offer.continent,
        "place_known": offer.place_known,
        "slice": offer.slice,
        "gpu_fraction": offer.gpu_fraction,
        "models": None if offer.models is None else list(offer.models),
        "instance_type": offer.instance_type.value,
        "available": offer.available,
        "available_count": offer.available_count,
        "gpu_known": offer.gpu_known,
        "updated_at": offer.updated_at,
        "stale": stale,
    }


def gpu_row_json(row: GpuRow) -> dict[str, Any]:
    return {
        "gpu": row.gpu,
        "vram_gb": row.vram_gb,
        "offers": row.offers,
        "providers": sorted(row.providers),
        "min_on_demand_price": format_usd(row.min_on_demand_price)
        if row.min_on_demand_price is not None
        else None,
        "min_spot_price": format_usd(row.min_spot_price)
        if row.min_spot_price is not None
        else None,
        "available_count": row.available_count,
    }


def dumps(payload: Any) -> bytes:
    """Compact JSON with RFC 3339 UTC times ("...Z")."""
    return orjson.dumps(payload, option=orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS)


def json_response(payload: Any, status_code: int = 200) -> Response:
    return Response(dumps(payload), status_code=status_code, media_type="application/json")
