"""Many parallel rents from one account that can afford exactly three: three win, the rest are
told so (402), nothing else. Real clients, each on its own thread, against a real server."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

from broker.rentals.billing import hold_for
from pricing.money import format_usd, to_micros
from tests.concurrency.conftest import WORKLOAD, Served, race


@pytest.mark.parametrize("parallel", [16, 150])
def test_parallel_rents_win_exactly_what_the_credit_covers(
    serve: Callable[..., Served], parallel: int
) -> None:
    probe = serve(credit="1.00")
    offer = probe.offer()
    hold = hold_for(to_micros(offer["price_per_hour"]), 3600)
    broker = serve(credit=format_usd(3 * hold))
    assert broker.wallet()["available"] == 3 * hold

    body = {"offer_id": offer["id"], **WORKLOAD}
    responses = race(broker.url, broker.headers, [("POST", "/v1/rentals", body)] * parallel)

    codes = Counter(r.status_code for r in responses)
    assert codes == {201: 3, 402: parallel - 3}, [r.text for r in responses if r.status_code > 402]
    for response in responses:
        if response.status_code == 402:
            assert response.json()["error"]["code"] == "insufficient_credit"
    won = [r.json() for r in responses if r.status_code == 201]
    assert len({r["id"] for r in won}) == 3
    assert broker.wallet() == {"balance": 3 * hold, "held": 3 * hold, "available": 0}
    assert broker.invariants().held == 3 * hold
    # Only the winners reached the provider, once each.
    assert broker.counter.count("POST", "/v1/gpu/instances") == 3

    with broker.client() as client:
        for rental in won:
            assert client.delete(f"/v1/rentals/{rental['id']}").status_code == 200
    assert broker.wallet()["held"] == 0
    broker.invariants()
