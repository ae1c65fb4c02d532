"""The broker's Python client: `Client` (blocking) and `AsyncClient` (asyncio), over httpx.

    from broker.client import Client, BrokerError

    with Client() as broker:  # GPUBROKER_URL / GPUBROKER_API_KEY, else the saved profile
        offer = next(broker.iter_offers(gpu="RTX 4090", tier="spot", sort="effective_price"))
        rental = broker.rent(offer.id, expected_price=offer.price_per_gpu_hour, image="busybox")
        rental = broker.wait(rental.id, "running", timeout=600)

Answers are the pydantic models the server answers with (`broker.schemas`); lists have `iter_*`
twins that follow `next_cursor`; any refusal is a `BrokerError` with `status`, `code`,
`message`, `param` and `attempts`.
"""

from broker.client.aio import AsyncClient
from broker.client.calls import OfferFilters, RentSpec
from broker.client.config import DEFAULT_URL
from broker.client.errors import BrokerError
from broker.client.sync import Client

__all__ = ["DEFAULT_URL", "AsyncClient", "BrokerError", "Client", "OfferFilters", "RentSpec"]
