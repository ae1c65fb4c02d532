"""EmpirioLabs rentals: the adapter against its simulator over real HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from pricing.offer import Offer
from providers.base import ProviderRefused, ProviderUnavailable
from providers.empiriolabs.adapter import EmpirioLabsAdapter
from providers.empiriolabs.instances import INSTANCES_PATH
from providers.empiriolabs.sim_instances import SimRefusal
from providers.empiriolabs.simulator import EmpirioLabsState, create_simulator
from providers.rental import (
    Instance,
    InstanceStatus,
    Scope,
    UnsupportedWorkload,
    Workload,
    WorkloadMode,
    scope_of,
)
from providers.simkit import RunningServer, SimulatorKnobs, serve_in_thread
from tests.providers.support import fast_config

API_KEY = "el-test-key-do-not-leak"
MODEL = Workload(mode=WorkloadMode.MODEL, model="Qwen/Qwen2.5-7B-Instruct")
POLL_ATTEMPTS = 200
POLL_PAUSE = 0.02


@pytest.fixture(scope="module")
def knobs() -> SimulatorKnobs:
    return SimulatorKnobs(seed=11, provision_seconds=0.2)


@pytest.fixture(scope="module")
def server(knobs: SimulatorKnobs) -> Iterator[RunningServer]:
    running = serve_in_thread(create_simulator(knobs))
    yield running
    running.stop()


@pytest.fixture
def sim(server: RunningServer, knobs: SimulatorKnobs) -> Iterator[EmpirioLabsState]:
    """The simulator's state; afterwards every instance is destroyed and forgotten, knobs reset."""
    state: EmpirioLabsState = server.app.state.sim
    yield state
    for instance in state.book.all():
        state.book.destroy(instance.id)
    state.book.instances.clear()
    knobs.forced.clear()
    knobs.refusals.clear()
    knobs.accept_delay_seconds = 0.0
    state.book.early_access = True


def make_adapter(server: RunningServer, **overrides: Any) -> EmpirioLabsAdapter:
    return EmpirioLabsAdapter(fast_config(server.url, API_KEY, **overrides))


@pytest.fixture
def adapter(server: RunningServer, sim: EmpirioLabsState) -> Iterator[EmpirioLabsAdapter]:
    made = make_adapter(server)
    yield made
    made.close()


def offer_for(adapter: EmpirioLabsAdapter, slug: str | None = None, count: int = 1) -> Offer:
    """An available offer from the live catalog (of `slug`, when given) for `count` GPUs."""
    for offer in adapter.list_offers().offers:
        if offer.available and offer.gpu_count == count and slug in (None, offer.ref["gpu_slug"]):
            return offer
    raise AssertionError(f"no available {count}x offer of {slug or 'any GPU'}")


def wait_for(adapter: EmpirioLabsAdapter, handle: str, status: InstanceStatus) -> Instance:
    """Poll until the instance reaches `status`, a bounded number of times."""
    instance = adapter.status(handle)
    for _ in range(POLL_ATTEMPTS):
        if instance.status is status:
            return instance
        time.sleep(POLL_PAUSE)
        instance = adapter.status(handle)
    raise AssertionError(f"{handle} stayed {instance.status}, never {status}")


# --- the lifecycle -------------------------------------------------------------------------------


def test_an_instance_provisions_runs_stops_starts_and_terminates(
    adapter: EmpirioLabsAdapter, sim: EmpirioLabsState
) -> None:
    offer = offer_for(adapter, count=2)

    created = adapter.provision(offer, MODEL, "rnt_lifecycle")

    assert created.status is InstanceStatus.PROVISIONING
    assert created.provider == "empiriolabs"
    assert created.rental_id is None
    assert sim.last_deploy is not None
    assert {key: sim.last_deploy[key] for key in ("gpu_slug", "gpu_count", "mode", "hf_id")} == {
        "gpu_slug": offer.ref["gpu_slug"],
        "gpu_count": 2,
        "mode": "model",
        "hf_id": "Qwen/Qwen2.5-7B-Instruct",
    }
    assert sim.last_authorization == f"Bearer {API_KEY}"
    wait_for(adapter, created.handle, InstanceStatus.RUNNING)

    assert adapter.stop(created.handle).status is InstanceStatus.STOPPED
    assert adapter.status(created.handle).status is InstanceStatus.STOPPED
    assert adapter.start(created.handle).status is InstanceStatus.PROVISIONING
    wait_for(adapter, created.handle, InstanceStatus.RUNNING)

    ended = adapter.terminate(created.handle)
    again = adapter.terminate(created.handle)

    assert ended.status is InstanceStatus.TERMINATED
    assert ended.ended_at is not None
    assert again.status is InstanceStatus.TERMINATED
    assert adapter.status(created.handle).status is InstanceStatus.TERMINATED


