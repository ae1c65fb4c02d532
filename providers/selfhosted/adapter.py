"""The self-hosted adapter: the operator's own GPUs (NVML) run renters' containers (Docker).

Offers come from the GPUs that are free right now: discovered through NVML, or declared as
simulated by `GPUBROKER_SELFHOSTED_FAKE_GPUS`, less those that a container holds (read from
labels) or that another process computes on. Without NVML and without simulated devices the
adapter offers nothing and says why, as a refusal the catalog shows in its `providers` block.

A rental is one container, its handle the container id. Provisioning picks the GPUs and
creates the container under the allocation lock (`locking.HostLock`), so two rents of the last
free GPU cannot both win, in one broker or across brokers on one host. Nothing about a rental
is kept only in memory except which containers this process was asked to stop: an exited
container is `STOPPED` if so, else `FAILED` with its last log lines.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from pricing.offer import Offer
from providers.base import (
    OfferFilters,
    OfferPage,
    ProviderConfig,
    ProviderError,
    ProviderRefused,
    ProviderUnavailable,
)
from providers.rental import (
    Instance,
    InstanceStatus,
    NotSupported,
    UnsupportedWorkload,
    Upstream,
    Workload,
)
from providers.selfhosted import containers
from providers.selfhosted.containers import (
    LABEL_GPUS,
    LABEL_REGION,
    LABEL_RENTAL,
    LOG_LINES,
    allocated_uuids,
    gpu_uuids,
    instance_from_inspection,
    instance_from_summary,
    plan_container,
    published_port,
    requested_ports,
)
from providers.selfhosted.devices import GpuDevice, device_from_reading, parse_fake_gpus
from providers.selfhosted.engine import LOOPBACK, DockerEngine
from providers.selfhosted.locking import DEFAULT_LOCK_FILE, HostLock, LockTimeout
from providers.selfhosted.nvml import NvmlUnavailable, read_devices
from providers.selfhosted.offers import (
    DEFAULT_PRICES,
    PROVIDER,
    build_offers,
    parse_prices,
    pick_devices,
)

DEFAULT_REGION = "local"
DEFAULT_PULL_TIMEOUT_SECONDS = 120.0


class SelfHostedAdapter:
    """This host's GPUs, rented out as Docker containers pinned to them."""

    name = PROVIDER

    def __init__(self, config: ProviderConfig) -> None:
        options = config.options
        self.region: str = options.get("region") or DEFAULT_REGION
        self.deployment = config.deployment_id
        self.prices = parse_prices(options.get("prices") or DEFAULT_PRICES)
        fake = options.get("fake_gpus")
        self.simulated: list[GpuDevice] | None = (
            parse_fake_gpus(fake, self.region) if fake else None
        )
        self.engine = DockerEngine(
            config.base_url,
            timeout_seconds=config.timeout_seconds,
            pull_timeout_seconds=options.get("pull_timeout_seconds")
            or DEFAULT_PULL_TIMEOUT_SECONDS,
        )
        self.lock = HostLock(Path(options.get("lock_file") or DEFAULT_LOCK_FILE))
        self._stop_requested: set[str] = set()
        self._stop_lock = threading.Lock()

    # --- discovery and offers ------------------------------------------------------------------

    def devices(self) -> list[GpuDevice]:
        """Every GPU of this host (simulated ones when declared); a refusal when there are none."""
        if self.simulated is not None:
            return list(self.simulated)
        try:
            _, readings = read_devices()
        except NvmlUnavailable as exc:
            raise ProviderRefused(
                PROVIDER,
                f"{exc}, so there are no GPUs to offer; set GPUBROKER_SELFHOSTED_FAKE_GPUS "
                "(e.g. 2xRTX 4090) to simulate some for development",
                reason="not_enabled",
            ) from None
        return [device_from_reading(reading) for reading in readings]

    def allocated(self) -> frozenset[str]:
        """The GPU UUIDs held by any container on this engine, whichever broker started it."""
        return allocated_uuids(self.engine.containers(LABEL_GPUS))

    def list_offers(self, filters: OfferFilters | None = None) -> OfferPage:
        """Offers for the free GPUs; `filters` are left to the caller (the list is tiny)."""
        devices = self.devices()
        return build_offers(devices, self.allocated(), self.prices, self.region, datetime.now(UTC))

    # --- rentals -------------------------------------------------------------------------------

    def check_workload(self, offer: Offer, workload: Workload) -> None:
        containers.check_workload(workload)

    def provision(self, offer: Offer, workload: Workload, rental_id: str) -> Instance:
        """Start the workload on free GPUs of the offer's model, labelled with `rental_id` and
        the deployment id (`gpubroker.deployment`)."""
        try:
            containers.check_workload(workload)
        except UnsupportedWorkload as exc:
            raise ProviderRefused(PROVIDER, exc.message, status=422, reason="refused") from None
        self.engine.ensure_image(workload.image or "")  # outside the lock: a pull is slow
        with self._allocation():
            chosen = pick_devices(self.devices(), self.allocated(), offer)
            if len(chosen) < offer.gpu_count:
                raise ProviderRefused(
                    PROVIDER,
                    f"only {len(chosen)} of the {offer.gpu_count} {offer.gpu} GPUs this offer "
                    "needs (gpu_count) are free on this host now",
                    reason="no_capacity",
                )
            plan = plan_container(
                offer, workload, rental_id, chosen, self.region, self.deployment
            )
            handle = self.engine.create(plan)
        try:
            self.engine.start(handle)
        except ProviderError as exc:
            self.engine.remove(handle)
            if "device driver" in exc.message:
                raise ProviderUnavailable(
                    PROVIDER,
                    f"{exc.message}: the Docker engine cannot hand GPUs to containers; install "
                    "the NVIDIA Container Toolkit and configure it for Docker",
                ) from None
            raise
        return self.status(handle)

    def status(self, handle: str) -> Instance:
        """The container now; an exit nobody asked for is `FAILED` with its last log lines."""
        container = self.engine.inspect(handle)
        with self._stop_lock:
            stop_requested = handle in self._stop_requested
        logs = None
        if containers.state_of(container) in ("exited", "dead") and not stop_requested:
            logs = self.engine.log_tail(handle, LOG_LINES)
        return instance_from_inspection(container, stop_requested=stop_requested, logs=logs)

    def terminate(self, handle: str) -> Instance:
        """Kill and remove the container; one already gone is terminated all the same."""
        try:
            self.engine.remove(handle)
        except ProviderRefused as exc:
            if exc.reason != "not_found":
                raise
        self._forget_stop(handle)
        return Instance(provider=PROVIDER, handle=handle, status=InstanceStatus.TERMINATED)

    def stop(self, handle: str) -> Instance:
        """Stop the container (SIGTERM, then SIGKILL after a grace); its GPUs are freed."""
        with self._stop_lock:
            self._stop_requested.add(handle)
        self.engine.stop(handle)
        return self.status(handle)

    def start(self, handle: str) -> Instance:
        """Start a stopped container again, if no other container took its GPUs meanwhile."""
        with self._allocation():
            container = self.engine.inspect(handle)
            others = allocated_uuids(
                item
                for item in self.engine.containers(LABEL_GPUS)
                if containers.container_id(item) != containers.container_id(container)
            )
            taken = [uuid for uuid in gpu_uuids(container) if uuid in others]
            if taken:
                raise ProviderRefused(
                    PROVIDER,
                    f"GPU {', '.join(taken)} was rented to another container while this one was "
                    "stopped; terminate this rental and rent again",
                    reason="no_capacity",
                )
            self.engine.start(handle)
        self._forget_stop(handle)
        return self.status(handle)

    def gpu_utilisation(self, handle: str) -> int | None:
        """The busiest of the container's GPUs as NVML reports it (percent); None where no
        reading exists (simulated GPUs, or devices that do not report utilisation)."""
        held = set(gpu_uuids(self.engine.inspect(handle)))
        readings = [d.utilization_pct for d in self.devices() if d.uuid in held]
        known = [pct for pct in readings if pct is not None]
        return max(known) if known else None

    def upstream(self, handle: str) -> Upstream | None:
        """The workload's first requested port, published on loopback; None without ports."""
        container = self.engine.inspect(handle)
        ports = requested_ports(container)
        if not ports:
            return None
        host_port = published_port(container, ports[0])
        if host_port is None:
            raise ProviderRefused(
                PROVIDER,
                f"the container is {containers.state_of(container)}, so port {ports[0]} is not "
                "published",
                reason="conflict",
            )
        return Upstream(f"http://{LOOPBACK}:{host_port}")

    def list_instances(self) -> list[Instance]:
        """Every rental container of this host (this region), running or not.

        A host with neither GPUs nor a Docker engine (a cloud-only broker, where this backend is
        merely enabled by default) has nothing to reconcile: `NotSupported`, not a warning on
        every pass.
        """
        try:
            listed = self.engine.containers(LABEL_RENTAL, f"{LABEL_REGION}={self.region}")
        except ProviderUnavailable:
            if not self._has_gpus():
                raise NotSupported(
                    PROVIDER, "no GPUs and no Docker engine on this host: nothing to reconcile"
                ) from None
            raise
        return [instance_from_summary(item) for item in listed]

    def close(self) -> None:
        self.engine.close()

    # --- helpers -------------------------------------------------------------------------------

    @contextmanager
    def _allocation(self) -> Iterator[None]:
        try:
            with self.lock.held():
                yield
        except LockTimeout as exc:
            raise ProviderUnavailable(PROVIDER, f"GPU allocation is busy: {exc}") from None

    def _has_gpus(self) -> bool:
        try:
            return bool(self.devices())
        except ProviderRefused:
            return False

    def _forget_stop(self, handle: str) -> None:
        with self._stop_lock:
            self._stop_requested.discard(handle)
