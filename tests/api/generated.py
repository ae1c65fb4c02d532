"""Requests generated from `/openapi.json` by Schemathesis, the same ones on every run.

`each_case` turns a check of one generated request into a test body that Hypothesis runs over
`examples` cases of an operation: derandomized, with no example database, no deadline (the
requests go over real HTTP) and no health checks (a slow or filtered strategy is expected).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode

ADMIN_PREFIX = "/v1/admin"


def each_case(
    operation: Any, mode: GenerationMode, examples: int
) -> Callable[[Callable[[Any], None]], Callable[[], None]]:
    """Decorate `check(case)` so that calling it runs it on `examples` cases of `operation`."""

    def decorate(check: Callable[[Any], None]) -> Callable[[], None]:
        run: Callable[[], None] = settings(
            max_examples=examples,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )(given(case=operation.as_strategy(generation_mode=mode))(check))
        return run

    return decorate


def send(case: Any, url: str, session: requests.Session, key: str) -> requests.Response:
    """Send one generated request with `key` as its bearer token."""
    response: requests.Response = case.call(
        base_url=url, session=session, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    return response


def key_for(operation: Any, account_key: str, admin_key: str) -> str:
    """The operator key on `/v1/admin/*`, the account's elsewhere."""
    return admin_key if operation.path.startswith(ADMIN_PREFIX) else account_key
