"""`gpubroker serve --demo` lists two simulated RTX 4090s when a Docker engine answers."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx

from tests.replicas.processes import GPUBROKER, free_port
from tests.selfhosted.conftest import Host


def test_the_demo_enables_simulated_selfhosted_gpus(host: Host, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "GPUBROKER_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}",
        "GPUBROKER_SELFHOSTED_REGION": host.region,
        "GPUBROKER_SELFHOSTED_LOCK_FILE": str(host.lock_file),
    }
    env.pop("GPUBROKER_SELFHOSTED_FAKE_GPUS", None)
    log = (tmp_path / "demo.log").open("wb")
    demo = subprocess.Popen(
        [GPUBROKER, "serve", "--demo", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        offers: list[dict[str, object]] = []
        for _ in range(300):
            assert demo.poll() is None, (tmp_path / "demo.log").read_text()
            try:
                body = httpx.get(
                    f"http://127.0.0.1:{port}/v1/offers", params={"provider": "selfhosted"}
                ).json()
            except httpx.TransportError:
                time.sleep(0.1)
                continue
            offers = body["data"]
            if offers:
                break
            time.sleep(0.1)
        assert [(o["gpu"], o["gpu_count"], o["region"]) for o in offers] == [
            ("RTX 4090", 1, f"{host.region} (simulated)"),
            ("RTX 4090", 2, f"{host.region} (simulated)"),
        ]
        printed = (tmp_path / "demo.log").read_text()
        assert "selfhosted   2xRTX 4090 (simulated) on the Docker engine" in printed
    finally:
        demo.terminate()
        demo.wait(timeout=30)
        log.close()
