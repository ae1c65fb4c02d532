"""The Docker engine, through the `docker` library's low-level client, in the broker's terms.

A thin shell: it sends what `containers` planned and returns the engine's JSON unchanged, and
it turns the library's exceptions into `ProviderError`s (an unreachable engine is
`ProviderUnavailable`; a missing container a `not_found` refusal; a name already taken a
`conflict`), so the broker can tell a fault from a refusal as it does for every cloud.

The client is made on first use, not at start-up, so a broker without a Docker engine still
starts and reports the reason in its `providers` block.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, cast

import docker
import requests
from docker.types import DeviceRequest

from providers.base import ProviderError, ProviderRefused, ProviderUnavailable
from providers.selfhosted.containers import ContainerPlan
from providers.selfhosted.offers import PROVIDER

LOOPBACK = "127.0.0.1"
STOP_TIMEOUT_SECONDS = 10


class DockerEngine:
    """One Docker engine, reached at `base_url` (`unix:///var/run/docker.sock`, `tcp://...`)."""

    def __init__(
        self, base_url: str, *, timeout_seconds: float, pull_timeout_seconds: float
    ) -> None:
        self.base_url = base_url
        self.timeout_seconds = timeout_seconds
        self.pull_timeout_seconds = pull_timeout_seconds
        self._client: docker.APIClient | None = None
        self._client_lock = threading.Lock()

    # --- reading -------------------------------------------------------------------------------

    def containers(self, *labels: str) -> list[dict[str, Any]]:
        """Every container, running or not, carrying all of `labels` (`key` or `key=value`)."""
        with self._errors("list containers"):
            return list(self._api().containers(all=True, filters={"label": list(labels)}))

    def inspect(self, handle: str) -> dict[str, Any]:
        with self._errors(f"inspect container {handle}"):
            return dict(self._api().inspect_container(handle))

    def log_tail(self, handle: str, lines: int) -> str:
        with self._errors(f"read the logs of container {handle}"):
            raw = self._api().logs(handle, stdout=True, stderr=True, tail=lines)
        return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)

    # --- images --------------------------------------------------------------------------------

    def ensure_image(self, image: str) -> None:
        """Make sure `image` is on the host, pulling it if it can; a refusal when it cannot.

        The pull runs on its own thread and is waited for at most `pull_timeout_seconds`: a slow
        registry makes this rent fail over (the pull goes on in the engine, so a later rent finds
        the image) instead of hanging the request.
        """
        with self._errors(f"inspect image {image}"):
            try:
                self._api().inspect_image(image)
                return
            except docker.errors.ImageNotFound:
                pass
        outcome: list[str | None] = []
        puller = threading.Thread(
            target=lambda: outcome.append(self._pull(image)), name="docker-pull", daemon=True
        )
        puller.start()
        puller.join(self.pull_timeout_seconds)
        if puller.is_alive():
            raise ProviderRefused(
                PROVIDER,
                f"image {image} is not on this host and was still being pulled after "
                f"{self.pull_timeout_seconds:g}s; retry once the pull has finished",
                reason="refused",
            )
        if outcome and outcome[0] is not None:
            raise ProviderRefused(
                PROVIDER,
                f"image {image} is not on this host and could not be pulled: {outcome[0]}",
                reason="refused",
            )

    def _pull(self, image: str) -> str | None:
        """Pull with a client of its own (this runs beside other calls); the error, or None."""
        try:
            client = api_client(self.base_url, self.pull_timeout_seconds)
        except docker.errors.DockerException as exc:
            return f"the Docker engine is unreachable ({exc})"
        try:
            for event in client.pull(image, stream=True, decode=True):
                if isinstance(event, Mapping) and event.get("error"):
                    return str(event["error"])
        except docker.errors.APIError as exc:
            return str(exc.explanation or exc)
        except (docker.errors.DockerException, requests.RequestException) as exc:
            return str(exc)
        finally:
            client.close()
        return None

    # --- containers ----------------------------------------------------------------------------

    def create(self, plan: ContainerPlan) -> str:
        """Create (not start) the planned container; its id."""
        api = self._api()
        requests_for_gpus = (
            [DeviceRequest(device_ids=list(plan.device_ids), capabilities=[["gpu"]])]
            if plan.device_ids
            else None
        )
        with self._errors(f"create container {plan.name}"):
            host_config = api.create_host_config(
                port_bindings={port: (LOOPBACK,) for port in plan.ports},
                device_requests=requests_for_gpus,
                init=True,  # an init as PID 1 forwards signals, so `stop` is prompt
            )
            created = api.create_container(
                plan.image,
                name=plan.name,
                environment=dict(plan.env),
                labels=dict(plan.labels),
                ports=list(plan.ports),
                host_config=host_config,
            )
        return str(created["Id"])

    def start(self, handle: str) -> None:
        with self._errors(f"start container {handle}"):
            self._api().start(handle)

    def stop(self, handle: str) -> None:
        with self._errors(f"stop container {handle}"):
            self._api().stop(handle, timeout=STOP_TIMEOUT_SECONDS)

    def remove(self, handle: str) -> None:
        """Kill if running and remove, volumes included."""
        with self._errors(f"remove container {handle}"):
            self._api().remove_container(handle, v=True, force=True)

    def close(self) -> None:
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    # --- the client and its errors -------------------------------------------------------------

    def _api(self) -> docker.APIClient:
        with self._client_lock:
            if self._client is None:
                with self._errors("connect"):
                    self._client = api_client(self.base_url, self.timeout_seconds)
            return self._client

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Translate the library's exceptions into the broker's `ProviderError`s."""
        try:
            yield
        except ProviderError:
            raise
        except docker.errors.NotFound as exc:
            raise ProviderRefused(
                PROVIDER, f"could not {doing}: {_explain(exc)}", status=404, reason="not_found"
            ) from None
        except docker.errors.APIError as exc:
            code = exc.status_code or 500
            if code >= 500:
                raise ProviderUnavailable(
                    PROVIDER, f"the Docker engine failed to {doing}: {_explain(exc)}", status=code
                ) from None
            reason = "conflict" if code == 409 else "refused"
            raise ProviderRefused(
                PROVIDER, f"could not {doing}: {_explain(exc)}", status=code, reason=reason
            ) from None
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise ProviderUnavailable(
                PROVIDER, f"the Docker engine at {self.base_url} is unreachable ({doing}): {exc}"
            ) from None


def _explain(error: docker.errors.APIError) -> str:
    explanation: object = error.explanation  # bytes at times, whatever the stubs declare
    if isinstance(explanation, bytes):
        explanation = explanation.decode("utf-8", "replace")
    return str(explanation or error)


def api_client(base_url: str, timeout_seconds: float) -> docker.APIClient:
    """A client of the engine's API. docker-py hands the timeout to requests, which takes
    fractions of a second; its type stubs declare an int."""
    return docker.APIClient(base_url=base_url, version="auto", timeout=cast(int, timeout_seconds))


def engine_reachable(base_url: str, timeout_seconds: float = 2.0) -> bool:
    """Whether a Docker engine answers at `base_url` (the demo enables this backend only then)."""
    try:
        client = api_client(base_url, timeout_seconds)
    except (docker.errors.DockerException, requests.RequestException):
        return False
    try:
        return bool(client.ping())
    except (docker.errors.DockerException, requests.RequestException):
        return False
    finally:
        client.close()
