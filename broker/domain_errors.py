"""The refusals of the broker's domain, in its own words and free of HTTP.

The ledger, accounts, top-ups and the rental lifecycle refuse a request by raising one of these:
a sentence that says what went wrong and what to do about it (never naming a route of the API,
since a CLI or a job may be the caller), plus any fields a caller can act on (`param`, the
`attempts` made, the `missing` amount). What each kind means over HTTP, its status and error code,
is decided in one place, `broker.api.errors`.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A refusal: `message` is safe to show to users, `extra` holds fields beside it."""

    def __init__(self, message: str, /, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra


class Invalid(DomainError):
    """The request is well-formed but asks for something that cannot be (a field names it)."""


class Malformed(DomainError):
    """The request cannot be read at all, e.g. a payload that is not what it claims to be."""


class NotFound(DomainError):
    """What the request names does not exist, or not for this caller."""


class Conflict(DomainError):
    """The request contradicts the current state; it may succeed once that changes."""


class PriceChanged(Conflict):
    """The offer got dearer than the price the caller was shown; `extra` holds both prices."""


class NoCapacity(DomainError):
    """No provider can take the request now; nothing was charged."""


class ProviderFailed(DomainError):
    """A provider failed while carrying out the request; nothing changed on the broker's side."""


class NotConfigured(DomainError):
    """The feature is switched off in this deployment's settings."""
