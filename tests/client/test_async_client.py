"""`broker.client.AsyncClient` against a live broker: the same calls, awaited."""

from __future__ import annotations

import asyncio

import pytest

from broker.client import AsyncClient, BrokerError
from tests.cli.live import Live


def test_async_client_pages_rents_and_raises(live: Live) -> None:
    async def scenario() -> None:
        async with AsyncClient(live.url, live.api_key) as client:
            offers = [o async for o in client.iter_offers(provider="empiriolabs", limit=2)]
            assert len(offers) > 2
            one = next(o for o in offers if o.gpu_count == 1)
            rental = await client.rent(one.id, mode="custom", image="busybox", ports=[80])
            running = await client.wait(rental.id, "running", timeout=30, interval=0.05)
            assert running.status == "running"
            assert (await client.terminate(rental.id)).status == "terminated"
            with pytest.raises(BrokerError) as missing:
                await client.rental("rnt_nothing")
            assert missing.value.status == 404

    asyncio.run(scenario())
