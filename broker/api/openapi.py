"""What `/openapi.json` says about errors, and the `/docs` and `/redoc` pages that show it.

`/openapi.json` has the one error shape for every status a route returns.

Routes name the statuses they can answer besides success with `errors(402, 404, ...)`. The
document is then finished in one pass, so no route can forget the common cases: every operation
that takes input declares 422 as the API's `{"error": ...}` body (never FastAPI's `detail`), one
that takes a body declares 400 (a body that is not JSON), and every operation behind a key
declares 401.

`/docs` (Swagger UI) and `/redoc` (ReDoc) load their files from the `fastapi-offline` package,
served by the broker, and carry a Content-Security-Policy that lets the browser fetch nothing
from anywhere else (ReDoc's sidebar links a logo on a CDN: the policy keeps it from loading).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib.resources import files
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from broker.api.errors import error_body
from broker.schemas.errors import ErrorBody

_REF = "#/components/schemas/{model}"
_ASSETS = "/static-docs"
# Scripts and styles inline (the pages' own start-up code) or from the broker; ReDoc renders in
# a worker it builds from a blob; images only from the broker or inline.
DOCS_POLICY = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
DOCS_HEADERS = {"Content-Security-Policy": DOCS_POLICY, "Referrer-Policy": "no-referrer"}

# Each status: the code it usually carries, what it means, and an example message.
ERRORS: dict[int, tuple[str, str, str]] = {
    400: ("invalid_request", "The request could not be read", "the body is not JSON"),
    401: (
        "unauthorized",
        "A missing, unknown or revoked key",
        "a valid API key is required: Authorization: Bearer <key>",
    ),
    402: (
        "insufficient_credit",
        "Not enough available credit, or `budget_exceeded`: the month's budget would be passed",
        "insufficient credit: 1.790000 USD more is needed (available 0.500000 USD); add credit "
        "to the wallet and retry",
    ),
    404: ("not_found", "No such object (also another account's)", "no rental rnt_x"),
    409: (
        "conflict",
        "The object's state forbids it, or `price_changed`: the offer costs more than expected",
        "the rental is terminated",
    ),
    422: (
        "invalid_request",
        "Bad input; `param` names the field",
        "limit: Input should be less than or equal to 500",
    ),
    502: ("provider_error", "The provider failed to act", "aivory answered 500"),
    503: (
        "no_capacity",
        "No provider could start it (see `attempts`), `not_configured`, or `busy`: retry",
        "no provider could start this rental; see attempts",
    ),
}


# An example of each main body, shown by /docs and /redoc beside its schema.
EXAMPLES: dict[str, dict[str, Any]] = {
    "Offer": {
        "id": "computegpu:cloud:rtx-4090:1x:spot",
        "provider": "computegpu",
        "gpu": "RTX 4090",
        "gpu_count": 1,
        "vram_gb": 24,
        "price_per_gpu_hour": "0.260000",
        "price_per_hour": "0.260000",
        "tier": "spot",
        "interruption_probability": 0.05,
        "interruption_source": "estimated",
        "effective_price_per_gpu_hour": "0.266667",
        "region": "DE",
        "country": "DE",
        "continent": "EU",
        "slice": None,
        "gpu_fraction": 1.0,
        "models": ["llama3"],
        "instance_type": "container",
        "available": True,
        "available_count": 3,
        "updated_at": "2026-01-01T00:00:00Z",
        "stale": False,
    },
    "Rental": {
        "id": "rnt_4f2a9c",
        "object": "rental",
        "status": "running",
        "provider": "computegpu",
        "offer_id": "computegpu:cloud:rtx-4090:1x:spot",
        "gpu": "RTX 4090",
        "gpu_count": 1,
        "tier": "spot",
        "region": "DE",
        "price_per_hour": "0.260000",
        "hold": "0.260000",
        "cost": "0.014444",
        "billed_seconds": 200,
        "attempts": [{"provider": "aivory", "offer_id": "aivory:x", "error": "no_capacity"}],
        "connect_url": "/v1/rentals/rnt_4f2a9c/connect/",
        "created_at": "2026-01-01T00:00:00Z",
        "started_at": "2026-01-01T00:00:20Z",
        "ended_at": None,
        "max_duration_seconds": 7200,
        "max_cost": "5.000000",
        "idle_timeout_seconds": None,
        "last_activity_at": None,
        "limits_left": {
            "max_duration_seconds": 7000,
            "max_cost": "4.985556",
            "idle_timeout_seconds": None,
        },
    },
    "Wallet": {"balance": "25.000000", "held": "0.260000", "available": "24.740000"},
    "GpuRow": {
        "gpu": "RTX 4090",
        "vram_gb": 24,
        "offers": 12,
        "providers": ["aivory", "computegpu", "icgpu"],
        "min_on_demand_price": "0.340000",
        "min_spot_price": "0.260000",
        "available_count": 31,
    },
    "SpotRow": {
        "provider": "computegpu",
        "region": "DE",
        "gpu": "RTX 4090",
        "spot_price": "0.260000",
        "on_demand_price": "0.440000",
        "savings_pct": 40.9,
        "interruption_probability": 0.05,
        "interruption_source": "estimated",
        "risk_bucket": "5-10%",
        "effective_price": "0.266667",
        "updated_at": "2026-01-01T00:00:00Z",
        "spot_offer_id": "computegpu:cloud:rtx-4090:1x:spot",
        "on_demand_offer_id": "computegpu:cloud:rtx-4090:1x",
    },
    "EntryOut": {
        "id": 42,
        "kind": "charge",
        "amount": "0.014444",
        "balance_after": "24.985556",
        "held_after": "0.245556",
        "reference": "rnt_4f2a9c",
        "hold_id": "hld_91c3",
        "created_at": "2026-01-01T00:03:20Z",
    },
    "TopupOut": {
        "id": "top_7d1e",
        "amount": "25.000000",
        "currency": "USD",
        "status": "pending",
        "client_secret": "pi_3Nq_secret_x",
        "payment_intent_id": "pi_3Nq",
        "checkout_url": None,
        "created_at": "2026-01-01T00:00:00Z",
    },
    "Budget": {
        "monthly_limit": "50.00",
        "spent": "12.400000",
        "held": "0.260000",
        "period_start": "2026-01-01T00:00:00Z",
        "period_end": "2026-02-01T00:00:00Z",
        "alert_at": ["0.5", "0.9"],
        "low_balance": "5.00",
    },
}


class Health(BaseModel):
    """`/healthz`: 200 with `ok` while the database answers, else 503 with `unavailable`."""

    model_config = ConfigDict(extra="allow")

    status: str = Field(examples=["ok"])
    database: dict[str, Any] = Field(description="`status`, `latency_ms`, `error`")
    scheduler: dict[str, Any] = Field(description="Whether the jobs run, and each one's last run")
    providers: dict[str, dict[str, Any]] = Field(description="Each provider's listing health")


HEALTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    503: {"model": Health, "description": "The database does not answer"}
}


def _example(status: int) -> dict[str, Any]:
    code, _, message = ERRORS[status]
    extra = {"param": "limit"} if status == 422 else {}
    return error_body(code, message, **extra)


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route: the error body for each status it can answer."""
    return {
        status: {
            "model": ErrorBody,
            "description": ERRORS[status][1],
            "content": {"application/json": {"example": _example(status)}},
        }
        for status in statuses
    }


