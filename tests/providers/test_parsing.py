"""Every provider's parsers on its recorded answers, checked against expected results kept as data.

A row of `OFFER_PAGES` or `INSTANCE_JSON` names a provider, one of its parsers and a recorded
answer in tests/fixtures/<provider>/; `<answer>.expected.json` beside the answer says what parsing
it must give. For a catalog page: "ids", the offers' ids in the order the page lists them;
"skipped", one entry per skipped item, in order, with words its note must contain; "offers", for
chosen offers, field values (a subset of the offer's fields, so fields added to `Offer` later leave
these checks as they are; a "ref" given is the whole reference); and, for a documented answer,
"prices", the keys that hold its prices: when they drift the ids stay and every price follows. For
instance JSON, "instances": chosen fields of each instance read, in order. Each provider's
`refusals.json` holds error answers with the reason and message the broker must read from them.
What one provider does that no other does stays in that provider's own test file.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from functools import partial
from typing import Any

import httpx
import pytest

import providers.aivory.instances
import providers.aivory.refusals
import providers.computegpu.instances
import providers.empiriolabs.instances
import providers.fluence.instances
import providers.fluence.refusals
import providers.icgpu.instances
import providers.icgpu.refusals
from pricing.offer import InstanceType
from providers.aivory.parse import parse_offers
from providers.base import MalformedResponse, OfferPage, ProviderRefused
from providers.computegpu.instances import Reading
from providers.computegpu.parse import parse_gpu_types, parse_listings
from providers.empiriolabs.parse import parse_catalog
from providers.fluence.instances import Family
from providers.fluence.parse import parse_container_plans, parse_machine_plans
from providers.icgpu.parse import parse_tiers
from providers.rental import Instance, SshAccess
from tests.providers.support import by_id, fixture_loader

FETCHED_AT = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
ParsePage = Callable[[Any, datetime], OfferPage]
ParseJson = Callable[[Any], Instance | list[Instance]]
ReadRefusal = Callable[[httpx.Response], ProviderRefused]


def search(payload: Any, fetched_at: datetime) -> OfferPage:
    """ComputeGPU's marketplace search as a page (its paging counts are in its own tests)."""
    return parse_listings(payload, fetched_at).page


def vm_plans(payload: Any, fetched_at: datetime) -> OfferPage:
    return parse_machine_plans(payload, InstanceType.VM, fetched_at)


def baremetal_plans(payload: Any, fetched_at: datetime) -> OfferPage:
    return parse_machine_plans(payload, InstanceType.BAREMETAL, fetched_at)


OFFER_PAGES: list[tuple[str, ParsePage, str]] = [
    ("aivory", parse_offers, "offers"),
    ("aivory", parse_offers, "offers_malformed"),
    ("aivory", parse_offers, "offers_tolerant"),
    ("computegpu", search, "search"),
    ("computegpu", search, "search_malformed"),
    ("computegpu", search, "search_loose"),
    ("computegpu", parse_gpu_types, "types"),
    ("computegpu", parse_gpu_types, "types_malformed"),
    ("computegpu", parse_gpu_types, "types_loose"),
    ("empiriolabs", parse_catalog, "catalog"),
    ("empiriolabs", parse_catalog, "catalog_malformed"),
    ("empiriolabs", parse_catalog, "catalog_loose"),
    ("fluence", parse_container_plans, "container_plans"),
    ("fluence", parse_container_plans, "container_plans_malformed"),
    ("fluence", parse_container_plans, "container_plans_tolerant"),
    ("fluence", vm_plans, "vm_plans"),
    ("fluence", vm_plans, "vm_plans_malformed"),
    ("fluence", baremetal_plans, "baremetal_plans"),
    ("icgpu", parse_tiers, "tiers"),
    ("icgpu", parse_tiers, "tiers_malformed"),
    ("icgpu", parse_tiers, "tiers_tolerant"),
]

# Answers whose top level is not what the parser reads: the whole page fails.
NOT_PAGES: list[tuple[ParsePage, Any]] = [
    (parse_offers, {"object": "list", "data": {"gpu_model": "H100"}}),
    (parse_offers, []),
    (search, []),
    (search, None),
    (search, {"total": 3}),
    (search, {"listings": {"id": "lst_1"}}),
    (search, {"listings": [], "total": "many"}),
    (parse_catalog, []),
    (parse_catalog, {"object": "list"}),
    (parse_catalog, {"data": {"slug": "rtx-4090"}}),
    (parse_catalog, None),
    (parse_container_plans, {"plans": []}),
    (baremetal_plans, "maintenance"),
    (parse_tiers, {"data": []}),
    (parse_tiers, None),
]


