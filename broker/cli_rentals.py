"""Rental commands: `rentals`, `status`, `stop`, `start`, `terminate` (`rent` is in
`broker.cli_rent`). Each action prints one line; `--json` prints the rental as the API does."""

from __future__ import annotations

from typing import Annotated

import typer

from broker import cli_output as out
from broker.cli_output import Column, Format, JsonOption, money
from broker.client import BrokerError, Client, calls
from broker.client.calls import Call
from broker.schemas.rentals import Rental

NOT_FOUND = "list your rentals with `gpubroker rentals`"
INTERRUPTED = 130  # the shell's status for Ctrl-C


def limits(rental: Rental) -> str:
    """The rental's spending limits in short: `2h max, $5.00 max, idle 30m`."""
    parts = [
        rental.max_duration_seconds and f"{out.duration(rental.max_duration_seconds)} max",
        rental.max_cost is not None and f"{money(rental.max_cost)} max",
        rental.idle_timeout_seconds and f"idle {out.duration(rental.idle_timeout_seconds)}",
    ]
    return ", ".join(part for part in parts if part) or "-"


def summary(rental: Rental) -> str:
    """One line saying where a rental stands."""
    where = f"{rental.gpu_count}x {rental.gpu or '-'} on {rental.provider or '-'}"
    line = f"{rental.id} {rental.status}: {where}"
    if rental.status in ("terminated", "failed"):
        line += f"; final cost {money(rental.cost)}"
        if rental.billed_seconds:
            line += f" ({out.duration(rental.billed_seconds)} billed)"
    elif rental.status == "stopped":
        line += f"; billing paused, cost so far {money(rental.cost)}"
    else:
        line += f" at {money(rental.price_per_hour, '/h')}; cost so far {money(rental.cost)}"
    if rental.reason:
        line += f" ({rental.reason})"
    return line


@out.lists
def rentals(
    view: out.View,
    status: Annotated[str | None, typer.Option(help="Only rentals in this status.")] = None,
) -> None:
    """Your rentals, newest first."""
    shown, more = out.listing(view.fmt, calls.rentals(status, view.page_size), view.every)
    if out.shown_as_json({"object": "list", "data": shown}, view.fmt):
        return
    columns = [Column("ID", whole=True), Column("STATUS"), Column("GPU"), Column("PROVIDER")]
    columns += out.numeric("PRICE", "COST")
    columns += [Column("LIMITS"), Column("CREATED")]
    rows = [
        [
            r.id,
            r.status + (f" ({r.reason})" if r.reason else ""),
            f"{r.gpu_count}x {r.gpu or '-'}",
            r.provider or "-",
            money(r.price_per_hour, "/h"),
            money(r.cost),
            limits(r),
            r.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        ]
        for r in shown
    ]
    out.table(columns, rows, view.fmt, wide=view.wide)
    out.footer(len(shown), more, "no rentals" + (f" {status}" if status else ""), view.fmt)


def status(rental_id: str, as_json: JsonOption = False) -> None:
    """One rental in full."""
    fmt = out.output_format(None, as_json)
    rental = out.ask(fmt, calls.rental(rental_id), NOT_FOUND)
    if out.shown_as_json(rental, fmt):
        return
    ssh = rental.ssh.get("command") if rental.ssh else None
    out.fields(
        [
            ("id", rental.id),
            ("status", rental.status + (f" ({rental.reason})" if rental.reason else "")),
            ("provider", rental.provider),
            ("offer", rental.offer_id),
            ("gpu", f"{rental.gpu_count}x {rental.gpu or '-'}"),
            ("tier", rental.tier),
            ("region", rental.region),
            ("price", money(rental.price_per_hour, "/h")),
            ("hold", money(rental.hold)),
            ("cost", money(rental.cost)),
            ("billed", out.duration(rental.billed_seconds) if rental.billed_seconds else None),
            ("limits", limits(rental)),
            ("started", rental.started_at.isoformat() if rental.started_at else None),
            ("ended", rental.ended_at.isoformat() if rental.ended_at else None),
            ("ssh", str(ssh) if ssh else None),
            ("connect", rental.connect_url),
        ]
    )
    for attempt in rental.attempts:
        out.say(f"tried {attempt.offer_id}: {attempt.error} ({attempt.message or ''})")


def wait_running(client: Client, rental: Rental, fmt: Format) -> Rental:
    """Wait, telling each change of status on stderr, until `rental` runs. Ctrl-C ends the
    waiting, not the rental, and says how to check on it or end it."""
    note = out.note
    note(f"waiting for {rental.id} to run (Ctrl-C stops waiting, not the rental)...")
    seen = [rental.status]

    def progress(current: Rental) -> None:
        if current.status != seen[-1]:
            seen.append(current.status)
            note(f"{current.id}: {current.status}")

    try:
        return client.wait(rental.id, "running", timeout=3600, interval=2.0, on_poll=progress)
    except KeyboardInterrupt:
        note(
            f"stopped waiting; rental {rental.id} goes on (and is billed once running). "
            f"Check it with `gpubroker status {rental.id}`, end it with "
            f"`gpubroker terminate {rental.id}`"
        )
        raise typer.Exit(INTERRUPTED) from None
    except TimeoutError:
        note(f"{rental.id} is still not running; check with `gpubroker status {rental.id}`")
        raise typer.Exit(out.API_ERROR) from None
    except BrokerError as error:
        raise out.failed(error, fmt, NOT_FOUND) from None


def _act(call: Call[Rental], as_json: bool, wait: bool = False) -> None:
    fmt = out.output_format(None, as_json)
    with out.broker(fmt, NOT_FOUND) as client:
        rental = client.send(call)
        if wait and rental.status != "running":
            rental = wait_running(client, rental, fmt)
    if not out.shown_as_json(rental, fmt):
        out.say(summary(rental))


def stop(rental_id: str, as_json: JsonOption = False) -> None:
    """Pause a rental where its provider can (billing stops)."""
    _act(calls.stop(rental_id), as_json)


def start(
    rental_id: str,
    wait: Annotated[bool, typer.Option("--wait", help="Wait until it is running.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Resume a stopped rental."""
    _act(calls.start(rental_id), as_json, wait)


def terminate(rental_id: str, as_json: JsonOption = False) -> None:
    """End a rental for good; prints its final cost."""
    _act(calls.terminate(rental_id), as_json)


def register(app: typer.Typer) -> None:
    for command in (rentals, status, stop, start, terminate):
        app.command()(command)
