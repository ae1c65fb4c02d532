"""The pure side of self-hosted rentals: workload checks, container plans, Docker JSON read back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from providers.rental import InstanceStatus, UnsupportedWorkload, Workload, WorkloadMode
from providers.selfhosted.containers import (
    LABEL_GPUS,
    LABEL_PORTS,
    LABEL_RENTAL,
    allocated_uuids,
    check_workload,
    container_name,
    failure_reason,
    instance_from_inspection,
    instance_from_summary,
    plan_container,
    published_port,
    requested_ports,
)
from providers.selfhosted.devices import parse_fake_gpus
from providers.selfhosted.offers import build_offers, parse_prices
from tests.selfhosted.support import real

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
IMAGE = "vllm/vllm-openai:v0.6.3"


def inspected(status: str, **state: Any) -> dict[str, Any]:
    """An abridged `GET /containers/{id}/json` as Docker 20.10 answers it."""
    return {
        "Id": "4f1c" * 16,
        "Name": "/gpubroker-rnt_abc",
        "State": {"Status": status, "Running": status == "running", "ExitCode": 0, **state},
        "Config": {
            "Labels": {
                LABEL_RENTAL: "rnt_abc",
                LABEL_GPUS: "GPU-sim-local-0,GPU-sim-local-1",
                LABEL_PORTS: "8000,9000",
            }
        },
        "NetworkSettings": {
            "Ports": {
                "8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": "49153"}],
                "9000/tcp": [{"HostIp": "127.0.0.1", "HostPort": "49154"}],
            }
            if status == "running"
            else {}
        },
    }


@pytest.mark.parametrize(
    ("workload", "field"),
    [
        (Workload(mode=WorkloadMode.MODEL, model="meta-llama/Llama-3.1-8B-Instruct"), "mode"),
        (Workload(mode=WorkloadMode.TEMPLATE, template="jupyter"), "mode"),
        (Workload(mode=WorkloadMode.SSH, ssh_key="ssh-ed25519 AAAA"), "mode"),
        (Workload(image=None), "image"),
        (Workload(image="not an image"), "image"),
        (Workload(image="-rm"), "image"),
        (Workload(image=IMAGE, ssh_key="ssh-ed25519 AAAA"), "ssh_key"),
        (Workload(image=IMAGE, ports=(0,)), "ports"),
        (Workload(image=IMAGE, ports=(65536,)), "ports"),
        (Workload(image=IMAGE, ports=(8000, 8000)), "ports"),
        (Workload(image=IMAGE, env={"1BAD": "x"}), "env"),
        (Workload(image=IMAGE, env={"BAD-NAME": "x"}), "env"),
    ],
)
def test_workloads_this_backend_cannot_run(workload: Workload, field: str) -> None:
    with pytest.raises(UnsupportedWorkload) as refused:
        check_workload(workload)
    assert refused.value.field == field


def test_a_custom_image_runs() -> None:
    check_workload(
        Workload(image="ghcr.io/org/app@sha256:" + "ab" * 32, ports=(1, 65535), env={"_A1": ""})
    )


def test_the_plan_pins_real_gpus_and_labels_everything() -> None:
    devices = [real(0, "H100 SXM", 80), real(1, "H100 SXM", 80)]
    offer = next(
        o
        for o in build_offers(devices, set(), parse_prices({"*": "2"}), "local", NOW).offers
        if o.gpu_count == 2
    )
    workload = Workload(image=IMAGE, ports=(8000,), env={"HF_TOKEN": "hf_secret"})
    plan = plan_container(offer, workload, "rnt_42", devices, "local")
    assert plan.name == "gpubroker-rnt_42" and plan.image == IMAGE
    assert plan.device_ids == (devices[0].uuid, devices[1].uuid)
    assert plan.ports == (8000,) and plan.env == {"HF_TOKEN": "hf_secret"}
    assert plan.labels == {
        "gpubroker.rental": "rnt_42",
        "gpubroker.region": "local",
        "gpubroker.offer": "selfhosted:local:h100-sxm:2x",
        "gpubroker.gpus": f"{devices[0].uuid},{devices[1].uuid}",
        "gpubroker.ports": "8000",
        "gpubroker.simulated": "false",
    }
    assert "hf_secret" not in repr(plan)


def test_simulated_gpus_get_no_device_request() -> None:
    devices = parse_fake_gpus("1xRTX 4090", "local")
    offer = build_offers(devices, set(), parse_prices({"*": "1"}), "local", NOW).offers[0]
    plan = plan_container(offer, Workload(image=IMAGE), "rnt_1", devices, "local")
    assert plan.device_ids == ()
    assert plan.labels["gpubroker.gpus"] == "GPU-sim-local-0"
    assert plan.labels["gpubroker.simulated"] == "true"


def test_container_names_are_docker_safe() -> None:
    assert container_name("rnt_AbC-9") == "gpubroker-rnt_AbC-9"
    assert container_name("a b/c") == "gpubroker-a-b-c"


def test_allocations_come_from_containers_that_hold_gpus() -> None:
    summaries = [
        {"Id": "1", "State": "running", "Labels": {LABEL_GPUS: "GPU-a,GPU-b"}},
        {"Id": "2", "State": "created", "Labels": {LABEL_GPUS: "GPU-c"}},
        {"Id": "3", "State": "paused", "Labels": {LABEL_GPUS: "GPU-d"}},
        {"Id": "4", "State": "exited", "Labels": {LABEL_GPUS: "GPU-e"}},
        {"Id": "5", "State": "dead", "Labels": {LABEL_GPUS: "GPU-f"}},
        {"Id": "6", "State": "running", "Labels": {LABEL_GPUS: ""}},
    ]
    assert allocated_uuids(summaries) == {"GPU-a", "GPU-b", "GPU-c", "GPU-d"}
    assert allocated_uuids([inspected("running")]) == {"GPU-sim-local-0", "GPU-sim-local-1"}


def test_ports_are_read_back() -> None:
    container = inspected("running")
    assert requested_ports(container) == [8000, 9000]
    assert published_port(container, 8000) == 49153
    assert published_port(inspected("exited"), 8000) is None
    assert published_port(container, 7000) is None


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("created", InstanceStatus.PROVISIONING),
        ("restarting", InstanceStatus.PROVISIONING),
        ("running", InstanceStatus.RUNNING),
        ("paused", InstanceStatus.STOPPED),
        ("removing", InstanceStatus.TERMINATED),
        ("dead", InstanceStatus.FAILED),
        ("exited", InstanceStatus.FAILED),
    ],
)
def test_docker_states(status: str, expected: InstanceStatus) -> None:
    instance = instance_from_inspection(inspected(status), stop_requested=False, logs="")
    assert instance.status is expected
    assert instance.rental_id == "rnt_abc" and instance.provider == "selfhosted"


def test_an_exit_the_broker_asked_for_is_a_stop() -> None:
    instance = instance_from_inspection(inspected("exited", ExitCode=143), stop_requested=True)
    assert instance.status is InstanceStatus.STOPPED and instance.reason is None


def test_a_crash_keeps_the_exit_code_and_the_last_log_lines() -> None:
    logs = "\n".join(f"line {n}" for n in range(1, 31)) + "\nRuntimeError: CUDA out of memory\n"
    crashed = inspected("exited", ExitCode=137, OOMKilled=True)
    instance = instance_from_inspection(crashed, stop_requested=False, logs=logs)
    assert instance.status is InstanceStatus.FAILED
    assert instance.reason is not None
    assert instance.reason.startswith("the container exited with code 137 (killed: out of memory)")
    assert instance.reason.endswith("RuntimeError: CUDA out of memory")
    assert "line 12" in instance.reason and "line 11\n" not in instance.reason  # last 20 lines
    assert failure_reason(inspected("dead"), "") == (
        "the container exited with code 0; it wrote no log"
    )
    assert len(failure_reason(crashed, "x" * 10_000)) == 2000


def test_reconciliation_sees_every_container_that_still_exists() -> None:
    summary = {"Id": "9", "State": "exited", "Labels": {LABEL_RENTAL: "rnt_gone"}}
    instance = instance_from_summary(summary)
    assert (instance.handle, instance.rental_id) == ("9", "rnt_gone")
    assert instance.status is InstanceStatus.STOPPED  # not ended: it must be removed
    assert instance_from_summary({**summary, "State": "running"}).status is InstanceStatus.RUNNING