def instance_of(read: Callable[[Any], Reading]) -> Callable[[Any], Instance]:
    """A ComputeGPU reading's instance (what it says of access is in ComputeGPU's own tests)."""
    return lambda payload: read(payload).instance


cgpu = providers.computegpu.instances
empirio = providers.empiriolabs.instances
pod = instance_of(cgpu.parse_pod)
fluence_container = partial(providers.fluence.instances.parse_instance, family=Family.CONTAINER)

INSTANCE_JSON: list[tuple[str, ParseJson, str]] = [
    ("aivory", providers.aivory.instances.parse_rental, "rental_provisioning"),
    ("aivory", providers.aivory.instances.parse_rental, "rental_running"),
    ("aivory", providers.aivory.instances.parse_rental, "rental_interrupted"),
    ("aivory", providers.aivory.instances.parse_rental, "rental_terminated"),
    ("computegpu", instance_of(cgpu.parse_rent_response), "rent"),
    ("computegpu", instance_of(cgpu.parse_rental), "rental_active"),
    ("computegpu", instance_of(cgpu.parse_rental), "rental_stopped"),
    ("computegpu", instance_of(cgpu.parse_rental), "rental_preempted"),
    ("computegpu", cgpu.parse_rental_list, "rentals"),
    ("computegpu", pod, "pod_deploying"),
    ("computegpu", pod, "pod_running"),
    ("computegpu", pod, "pod_ssh"),
    ("computegpu", pod, "pod_preempted"),
    ("computegpu", pod, "pod_destroyed"),
    ("computegpu", cgpu.parse_pod_list, "pods"),
    ("empiriolabs", empirio.parse_instance, "instance_provisioning"),
    ("empiriolabs", empirio.parse_instance, "instance_destroyed"),
    ("empiriolabs", empirio.parse_instance, "instance_failed"),
    ("empiriolabs", empirio.parse_instance_list, "instances"),
    ("fluence", fluence_container, "container_instance_active"),
    ("fluence", fluence_container, "container_instance_pending"),
    (
        "fluence",
        partial(providers.fluence.instances.parse_instance, family=Family.VM),
        "vm_instance_active",
    ),
    ("icgpu", providers.icgpu.instances.parse_instance, "instance_running"),
    ("icgpu", providers.icgpu.instances.parse_instance, "instance_preempted"),
]

# Instance JSON with a status the provider does not document: malformed, not a guess.
UNKNOWN_STATUSES: list[tuple[str, ParseJson, str]] = [
    ("computegpu", pod, "pod_unknown_status"),
    ("empiriolabs", empirio.parse_instance, "instance_unknown_status"),
]

REFUSALS: list[tuple[str, ReadRefusal]] = [
    ("aivory", providers.aivory.refusals.read_refusal),
    ("computegpu", cgpu.read_refusal),
    ("empiriolabs", empirio.read_refusal),
    ("fluence", providers.fluence.refusals.read_refusal),
    ("icgpu", providers.icgpu.refusals.read_refusal),
]


def recorded(provider: str, answer: str) -> Any:
    return fixture_loader(provider)(answer)


def expected(provider: str, answer: str) -> Any:
    return recorded(provider, f"{answer}.expected")


