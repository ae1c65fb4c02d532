"""A pay page for the Stripe stand-in, so a top-up can be completed from a browser in the demo.

`add_checkout` adds `GET /checkout/{intent_id}` (the amount and a Pay button) and its form's
`POST`, which plays the customer paying (`StripeStandin.pay`) and delivers the signed
`payment_intent.succeeded` event to the broker's webhook, as Stripe would after a real checkout.
The broker links to the page when `GPUBROKER_STRIPE_CHECKOUT_URL` points at it (the demo sets it).
"""

from __future__ import annotations

import html

from fastapi.responses import HTMLResponse

from providers.simulators.stripe import StripeStandin, deliver

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Stripe stand-in: pay</title></head>
<body><h1>Stripe stand-in</h1>{body}</body></html>"""


def _page(body: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(body=body), status_code=status_code)


def add_checkout(standin: StripeStandin, webhook_url: str, webhook_secret: str) -> None:
    """Serve the pay page on `standin.app`; paying delivers the event to `webhook_url`."""

    def _amount(intent_id: str) -> str | None:
        intent = standin.intents.get(intent_id)
        if intent is None:
            return None
        return f"{intent['amount'] / 100:.2f} {str(intent['currency']).upper()}"

    @standin.app.get("/checkout/{intent_id}", include_in_schema=False)
    def checkout(intent_id: str) -> HTMLResponse:
        amount = _amount(intent_id)
        if amount is None:
            return _page("<p>No such payment.</p>", 404)
        if standin.intents[intent_id]["status"] == "succeeded":
            return _page(f"<p id='paid'>{html.escape(amount)} is already paid.</p>")
        return _page(
            f"<p>Top-up of <strong id='amount'>{html.escape(amount)}</strong> "
            f"({html.escape(intent_id)}).</p>"
            f"<form method='post'><button type='submit' id='pay'>Pay {html.escape(amount)}"
            "</button></form><p>This is a local stand-in: no card is charged.</p>"
        )

    @standin.app.post("/checkout/{intent_id}", include_in_schema=False)
    def pay(intent_id: str) -> HTMLResponse:
        amount = _amount(intent_id)
        if amount is None:
            return _page("<p>No such payment.</p>", 404)
        standin.pay(intent_id)
        answer = deliver(webhook_url, standin.event(intent_id), webhook_secret)
        if answer.is_success:
            outcome = f"the broker answered: {answer.json().get('outcome')}"
        else:
            outcome = f"the broker refused the event ({answer.status_code})"
        return _page(
            f"<p id='paid'>Paid {html.escape(amount)}; {html.escape(outcome)}. "
            "You can close this tab.</p>"
        )
