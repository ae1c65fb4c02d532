"""`/openapi.json` tells the truth: every answer the broker gives matches what it declares.

The document is checked for what a generated client needs (a schema for every success body, the
API's `{"error": ...}` shape for every error status, 401 wherever a key is needed, no FastAPI
`detail`), then requests generated from it are sent over real HTTP to a broker wired to the
provider simulators, and each response is validated against the document: its status must be
declared and its body must match the declared schema. A scripted rental walks the rental routes
through statuses generation rarely reaches (201, running, stopped, terminated) the same way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from fastapi import FastAPI
from jsonschema_rs import Draft202012Validator
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from broker.app import create_app
from broker.settings import CoreSettings, Settings
from providers.simulators.kit import serve_in_thread
from tests.api.generated import each_case, key_for, send
from tests.brokers import ADMIN, bearer, open_account, sim_adapters, start_sims, stop_sims

CHECKS = [status_code_conformance, response_schema_conformance, content_type_conformance]
EXAMPLES = 6
ADMIN_KEY = "test-admin-key"


@dataclass
class Served:
    url: str
    app: FastAPI
    api_key: str
    document: dict[str, Any]
    schema: Any


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    sims = start_sims()
    database = tmp_path_factory.mktemp("openapi") / "broker.db"
    app_settings: CoreSettings = Settings(
        _env_file=None,
        database_url=f"sqlite:///{database}",
        admin_key=ADMIN_KEY,
        refresh_jitter_seconds=0,
        providers=",".join(sims),
    )
    app = create_app(app_settings, adapters=sim_adapters(sims, 2.0), start_jobs=False)
    app.state.refresher.refresh_all()
    server = serve_in_thread(app)
    try:
        with httpx.Client(base_url=server.url) as api:
            account = open_account(api, "500.00")
            document = api.get("/openapi.json").json()
        schema = schemathesis.openapi.from_dict(document)
        yield Served(server.url, app, account["api_key"], document, schema)
    finally:
        server.stop()
        stop_sims(sims)


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield method.upper(), path, operation


def test_every_body_and_error_is_declared(served: Served) -> None:
    document = served.document
    text = json.dumps(document)
    assert "HTTPValidationError" not in text
    assert '"detail"' not in text
    components = document["components"]["schemas"]
    assert components["ErrorBody"]["required"] == ["error"]
    assert set(components["ErrorDetail"]["required"]) == {"code", "message"}
    seen = 0
    for method, path, operation in operations(document):
        seen += 1
        label = f"{method} {path}"
        responses = operation["responses"]
        success = [status for status in responses if status.startswith("2")]
        assert success, label
        for status in success:
            body = responses[status]["content"]["application/json"]["schema"]
            assert "$ref" in body, f"{label} {status} has no body model: {body}"
        errors = [status for status in responses if status[0] in "45"]
        for status in errors:
            if path == "/healthz":
                continue
            content = responses[status]["content"]["application/json"]
            assert content["schema"] == {"$ref": "#/components/schemas/ErrorBody"}, label
            assert "error" in content["example"], label
        if operation.get("parameters") or "requestBody" in operation:
            assert "422" in responses, label
        if "requestBody" in operation:
            assert "400" in responses, label
        if operation.get("security"):
            assert "401" in responses, label
        if "{" in path and path.startswith("/v1/rentals"):
            assert "404" in responses, label
    assert seen >= 20
    rent = document["paths"]["/v1/rentals"]["post"]["responses"]
    assert {"201", "401", "402", "409", "422", "503"} <= set(rent)


def test_the_examples_match_their_schemas(served: Served) -> None:
    components = served.document["components"]
    shown = {name for name, schema in components["schemas"].items() if "examples" in schema}
    assert {"Offer", "Rental", "Wallet", "GpuRow", "SpotRow", "TopupOut", "Budget"} <= shown
    limits = {"max_duration_seconds", "max_cost", "idle_timeout_seconds", "limits_left"}
    assert limits <= set(components["schemas"]["Rental"]["properties"])
    for name in shown:
        [example] = components["schemas"][name]["examples"]
        assert problems(served, {"$ref": f"#/components/schemas/{name}"}, example) == [], name


def problems(served: Served, schema: dict[str, Any], value: Any) -> list[str]:
    """Where `value` does not match `schema`, a schema of the document (its `$ref`s resolved)."""
    full = {**schema, "components": served.document["components"]}
    return [str(error) for error in Draft202012Validator(full).iter_errors(value)]


def test_a_body_that_is_not_json_is_the_declared_400(served: Served) -> None:
    headers = {**bearer(served.api_key), "Content-Type": "application/json"}
    answer = requests.post(f"{served.url}/v1/rentals", data=b"{not", headers=headers, timeout=30)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] == "body"
    declared = served.document["paths"]["/v1/rentals"]["post"]["responses"]["400"]
    assert problems(served, declared["content"]["application/json"]["schema"], answer.json()) == []


def send_generated(served: Served, operation: Any) -> int:
    """Requests generated for one operation, each answer validated; how many were sent."""
    key = key_for(operation, served.api_key, ADMIN_KEY)
    session = requests.Session()
    sent = 0

    @each_case(operation, GenerationMode.POSITIVE, EXAMPLES)
    def check(case: Any) -> None:
        nonlocal sent
        response = send(case, served.url, session, key)
        sent += 1
        case.validate_response(response, checks=CHECKS)

    check()
    return sent


def test_generated_requests_get_declared_answers(served: Served) -> None:
    sent = sum(send_generated(served, result.ok()) for result in served.schema.get_all_operations())
    assert sent >= 100


def validated(served: Served, method: str, path: str) -> Callable[..., requests.Response]:
    """A caller of one operation whose every answer is validated against the document."""
    operation = served.schema[path][method]

    def call(
        headers: dict[str, str] | None = None, body: Any = None, **path_parameters: str
    ) -> requests.Response:
        case = operation.Case(
            path_parameters=path_parameters,
            headers=headers if headers is not None else bearer(served.api_key),
            **({} if body is None else {"body": body, "media_type": "application/json"}),
        )
        response: requests.Response = case.call(base_url=served.url, timeout=30)
        case.validate_response(response, checks=CHECKS)
        return response

    return call


def test_a_rental_walks_through_declared_answers(served: Served) -> None:
    rent = validated(served, "POST", "/v1/rentals")
    show = validated(served, "GET", "/v1/rentals/{rental_id}")
    stop = validated(served, "POST", "/v1/rentals/{rental_id}/stop")
    end = validated(served, "DELETE", "/v1/rentals/{rental_id}")

    created = rent(body={"gpu": "RTX 4090", "image": "nginx", "ports": [80]})
    assert created.status_code == 201, created.text
    rental = created.json()
    assert rental["rental_key"]
    for _ in range(300):
        rental = show(rental_id=rental["id"]).json()
        if rental["status"] == "running":
            break
        served.app.state.status_sync.run()
    assert rental["status"] == "running", rental
    stop(rental_id=rental["id"])
    ended = end(rental_id=rental["id"])
    assert ended.status_code == 200 and ended.json()["status"] == "terminated", ended.text

    assert show(rental_id="rnt_missing").status_code == 404
    assert show(headers={}, rental_id=rental["id"]).status_code == 401
    refused = rent(body={"gpu": "RTX 4090", "image": "nginx", "max_price": "-1"})
    assert refused.status_code == 422
    assert refused.json()["error"]["param"] == "max_price"
    broke = rent(headers=ADMIN, body={"gpu": "RTX 4090"})
    assert broke.status_code == 401
