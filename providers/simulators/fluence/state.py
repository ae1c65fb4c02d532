"""The simulated Fluence account: plans with finite capacity and the instances deployed on them.

A deploy takes one place from its plan (containers, across the plan's locations) or option (VMs,
bare metal), and the listings show the plan unavailable once none is left; terminating gives the
place back. An instance is PENDING until `knobs.provision_seconds` have passed since it was
deployed (worked out on each read against the knob's current value, so a test may shorten the
wait), then ACTIVE: a container with each port forwarded to a workload server of its own on a
free 127.0.0.1 port (`listeners.WorkloadListeners`, stopped on terminate), a machine with an
`ssh_connection`. A container deployed with both an SSH key and `SSH_PUBKEY` in its environment
FAILS instead, as Fluence documents. Fluence sells no spot capacity, so an interruption is
refused.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, model_validator

from providers.simulators.book import AccountBook, Answer, new_id
from providers.simulators.fluence.listeners import WorkloadListeners
from providers.simulators.fluence.seed import (
    ContainerPlan,
    MachineOption,
    location_json,
    seed_catalog,
)
from providers.simulators.kit import Refusal, SimError, SimulatorKnobs, rfc3339
from providers.simulators.workload import WorkloadState

CONTAINERS = "container"
MACHINE_FAMILIES = ("vms", "baremetal")
SIM_DOMAIN = "127.0.0.1"
RESERVED_ENV = "SSH_PUBKEY"


class ExposedPort(BaseModel):
    port: int = Field(ge=1, le=65535)
    protocol: Literal["http", "tcp", "udp"]

    @model_validator(mode="after")
    def only_port_80_is_http(self) -> ExposedPort:
        if self.protocol == "http" and self.port != 80:
            raise ValueError("Only port 80 supports the http protocol")
        return self


class ContainerSettings(BaseModel):
    image: str = Field(min_length=1)
    expose: list[ExposedPort] = Field(min_length=1, max_length=10)
    env: dict[str, str] = Field(default_factory=dict, max_length=64)
    command: str | list[str] | None = None


class ContainerDeploy(BaseModel):
    plan_id: str
    name: str = Field(min_length=1)
    location: str | None = None
    container_settings: ContainerSettings
    ssh_key: str | None = None


class MachineDeploy(BaseModel):
    plan_id: str
    name: str = Field(min_length=1)
    ssh_key: str = Field(min_length=1)
    os_image: str


@dataclass
class SimInstance:
    """One deployed instance; `place` is the plan or option whose capacity it holds, if any."""

    id: str
    family: str
    name: str
    plan_id: str
    location_id: str
    place: ContainerPlan | MachineOption | None
    pending_since: float
    created_at: datetime
    status: str = "PENDING"
    doomed: bool = False
    image: str | None = None
    ports: list[tuple[int, str]] = field(default_factory=list)
    os_image: str | None = None
    external_ports: list[int] = field(default_factory=list)  # one per port, while ACTIVE

    def to_json(self) -> dict[str, object]:
        active = self.status == "ACTIVE"
        body: dict[str, object] = {
            "id": self.id,
            "name": self.name,
            "plan_id": self.plan_id,
            "location": location_json(self.location_id),
            "status": self.status,
            "created_at": rfc3339(self.created_at),
        }
        if self.family == CONTAINERS:
            body["container_settings"] = {
                "image": self.image,
                "expose": [{"port": port, "protocol": proto} for port, proto in self.ports],
            }
            body["network"] = {
                "domain": SIM_DOMAIN if active else None,
                "forwarded_ports": [
                    {"internal": port, "external": external, "protocol": proto}
                    for (port, proto), external in zip(self.ports, self.external_ports, strict=True)
                ]
                if active
                else [],
            }
        else:
            body["os_image"] = self.os_image
            body["ssh_connection"] = f"ssh root@{SIM_DOMAIN} -p 22" if active else None
        return body


NO_CAPACITY = "Not enough capacity for this plan in the requested location"


class FluenceState(AccountBook):
    """The simulated provider's plans and instances, plus what it has been asked."""

    REFUSALS: ClassVar[Mapping[Refusal, Answer]] = {
        "capacity": (400, NO_CAPACITY, ""),
        "payment": (400, "Insufficient balance to deploy instance", ""),
        "conflict": (409, "An instance with this name is already being deployed", ""),
        "gone": (400, "Plan no longer available", ""),
    }

    def __init__(self, knobs: SimulatorKnobs, listeners: WorkloadListeners | None = None) -> None:
        super().__init__(knobs)
        self.listeners = listeners or WorkloadListeners(WorkloadState("fluence"))
        catalog = seed_catalog(knobs.seed)
        self.plans = catalog.plans
        self.machine_options = {"vms": catalog.vms, "baremetal": catalog.baremetal}
        self.instances: dict[str, SimInstance] = {}

    # Plans

    def read_container_plans(self) -> list[dict[str, object]]:
        with self.settled():
            for plan in self.plans:
                plan.price = self.knobs.drift(plan.price)
            return [plan.to_json() for plan in self.plans]

    def read_machine_options(self, family: str) -> list[MachineOption]:
        """A family's options after one step of price drift (grouping is the app's concern)."""
        with self.settled():
            options = self.machine_options[family]
            for option in options:
                option.price = self.knobs.drift(option.price)
            return list(options)

    # Instances

    def deploy_container(self, body: ContainerDeploy) -> dict[str, object]:
        with self.settled():
            self.refuse_if_told()
            plan = next((plan for plan in self.plans if plan.id == body.plan_id), None)
            if plan is None:
                raise SimError(400, f"Plan {body.plan_id} is no longer available")
            location_id = body.location or plan.location_ids[0]
            if location_id not in plan.location_ids:
                raise SimError(400, f"Location {location_id} is not offered by this plan")
            self._take(plan)
            settings = body.container_settings
            instance = self._add(CONTAINERS, body.name, plan.id, location_id, plan)
            instance.image = settings.image
            instance.ports = [(port.port, port.protocol) for port in settings.expose]
            instance.doomed = bool(body.ssh_key) and RESERVED_ENV in settings.env
            return instance.to_json()

    def deploy_machine(self, family: str, body: MachineDeploy) -> dict[str, object]:
        with self.settled():
            self.refuse_if_told()
            options = self.machine_options[family]
            option = next((option for option in options if option.id == body.plan_id), None)
            if option is None:
                raise SimError(400, f"Plan {body.plan_id} is no longer available")
            if body.os_image not in option.os_options:
                raise SimError(
                    400,
                    f"Unsupported OS image {body.os_image!r}. "
                    f"Valid options: {', '.join(option.os_options)}",
                )
            self._take(option)
            instance = self._add(family, body.name, option.id, option.location_id, option)
            instance.os_image = body.os_image
            return instance.to_json()

    def get(self, family: str, instance_id: str) -> dict[str, object]:
        with self.settled():
            return self._find(family, instance_id).to_json()

    def list(self, family: str) -> list[dict[str, object]]:
        with self.settled():
            return [i.to_json() for i in self.instances.values() if i.family == family]

    def terminate(self, family: str, instance_id: str) -> dict[str, object]:
        """Only an ACTIVE instance terminates, as Fluence documents; its place is given back."""
        with self.settled():
            instance = self._find(family, instance_id)
            if instance.status != "ACTIVE":
                raise SimError(
                    400,
                    f"Only ACTIVE instances can be terminated; "
                    f"instance {instance_id} is {instance.status}",
                )
            instance.status = "TERMINATED"
            self._release(instance)
            ended = instance.to_json()
        self.listeners.close(instance_id)
        return ended

    def interrupt_json(self, instance_id: str, base_url: str = "") -> dict[str, Any]:
        """Fluence has no spot instances: always refused, after checking the instance exists."""
        with self.lock:
            if instance_id not in self.instances:
                raise SimError(404, "Instance not found")
            raise SimError(409, "Fluence instances are on-demand and cannot be interrupted")

    def instances_json(self, base_url: str = "") -> builtins.list[dict[str, Any]]:
        with self.settled():
            return [{"family": i.family, **i.to_json()} for i in self.instances.values()]

    @staticmethod
    def _take(place: ContainerPlan | MachineOption) -> None:
        if place.free <= 0:
            raise SimError(400, NO_CAPACITY)
        place.free -= 1

    @staticmethod
    def _release(instance: SimInstance) -> None:
        if instance.place is not None:
            instance.place.free += 1
            instance.place = None

    def _add(
        self,
        family: str,
        name: str,
        plan_id: str,
        location_id: str,
        place: ContainerPlan | MachineOption,
    ) -> SimInstance:
        instance = SimInstance(
            id=new_id("inst_", 6),
            family=family,
            name=name,
            plan_id=plan_id,
            location_id=location_id,
            place=place,
            pending_since=time.monotonic(),
            created_at=datetime.now(UTC),
        )
        self.instances[instance.id] = instance
        return instance

    def _find(self, family: str, instance_id: str) -> SimInstance:
        instance = self.instances.get(instance_id)
        if instance is None or instance.family != family:
            raise SimError(404, "Instance not found")
        return instance

    def settle(self) -> None:
        """Move every PENDING instance whose provisioning time has passed to ACTIVE or FAILED."""
        for instance in self.provisioned(self.instances.values(), "PENDING"):
            instance.status = "FAILED" if instance.doomed else "ACTIVE"
            if instance.doomed:
                self._release(instance)
            elif instance.family == CONTAINERS:
                instance.external_ports = self.listeners.open(instance.id, len(instance.ports))