def case_id(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def as_json(value: Any) -> Any:
    """`value` as the expected files write it: enums by value, times in ISO 8601."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, SshAccess):
        return {**dataclasses.asdict(value), "command": value.command}
    return value


def assert_fields(thing: object, fields: dict[str, Any]) -> None:
    """`thing` has the values `fields` names (floats compared approximately); others are free."""
    seen = {name: as_json(getattr(thing, name)) for name in fields}
    assert seen == {
        name: pytest.approx(value) if isinstance(value, float) else value
        for name, value in fields.items()
    }


# Catalog pages


@pytest.mark.parametrize(("provider", "parse", "answer"), OFFER_PAGES, ids=case_id)
def test_a_recorded_catalog_parses_to_the_expected_offers_and_skips(
    provider: str, parse: ParsePage, answer: str
) -> None:
    want = expected(provider, answer)

    page = parse(recorded(provider, answer), FETCHED_AT)

    assert [offer.id for offer in page.offers] == want["ids"]
    assert len(page.skipped) == len(want["skipped"]), page.skipped
    for note, words in zip(page.skipped, want["skipped"], strict=True):
        assert words in note
    offers = by_id(page.offers)
    for offer_id, fields in want["offers"].items():
        assert_fields(offers[offer_id], fields)


@pytest.mark.parametrize(("parse", "payload"), NOT_PAGES)
def test_a_wrong_top_level_shape_fails_the_page(parse: ParsePage, payload: Any) -> None:
    with pytest.raises(MalformedResponse):
        parse(payload, FETCHED_AT)


def drifted(payload: Any, keys: set[str], factor: Decimal) -> Any:
    """A copy of `payload` with every price held under one of `keys` multiplied by `factor`."""
    if isinstance(payload, list):
        return [drifted(item, keys, factor) for item in payload]
    if not isinstance(payload, dict):
        return payload
    return {
        key: scaled(value, factor)
        if key in keys and value is not None
        else drifted(value, keys, factor)
        for key, value in payload.items()
    }


def scaled(price: str | float, factor: Decimal) -> str | float:
    """`price` times `factor`, written as it was: a decimal string or a JSON number."""
    if isinstance(price, str):
        return str(Decimal(price) * factor)
    return float(Decimal(str(price)) * factor)


DOCUMENTED = [case for case in OFFER_PAGES if "prices" in expected(case[0], case[2])]


@pytest.mark.parametrize("factor", [Decimal("0.93"), Decimal("1.07")], ids=str)
@pytest.mark.parametrize(("provider", "parse", "answer"), DOCUMENTED, ids=case_id)
def test_ids_are_stable_when_prices_drift(
    provider: str, parse: ParsePage, answer: str, factor: Decimal
) -> None:
    payload = recorded(provider, answer)
    moved = drifted(payload, set(expected(provider, answer)["prices"]), factor)

    before = {o.id: o.base_price_per_gpu_hour for o in parse(payload, FETCHED_AT).offers}
    after = {o.id: o.base_price_per_gpu_hour for o in parse(moved, FETCHED_AT).offers}

    assert after.keys() == before.keys()
    # Every price moves the way the answer's prices moved.
    rose = factor > 1
    assert all(after[i] > before[i] if rose else after[i] < before[i] for i in before)


# Instance JSON


@pytest.mark.parametrize(("provider", "parse", "answer"), INSTANCE_JSON, ids=case_id)
def test_recorded_instance_json_reads_as_expected(
    provider: str, parse: ParseJson, answer: str
) -> None:
    want = expected(provider, answer)["instances"]

    read = parse(recorded(provider, answer))

    instances = read if isinstance(read, list) else [read]
    assert len(instances) == len(want)
    for instance, fields in zip(instances, want, strict=True):
        assert_fields(instance, fields)


@pytest.mark.parametrize(("provider", "parse", "answer"), UNKNOWN_STATUSES, ids=case_id)
def test_an_unknown_status_is_malformed_not_a_guess(
    provider: str, parse: ParseJson, answer: str
) -> None:
    with pytest.raises(MalformedResponse) as raised:
        parse(recorded(provider, answer))

    assert "migrating" in raised.value.message


# Refusals


def refusal_answers() -> list[tuple[str, ReadRefusal, str, dict[str, Any]]]:
    """One case per error answer in each provider's `refusals.json`, with the request it answers."""
    cases = []
    for provider, read_refusal in REFUSALS:
        answers = recorded(provider, "refusals")
        for answer in answers["answers"]:
            cases.append(
                (provider, read_refusal, answer.get("request", answers["request"]), answer)
            )
    return cases


@pytest.mark.parametrize(("provider", "read_refusal", "request_line", "answer"), refusal_answers())
def test_an_error_answer_reads_as_the_brokers_reason(
    provider: str, read_refusal: ReadRefusal, request_line: str, answer: dict[str, Any]
) -> None:
    method, url = request_line.split(" ", 1)
    body = answer["body"]
    content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    response = httpx.Response(answer["status"], content=content, request=httpx.Request(method, url))

    refused = read_refusal(response)

    assert (refused.status, refused.reason, refused.message) == (
        answer["status"],
        answer["reason"],
        answer["message"],
    )
