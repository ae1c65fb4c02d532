"""A local stand-in for Stripe's PaymentIntent API, and signed webhook events to go with it.

Point `GPUBROKER_STRIPE_API_BASE` at it and the real `stripe` library talks to it unchanged: it
takes the library's form-encoded `POST /v1/payment_intents` (nested `metadata[...]` keys
included), honours `Idempotency-Key` as Stripe does (same key and parameters: the first response
again; same key, other parameters: an `idempotency_error`), serves `GET /v1/payment_intents/{id}`
and answers in Stripe's JSON shapes. `StripeStandin.pay` plays the customer paying,
`StripeStandin.event` writes the `payment_intent.succeeded` event, and `signed_event` / `deliver`
sign it with the `Stripe-Signature` header Stripe documents (`t=<unix time>,v1=<HMAC-SHA256 of
"t.payload">`) and post it, so tests and the demo can complete a top-up without the network.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import secrets
import threading
import time
from typing import Any
from urllib.parse import parse_qsl

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

API_VERSION = "2025-01-27.acacia"


def _stripe_error(status: int, kind: str, message: str, code: str | None = None) -> JSONResponse:
    error: dict[str, Any] = {"type": kind, "message": message}
    if code:
        error["code"] = code
    return JSONResponse({"error": error}, status_code=status)


def _invalid(message: str, code: str, status: int = 400) -> JSONResponse:
    return _stripe_error(status, "invalid_request_error", message, code)


def decode_form(body: bytes) -> dict[str, Any]:
    """Stripe's form encoding (`metadata[topup_id]=...`) back into nested dictionaries."""
    params: dict[str, Any] = {}
    for key, value in parse_qsl(body.decode(), keep_blank_values=True):
        head, _, rest = key.partition("[")
        path = [head, *[part.rstrip("]") for part in rest.split("[") if rest]]
        target = params
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = value
    return params


def sign_payload(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """A `Stripe-Signature` header value for `payload`."""
    stamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{stamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


def signed_event(event: dict[str, Any], secret: str) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a webhook delivery of `event`, signed with `secret`."""
    payload = json.dumps(event, separators=(",", ":")).encode()
    signature = sign_payload(payload, secret)
    return payload, {"Stripe-Signature": signature, "Content-Type": "application/json"}


def deliver(webhook_url: str, event: dict[str, Any], secret: str) -> httpx.Response:
    """POST `event`, signed, to a webhook endpoint, as Stripe would."""
    payload, headers = signed_event(event, secret)
    return httpx.post(webhook_url, content=payload, headers=headers, timeout=30)


class StripeStandin:
    """The stand-in's state and its FastAPI `app`; serve it with `serve_in_thread(standin.app)`."""

    def __init__(self) -> None:
        self.intents: dict[str, dict[str, Any]] = {}
        self.create_requests: list[dict[str, Any]] = []
        self._idempotent: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self.app = self._build_app()

    def _create(self, params: dict[str, Any], idempotency_key: str | None) -> JSONResponse:
        with self._lock:
            self.create_requests.append({"params": params, "idempotency_key": idempotency_key})
            if idempotency_key in self._idempotent:
                first_params, first_response = self._idempotent[idempotency_key]
                if first_params != params:
                    return _stripe_error(
                        400,
                        "idempotency_error",
                        "Keys for idempotent requests can only be used with the same parameters "
                        "they were first used with.",
                    )
                return JSONResponse(first_response)
            amount = params.get("amount", "")
            if not str(amount).isdigit() or int(amount) < 50:
                return _invalid("Invalid integer: amount", "parameter_invalid_integer")
            if not params.get("currency"):
                return _invalid("Missing required param: currency.", "parameter_missing")
            intent_id = "pi_" + secrets.token_hex(12)
            intent = {
                "id": intent_id,
                "object": "payment_intent",
                "amount": int(amount),
                "amount_capturable": 0,
                "amount_received": 0,
                "currency": params["currency"].lower(),
                "status": "requires_payment_method",
                "client_secret": f"{intent_id}_secret_{secrets.token_urlsafe(18)}",
                "description": params.get("description"),
                "metadata": params.get("metadata", {}),
                "capture_method": "automatic",
                "confirmation_method": "automatic",
                "payment_method_types": ["card"],
                "created": int(time.time()),
                "livemode": False,
            }
            self.intents[intent_id] = intent
            if idempotency_key:
                self._idempotent[idempotency_key] = (params, copy.deepcopy(intent))
            return JSONResponse(intent)

    def _build_app(self) -> FastAPI:
        app = FastAPI(title="Stripe stand-in")

        @app.post("/v1/payment_intents")
        async def create_payment_intent(request: Request) -> JSONResponse:
            if not request.headers.get("authorization", "").removeprefix("Bearer ").strip():
                return _invalid("You did not provide an API key.", "api_key_missing", 401)
            params = decode_form(await request.body())
            return self._create(params, request.headers.get("idempotency-key"))

        @app.get("/v1/payment_intents/{intent_id}")
        def retrieve_payment_intent(intent_id: str) -> JSONResponse:
            with self._lock:
                intent = self.intents.get(intent_id)
                if intent is None:
                    message = f"No such payment_intent: '{intent_id}'"
                    return _invalid(message, "resource_missing", 404)
                return JSONResponse(copy.deepcopy(intent))

        return app

    def pay(self, intent_id: str) -> dict[str, Any]:
        """The customer pays in full: the intent succeeds; returns its new state."""
        with self._lock:
            intent = self.intents[intent_id]
            intent.update(status="succeeded", amount_received=intent["amount"])
            return copy.deepcopy(intent)

    def event(self, intent_id: str, event_type: str = "payment_intent.succeeded") -> dict[str, Any]:
        """A webhook event about the intent as it is now (each call is a new event id)."""
        with self._lock:
            intent = copy.deepcopy(self.intents[intent_id])
        return {
            "id": "evt_" + secrets.token_hex(12),
            "object": "event",
            "api_version": API_VERSION,
            "created": int(time.time()),
            "type": event_type,
            "data": {"object": intent},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
        }
