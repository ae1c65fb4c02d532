"""The broker's processes in the replica tests: `gpubroker serve`, started cold or forked warm.

A cold replica is the `gpubroker` command itself. A warm one skips Python's imports of the whole
broker, which would dominate a test that restarts the broker dozens of times: the fork server
(`fork_server.py`, one per test session, started on first use) has done them once, and forks a
child that runs the very same `gpubroker serve` command line, in the replica's own environment
and working directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

GPUBROKER = Path(sys.executable).parent / "gpubroker"
FORK_SERVER = Path(__file__).with_name("fork_server.py")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Forked:
    """A replica the fork server started, with the part of `subprocess.Popen` used here.

    It is the fork server's child, not this process's: the server reaps it and writes its exit
    code to `status`, which is how its end is seen here.
    """

    def __init__(self, pid: int, status: Path) -> None:
        self.pid = pid
        self.status = status
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None and self.status.exists():
            self.returncode = int(self.status.read_text())
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # reaped, its status not yet written
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"replica pid {self.pid}", timeout or 0)
            time.sleep(0.01)
        return code


class ForkServer:
    """The fork server's process, started on first use, and the warm replicas it forks."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        """Start the server (it imports the broker) unless it runs; return once it is ready."""
        if self._process is not None:
            return
        self._process = subprocess.Popen(
            [sys.executable, str(FORK_SERVER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        if self._process.stdout.readline() != "ready\n":
            raise RuntimeError(f"the fork server did not start; run {FORK_SERVER} to see why")

    def fork(self, args: Sequence[str], env: dict[str, str], log_path: Path) -> Forked:
        """`gpubroker <args>` in `env`, working in the log's folder, its output in the log."""
        self.start()
        assert self._process is not None
        assert self._process.stdin is not None and self._process.stdout is not None
        status = log_path.with_suffix(".status")
        order = {
            "args": list(args),
            "env": env,
            "cwd": str(log_path.parent),
            "log": str(log_path),
            "status": str(status),
        }
        self._process.stdin.write(json.dumps(order) + "\n")
        self._process.stdin.flush()
        return Forked(int(self._process.stdout.readline()), status)

    def close(self) -> None:
        if self._process is None:
            return
        assert self._process.stdin is not None
        self._process.stdin.close()
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


class Replica:
    """One `gpubroker serve` process, configured only through its environment."""

    def __init__(
        self, name: str, port: int, log_path: Path, process: subprocess.Popen[bytes] | Forked
    ) -> None:
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self.process = process

    @classmethod
    def cold(cls, name: str, env: dict[str, str], log_path: Path, *flags: str) -> Replica:
        """`gpubroker serve` from the command line."""
        port = free_port()
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [str(GPUBROKER), "serve", "--port", str(port), *flags],
                env=env,
                cwd=log_path.parent,  # no stray .env file is read
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return cls(name, port, log_path, process)

    @classmethod
    def warm(cls, name: str, env: dict[str, str], log_path: Path, server: ForkServer) -> Replica:
        """`gpubroker serve`, forked by the fork server."""
        port = free_port()
        return cls(name, port, log_path, server.fork(["serve", "--port", str(port)], env, log_path))

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 30, quiet: Sequence[str] = ("gpubroker.refresh",)) -> str:
        """The last `lines` lines of its log, leaving out the loggers named in `quiet`."""
        kept = [
            line
            for line in self.log_path.read_text(errors="replace").splitlines()
            if not any(f'"{name}"' in line for name in quiet)
        ]
        return "\n".join(kept[-lines:])

    def ready(self, providers: Sequence[str]) -> bool:
        """Serving, with fresh offers from every provider."""
        if not self.alive():
            raise AssertionError(
                f"replica {self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
            )
        try:
            response = httpx.get(f"{self.url}/healthz", timeout=5)
        except httpx.TransportError:
            return False
        listed = response.json().get("providers", {}) if response.status_code == 200 else {}
        return all(listed.get(name, {}).get("offers", 0) > 0 for name in providers)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no cleanup, connections dropped mid-flight."""
        if self.alive():
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
