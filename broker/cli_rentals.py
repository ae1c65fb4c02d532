"""CLI commands for renting and for the wallet: `rent`, `rentals`, `status`, `stop`, `start`,
`terminate`, `wallet`. They are clients of a running broker (GPUBROKER_URL, GPUBROKER_API_KEY)."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from broker.client import BrokerClient, BrokerError

console = Console()
TERMINAL = ("running", "stopped", "interrupted", "terminated", "failed")


def _call(method: str, path: str, **kwargs: Any) -> Any:
    try:
        with BrokerClient() as client:
            return client.request(method, path, **kwargs)
    except BrokerError as exc:
        console.print(f"[red]error[/red] {exc.code}: {exc.message}")
        raise typer.Exit(code=1) from None


def _show(rental: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(rental, indent=2))
        return
    table = Table(show_header=False, box=None)
    for field in (
        "id",
        "status",
        "provider",
        "offer_id",
        "gpu",
        "gpu_count",
        "tier",
        "region",
        "price_per_hour",
        "hold",
        "cost",
        "started_at",
        "ended_at",
        "reason",
    ):
        if rental.get(field) is not None:
            table.add_row(f"[bold]{field}[/bold]", str(rental[field]))
    if rental.get("ssh"):
        table.add_row("[bold]ssh[/bold]", rental["ssh"].get("command", ""))
    table.add_row("[bold]connect[/bold]", rental["connect_url"])
    if rental.get("rental_key"):
        table.add_row("[bold]rental_key[/bold]", rental["rental_key"] + "  (shown once)")
    console.print(table)
    for attempt in rental.get("attempts", []):
        console.print(f"  tried {attempt['offer_id']}: {attempt['error']} ({attempt['message']})")


def rent(
    offer_id: Annotated[
        str | None, typer.Argument(help="An offer id from `gpubroker offers`.")
    ] = None,
    gpu: Annotated[list[str] | None, typer.Option("--gpu", help="GPU model; repeatable.")] = None,
    gpu_count: Annotated[int, typer.Option()] = 1,
    max_price: Annotated[str | None, typer.Option(help="Hard cap, USD per GPU-hour.")] = None,
    spot: Annotated[bool, typer.Option("--spot", help="Spot offers only.")] = False,
    on_demand: Annotated[bool, typer.Option("--on-demand", help="On-demand offers only.")] = False,
    region: Annotated[str | None, typer.Option()] = None,
    provider: Annotated[list[str] | None, typer.Option("--provider")] = None,
    mode: Annotated[str | None, typer.Option(help="model, template, custom or ssh.")] = None,
    image: Annotated[str | None, typer.Option()] = None,
    model: Annotated[str | None, typer.Option()] = None,
    template: Annotated[str | None, typer.Option()] = None,
    port: Annotated[list[int] | None, typer.Option("--port", help="Repeatable.")] = None,
    env: Annotated[list[str] | None, typer.Option("--env", help="NAME=value; repeatable.")] = None,
    ssh_key: Annotated[str | None, typer.Option()] = None,
    recover: Annotated[bool, typer.Option(help="Re-rent automatically after a spot loss.")] = False,
    idempotency_key: Annotated[str | None, typer.Option(help="Safe retries.")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait until it is running.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Rent an offer, or the cheapest offer that starts among those matching constraints."""
    body: dict[str, Any] = {"recover": recover}
    if offer_id:
        body["offer_id"] = offer_id
    else:
        body.update(
            gpu=gpu or None,
            gpu_count=gpu_count,
            region=region,
            providers=provider or [],
            tier="spot" if spot else "on_demand" if on_demand else "any",
        )
    if max_price:
        body["max_price"] = max_price
    variables = dict(item.split("=", 1) for item in env or [] if "=" in item)
    workload = {
        "mode": mode,
        "image": image,
        "model": model,
        "template": template,
        "ports": port or [],
        "env": variables,
        "ssh_key": ssh_key,
    }
    body.update({k: v for k, v in workload.items() if v not in (None, [], {})})
    body = {k: v for k, v in body.items() if v is not None}
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    rental = _call("POST", "/v1/rentals", json=body, headers=headers)
    if wait and rental["status"] not in TERMINAL:
        with console.status(f"{rental['id']} on {rental['provider']}: provisioning") as spinner:
            while rental["status"] not in TERMINAL:
                time.sleep(2)
                key = rental.get("rental_key")
                rental = _call("GET", f"/v1/rentals/{rental['id']}")
                rental["rental_key"] = key
                spinner.update(f"{rental['id']} on {rental['provider']}: {rental['status']}")
    _show(rental, as_json)


def rentals(
    status: Annotated[str | None, typer.Option(help="Only rentals in this status.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Your rentals, newest first."""
    result = _call("GET", "/v1/rentals", params={"status": status} if status else {})
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    table = Table(header_style="bold")
    for column in ("id", "status", "gpu", "provider", "price/h", "cost", "created"):
        table.add_column(column)
    for r in result["data"]:
        table.add_row(
            r["id"],
            r["status"],
            f"{r['gpu_count']}x {r['gpu'] or '-'}",
            r["provider"] or "-",
            r["price_per_hour"],
            r["cost"],
            r["created_at"][:19],
        )
    console.print(table)


def status(rental_id: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """One rental in full."""
    _show(_call("GET", f"/v1/rentals/{rental_id}"), as_json)


def stop(rental_id: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Pause a rental where its provider can (billing stops)."""
    _show(_call("POST", f"/v1/rentals/{rental_id}/stop"), as_json)


def start(rental_id: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Resume a stopped rental."""
    _show(_call("POST", f"/v1/rentals/{rental_id}/start"), as_json)


def terminate(rental_id: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """End a rental for good; prints its final cost."""
    _show(_call("DELETE", f"/v1/rentals/{rental_id}"), as_json)


def wallet(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Balance, held and available credit."""
    result = _call("GET", "/v1/wallet")
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    console.print(
        f"balance {result['balance']} USD, held {result['held']}, "
        f"available [bold]{result['available']}[/bold]"
    )


def register(app: typer.Typer) -> None:
    for command in (rent, rentals, status, stop, start, terminate, wallet):
        app.command()(command)
