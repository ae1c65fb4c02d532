"""Self-hosted GPUs: the operator's own machines in the catalog, renters' containers on Docker.

Discovery reads the GPUs through NVML; `GPUBROKER_SELFHOSTED_FAKE_GPUS` (e.g. `2xRTX 4090`)
declares simulated ones instead, for development, the demo and tests. The base URL is the Docker
engine (`GPUBROKER_SELFHOSTED_BASE_URL`, default `DOCKER_HOST` or the local socket). It is
enabled by default like every backend: on a host with neither a driver nor simulated GPUs it
lists nothing, and the `providers` block of `GET /v1/offers` says why. See docs/selfhosted.md.
"""

import os
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, Field

from providers.selfhosted.adapter import (
    DEFAULT_PULL_TIMEOUT_SECONDS,
    DEFAULT_REGION,
    SelfHostedAdapter,
)
from providers.selfhosted.devices import check_fake_gpus
from providers.selfhosted.offers import DEFAULT_PRICES, PROVIDER, check_prices
from providers.spec import ProviderSpec

LOCAL_DOCKER_SOCKET = "unix:///var/run/docker.sock"

SPEC = ProviderSpec(
    name=PROVIDER,
    title="Self-hosted GPUs",
    default_base_url=os.environ.get("DOCKER_HOST") or LOCAL_DOCKER_SOCKET,
    make_adapter=SelfHostedAdapter,
    tags_instances=True,
    options={
        "prices": (
            Annotated[dict[str, Decimal], AfterValidator(check_prices)],
            dict(DEFAULT_PRICES),
        ),
        "region": (Annotated[str, Field(min_length=1, max_length=100)], DEFAULT_REGION),
        "fake_gpus": (Annotated[str | None, AfterValidator(check_fake_gpus)], None),
        "lock_file": (str | None, None),
        "pull_timeout_seconds": (Annotated[float, Field(gt=0)], DEFAULT_PULL_TIMEOUT_SECONDS),
    },
)
