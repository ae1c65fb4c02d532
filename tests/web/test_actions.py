"""Acting from the dashboard in headless Chromium: rent an offer, watch it run, end it, top up.

The broker rents through the provider simulators over HTTP; the status sync is run by the test
(no background jobs), so the dashboard only ever shows what the API says. Screenshots of each
step are kept in test-artifacts/.
"""

from __future__ import annotations

import json
import re
import time
from decimal import Decimal

import httpx
from playwright.sync_api import Locator, Page, Request, Route, expect

from tests.brokers import bearer
from tests.web.conftest import ARTIFACTS, Broker, Tab

POLLS = 240


def sign_in(page: Page, broker: Broker, path: str = "/") -> None:
    page.goto(broker.url + path)
    page.fill("#api-key", broker.api_key)
    page.click("#key-use")
    expect(page.locator("#wallet-balance")).not_to_have_text("-")


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def first_rentable(page: Page) -> Locator:
    row = page.locator("#offers-table tbody tr", has=page.locator("button.rent:enabled")).first
    expect(row).to_be_visible()
    return row


def sync_until(broker: Broker, page: Page, selector: str) -> None:
    """Run the status sync until the dashboard shows `selector` (it refreshes by itself)."""
    for _ in range(POLLS):
        broker.app.state.status_sync.run()
        if page.locator(selector).count():
            return
        time.sleep(0.1)
    raise AssertionError(f"the dashboard never showed {selector}")


def usd(amount: str, places: int = 6) -> str:
    """As the dashboard writes money: trailing zeros dropped, at least two decimals."""
    text = f"{Decimal(amount):.{places}f}".rstrip("0")
    whole, _, fraction = text.partition(".")
    return f"${whole}.{fraction.ljust(2, '0')}"


def test_rent_see_it_run_terminate_and_see_the_cost(live: Broker, tab: Tab) -> None:
    page = tab.page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live.url)
    sign_in(page, live, "/?tier=on_demand")
    rents: list[Request] = []
    page.on("request", lambda r: rents.append(r) if r.method == "POST" else None)

    row = first_rentable(page)
    offer_id = row.get_attribute("data-offer-id")
    price = row.locator("td").nth(3).inner_text()
    row.locator("button.rent").click()
    dialog = page.locator("#rent-dialog")
    expect(dialog).to_be_visible()
    summary = page.locator("#rent-summary")
    expect(summary).to_contain_text(f"{usd(price)}/GPU-h")
    expect(summary).to_contain_text("Credit hold")
    expect(summary).to_contain_text("on-demand: not interrupted")
    page.fill("#rent-form input[name=image]", "nginx")
    page.fill("#rent-form input[name=ports]", "80")
    page.fill("#rent-form input[name=max_cost]", "5")
    page.fill("#rent-form input[name=max_hours]", "2")
    shot(page, "rent-dialog.png")
    page.click("#rent-confirm")

    key = page.locator("#rental-key")
    expect(key).to_have_value(re.compile(r"^rk_.+"))
    body = json.loads(rents[-1].post_data or "{}")
    assert body["offer_id"] == offer_id and body["expected_price"] == price
    assert body["max_cost"] == "5" and body["max_duration_seconds"] == 7200
    assert rents[-1].headers["idempotency-key"]
    page.click("#rental-key-copy")
    expect(page.locator("#rental-key-status")).to_have_text("copied")
    assert page.evaluate("navigator.clipboard.readText()") == key.input_value()
    rental_id = page.locator("#rent-result-text").inner_text().split()[0]
    connect = f"/v1/rentals/{rental_id}/connect/?gpubroker_key={key.input_value()}"
    assert page.locator("#rental-connect").get_attribute("href") == connect
    page.click("#rent-done")
    expect(dialog).to_be_hidden()

    running = f"#rentals-table tr[data-rental-id='{rental_id}'][data-status=running]"
    sync_until(live, page, running)
    rental = httpx.get(f"{live.url}/v1/rentals/{rental_id}", headers=bearer(live.api_key)).json()
    expect(page.locator("#burn-rate")).to_have_text(f"{usd(rental['price_per_hour'])}/h")
    expect(page.locator("#time-left")).to_contain_text("at this rate")
    cells = page.locator(running).locator("td")
    expect(cells.nth(7)).to_contain_text(re.compile(r"max 2 h · (2 h|1 h \d+ min) left"))
    expect(cells.nth(7)).to_contain_text(re.compile(r"max \$5\.00 · \$[45]\.\d\d left"))
    # The tab keeps the rental key it was shown, so the row's link opens the workload too.
    expect(cells.nth(9).locator("a.connect")).to_have_attribute("href", connect)
    shot(page, "rental-running.png")

    page.locator(running).get_by_role("button", name="Terminate").click()
    expect(page.locator("#confirm-text")).to_contain_text(f"Terminate {rental_id}")
    page.click("#confirm-ok")
    ended = f"#rentals-table tr[data-rental-id='{rental_id}'][data-status=terminated]"
    expect(page.locator(ended)).to_have_count(1)
    final = httpx.get(f"{live.url}/v1/rentals/{rental_id}", headers=bearer(live.api_key)).json()
    assert final["status"] == "terminated"
    expect(page.locator("#rentals-status")).to_have_text(
        f"{rental_id} terminated · final cost {usd(final['cost'])}"
    )
    expect(page.locator(ended).locator("td").nth(6)).to_have_text(final["cost"])
    expect(page.locator("#burn-rate")).to_have_text("$0.00/h")
    expect(page.locator("#time-left")).to_have_text("nothing running")
    expect(page.locator("#ledger-table tbody tr").first).to_be_visible()
    shot(page, "rental-terminated.png")
    page.click("#key-forget")
    assert page.evaluate("sessionStorage.length") == 0  # the rental key goes with the account key


