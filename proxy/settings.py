"""The connect proxy's configuration: `GPUBROKER_PROXY_*` environment variables (or `.env`).

Kept apart from the broker's core settings so the proxy can be tuned (and tested with tiny
timeouts) without touching anything else. Every field is documented in docs/proxy.md.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ProxySettings(BaseSettings):
    """Timeouts, limits and cache lifetimes of `/v1/rentals/{id}/connect/...`."""

    model_config = SettingsConfigDict(
        env_prefix="GPUBROKER_PROXY_", env_file=".env", extra="ignore", validate_default=True
    )

    # A workload that does not accept a connection this fast is down: answer 502 at once.
    connect_timeout_seconds: float = Field(5.0, gt=0)
    # Per chunk, not per response: a generation may stream for an hour, but a silence this long
    # means the workload is stuck (504 before the response starts, a cut stream after).
    read_timeout_seconds: float = Field(300.0, gt=0)
    write_timeout_seconds: float = Field(300.0, gt=0)
    # How long an account key, a rental's state and its upstream address are trusted without
    # asking the database or the provider again: a revoked key, a terminated rental or a moved
    # placement takes effect within this many seconds. 0 disables caching.
    cache_seconds: float = Field(5.0, ge=0)
    # The caller's request headers, all together; more is a 431.
    max_header_bytes: int = Field(16 * 1024, ge=1024)
    # Idle upstream connections kept open for reuse (busy ones are not limited).
    max_idle_connections: int = Field(256, ge=0)
    # The largest WebSocket message relayed from a workload to the caller.
    max_websocket_message_bytes: int = Field(16 * 1024 * 1024, ge=1024)
