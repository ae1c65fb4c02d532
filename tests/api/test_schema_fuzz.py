"""Property-based fuzzing of the whole HTTP API from its own OpenAPI document.

Schemathesis reads `/openapi.json` and generates requests for every operation, both ones that fit
the schema (positive) and ones that break it on purpose (negative: wrong types, out-of-range
numbers, missing fields). They go over real HTTP to the broker served by uvicorn, on PostgreSQL,
wired to the provider simulators (so rents really provision), with a funded account's key on the
account routes and the operator key on `/v1/admin/*`. Whatever the input, the broker must never
answer 5xx for it except where the contract says so (503 `no_capacity` when no provider can
start a rental), and every non-2xx answer must be the API's error shape.

Generation is derandomized and the example database is off, so every run sends the same requests.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import response_schema_conformance, status_code_conformance
from schemathesis.core.failures import FailureGroup
from sqlalchemy.exc import OperationalError

from broker.app import create_app
from broker.db import scratch_schema
from broker.migrations import upgrade
from broker.settings import Settings
from providers.base import ProviderConfig
from providers.registry import PROVIDERS
from providers.simulators.kit import RunningServer, SimulatorKnobs, serve_in_thread, stop_all
from providers.simulators.stripe import StripeStandin
from tests.api.generated import each_case, key_for, send
from tests.conftest import POSTGRES_URL

ADMIN_KEY = "fuzz-admin-key"
EXAMPLES_PER_MODE = 60
MIN_CASES = 2000


@dataclass
class Served:
    url: str
    account_key: str
    schema: dict[str, Any]


@dataclass
class Tally:
    cases: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    server_errors: list[str] = field(default_factory=list)
    bad_shapes: list[str] = field(default_factory=list)
    undeclared: list[str] = field(default_factory=list)
    nothing_to_break: list[str] = field(default_factory=list)
    authorized: dict[str, int] = field(default_factory=dict)


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    servers: list[RunningServer] = []
    adapters = {}
    for seed, (name, spec) in enumerate(PROVIDERS.items(), start=1):
        if spec.make_simulator is None:
            continue
        knobs = SimulatorKnobs(seed=seed, provision_seconds=0.0, hang_seconds=5.0)
        server = serve_in_thread(spec.make_simulator(knobs))
        servers.append(server)
        adapters[name] = spec.make_adapter(
            ProviderConfig(
                server.url,
                spec.demo_api_key,
                timeout_seconds=2.0,
                retry_attempts=1,
                retry_max_wait_seconds=0.05,
            )
        )
    stripe = serve_in_thread(StripeStandin().app)
    servers.append(stripe)
    try:
        with scratch_schema(POSTGRES_URL, "test_fuzz") as database_url:
            upgrade(database_url)
            app_settings = Settings(
                _env_file=None,
                database_url=database_url,
                admin_key=ADMIN_KEY,
                providers=",".join(adapters),
                refresh_jitter_seconds=0,
                stripe_api_key="sk_test_fuzz",
                stripe_webhook_secret="whsec_fuzz",
                stripe_api_base=stripe.url,
            )
            app = create_app(app_settings, adapters=adapters, start_jobs=False)
            app.state.refresher.refresh_all()
            broker = serve_in_thread(app)
            try:
                admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
                made = requests.post(
                    f"{broker.url}/v1/admin/accounts", json={"name": "fuzz"}, headers=admin
                ).json()
                granted = requests.post(
                    f"{broker.url}/v1/admin/accounts/{made['account_id']}/credits",
                    json={"amount": "100000.00", "reason": "fuzz credit"},
                    headers=admin,
                )
                assert granted.status_code == 201, granted.text
                schema = requests.get(f"{broker.url}/openapi.json").json()
                yield Served(broker.url, made["api_key"], schema)
            finally:
                broker.stop()
    except OperationalError as exc:
        pytest.fail(f"PostgreSQL at {POSTGRES_URL} is unreachable: {exc}", pytrace=False)
    finally:
        stop_all(servers)


def in_error_shape(body: bytes) -> bool:
    try:
        payload = json.loads(body)
    except ValueError:
        return False
    error = payload.get("error") if isinstance(payload, dict) else None
    return (
        isinstance(error, dict)
        and isinstance(error.get("code"), str)
        and isinstance(error.get("message"), str)
    )


def allowed_5xx(status: int, body: bytes) -> bool:
    """The contract's own 5xx: no provider could start a rental right now."""
    if status != 503 or not in_error_shape(body):
        return False
    return bool(json.loads(body)["error"]["code"] == "no_capacity")


