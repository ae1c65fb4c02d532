"""What the proxy asks of whoever hosts it: keys, rentals and upstreams, as one interface.

The proxy decides who may reach which workload, but it does not own the database where keys and
rentals live, nor the provider adapters that know where a workload is. The host (the broker)
hands it a `ConnectLookup` at construction, and tells it through `Gatekeeper.invalidate` when
something it may have remembered has changed. Every method is blocking and is run in a worker
thread; none is called for a request that the proxy can answer from what it remembers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from providers.rental import Upstream


@dataclass(frozen=True)
class RentalView:
    """What the proxy needs of a rental, detached from any database session."""

    id: str
    account_id: str
    status: str
    provider: str | None
    handle: str | None
    key_hash: str
    ssh: dict[str, Any] | None


class ConnectLookup(Protocol):
    """The host's side of the proxy's checks."""

    def key_digest(self, secret: str) -> str:
        """The stored form of a key (account key or rental key), to compare and to look up."""
        ...

    def rental(self, rental_id: str) -> RentalView | None:
        """The rental as it is now, or None when there is no such rental."""
        ...

    def account_for_key(self, digest: str) -> str | None:
        """The account id of a live account key with this digest; None if unknown or revoked."""
        ...

    def touched(self, rental_id: str) -> None:
        """Traffic reached the rental's workload now (a request, or a WebSocket message from the
        caller). Called on the event loop for each one: it must not block nor do I/O."""
        ...

    def upstream(self, view: RentalView) -> Upstream | None:
        """Where the rental's workload listens (None: reached over SSH only).

        Raises `providers.base.ProviderError` when the provider cannot say, or
        `proxy.errors.ProxyError` for a refusal of the host's own.
        """
        ...
