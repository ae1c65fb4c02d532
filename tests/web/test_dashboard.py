"""The dashboard in headless Chromium: filters, the spot chart, the account, and escaping."""

from __future__ import annotations

import re
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import Page, Route, expect

from tests.web.conftest import ARTIFACTS, Broker, Tab
from tests.web.spot_catalog import SPOT_CATALOG

SPOT_4090 = ["alpha:4090:eu:spot", "beta:4090:eu:spot", "alpha:4090:us:spot"]


def offer_ids(page: Page):  # type: ignore[no-untyped-def]
    return page.locator("#offers-table tbody td.id")


def query_of(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.evaluate("location.href")).query)


def test_typed_filters_narrow_the_table_and_the_url_shares_them(broker: Broker, tab: Tab) -> None:
    page = tab.page
    page.goto(broker.url + "/")
    expect(offer_ids(page)).to_have_count(7)  # every available offer of the catalog
    page.fill("#offer-filters input[name=gpu]", "rtx 4090")
    page.select_option("#offer-filters select[name=tier]", "spot")
    expect(offer_ids(page)).to_have_text(SPOT_4090)
    expect(page.locator("#offers-status")).to_have_text("3 offers")
    query = query_of(page)
    assert query["gpu"] == ["rtx 4090"] and query["tier"] == ["spot"]

    page.fill("#offer-filters input[name=max_price]", "0.3")
    expect(offer_ids(page)).to_have_text(SPOT_4090[:2])

    shared = page.evaluate("location.href")
    page.goto("about:blank")
    page.goto(shared)
    expect(offer_ids(page)).to_have_text(SPOT_4090[:2])
    expect(page.locator("#offer-filters input[name=gpu]")).to_have_value("rtx 4090")
    expect(page.locator("#offer-filters select[name=tier]")).to_have_value("spot")


def test_a_bad_filter_shows_the_apis_message(broker: Broker, tab: Tab) -> None:
    page = tab.page
    page.goto(broker.url + "/?gpu=RTX+4909")
    expect(page.locator("#offers-status")).to_contain_text("did you mean RTX 4090")
    expect(page.locator("#offers-status")).to_have_class(re.compile(r"\berror\b"))
    expect(offer_ids(page)).to_have_count(0)