def _openapi_response(status: int) -> dict[str, Any]:
    schema = {"$ref": _REF.format(model="ErrorBody")}
    return {
        "description": ERRORS[status][1],
        "content": {"application/json": {"schema": schema, "example": _example(status)}},
    }


def declare_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Declare 422 and 401 in the API's error shape on every operation that can answer them."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    error_schema = ErrorBody.model_json_schema(ref_template=_REF)
    components.update(error_schema.pop("$defs", {}))
    components["ErrorBody"] = error_schema
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if "422" in responses or operation.get("parameters") or "requestBody" in operation:
                responses["422"] = _openapi_response(422)
            if "requestBody" in operation and "400" not in responses:
                responses["400"] = _openapi_response(400)
            if operation.get("security") and "401" not in responses:
                responses["401"] = _openapi_response(401)
    for name, example in EXAMPLES.items():
        if name in components:
            components[name]["examples"] = [example]
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    return schema


def _serve(body: bytes) -> Callable[[], Awaitable[HTMLResponse]]:
    async def page() -> HTMLResponse:
        return HTMLResponse(body, headers=DOCS_HEADERS)

    return page


def install_docs(app: FastAPI) -> None:
    """Serve `/docs` and `/redoc` from the broker alone (the app is made without FastAPI's own)."""
    app.mount(_ASSETS, StaticFiles(directory=str(files("fastapi_offline") / "static")))
    favicon = f"{_ASSETS}/favicon.png"
    pages = {
        "/docs": get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{_ASSETS}/swagger-ui.css",
            swagger_favicon_url=favicon,
        ),
        "/redoc": get_redoc_html(
            openapi_url="/openapi.json",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=favicon,
            with_google_fonts=False,
        ),
    }
    for path, html in pages.items():
        app.add_api_route(path, _serve(bytes(html.body)), include_in_schema=False)


def install_openapi(app: FastAPI) -> None:
    """Make `app.openapi()` finish the generated document with `declare_errors`, and serve it
    as `/docs` and `/redoc`."""
    install_docs(app)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = declare_errors(generate())
        return app.openapi_schema

    setattr(app, "openapi", openapi)  # noqa: B010 (a plain assignment reads as a method override)
