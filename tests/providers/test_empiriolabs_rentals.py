"""EmpirioLabs rentals: what is particular to EmpirioLabs, against its simulator over real HTTP.

The lifecycle, refusals, unknown handles, keys, retries and interruption rules every provider
shares are in `test_rental_conformance.py`; here are EmpirioLabs' own: the deploy fields of each
mode, early access, capacity, the orphan a slow answer leaves, listing, workload checks, the
connect proxy and its error format.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from pricing.offer import Offer
from providers.base import ProviderRefused, ProviderUnavailable
from providers.empiriolabs.adapter import EmpirioLabsAdapter
from providers.empiriolabs.instances import INSTANCES_PATH
from providers.rental import InstanceStatus, UnsupportedWorkload, Workload, WorkloadMode, scope_of
from providers.simulators.kit import SimError, SimulatorKnobs
from tests.providers.support import SimulatedProvider, wait_for

API_KEY = "el-test-key-do-not-leak"
pytestmark = pytest.mark.provider("empiriolabs", api_key=API_KEY)
MODEL = Workload(mode=WorkloadMode.MODEL, model="Qwen/Qwen2.5-7B-Instruct")


def offer_for(adapter: EmpirioLabsAdapter, slug: str | None = None, count: int = 1) -> Offer:
    """An available offer from the live catalog (of `slug`, when given) for `count` GPUs."""
    for offer in adapter.list_offers().offers:
        if offer.available and offer.gpu_count == count and slug in (None, offer.ref["gpu_slug"]):
            return offer
    raise AssertionError(f"no available {count}x offer of {slug or 'any GPU'}")


# --- the lifecycle -------------------------------------------------------------------------------


def test_a_model_deploy_sends_its_fields_with_the_account_key(
    adapter: EmpirioLabsAdapter, sim: Any
) -> None:
    offer = offer_for(adapter, count=2)

    created = adapter.provision(offer, MODEL, "rnt_lifecycle")

    assert sim.last_deploy is not None
    assert {key: sim.last_deploy[key] for key in ("gpu_slug", "gpu_count", "mode", "hf_id")} == {
        "gpu_slug": offer.ref["gpu_slug"],
        "gpu_count": 2,
        "mode": "model",
        "hf_id": "Qwen/Qwen2.5-7B-Instruct",
    }
    assert sim.last_authorization == f"Bearer {API_KEY}"
    assert wait_for(adapter, created.handle, InstanceStatus.RUNNING).provider == "empiriolabs"


def test_custom_and_template_deploys_send_their_fields(
    adapter: EmpirioLabsAdapter, sim: Any
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


def test_a_deploy_without_early_access_blocks_the_whole_provider(
    adapter: EmpirioLabsAdapter, sim: Any
) -> None:
    sim.book.early_access = False

    with pytest.raises(ProviderRefused) as raised:
        adapter.provision(offer_for(adapter), MODEL, "rnt_early")

    assert (raised.value.reason, raised.value.status) == ("not_enabled", 404)
    assert scope_of(raised.value) == "provider"


def test_renting_out_a_gpu_exhausts_it_and_terminating_frees_it(
    adapter: EmpirioLabsAdapter, sim: Any
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
    provider: SimulatedProvider, sim: Any, knobs: SimulatorKnobs
) -> None:
    impatient = provider.adapter(timeout_seconds=0.3, retry_attempts=1)
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


def test_list_instances_returns_every_live_instance(
    adapter: EmpirioLabsAdapter, provider: SimulatedProvider, sim: Any
) -> None:
    provider.knobs.provision_seconds = 60  # still starting when listed, however slow the machine
    offer = offer_for(adapter)
    running = adapter.provision(offer, MODEL, "rnt_a").handle
    stopped = adapter.provision(offer, MODEL, "rnt_b").handle
    ended = adapter.provision(offer, MODEL, "rnt_c").handle
    adapter.stop(stopped)
    adapter.terminate(ended)

    listed = {instance.handle: instance.status for instance in adapter.list_instances()}
    simulated = provider.instances()

    assert listed == {running: InstanceStatus.PROVISIONING, stopped: InstanceStatus.STOPPED}
    assert {item["id"]: item["status"] for item in simulated} == {
        running: "provisioning",
        stopped: "stopped",
        ended: "destroyed",
    }


def test_the_simulator_itself_refuses_to_interrupt_as_empiriolabs_has_no_spot(
    adapter: EmpirioLabsAdapter, sim: Any
) -> None:
    handle = adapter.provision(offer_for(adapter), MODEL, "rnt_spot").handle

    with pytest.raises(SimError):
        sim.interrupt(handle)
    assert adapter.status(handle).status is not InstanceStatus.INTERRUPTED


# --- workloads, upstream, auth, faults -----------------------------------------------------------


def test_check_workload_accepts_valid_and_names_the_field_of_invalid(
    adapter: EmpirioLabsAdapter, sim: Any
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
    adapter: EmpirioLabsAdapter, provider: SimulatedProvider
) -> None:
    handle = adapter.provision(offer_for(adapter), MODEL, "rnt_up").handle

    upstream = adapter.upstream(handle)

    assert upstream is not None
    assert upstream.base_url == f"{provider.url}/v1/gpu/connect/{handle}"
    assert upstream.headers == {"Authorization": f"Bearer {API_KEY}"}


def test_without_a_key_the_connect_proxy_is_unauthorized(provider: SimulatedProvider) -> None:
    keyless = provider.adapter(api_key=None)
    try:
        with pytest.raises(ProviderRefused) as upstream_error:
            keyless.upstream("gi_any")
    finally:
        keyless.close()

    assert upstream_error.value.reason == "unauthorized"


def test_the_simulator_answers_in_the_providers_error_format(provider: SimulatedProvider) -> None:
    url = f"{provider.url}{INSTANCES_PATH}"
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
