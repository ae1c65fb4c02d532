"""The HTTP shell every adapter shares: auth header, timeouts, retries, error mapping.

Transient faults (timeouts, connection errors, 5xx, 429) are retried with jittered exponential
backoff by tenacity; a 429's Retry-After is honoured up to the configured cap. What is left after
the retries becomes a `ProviderError`, never an httpx exception, and never carries the API key.

A 4xx is each provider's to read into the broker's refusal words; `error_body` and `refused` are
the parts those readers share: the answer's JSON where there is any, and the refusal worded with
the provider's own message where it sent one, else with the status. `delete_instance` is the
terminate of the providers whose DELETE answers with the instance, or with nothing, and 404s an
instance already gone.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from pricing.metrics import PROVIDER_RETRIES
from providers.base import MalformedResponse, ProviderConfig, ProviderRefused, ProviderUnavailable
from providers.rental import Instance, InstanceStatus

log = logging.getLogger("gpubroker.providers")

# Turns a provider's 4xx response into the refusal reason the rental flow blocks on.
RefusalReader = Callable[[httpx.Response], ProviderRefused]


class _Transient(Exception):
    """A fault worth retrying; carries the Retry-After the provider asked for, if any.

    `maybe_done` marks a request that reached the provider without an answer (a read timeout,
    a dropped connection): it may have taken effect, so only an idempotent request retries it.
    """

    def __init__(
        self, message: str, retry_after: float | None = None, *, maybe_done: bool = False
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        self.maybe_done = maybe_done


# Methods that may be repeated safely; a POST is repeated only when the caller says so
# (e.g. it carries an Idempotency-Key), so a lost answer never creates a second instance.
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


def _retry_after_seconds(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class ProviderHTTP:
    """A retrying JSON client bound to one provider's base URL and key."""

    def __init__(
        self,
        provider: str,
        config: ProviderConfig,
        *,
        auth_header: Callable[[str], Mapping[str, str]] = lambda key: {
            "Authorization": f"Bearer {key}"
        },
        read_refusal: RefusalReader | None = None,
    ) -> None:
        self.provider = provider
        self.config = config
        headers = {"Accept": "application/json", "User-Agent": "gpubroker"}
        if config.api_key:
            headers.update(auth_header(config.api_key))
        self._client = httpx.Client(
            base_url=config.base_url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(config.timeout_seconds, connect=min(config.timeout_seconds, 5.0)),
        )
        self._read_refusal = read_refusal or self._default_refusal
        self._backoff = wait_exponential_jitter(
            multiplier=0.2, max=config.retry_max_wait_seconds, jitter=0.2
        )

    def close(self) -> None:
        self._client.close()

    def request(
        self, method: str, path: str, *, idempotent: bool | None = None, **kwargs: Any
    ) -> Any:
        """Send a request, retrying transient faults; return the decoded JSON body.

        A request that is not idempotent is retried only when the provider surely did not act
        on it (it answered 429 or 5xx, or the connection was never made).
        """
        safe = method.upper() in _IDEMPOTENT if idempotent is None else idempotent

        def worth_retrying(exc: BaseException) -> bool:
            return isinstance(exc, _Transient) and (safe or not exc.maybe_done)

        retrying = Retrying(
            stop=stop_after_attempt(max(1, self.config.retry_attempts)),
            wait=self._wait,
            retry=retry_if_exception(worth_retrying),
            before_sleep=lambda _: PROVIDER_RETRIES.labels(self.provider).inc(),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._send_once(method, path, **kwargs)
        except _Transient as exc:
            raise ProviderUnavailable(self.provider, exc.message) from None
        raise AssertionError("unreachable: tenacity either returns or raises")

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def open_stream(self, path: str, **kwargs: Any) -> httpx.Response:
        """GET with the same retries, answering the open response before its body is read;
        the caller reads it as it arrives (`iter_bytes`) and closes it."""
        response: httpx.Response = self.request("GET", path, stream=True, **kwargs)
        return response

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def delete_instance(
        self,
        path: str,
        handle: str,
        read: Callable[[Any], Instance],
        fetch: Callable[[str], Instance],
    ) -> Instance:
        """Terminate by `DELETE path`: an instance the provider no longer knows is reported
        terminated, an answer carrying a status is `read`, and any other answer is followed by
        a `fetch` of `handle`."""
        try:
            payload = self.request("DELETE", path)
        except ProviderRefused as refused:
            if refused.reason != "not_found":
                raise
            return Instance(self.provider, handle, InstanceStatus.TERMINATED, reason="not found")
        if isinstance(payload, dict) and "status" in payload:
            return read(payload)
        return fetch(handle)

    def _wait(self, state: RetryCallState) -> float:
        backoff = self._backoff(state)
        outcome = state.outcome
        exc = outcome.exception() if outcome is not None else None
        if isinstance(exc, _Transient) and exc.retry_after is not None:
            return min(max(exc.retry_after, backoff), self.config.retry_max_wait_seconds)
        return backoff

    def _send_once(self, method: str, path: str, *, stream: bool = False, **kwargs: Any) -> Any:
        try:
            request = self._client.build_request(method, path, **kwargs)
            response = self._client.send(request, stream=stream)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise _Transient(f"could not connect ({type(exc).__name__})") from None
        except httpx.TimeoutException:
            message = f"timed out after {self.config.timeout_seconds:g}s"
            raise _Transient(message, maybe_done=True) from None
        except httpx.TransportError as exc:
            message = f"connection lost ({type(exc).__name__})"
            raise _Transient(message, maybe_done=True) from None
        if stream:
            if response.is_success:
                return response
            response.read()  # an error answer is small, and its reader needs the body
        if response.status_code == 429:
            raise _Transient("rate limited (429)", _retry_after_seconds(response))
        if response.status_code >= 500:
            raise _Transient(f"server error ({response.status_code})")
        if response.status_code >= 400:
            raise self._read_refusal(response)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise MalformedResponse(
                self.provider, f"answered {method} {path} with a body that is not JSON"
            ) from None

    def _default_refusal(self, response: httpx.Response) -> ProviderRefused:
        return ProviderRefused(
            self.provider,
            f"refused the request ({response.status_code})",
            status=response.status_code,
        )


def error_body(response: httpx.Response) -> Any:
    """A refusal's JSON body, or None where it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None


def refused(provider: str, response: httpx.Response, message: Any, reason: str) -> ProviderRefused:
    """The 4xx `response` as `reason`, worded with `message` where it is a non-empty string."""
    detail = message if isinstance(message, str) and message else f"status {response.status_code}"
    return ProviderRefused(
        provider, f"refused the request: {detail}", status=response.status_code, reason=reason
    )