def fuzz_operation(operation: Any, mode: GenerationMode, served: Served, tally: Tally) -> None:
    key = key_for(operation, served.account_key, ADMIN_KEY)
    session = requests.Session()

    @each_case(operation, mode, EXAMPLES_PER_MODE)
    def run(case: Any) -> None:
        response = send(case, served.url, session, key)
        tally.cases += 1
        status = response.status_code
        tally.by_status[status] = tally.by_status.get(status, 0) + 1
        if status != 401:
            tally.authorized[operation.label] = tally.authorized.get(operation.label, 0) + 1
        described = f"{status} {case.as_curl_command()} -> {response.content[:300]!r}"
        if status >= 500 and not allowed_5xx(status, response.content):
            tally.server_errors.append(described)
        if status >= 400 and not in_error_shape(response.content):
            tally.bad_shapes.append(described)
        try:
            case.validate_response(
                response, checks=[status_code_conformance, response_schema_conformance]
            )
        except FailureGroup as exc:
            tally.undeclared.append(f"{described}: {exc}"[:1000])

    try:
        run()
    except Unsatisfiable:
        # Only an operation without inputs (no parameter, no body) has nothing to break.
        assert mode is GenerationMode.NEGATIVE, f"no valid request for {operation.label}"
        tally.nothing_to_break.append(operation.label)


# Over 2000 requests through real HTTP and PostgreSQL: longer than the suite's default timeout.
@pytest.mark.timeout(600)
def test_no_input_makes_the_broker_fail_or_leave_the_error_shape(served: Served) -> None:
    schema = schemathesis.openapi.from_dict(served.schema)
    tally = Tally()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz_operation(operation, mode, served, tally)
    print(f"fuzzed {tally.cases} requests; statuses {sorted(tally.by_status.items())}")
    print(f"past auth, per operation: {sorted(tally.authorized.items())}")
    print(
        f"{len(tally.server_errors)} unexpected 5xx; no negative cases for {tally.nothing_to_break}"
    )
    assert not tally.server_errors, "\n".join(tally.server_errors[:40])
    assert not tally.bad_shapes, "\n".join(tally.bad_shapes[:40])
    # Every answer, error or not, has a status and a body that /openapi.json declares.
    assert not tally.undeclared, "\n".join(tally.undeclared[:10])
    assert tally.cases >= MIN_CASES
    # The keys worked: every operation, the account and admin ones included, got past auth.
    assert {op.label for op in operations} == set(tally.authorized)


def test_forged_stripe_deliveries_are_4xx_in_the_error_shape(served: Served) -> None:
    """The schema declares no body for the webhook; forged payloads and signatures go here."""
    session = requests.Session()
    answers: list[int] = []

    @given(
        payload=st.one_of(
            st.binary(max_size=2000),
            st.builds(
                lambda kind, extra: json.dumps({"id": "evt_1", "type": kind, **extra}).encode(),
                st.sampled_from(["payment_intent.succeeded", "charge.refunded", ""]),
                st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=3),
            ),
        ),
        signature=st.one_of(
            st.none(),
            st.from_regex(r"\At=[0-9]{1,12},v1=[0-9a-f]{0,64}\Z"),
            st.from_regex(r"\A[!-~]{0,80}\Z"),  # what HTTP allows in a header value
        ),
    )
    @settings(max_examples=150, derandomize=True, database=None, deadline=None)
    def deliver(payload: bytes, signature: str | None) -> None:
        headers = {} if signature is None else {"Stripe-Signature": signature}
        response = session.post(
            f"{served.url}/v1/stripe/webhook", data=payload, headers=headers, timeout=30
        )
        answers.append(response.status_code)
        assert 400 <= response.status_code < 500, response.text
        assert in_error_shape(response.content), response.text

    deliver()
    assert len(answers) >= 100
