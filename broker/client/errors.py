"""`BrokerError`: what the broker refused, or why it could not be asked."""

from __future__ import annotations

from typing import Any

import httpx

from broker.schemas.rentals import Attempt

UNREACHABLE = "unreachable"
BAD_RESPONSE = "bad_response"
BAD_URL = "bad_url"


class BrokerError(Exception):
    """The broker answered with its error shape, answered something else, or was not reached.

    `status` is the HTTP status (0 when no answer came), `code` the API's error code (or
    `unreachable`, `bad_response`, `bad_url` for the client's own failures), `param` the offending
    parameter of a 422, `attempts` the providers tried for a 503 `no_capacity`, and `body` the
    whole `error` object, with any other fields the broker added (`suggestions`, `missing`, ...).
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        param: str | None = None,
        attempts: list[Attempt] | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.param = param
        self.attempts = attempts or []
        self.body = body or {"code": code, "message": message}

    @property
    def suggestions(self) -> list[str]:
        found = self.body.get("suggestions")
        return [str(s) for s in found] if isinstance(found, list) else []

    @classmethod
    def of(cls, response: httpx.Response) -> BrokerError:
        """The error a non-2xx answer stands for, whatever its body."""
        try:
            error = response.json()["error"]
            code, message = str(error["code"]), str(error["message"])
        except (ValueError, KeyError, TypeError):
            text = " ".join(response.text.split())[:200] or "(empty body)"
            return cls(
                response.status_code,
                BAD_RESPONSE,
                f"the server answered HTTP {response.status_code} that is not the broker's "
                f"error shape: {text}",
            )
        param = error.get("param")
        raw_attempts = error.get("attempts")
        attempts = (
            [Attempt.model_validate(a) for a in raw_attempts if isinstance(a, dict)]
            if isinstance(raw_attempts, list)
            else []
        )
        return cls(
            response.status_code,
            code,
            message,
            param=str(param) if param is not None else None,
            attempts=attempts,
            body=dict(error),
        )