def test_custom_and_template_deploys_send_their_fields(
    adapter: EmpirioLabsAdapter, sim: EmpirioLabsState
) -> None:
    offer = offer_for(adapter)

    adapter.provision(offer, Workload(image="vllm/vllm:latest", ports=(8000,)), "rnt_custom")
    custom = sim.last_deploy
    adapter.provision(offer, Workload(mode=WorkloadMode.TEMPLATE, template="comfyui"), "rnt_tpl")
    template = sim.last_deploy

    assert custom is not None and template is not None
    assert (custom["mode"], custom["image"], custom["ports"]) == (
        "custom",
        "vllm/vllm:latest",
        [8000],
    )
    assert (template["mode"], template["template_slug"]) == ("template", "comfyui")


# --- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "reason", "scope", "status"),
    [
        ("capacity", "no_capacity", Scope.REGION, 409),
        ("payment", "insufficient_funds", Scope.PROVIDER, 402),
        ("conflict", "conflict", Scope.OFFER, 409),
        ("gone", "offer_gone", Scope.OFFER, 404),
    ],
)
def test_each_refusal_kind_has_its_reason_and_scope(
    adapter: EmpirioLabsAdapter,
    sim: EmpirioLabsState,
    knobs: SimulatorKnobs,
    kind: Any,
    reason: str,
    scope: Scope,
    status: int,
) -> None:
    offer = offer_for(adapter)
    knobs.refuse_next(1, kind)

    with pytest.raises(ProviderRefused) as raised:
        adapter.provision(offer, MODEL, "rnt_refused")

    assert (raised.value.reason, raised.value.status) == (reason, status)
    assert scope_of(raised.value) is scope
    assert sim.book.instances == {}
    # The refusal was one-off: the next deploy goes through.
    assert adapter.provision(offer, MODEL, "rnt_after").status is InstanceStatus.PROVISIONING


def test_a_deploy_without_early_access_blocks_the_whole_provider(
    adapter: EmpirioLabsAdapter, sim: EmpirioLabsState
) -> None:
    sim.book.early_access = False

    with pytest.raises(ProviderRefused) as raised:
        adapter.provision(offer_for(adapter), MODEL, "rnt_early")

    assert (raised.value.reason, raised.value.status) == ("not_enabled", 404)
    assert scope_of(raised.value) is Scope.PROVIDER


def test_renting_out_a_gpu_exhausts_it_and_terminating_frees_it(
    adapter: EmpirioLabsAdapter, sim: EmpirioLabsState
) -> None:
    item = min(
        (item for item in sim.items.values() if item.available), key=lambda i: i.available_count
    )
    before = item.available_count
    handles = []
    for _ in range(before):
        handles.append(adapter.provision(offer_for(adapter, item.slug), MODEL, "rnt_fill").handle)
        if sim.items[item.slug].available_count == 0:
            break
    one_x = next(
        offer
        for offer in adapter.list_offers().offers
        if offer.ref["gpu_slug"] == item.slug and offer.gpu_count == 1
    )

    assert len(handles) == before
    assert (one_x.available, one_x.available_count) == (False, 0)
    with pytest.raises(ProviderRefused) as raised:
        adapter.provision(one_x, MODEL, "rnt_too_many")
    assert raised.value.reason == "no_capacity"

    adapter.terminate(handles[0])

    freed = offer_for(adapter, item.slug)
    assert freed.available_count == 1
    assert adapter.provision(freed, MODEL, "rnt_freed").status is InstanceStatus.PROVISIONING


def test_a_provision_that_outlasts_the_call_still_leaves_an_instance(
    server: RunningServer, sim: EmpirioLabsState, knobs: SimulatorKnobs
) -> None:
    impatient = make_adapter(server, timeout_seconds=0.3, retry_attempts=1)
    offer = offer_for(impatient)
    knobs.accept_delay_seconds = 1.0
    try:
        with pytest.raises(ProviderUnavailable):
            impatient.provision(offer, MODEL, "rnt_orphan")
    finally:
        knobs.accept_delay_seconds = 0.0

    # Only listing the account finds it: the API keeps no rental id to look it up by.
    orphans = impatient.list_instances()
    impatient.close()
    assert len(orphans) == 1
    assert orphans[0].handle in sim.book.instances


# --- unknown instances, listing, interruption ----------------------------------------------------


def test_an_unknown_handle_is_not_found_but_terminating_it_is_harmless(
    adapter: EmpirioLabsAdapter,
) -> None:
    with pytest.raises(ProviderRefused) as status_error:
        adapter.status("gi_does_not_exist")
    with pytest.raises(ProviderRefused) as stop_error:
        adapter.stop("gi_does_not_exist")

    assert status_error.value.reason == stop_error.value.reason == "not_found"
    assert adapter.terminate("gi_does_not_exist").status is InstanceStatus.TERMINATED