def test_gpu_overview_lists_each_model(broker: Broker, tab: Tab) -> None:
    page = tab.page
    page.goto(broker.url + "/")
    rows = page.locator("#gpus-table tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0).locator("td").nth(0)).to_have_text("RTX 4090")
    expect(rows.nth(0).locator("td").nth(3)).to_have_text("0.350000")
    expect(rows.nth(0).locator("td").nth(4)).to_have_text("0.287000")
    rows.nth(0).get_by_role("button", name="Offers").click()
    expect(offer_ids(page)).to_have_count(5)
    assert query_of(page)["gpu"] == ["RTX 4090"]


def path_levels(d: str) -> list[float]:
    """The y coordinates a step path visits, in order (higher price: smaller y)."""
    start = float(re.match(r"M[\d.]+,([\d.]+)", d).group(1))  # type: ignore[union-attr]
    return [start, *(float(v) for v in re.findall(r"V([\d.]+)", d))]


def test_spot_chart_draws_one_series_per_provider_and_the_on_demand_level(
    broker: Broker, tab: Tab
) -> None:
    page = tab.page
    page.goto(broker.url + "/")
    row = page.locator("#gpus-table tbody tr", has_text="RTX 4090")
    row.get_by_role("button", name="Spot chart").click()
    chart = page.locator("#spot-chart[data-state=ready][data-gpu='RTX 4090']")
    expect(chart).to_have_count(1)
    series = chart.locator("path.series")
    expect(series).to_have_count(2)
    assert [series.nth(i).get_attribute("data-provider") for i in range(2)] == ["alpha", "beta"]
    for i, changes in ((0, 2), (1, 2)):
        levels = path_levels(series.nth(i).get_attribute("d") or "")
        assert len(levels) == changes + 2  # start, each change, and the level held until now
        assert levels == sorted(levels)  # every recorded move was down, so y only grows
    reference = chart.locator("line.on-demand-ref")
    expect(reference).to_have_count(1)
    assert reference.get_attribute("y1") == reference.get_attribute("y2")
    expect(chart.locator("text.ref-label")).to_have_text("on-demand $0.35")
    expect(page.locator("#spot-legend li")).to_have_text(["alpha", "beta", "cheapest on-demand"])
    expect(page.locator("#spot-table tbody tr")).to_have_count(3)
    expect(page.locator("#spot-status")).to_contain_text("alpha, Quebec, CA, 0.289899 effective")
    assert query_of(page)["spot_gpu"] == ["RTX 4090"]


def test_api_key_shows_the_wallet_and_rentals_and_stays_in_the_session(
    broker: Broker, tab: Tab
) -> None:
    page = tab.page
    page.goto(broker.url + "/")
    expect(page.locator("#account")).to_be_hidden()
    page.fill("#api-key", broker.api_key)
    page.click("#key-use")
    expect(page.locator("#wallet-balance")).to_have_text("12.500000 USD")
    expect(page.locator("#wallet-available")).to_have_text("12.500000")
    has_rentals = "/v1/rentals" in broker.app.openapi()["paths"]
    expected = "no rentals yet" if has_rentals else "rentals are not available on this broker"
    expect(page.locator("#rentals-status")).to_have_text(expected)
    expect(page.locator("#spot-chart[data-state=ready]")).to_have_count(1)

    assert page.evaluate("sessionStorage.getItem('gpubroker.apiKey')") == broker.api_key
    assert page.evaluate("localStorage.length") == 0
    assert page.evaluate("document.cookie") == ""
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000

    keyed = []
    for request in tab.requests:
        assert request.url.startswith(broker.url + "/"), request.url
        if "authorization" in request.all_headers():
            keyed.append(urlsplit(request.url).path)
    assert keyed and set(keyed) <= {"/v1/wallet", "/v1/rentals", "/v1/wallet/ledger"}

    page.reload()
    expect(page.locator("#wallet-balance")).to_have_text("12.500000 USD")
    page.click("#key-forget")
    expect(page.locator("#account")).to_be_hidden()
    assert page.evaluate("sessionStorage.length") == 0


def test_a_wrong_key_is_reported(broker: Broker, tab: Tab) -> None:
    page = tab.page
    page.goto(broker.url + "/")
    page.fill("#api-key", "not-a-key")
    page.click("#key-use")
    expect(page.locator("#account-status")).to_contain_text("unknown or revoked")
    expect(page.locator("#wallet-balance")).to_have_text("-")


def test_rentals_missing_or_listed_with_status_and_cost(broker: Broker, tab: Tab) -> None:
    page = tab.page
    answers = [
        {"status": 404, "json": {"error": {"code": "not_found", "message": "no such endpoint"}}},
        {
            "status": 200,
            "json": {
                "object": "list",
                "next_cursor": None,
                "data": [
                    {
                        "id": "rnt_1",
                        "status": "running",
                        "gpu": "<b>RTX 4090</b>",
                        "gpu_count": 2,
                        "provider": "beta",
                        "tier": "spot",
                        "price_per_hour": "0.600000",
                        "cost": "1.234567",
                        "started_at": "2026-11-20T10:00:00Z",
                    }
                ],
            },
        },
    ]

    def answer(route: Route) -> None:
        route.fulfill(**answers[0])

    page.route(re.compile(r"/v1/rentals(\?.*)?$"), answer)
    page.goto(broker.url + "/")
    page.fill("#api-key", broker.api_key)
    page.click("#key-use")
    expect(page.locator("#rentals-status")).to_have_text("rentals are not available on this broker")
    expect(page.locator("#rentals-table")).to_be_hidden()

    answers.pop(0)
    page.reload()
    cells = page.locator("#rentals-table tbody tr[data-rental-id=rnt_1] td")
    expect(cells).to_have_count(10)
    expect(cells.nth(1)).to_have_text("running")
    expect(cells.nth(2)).to_have_text("2\N{MULTIPLICATION SIGN} <b>RTX 4090</b>")
    expect(cells.nth(6)).to_have_text("1.234567")
    expect(page.locator("#rentals-table b")).to_have_count(0)


def test_data_from_providers_is_shown_as_text_never_run(broker: Broker, tab: Tab) -> None:
    hostile = '<img src=x onerror="window.pwned=1">Lab'
    beta = broker.providers["beta"]
    beta.offers = [
        *SPOT_CATALOG["beta"],
        replace(SPOT_CATALOG["beta"][0], id="beta:x", region=hostile),
    ]
    broker.app.state.refresher.refresh("beta")
    page = tab.page
    page.goto(broker.url + "/?region=onerror")
    row = page.locator("#offers-table tbody tr[data-offer-id='beta:x']")
    expect(row.locator("td").nth(8)).to_have_text(hostile)
    expect(page.locator("#offers-table img")).to_have_count(0)
    assert page.evaluate("window.pwned") is None
