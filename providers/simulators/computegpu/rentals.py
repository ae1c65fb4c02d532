"""The ComputeGPU simulator's rentals: marketplace rentals of listings, and GPU cloud pods.

A listing is one host's machine: renting it takes the whole listing off the market (it reads
`available: false`) until the rental is stopped. A listing already runs Ollama, so its rental
is `active` at once. A pod takes `gpuCount` GPUs from its type's pool (the type's `maxCount`
and `available` show it) and gives them back when destroyed or preempted; a paused pod keeps
them. Pods deploy lazily: one reads as `deploying` until the knobs' `provision_seconds` have
passed since it was created or resumed, then `running`. Costs follow the seconds billed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from providers.simulators.book import Answer, known, new_id, refuse_if_told
from providers.simulators.computegpu.seed import GpuType, Listing
from providers.simulators.kit import Refusal, SimError, SimulatorKnobs, rfc3339
from providers.simulators.lifecycle import Holding, boot_again, gpu_count_allowed, still_live

# Phases an instance never leaves: no pause, stop or start from them.
ENDED = ("preempted", "destroyed")
OLLAMA_PROXY = "/api/v1/ollama"
SSH_HOST = "ssh.computegpu.com"
FIRST_SSH_PORT = 22000
PAYMENT_REFUSAL: Answer = (
    402,
    "Insufficient wallet balance: at least one hour of this GPU is required.",
    "",
)
CONFLICT_REFUSAL: Answer = (409, "Another deploy for this account is already in progress.", "")


def _rfc3339(moment: datetime) -> str:
    return rfc3339(moment, timespec="milliseconds")


@dataclass
class Meter:
    """Billed seconds: what has been billed, plus the running stretch since `since`."""

    billed: float = 0.0
    since: float | None = None

    def start(self, at: float) -> None:
        if self.since is None:
            self.since = at

    def pause(self) -> None:
        if self.since is not None:
            self.billed += time.monotonic() - self.since
            self.since = None

    def seconds(self) -> float:
        running = 0.0 if self.since is None else time.monotonic() - self.since
        return self.billed + running

    def cost(self, price_per_hour: float) -> float:
        return round(price_per_hour * self.seconds() / 3600, 6)


@dataclass
class SimRental:
    """One marketplace rental of a whole listing."""

    id: str
    listing: Listing
    price_per_hour: float
    api_key: str
    started_at: datetime
    meter: Meter
    status: str = "active"
    stopped_at: datetime | None = None
    stop_reason: str | None = None

    @property
    def endpoint(self) -> str:
        return f"{OLLAMA_PROXY}/{self.id}"

    def cost(self) -> float:
        return self.meter.cost(self.price_per_hour * self.listing.gpu_count)

    def to_json(self) -> dict[str, Any]:
        """The rental detail as `GET .../rentals/{id}` shows it: never its key or endpoint,
        which ComputeGPU hands out once, in the answer to the rent call."""
        body: dict[str, Any] = {
            "id": self.id,
            "listingId": self.listing.id,
            "status": self.status,
            "pricePerHour": self.price_per_hour,
            "costSoFar": self.cost(),
            "startedAt": _rfc3339(self.started_at),
        }
        if self.stopped_at is not None:
            body["stoppedAt"] = _rfc3339(self.stopped_at)
        if self.stop_reason is not None:
            body["stopReason"] = self.stop_reason
        return body


@dataclass
class SimPod(Holding):
    """One GPU cloud pod. `phase` is the stored status; reads settle it against the clock."""

    id: str
    gpu_type: GpuType
    gpu_count: int
    price_per_hour: float
    tier: str
    instance_type: str
    spec: dict[str, Any]
    api_key: str
    ssh_port: int
    started_at: datetime
    boot_started: float
    phase: str = "deploying"
    meter: Meter = field(default_factory=Meter)

    def settle(self, provision_seconds: float) -> None:
        if self.phase == "deploying" and time.monotonic() - self.boot_started >= provision_seconds:
            self.phase = "running"
            self.meter.start(self.boot_started + provision_seconds)

    def cost(self) -> float:
        return self.meter.cost(self.price_per_hour * self.gpu_count)

    def to_json(self, *, with_key: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "gpuType": self.gpu_type.gpu_type,
            "gpuCount": self.gpu_count,
            "vramGb": self.gpu_type.vram_gb,
            "pricePerHour": self.price_per_hour,
            "instanceType": self.instance_type,
            "status": self.phase,
            "pricingTier": self.tier,
            "startedAt": _rfc3339(self.started_at),
            "costSoFar": self.cost(),
            **self.spec,
        }
        if self.phase == "running" and self.instance_type == "ollama":
            body["endpoint"] = f"{OLLAMA_PROXY}/{self.id}"
            if with_key:
                body["apiKey"] = self.api_key
        if self.phase == "running" and self.instance_type != "ollama":
            body["ssh"] = {"host": SSH_HOST, "port": self.ssh_port, "user": "root"}
        if self.ended_at is not None:
            body["endedAt"] = _rfc3339(self.ended_at)
        return body


class RentalBook:
    """Every marketplace rental and pod of the simulated account, ended ones included."""

    def __init__(
        self, knobs: SimulatorKnobs, listings: list[Listing], gpu_types: list[GpuType]
    ) -> None:
        self.knobs = knobs
        self.listings = listings
        self.gpu_types = gpu_types
        self.rentals: dict[str, SimRental] = {}
        self.pods: dict[str, SimPod] = {}

    # --- marketplace rentals ---------------------------------------------------------------

    def rent(self, listing_id: str) -> SimRental:
        gone, taken = (404, "Listing not found.", ""), (409, "Listing is not available.", "")
        refuse_if_told(self.knobs, self._refusals(gone, taken))
        listing = next((item for item in self.listings if item.id == listing_id), None)
        if listing is None:
            raise SimError(*gone)
        if not listing.available:
            raise SimError(*taken)
        listing.available = False
        rental = SimRental(
            id=new_id("rnt_", 8),
            listing=listing,
            price_per_hour=listing.price_per_hour,
            api_key=new_id("", 16),
            started_at=datetime.now(UTC),
            meter=Meter(since=time.monotonic()),
        )
        self.rentals[rental.id] = rental
        return rental

    def rental(self, rental_id: str) -> SimRental:
        return known(self.rentals, rental_id, "Rental not found.")

    def stop_rental(self, rental_id: str, reason: str | None = None) -> SimRental:
        rental = self.rental(rental_id)
        if rental.status == "active":
            rental.meter.pause()
            rental.status = "stopped"
            rental.stopped_at = datetime.now(UTC)
            rental.stop_reason = reason
            rental.listing.available = True
        return rental

    # --- GPU cloud pods --------------------------------------------------------------------

    def deploy(self, body: dict[str, Any], bid_per_gpu: float | None, *, spot: bool) -> SimPod:
        count = body["gpuCount"]
        gone: Answer = (404, f"Unknown GPU type: {body['gpuType']}.", "")
        short: Answer = (409, f"Insufficient capacity for {count}x {body['gpuType']}.", "")
        refuse_if_told(self.knobs, self._refusals(gone, short))
        gpu_type = next((item for item in self.gpu_types if item.gpu_type == body["gpuType"]), None)
        if gpu_type is None:
            raise SimError(*gone)
        gpu_count_allowed(count, gpu_type.max_count, "gpuCount")
        price = self._price(gpu_type, bid_per_gpu, spot=spot)
        self._take(gpu_type, count, short)
        pod = SimPod(
            id=new_id("", 7),
            gpu_type=gpu_type,
            gpu_count=count,
            price_per_hour=price,
            tier="spot" if spot else "on-demand",
            instance_type=body["instanceType"],
            spec={key: body[key] for key in ("models", "image") if body.get(key)},
            api_key=new_id("", 16),
            ssh_port=FIRST_SSH_PORT + len(self.pods),
            started_at=datetime.now(UTC),
            boot_started=time.monotonic(),
        )
        self.pods[pod.id] = pod
        return pod

    def pod(self, pod_id: str) -> SimPod:
        pod = known(self.pods, pod_id, "Instance not found.")
        pod.settle(self.knobs.provision_seconds)
        return pod

    def pause(self, pod_id: str) -> SimPod:
        pod = self.pod(pod_id)
        still_live(pod, ENDED)
        pod.meter.pause()
        pod.phase = "paused"
        return pod

    def resume(self, pod_id: str) -> SimPod:
        pod = self.pod(pod_id)
        still_live(pod, ENDED)
        boot_again(pod, "paused", "deploying")
        return pod

    def destroy(self, pod_id: str) -> SimPod:
        pod = self.pod(pod_id)
        if pod.phase != "destroyed":
            self._end(pod, "destroyed")
        return pod

    def live_pods(self) -> list[SimPod]:
        return [pod for pod in self.every_pod() if pod.phase != "destroyed"]

    def every_pod(self) -> list[SimPod]:
        for pod in self.pods.values():
            pod.settle(self.knobs.provision_seconds)
        return list(self.pods.values())

    # --- the host or the cloud taking a spot rental back --------------------------------------

    def interrupt(self, instance_id: str) -> SimPod | SimRental:
        """Preempt a spot pod, or have a spot listing's host take its machine back."""
        if instance_id in self.rentals:
            rental = self.rental(instance_id)
            if rental.listing.pricing_tier != "spot" or rental.status != "active":
                raise SimError(409, "Only an active rental of a spot listing can be preempted.")
            return self.stop_rental(instance_id, reason="preempted")
        pod = self.pod(instance_id)
        if pod.tier != "spot" or pod.phase in ("preempted", "destroyed"):
            raise SimError(409, "Only a live spot instance can be preempted.")
        self._end(pod, "preempted")
        return pod

    @staticmethod
    def _refusals(gone: Answer, short: Answer) -> dict[Refusal, Answer]:
        """The refusal table of one rent or deploy: what is missing or short is its own."""
        return {
            "payment": PAYMENT_REFUSAL,
            "conflict": CONFLICT_REFUSAL,
            "gone": gone,
            "capacity": short,
        }

    def _price(self, gpu_type: GpuType, bid_per_gpu: float | None, *, spot: bool) -> float:
        if not spot:
            return gpu_type.price_per_hour
        if gpu_type.spot_price_per_hour is None:
            raise SimError(400, f"{gpu_type.gpu_type} is not sold as spot.")
        if bid_per_gpu is None or bid_per_gpu < gpu_type.spot_price_per_hour:
            raise SimError(
                409, f"Bid is below the current spot price of {gpu_type.spot_price_per_hour}."
            )
        return gpu_type.spot_price_per_hour

    def _end(self, pod: SimPod, phase: str) -> None:
        pod.meter.pause()
        if pod.ended_at is None:
            pod.ended_at = datetime.now(UTC)
        pod.phase = phase
        if pod.let_go():
            pod.gpu_type.free_gpus += pod.gpu_count
            pod.gpu_type.available = pod.gpu_type.free_gpus > 0

    @staticmethod
    def _take(gpu_type: GpuType, count: int, short: Answer) -> None:
        """Take `count` GPUs of the type; `short` refuses when fewer are free."""
        if not gpu_type.available or gpu_type.free_gpus < count:
            raise SimError(*short)
        gpu_type.free_gpus -= count
        gpu_type.available = gpu_type.free_gpus > 0
