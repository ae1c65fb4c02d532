"""Forks warm `gpubroker serve` replicas: the broker's imports are done once, here, not per start.

Each line on standard input is an order, in JSON: `args` (the command line after `gpubroker`),
`env`, `cwd`, `log` and `status` (file paths). The server forks; the child becomes that replica
(that environment, working directory and command line, its output appended to `log`) and the
server answers with the child's pid on a line. When a child exits, the server reaps it and
writes its exit code (negative: the signal that ended it, as `subprocess` reports it) to
`status`. Closing standard input stops the server; its children go on running.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Any

# The slow part, done once, before any replica is forked.
import uvicorn  # noqa: F401

import broker.app
import broker.cli

STATUS_FILES: dict[int, str] = {}  # pid -> where its exit code goes


def reap(*_: Any) -> None:
    """Collect every child that has exited, and write down how it ended."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        written = Path(STATUS_FILES.pop(pid))
        partial = written.with_suffix(".partial")  # renamed when whole: never read half-written
        partial.write_text(str(os.waitstatus_to_exitcode(status)))
        partial.replace(written)


def become_replica(order: dict[str, Any]) -> None:
    """In the forked child: run `gpubroker serve` as the order says, then exit; never returns."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
    os.environ.clear()
    os.environ.update(order["env"])
    os.chdir(order["cwd"])
    log = os.open(order["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    code = 1
    try:
        broker.cli.app(args=order["args"], prog_name="gpubroker")
        code = 0
    except SystemExit as exit:
        if isinstance(exit.code, str):
            print(exit.code, file=sys.stderr)
        code = exit.code if isinstance(exit.code, int) else int(exit.code is not None)
    except BaseException:  # noqa: BLE001  (the child must never return to the server's loop)
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main() -> None:
    signal.signal(signal.SIGCHLD, reap)
    print("ready", flush=True)
    while line := sys.stdin.readline():
        order = json.loads(line)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})  # reaped once it is known
        pid = os.fork()
        if pid == 0:
            become_replica(order)
        STATUS_FILES[pid] = order["status"]
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
        print(pid, flush=True)


if __name__ == "__main__":
    main()
