"""Brokers served over loopback next to every simulator (the connect proxy's suite setup), with
helpers to rent under limits and to run the status and metering jobs on the broker's hand-moved
clock: a limit is judged on that clock, never on wall time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from broker.app import create_app
from broker.rentals.meter import MeterReport
from proxy.settings import ProxySettings
from tests.brokers import BrokerHost, FakeClock, sim_adapters
from tests.proxy.conftest import WORKLOADS
from tests.proxy.conftest import Broker as ProxyBroker
from tests.proxy.conftest import sims as sims

TICK = 15  # seconds between meter runs, as the default GPUBROKER_METER_SECONDS


@dataclass
class Broker(ProxyBroker):
    @property
    def clock(self) -> FakeClock:
        clock: FakeClock = self.app.state.rentals.clock
        return clock

    def offer(self, provider: str) -> dict[str, Any]:
        """The provider's plain offer, as the proxy suite rents it."""
        _, filters, prefix = WORKLOADS[provider]
        offers = self.api.get(
            "/v1/offers", params={"provider": provider, "gpu_count": 1, "limit": 500, **filters}
        )
        assert offers.status_code == 200, offers.text
        return next(o for o in offers.json()["data"] if o["id"].startswith(prefix))

    def rent_limited(self, provider: str, **limits: Any) -> dict[str, Any]:
        """A running rental of the provider's plain workload under `limits`."""
        workload, _, _ = WORKLOADS[provider]
        body = {"offer_id": self.offer(provider)["id"], **workload, **limits}
        created = self.api.post("/v1/rentals", json=body, headers=self.headers)
        assert created.status_code == 201, created.text
        return self.wait_status(created.json()["id"], "running", self.headers)

    def get(self, rental_id: str) -> dict[str, Any]:
        response = self.api.get(f"/v1/rentals/{rental_id}", headers=self.headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def tick(self, seconds: int = TICK) -> MeterReport:
        """Move the clock one meter interval, follow the providers, then meter."""
        self.clock.advance(seconds)
        self.app.state.status_sync.run()
        report: MeterReport = self.app.state.meter.run()
        return report

    def ticks_until_ended(self, rental_id: str, most: int = 200) -> int:
        """Meter ticks until the rental is no longer running; how many it took."""
        for count in range(1, most + 1):
            self.tick()
            if self.get(rental_id)["status"] != "running":
                return count
        raise AssertionError(f"rental {rental_id} still runs after {most} ticks")


@pytest.fixture
def make_limited(broker_host: BrokerHost) -> Callable[..., Broker]:
    """A broker on this test's database; `settings` overrides any core setting."""

    def build(**settings: Any) -> Broker:
        app = create_app(
            broker_host.settings(**settings),
            adapters=sim_adapters(broker_host.sims, timeout_seconds=2.0),
            start_jobs=False,
            clock=FakeClock(),
            proxy_settings=ProxySettings.model_validate({}),  # defaults, not the environment
        )
        return broker_host.serve(app, Broker)

    return build


@pytest.fixture
def limited(make_limited: Callable[..., Broker]) -> Broker:
    return make_limited()
