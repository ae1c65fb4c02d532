"""What the provider tests share: an adapter configuration with test-sized waits."""

from __future__ import annotations

from typing import Any

from providers.base import ProviderConfig


def fast_config(base_url: str, api_key: str | None, /, **overrides: Any) -> ProviderConfig:
    """A provider configuration whose retries wait a few milliseconds, so fault tests stay quick.

    `overrides` may replace any field, the key included (positional-only parameters allow it).
    """
    settings: dict[str, Any] = {
        "base_url": base_url,
        "api_key": api_key,
        "timeout_seconds": 5.0,
        "retry_attempts": 3,
        "retry_max_wait_seconds": 0.05,
    }
    settings.update(overrides)
    return ProviderConfig(**settings)