def test_stop_and_start_from_the_rentals_table(live: Broker, tab: Tab) -> None:
    page = tab.page
    body = {"gpu": "RTX 4090", "image": "nginx", "ports": [80]}
    rented = httpx.post(f"{live.url}/v1/rentals", json=body, headers=bearer(live.api_key))
    assert rented.status_code == 201, rented.text
    rental_id = rented.json()["id"]
    sign_in(page, live)
    row = f"#rentals-table tr[data-rental-id='{rental_id}']"
    sync_until(live, page, f"{row}[data-status=running]")

    page.locator(row).get_by_role("button", name="Stop").click()
    expect(page.locator(f"{row}[data-status=stopped]")).to_have_count(1)
    expect(page.locator("#rentals-status")).to_have_text(f"{rental_id} stopped")
    expect(page.locator("#burn-rate")).to_have_text("$0.00/h")
    expect(page.locator(row).locator("a.connect")).to_have_count(0)

    page.locator(row).get_by_role("button", name="Start").click()
    expect(page.locator("#rentals-status")).to_have_text(f"{rental_id} is starting")
    sync_until(live, page, f"{row}[data-status=running]")
    # Rented elsewhere: this tab has no rental key to put in the link.
    expect(page.locator(row).locator("a.connect")).to_have_attribute(
        "href", rented.json()["connect_url"]
    )


def test_a_dearer_offer_shows_the_new_price_before_renting(live: Broker, tab: Tab) -> None:
    page = tab.page
    sign_in(page, live, "/?tier=on_demand")
    sent: list[dict[str, object]] = []

    def refuse_once(route: Route) -> None:
        sent.append(json.loads(route.request.post_data or "{}"))
        if len(sent) == 1:
            route.fulfill(
                status=409,
                json={
                    "error": {
                        "code": "price_changed",
                        "message": "the offer now costs more",
                        "offer_id": sent[0]["offer_id"],
                        "expected_price": sent[0]["expected_price"],
                        "price": "9.990000",
                    }
                },
            )
        else:
            route.continue_()

    page.route("**/v1/rentals", refuse_once)
    row = first_rentable(page)
    row.locator("button.rent").click()
    page.fill("#rent-form input[name=image]", "nginx")
    page.fill("#rent-form input[name=ports]", "80")
    page.click("#rent-confirm")
    status = page.locator("#rent-status")
    expect(status).to_contain_text("The price changed: now $9.99/GPU-h")
    expect(page.locator("#rent-summary")).to_contain_text("$9.99/GPU-h")
    expect(page.locator("#rental-key")).to_be_hidden()
    page.click("#rent-confirm")
    expect(page.locator("#rental-key")).to_be_visible()
    assert sent[1]["expected_price"] == "9.990000"
    assert sent[0]["expected_price"] != "9.990000"


