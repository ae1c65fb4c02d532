"""Configuration from `GPUBROKER_*` environment variables (or a `.env` file).

The per-provider fields (`GPUBROKER_<NAME>_API_KEY`, `GPUBROKER_<NAME>_BASE_URL`, and the options a
provider's spec declares, e.g. `GPUBROKER_SELFHOSTED_PRICES`) are generated from the provider
registry, so adding a provider never means editing this file.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from functools import lru_cache
from typing import Annotated, Any, Literal, cast

from pydantic import Field, SecretStr, create_model, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from providers.base import ProviderConfig
from providers.registry import PROVIDER_NAMES, PROVIDERS


class CoreSettings(BaseSettings):
    """Everything that is not specific to one provider."""

    model_config = SettingsConfigDict(
        env_prefix="GPUBROKER_", env_file=".env", extra="ignore", validate_default=True
    )

    database_url: str = "sqlite:///./gpubroker.db"
    admin_key: SecretStr | None = None
    providers: Annotated[tuple[str, ...], NoDecode] = PROVIDER_NAMES
    refresh_seconds: float = Field(60.0, gt=0)
    refresh_jitter_seconds: float = Field(5.0, ge=0)
    stale_after_seconds: float | None = Field(
        None, gt=0, description="Offers older than this are stale; default 3 refresh intervals."
    )
    provider_timeout_seconds: float = Field(10.0, gt=0)
    provider_retry_attempts: int = Field(3, ge=1)
    meter_seconds: float = Field(15.0, gt=0)
    status_seconds: float = Field(10.0, gt=0)
    reconcile_seconds: float = Field(60.0, gt=0)
    provision_grace_seconds: float = Field(
        300.0, ge=0, description="How long a placement may be in flight before reconciliation."
    )
    action_timeout_seconds: float = Field(
        120.0,
        gt=0,
        description="A start/stop/terminate still in flight after this long (its broker died) "
        "is finished by the status job from what the provider reports.",
    )
    min_hold_seconds: int = Field(3600, gt=0)
    idle_gpu_busy_percent: int = Field(
        10,
        ge=1,
        le=100,
        description="A self-hosted rental whose GPUs are at least this busy is not idle, "
        "whatever its connect-proxy traffic.",
    )
    margin: Decimal = Field(Decimal(0), ge=0)
    interruption_loss_hours: Decimal = Field(Decimal("0.5"), ge=0)
    price_history_retention_days: int = Field(90, gt=0)
    stripe_api_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    stripe_api_base: str | None = None
    stripe_checkout_url: str | None = Field(
        None,
        description="Where a payer completes a top-up: a URL template with `{payment_intent_id}` "
        "and `{client_secret}`, answered as the top-up's `checkout_url`.",
    )
    log_format: Literal["json", "text"] = Field(
        "json", description="`gpubroker serve` logs one JSON object per line, or plain text."
    )
    deployment_id: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_-]{1,40}$",
        description="Tags every instance this broker starts; default: generated once, stored.",
    )
    exclusive_providers: Annotated[tuple[str, ...] | None, NoDecode] = Field(
        None,
        description="Providers whose account is this broker's alone, so reconciliation may end "
        "untagged instances it does not know; default: every provider that cannot tag.",
    )
    secret_key: SecretStr | None = Field(
        None, description="Fernet key(s), comma-separated: the first encrypts, all decrypt."
    )
    webhook_retry_seconds: Annotated[tuple[float, ...], NoDecode] = Field(
        (5.0, 30.0, 120.0, 600.0, 3600.0),
        description="Pauses before each retry of a webhook delivery; then it is given up.",
    )
    webhook_allow_private: bool = Field(
        False, description="Allow webhook URLs on http or private/loopback addresses."
    )
    webhook_timeout_seconds: float = Field(10.0, gt=0)
    webhook_poll_seconds: float = Field(1.0, gt=0)

    @field_validator("providers", "exclusive_providers", mode="before")
    @classmethod
    def _split_names(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip().lower() for part in value.split(",") if part.strip()]
        return None if value is None else tuple(value)

    @field_validator("providers", "exclusive_providers")
    @classmethod
    def _known_providers(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        unknown = sorted(set(value or ()) - set(PROVIDER_NAMES))
        if unknown:
            raise ValueError(
                f"unknown provider(s) {', '.join(unknown)}; known: {', '.join(PROVIDER_NAMES)}"
            )
        return value

    @field_validator("webhook_retry_seconds", mode="before")
    @classmethod
    def _split_seconds(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(float(part) for part in value.split(",") if part.strip())
        return value

    @field_validator("webhook_retry_seconds")
    @classmethod
    def _non_negative(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(seconds < 0 for seconds in value):
            raise ValueError("retry pauses must not be negative")
        return value

    @property
    def stale_after(self) -> float:
        return self.stale_after_seconds or 3 * self.refresh_seconds


def _provider_fields() -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, spec in PROVIDERS.items():
        fields[f"{name}_api_key"] = (SecretStr | None, None)
        fields[f"{name}_base_url"] = (str | None, None)
        for option, definition in spec.options.items():
            fields[f"{name}_{option}"] = definition
    return fields


# Its fields beyond CoreSettings' come from the registry at run time, so the keywords a caller
# passes can only be checked then, by Pydantic.
Settings = cast(
    Callable[..., CoreSettings],
    create_model("Settings", __base__=CoreSettings, **_provider_fields()),
)


def provider_config(
    settings: CoreSettings, name: str, deployment_id: str | None = None
) -> ProviderConfig | None:
    """The adapter configuration for `name`, or None when it has no base URL to reach."""
    base_url = getattr(settings, f"{name}_base_url", None) or PROVIDERS[name].default_base_url
    if not base_url:
        return None
    key: SecretStr | None = getattr(settings, f"{name}_api_key", None)
    return ProviderConfig(
        base_url=base_url,
        api_key=key.get_secret_value() if key else None,
        timeout_seconds=settings.provider_timeout_seconds,
        retry_attempts=settings.provider_retry_attempts,
        options={
            option: getattr(settings, f"{name}_{option}") for option in PROVIDERS[name].options
        },
        deployment_id=deployment_id or settings.deployment_id,
    )


@lru_cache
def get_settings() -> CoreSettings:
    """The process's settings, read once."""
    return Settings()
