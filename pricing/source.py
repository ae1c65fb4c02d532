"""What the catalog needs of a provider, stated on the catalog's side.

The refresh lists each provider's offers on a schedule and closes its connections at the end;
that is all it asks (`OfferSource`), and the one failure it expects (`SourceError`, whose
`message` it records as the reason a provider went stale). The adapters in `providers` satisfy
the protocol and raise subclasses of the error, so the dependency points from the adapters down
to the catalog and never back up. A source whose catalog can be very large may also stream it
(`StreamingOfferSource`), so the refresh never holds the provider's whole answer at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

from pricing.offer import Offer


class SourceError(Exception):
    """A source could not list its offers; `message` says why and is safe to show to users."""

    message: str


class OfferListing(Protocol):
    """One fetch of a source's catalog: its offers, and a note for each item it skipped."""

    @property
    def offers(self) -> Sequence[Offer]: ...

    @property
    def skipped(self) -> Sequence[str]: ...


class OfferSource(Protocol):
    """What the refresher needs of a provider: its current offers, and to let go at the end."""

    def list_offers(self) -> OfferListing: ...

    def close(self) -> None: ...


@runtime_checkable
class StreamingOfferSource(OfferSource, Protocol):
    """A source that can hand its offers over as its answer arrives, never holding it whole.

    The iterator raises `SourceError` where the answer fails part way; a note for each item it
    skips is appended to `skipped` as it goes.
    """

    def stream_offers(self, skipped: list[str]) -> Iterator[Offer]: ...
