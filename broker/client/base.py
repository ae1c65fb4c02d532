"""What `Client` and `AsyncClient` share: where to connect, how an answer becomes a model, when
to resend."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from broker.client import config
from broker.client.calls import Call
from broker.client.endpoints import Endpoints
from broker.client.errors import BAD_RESPONSE, BAD_URL, UNREACHABLE, BrokerError

T = TypeVar("T", bound=BaseModel)
Http = TypeVar("Http", httpx.Client, httpx.AsyncClient)
DEFAULT_TIMEOUT = 30.0
RETRIES = 2


def transport_options(url: str | None, api_key: str | None, timeout: float) -> dict[str, Any]:
    """The keyword arguments of an httpx client for this broker; a malformed URL is refused
    here, as a `BrokerError`, before anything is sent."""
    base, key = config.resolve(url, api_key)
    try:
        parsed = httpx.URL(base)
    except (httpx.InvalidURL, ValueError) as exc:
        raise BrokerError(0, BAD_URL, f"{base!r} is not a valid broker URL: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise BrokerError(0, BAD_URL, f"{base!r} is not an http(s) URL of a broker")
    headers = {"Authorization": f"Bearer {key}", "User-Agent": "gpubroker-client"}
    if not key:
        del headers["Authorization"]
    return {"base_url": base, "headers": headers, "timeout": timeout}


class Connection(Endpoints, Generic[Http]):
    """A broker at `url` (default: GPUBROKER_URL, then the saved profile) with `api_key`
    (default: GPUBROKER_API_KEY, then the profile), over the httpx client `open` makes."""

    def __init__(
        self, url: str | None = None, api_key: str | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        options = transport_options(url, api_key, timeout)
        self.url: str = options["base_url"]
        self._http: Http = self.open(options)

    def open(self, options: dict[str, Any]) -> Http:
        """The httpx client to send through, made from `options`."""
        raise NotImplementedError


def unreachable(base_url: str, exc: Exception) -> BrokerError:
    reason = str(exc) or type(exc).__name__
    return BrokerError(0, UNREACHABLE, f"cannot reach the broker at {base_url}: {reason}")


def request_options(call: Call[Any]) -> dict[str, Any]:
    options: dict[str, Any] = {"params": call.params, "headers": call.headers}
    if call.json is not None:
        options["json"] = call.json
    if call.timeout is not None:
        options["timeout"] = call.timeout
    return options


def parse(call: Call[T], response: httpx.Response) -> T:
    """The answer as `call.model`, or the `BrokerError` it stands for."""
    if response.status_code >= 400:
        raise BrokerError.of(response)
    try:
        return call.model.model_validate(response.json() if response.content else {})
    except ValueError as exc:  # not JSON, or JSON of another shape (ValidationError)
        detail = (
            f"{exc.error_count()} field(s) do not match"
            if isinstance(exc, ValidationError)
            else "not JSON"
        )
        raise BrokerError(
            response.status_code,
            BAD_RESPONSE,
            f"{call.method} {call.path} answered something that is not the broker's API "
            f"({detail}); is the URL a gpubroker?",
        ) from None


def backoff(call: Call[Any], attempt: int, exc: httpx.TransportError, base_url: str) -> float:
    """Seconds to wait before sending `call` again after a broken connection (its `attempt`th
    failure); the `BrokerError` to raise instead where resending is not safe or has failed
    RETRIES times. A refused connection is never retried: nothing is listening."""
    if call.retry and attempt <= RETRIES and not isinstance(exc, httpx.ConnectError):
        return 0.2 * attempt
    raise unreachable(base_url, exc) from None
