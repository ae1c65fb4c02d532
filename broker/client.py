"""A small Python client for the broker's HTTP API, used by the CLI."""

from __future__ import annotations

import os
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:8000"


class BrokerError(Exception):
    """The broker answered with its error shape (or could not be reached)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class BrokerClient:
    """Talks to one broker; `url` and `api_key` default to GPUBROKER_URL / GPUBROKER_API_KEY."""

    def __init__(
        self, url: str | None = None, api_key: str | None = None, timeout: float = 30.0
    ) -> None:
        self.url = (url or os.environ.get("GPUBROKER_URL") or DEFAULT_URL).rstrip("/")
        key = api_key or os.environ.get("GPUBROKER_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def __enter__(self) -> BrokerClient:
        return self

    def __exit__(self, *_: object) -> None:
        self._http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise BrokerError(
                0, "unreachable", f"cannot reach the broker at {self.url}: {exc}"
            ) from None
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
                raise BrokerError(response.status_code, error["code"], error["message"])
            except (ValueError, KeyError, TypeError):
                raise BrokerError(response.status_code, "error", response.text[:200]) from None
        return response.json()

    def _get_object(self, path: str, **kwargs: Any) -> dict[str, Any]:
        """A GET whose answer is a JSON object."""
        body: dict[str, Any] = self.request("GET", path, **kwargs)
        return body

    def offers(self, **params: Any) -> dict[str, Any]:
        return self._get_object("/v1/offers", params=_clean(params))

    def gpus(self) -> dict[str, Any]:
        return self._get_object("/v1/gpus")

    def spot_prices(self, gpu: str, region: str | None = None) -> dict[str, Any]:
        return self._get_object("/v1/spot-prices", params=_clean({"gpu": gpu, "region": region}))

    def spot_history(self, **params: Any) -> dict[str, Any]:
        """One page of `GET /v1/spot-prices/history`; pass `next_cursor` back as `cursor`."""
        return self._get_object("/v1/spot-prices/history", params=_clean(params))


def _clean(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None and v != [] and v != ()}