def test_a_top_up_is_paid_on_the_stand_in_and_credits_the_wallet(live: Broker, tab: Tab) -> None:
    page = tab.page
    sign_in(page, live)
    expect(page.locator("#wallet-balance")).to_have_text("50.000000 USD")
    page.fill("#topup-form input[name=amount]", "25.00")
    page.click("#topup-create")
    pay = page.locator("#topup-pay")
    expect(pay).to_be_visible()
    expect(page.locator("#topup-status")).to_contain_text("Payment of $25.00 created")
    checkout = page.context.new_page()
    checkout.goto(pay.get_attribute("href") or "")
    checkout.click("#pay")
    expect(checkout.locator("#paid")).to_contain_text("credited")
    checkout.close()
    page.reload()
    expect(page.locator("#wallet-balance")).to_have_text("75.000000 USD")
    first = page.locator("#ledger-table tbody tr").first
    expect(first.locator("td").nth(2)).to_have_text("25.000000")


def test_docs_and_redoc_render_with_no_request_leaving_the_broker(broker: Broker, tab: Tab) -> None:
    page = tab.page
    outside: list[str] = []

    def only_the_broker(route: Route) -> None:
        if route.request.url.startswith(broker.url + "/"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_broker)
    page.goto(broker.url + "/docs")
    expect(page.locator(".opblock").first).to_be_visible()
    assert page.locator(".opblock").count() >= 20
    page.goto(broker.url + "/redoc")
    # ReDoc lays out the whole document before it shows any of it.
    stop = page.get_by_text("/v1/rentals/{rental_id}/stop").first
    expect(stop).to_be_attached(timeout=60_000)
    expect(page.locator("img[alt='redocly logo']")).to_have_count(0)
    assert outside == []


def test_phone_layout_sorting_slices_and_the_on_demand_verdict(broker: Broker, tab: Tab) -> None:
    page = tab.page
    page.set_viewport_size({"width": 390, "height": 844})
    slice_offer = {
        **json.loads(httpx.get(f"{broker.url}/v1/offers?limit=1").text)["data"][0],
        "id": "beta:mig",
        "slice": "mig-1g.10gb",
        "gpu_fraction": 0.125,
    }
    on_demand_wins = {
        "gpu": "RTX 4090",
        "gpus": ["RTX 4090"],
        "region": None,
        "rows": [
            {
                "gpu": "RTX 4090",
                "provider": "alpha",
                "region": "EU",
                "spot_price": "0.400000",
                "on_demand_price": None,
                "effective_price": "0.450000",
                "spot_offer_id": "a:s",
                "on_demand_offer_id": None,
                "savings_pct": None,
                "interruption_probability": 0.2,
                "risk_bucket": ">20%",
            },
            {
                "gpu": "RTX 4090",
                "provider": "beta",
                "region": "US",
                "spot_price": None,
                "on_demand_price": "0.350000",
                "effective_price": "0.350000",
                "spot_offer_id": None,
                "on_demand_offer_id": "b:o",
                "savings_pct": None,
                "interruption_probability": None,
                "risk_bucket": None,
            },
        ],
        "cheapest": None,
    }
    page.route(
        re.compile(r"/v1/offers\?.*slices=true"),
        lambda route: route.fulfill(
            json={"object": "list", "data": [slice_offer], "next_cursor": None, "providers": {}}
        ),
    )
    page.route(re.compile(r"/v1/spot-prices\?"), lambda route: route.fulfill(json=on_demand_wins))
    sign_in(page, broker)
    expect(page.locator("#spot-status")).to_contain_text("on-demand wins: beta, US, 0.350000")

    prices = page.locator("#offers-table tbody td:nth-child(4)")
    expect(prices).to_have_count(7)
    header = page.locator("#offers-table th", has_text="$/GPU-h")
    header.click()
    header.click()
    expect(header).to_have_attribute("aria-sort", "descending")
    shown = [Decimal(text) for text in prices.all_inner_texts()]
    assert shown == sorted(shown, reverse=True)

    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    first = page.locator("#offers-table tbody td").first
    assert first.get_attribute("data-label") == "GPU"
    assert first.evaluate("node => getComputedStyle(node).display") == "flex"
    shot(page, "dashboard-phone.png")

    page.select_option("#offer-filters select[name=slices]", "true")
    expect(page.locator("tr[data-offer-id='beta:mig'] .slice")).to_have_text(
        "slice: mig-1g.10gb, 1/8 of a card"
    )