def test_list_instances_returns_every_live_instance(
    adapter: EmpirioLabsAdapter,
    server: RunningServer,
    sim: EmpirioLabsState,
    knobs: SimulatorKnobs,
) -> None:
    knobs.provision_seconds = 60  # still starting when listed, however slow the machine
    offer = offer_for(adapter)
    running = adapter.provision(offer, MODEL, "rnt_a").handle
    stopped = adapter.provision(offer, MODEL, "rnt_b").handle
    ended = adapter.provision(offer, MODEL, "rnt_c").handle
    adapter.stop(stopped)
    adapter.terminate(ended)

    listed = {instance.handle: instance.status for instance in adapter.list_instances()}
    simulated = httpx.get(f"{server.url}/_sim/instances").json()["instances"]

    assert listed == {running: InstanceStatus.PROVISIONING, stopped: InstanceStatus.STOPPED}
    assert {item["id"]: item["status"] for item in simulated} == {
        running: "provisioning",
        stopped: "stopped",
        ended: "destroyed",
    }


def test_empiriolabs_has_no_spot_so_nothing_is_interrupted(
    adapter: EmpirioLabsAdapter, server: RunningServer, sim: EmpirioLabsState
) -> None:
    handle = adapter.provision(offer_for(adapter), MODEL, "rnt_spot").handle

    answer = httpx.post(f"{server.url}/_sim/instances/{handle}/interrupt")

    assert answer.status_code == 409
    assert answer.json()["error"]["type"] == "conflict"
    with pytest.raises(SimRefusal):
        sim.interrupt(handle)
    assert adapter.status(handle).status is not InstanceStatus.INTERRUPTED


# --- workloads, upstream, auth, faults -----------------------------------------------------------


def test_check_workload_accepts_valid_and_names_the_field_of_invalid(
    adapter: EmpirioLabsAdapter, sim: EmpirioLabsState
) -> None:
    offer = offer_for(adapter)
    adapter.check_workload(offer, MODEL)
    adapter.check_workload(offer, Workload(mode=WorkloadMode.TEMPLATE, template="ollama"))

    for workload, field in [
        (Workload(mode=WorkloadMode.SSH, ssh_key="ssh-ed25519 AAA"), "mode"),
        (Workload(mode=WorkloadMode.MODEL), "model"),
        (Workload(mode=WorkloadMode.CUSTOM), "image"),
    ]:
        with pytest.raises(UnsupportedWorkload) as raised:
            adapter.check_workload(offer, workload)
        assert raised.value.field == field

    deploys = sim.requests[INSTANCES_PATH]
    with pytest.raises(ProviderRefused) as refused:
        adapter.provision(offer, Workload(mode=WorkloadMode.SSH), "rnt_ssh")
    assert (refused.value.reason, sim.requests[INSTANCES_PATH]) == ("refused", deploys)


def test_upstream_is_the_connect_proxy_with_the_account_key(
    adapter: EmpirioLabsAdapter, server: RunningServer
) -> None:
    handle = adapter.provision(offer_for(adapter), MODEL, "rnt_up").handle

    upstream = adapter.upstream(handle)

    assert upstream is not None
    assert upstream.base_url == f"{server.url}/v1/gpu/connect/{handle}"
    assert upstream.headers == {"Authorization": f"Bearer {API_KEY}"}


def test_without_a_key_rentals_are_unauthorized(
    server: RunningServer, sim: EmpirioLabsState
) -> None:
    keyless = make_adapter(server, api_key=None)
    offer = offer_for(keyless)
    try:
        with pytest.raises(ProviderRefused) as provision_error:
            keyless.provision(offer, MODEL, "rnt_nokey")
        with pytest.raises(ProviderRefused) as upstream_error:
            keyless.upstream("gi_any")
    finally:
        keyless.close()

    assert (provision_error.value.reason, provision_error.value.status) == ("unauthorized", 401)
    assert scope_of(provision_error.value) is Scope.PROVIDER
    assert upstream_error.value.reason == "unauthorized"
    assert sim.book.instances == {}


def test_a_5xx_on_provision_is_retried_and_deploys_once(
    adapter: EmpirioLabsAdapter, sim: EmpirioLabsState, knobs: SimulatorKnobs
) -> None:
    offer = offer_for(adapter)
    knobs.fail_next(2, "5xx")

    created = adapter.provision(offer, MODEL, "rnt_retry")

    assert not knobs.forced
    assert list(sim.book.instances) == [created.handle]
    assert API_KEY not in repr(created)


def test_the_simulator_answers_in_the_providers_error_format(server: RunningServer) -> None:
    url = f"{server.url}{INSTANCES_PATH}"
    headers = {"Authorization": "Bearer k"}

    no_key = httpx.post(url, json={"gpu_slug": "rtx-4090"})
    bad_body = httpx.post(url, json={"gpu_count": 1}, headers=headers)
    no_model = httpx.post(url, json={"gpu_slug": "rtx-4090", "mode": "model"}, headers=headers)

    assert (no_key.status_code, no_key.json()["error"]["type"]) == (401, "authentication_error")
    assert (bad_body.status_code, bad_body.json()["error"]["type"]) == (
        400,
        "invalid_request_error",
    )
    assert no_model.status_code == 400
