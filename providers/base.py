"""What every backend provides, and the errors an adapter may raise.

An adapter is a thin HTTP shell around pure parsing functions. It raises only `ProviderError`
subclasses, so the catalog and the rental flow can tell a transient fault (retry, mark stale)
from a refusal (block that offer, region or provider and try the next).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pricing.offer import Offer
from pricing.source import SourceError


class ProviderError(SourceError):
    """A provider could not do what was asked. `message` is safe to show to users (the catalog's
    refresh records it when listing offers fails)."""

    code = "provider_error"

    def __init__(self, provider: str, message: str, *, status: int | None = None) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.message = message
        self.status = status


class ProviderUnavailable(ProviderError):
    """Timeouts, connection failures, 5xx and 429 that outlasted the retries."""


class MalformedResponse(ProviderError):
    """The provider answered with something that is not the documented shape."""


class ProviderRefused(ProviderError):
    """The provider understood and said no (4xx). `reason` says why, in the broker's words."""

    def __init__(
        self, provider: str, message: str, *, status: int | None = None, reason: str = "refused"
    ) -> None:
        super().__init__(provider, message, status=status)
        self.reason = reason


@dataclass(frozen=True)
class ProviderConfig:
    """Where an adapter reaches its provider. The key is never logged or returned.

    `options` holds the provider's own settings, as its registry spec declares them.
    `deployment_id` names the broker deployment: adapters of providers that take a name, label
    or tag put it on every instance they start, so reconciliation can tell its own from others'.
    """

    base_url: str
    api_key: str | None = field(default=None, repr=False)
    timeout_seconds: float = 10.0
    retry_attempts: int = 3
    retry_max_wait_seconds: float = 5.0
    options: Mapping[str, Any] = field(default_factory=dict)
    deployment_id: str | None = None


@dataclass
class OfferPage:
    """A provider's offers from one fetch, plus a note for each item that had to be skipped."""

    offers: list[Offer] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def extend(self, other: OfferPage) -> None:
        self.offers.extend(other.offers)
        self.skipped.extend(other.skipped)


@dataclass(frozen=True)
class OfferFilters:
    """Filters an adapter pushes down to its provider's API where that API has them.

    Pushing down is an optimisation only: callers still filter what comes back. `gpu` is a
    canonical name from `pricing.gpus`; each adapter spells it the way its provider does.
    """

    gpu: str | None = None
    max_price_per_gpu_hour: int | None = None
    min_vram_gb: int | None = None


class Provider(Protocol):
    """The offer side of a backend. Rental operations are added per adapter as they are built."""

    name: str

    def list_offers(self, filters: OfferFilters | None = None) -> OfferPage:
        """Fetch and parse the provider's current catalog (all of it when `filters` is None)."""
        ...

    def close(self) -> None:
        """Release the adapter's connections."""
        ...
