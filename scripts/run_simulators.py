"""Run every provider simulator in one process, for brokers started elsewhere to use.

Several `gpubroker serve` replicas on one database must see the same providers, so the
simulators cannot live inside any one of them (as they do with `serve --demo`). This program
starts one per provider on free loopback ports, prints where they are, and serves until it is
interrupted, or, with `--until-stdin-closes`, until whoever started it closes its standard input
(a test harness that dies takes its simulators with it).

By default it prints `export` lines a shell can paste; `--json` prints one JSON object instead,
`{"urls": {provider: url}, "env": {variable: value}}`, on a single line, for programs.

    .venv/bin/python scripts/run_simulators.py --provision-seconds 0.5
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
import threading
from types import FrameType

from broker.demo import simulator_environment, start_simulators
from providers.simulators.kit import stop_all


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument(
        "--price-drift", type=float, default=0.0, help="fraction a price may move per read"
    )
    parser.add_argument(
        "--provision-seconds", type=float, default=1.0, help="seconds until an instance runs"
    )
    parser.add_argument(
        "--accept-delay-seconds",
        type=float,
        default=0.0,
        help="seconds a provision's answer is held back after the instance exists",
    )
    parser.add_argument(
        "--until-stdin-closes", action="store_true", help="exit when standard input closes"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    servers = start_simulators(
        args.price_drift,
        provision_seconds=args.provision_seconds,
        accept_delay_seconds=args.accept_delay_seconds,
    )
    urls = {name: server.url for name, server in servers.items()}
    env = simulator_environment(urls)
    if args.json:
        print(json.dumps({"urls": urls, "env": env}), flush=True)
    else:
        for name, value in env.items():
            print(f"export {name}={shlex.quote(value)}")
        print(f"# {len(servers)} simulators running; Ctrl-C stops them", flush=True)

    done = threading.Event()

    def finish(_signum: int, _frame: FrameType | None) -> None:
        done.set()

    def finish_when_stdin_closes() -> None:
        sys.stdin.read()
        done.set()

    signal.signal(signal.SIGTERM, finish)
    signal.signal(signal.SIGINT, finish)
    if args.until_stdin_closes:
        threading.Thread(target=finish_when_stdin_closes, daemon=True).start()
    done.wait()
    stop_all(servers.values())


if __name__ == "__main__":
    main()
