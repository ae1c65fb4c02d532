"""The `gpubroker` command: run the broker, and use it from a terminal.

`serve` runs the service; the other commands are clients of a running broker (GPUBROKER_URL,
GPUBROKER_API_KEY), so they work the same against a laptop demo or a production deployment.

Before serving, `serve` checks the database's schema and stops with one line when it is not
current, or migrates it first with `--migrate`; `db upgrade` and `db check` do the same by hand
(`broker.cli_schema`).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from broker import cli_rentals, cli_schema
from broker.client import BrokerClient, BrokerError
from pricing.history import HistoryPoint
from pricing.money import format_usd, to_micros
from pricing.offer import Tier
from pricing.spot import provider_levels, sparkline

app = typer.Typer(help="gpubroker: one catalog and one rental API over many GPU clouds.")
db_app = typer.Typer(help="Database schema.")
app.add_typer(db_app, name="db")
cli_rentals.register(app)
console = Console()


def _fail(exc: BrokerError) -> typer.Exit:
    console.print(f"[red]error[/red] {exc.code}: {exc.message}")
    return typer.Exit(code=1)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    demo: Annotated[
        bool, typer.Option(help="Start the provider simulators and a demo account (SQLite).")
    ] = False,
    migrate: Annotated[
        bool,
        typer.Option(
            help="Apply pending schema migrations first (PostgreSQL; under an advisory lock, "
            "so replicas starting together migrate once)."
        ),
    ] = False,
) -> None:
    """Run the broker."""
    import uvicorn

    cli_schema.prepare_schema(cli_schema.database_url(demo), migrate=migrate)
    from broker.logs import configure_logging
    from broker.settings import get_settings

    configure_logging(get_settings().log_format, logging.INFO)
    if demo:
        from broker.demo import demo_app

        application = demo_app(host, port, announce=typer.echo)
    else:
        from broker.app import create_app

        application = create_app()
    uvicorn.run(
        application, host=host, port=port, log_level="info", access_log=False, log_config=None
    )


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending schema migration to GPUBROKER_DATABASE_URL."""
    cli_schema.upgrade(cli_schema.database_url(demo=False))
    console.print("database schema is up to date")


@db_app.command("check")
def db_check() -> None:
    """Exit 0 when GPUBROKER_DATABASE_URL's schema is current; else say why in one line, exit 1."""
    typer.echo(cli_schema.check(cli_schema.database_url(demo=False)))


@app.command()
def offers(
    gpu: Annotated[list[str] | None, typer.Option("--gpu", help="GPU model; repeatable.")] = None,
    max_price: Annotated[str | None, typer.Option(help="USD per GPU-hour.")] = None,
    min_vram: Annotated[float | None, typer.Option(help="GB per GPU.")] = None,
    gpu_count: Annotated[int | None, typer.Option()] = None,
    min_gpu_count: Annotated[int | None, typer.Option()] = None,
    provider: Annotated[list[str] | None, typer.Option("--provider", help="Repeatable.")] = None,
    region: Annotated[str | None, typer.Option()] = None,
    tier: Annotated[str | None, typer.Option(help="on_demand or spot.")] = None,
    spot: Annotated[bool, typer.Option("--spot", help="Same as --tier spot.")] = False,
    max_interruption: Annotated[float | None, typer.Option()] = None,
    instance_type: Annotated[str | None, typer.Option(help="container, vm or baremetal.")] = None,
    sort: Annotated[str, typer.Option(help="price, -price, effective_price, vram, ...")] = "price",
    limit: Annotated[int, typer.Option()] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON.")] = False,
) -> None:
    """Search the catalog."""
    params: dict[str, Any] = {
        "gpu": gpu,
        "max_price": max_price,
        "min_vram": min_vram,
        "gpu_count": gpu_count,
        "min_gpu_count": min_gpu_count,
        "provider": provider,
        "region": region,
        "tier": "spot" if spot else tier,
        "max_interruption": max_interruption,
        "instance_type": instance_type,
        "sort": sort,
        "limit": limit,
    }
    try:
        with BrokerClient() as client:
            result = client.offers(**params)
    except BrokerError as exc:
        raise _fail(exc) from None
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    table = Table(title=f"{len(result['data'])} offers", header_style="bold")
    for column in (
        "GPU",
        "n",
        "VRAM",
        "$/GPU-h",
        "eff. $/GPU-h",
        "tier",
        "interr.",
        "provider",
        "region",
        "id",
    ):
        table.add_column(column, justify="right" if column[0] in "nV$ei" else "left")
    for o in result["data"]:
        table.add_row(
            o["gpu"],
            str(o["gpu_count"]),
            f"{o['vram_gb']} GB",
            o["price_per_gpu_hour"],
            o["effective_price_per_gpu_hour"],
            o["tier"],
            f"{o['interruption_probability']:.0%}" if o["tier"] == "spot" else "-",
            o["provider"] + (" (stale)" if o["stale"] else ""),
            o["region"],
            o["id"],
        )
    console.print(table)
    _print_provider_problems(result.get("providers", {}))


def _print_provider_problems(providers: dict[str, dict[str, Any]]) -> None:
    for name, status in providers.items():
        if status["status"] != "ok":
            reason = status.get("error") or "not refreshed yet"
            console.print(f"[yellow]{name}: {status['status']}[/yellow] ({reason})")


@app.command()
def gpus(
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON.")] = False,
) -> None:
    """One row per GPU model: cheapest prices and where to get it."""
    try:
        with BrokerClient() as client:
            result = client.gpus()
    except BrokerError as exc:
        raise _fail(exc) from None
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    table = Table(title="GPUs", header_style="bold")
    for column in ("GPU", "VRAM", "offers", "on-demand from", "spot from", "providers"):
        table.add_column(column)
    for row in result["data"]:
        table.add_row(
            row["gpu"],
            f"{row['vram_gb']} GB",
            str(row["offers"]),
            row["min_on_demand_price"] or "-",
            row["min_spot_price"] or "-",
            ", ".join(row["providers"]),
        )
    console.print(table)


SPARK_HOURS = 24
SPARK_SAMPLES = 48
MAX_HISTORY_PAGES = 20


def _spot_history(
    client: BrokerClient, gpus: list[str], region: str | None, since: datetime
) -> list[HistoryPoint]:
    """Every spot change point of `gpus` since `since`, with each offer's level at `since`."""
    points: list[HistoryPoint] = []
    cursor: str | None = None
    for _ in range(MAX_HISTORY_PAGES):
        page = client.spot_history(
            gpu=gpus, tier="spot", region=region, since=since.isoformat(), limit=500, cursor=cursor
        )
        points += [
            HistoryPoint(
                offer_id=p["offer_id"],
                provider=p["provider"],
                gpu=p["gpu"],
                region=p["region"],
                tier=Tier(p["tier"]),
                price=to_micros(p["price"]),
                at=datetime.fromisoformat(p["at"]),
            )
            for p in page["data"]
        ]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    return points


@app.command("spot")
def spot_prices(
    gpu: Annotated[str, typer.Option("--gpu", help="GPU model, any spelling.")],
    region: Annotated[str | None, typer.Option(help="Region (substring).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON.")] = False,
) -> None:
    """Spot against on-demand for one GPU, per provider and region, with the last 24 hours."""
    now = datetime.now(UTC)
    since = now - timedelta(hours=SPARK_HOURS)
    try:
        with BrokerClient() as client:
            result = client.spot_prices(gpu, region)
            if as_json:
                typer.echo(json.dumps(result, indent=2))
                return
            points = _spot_history(client, result["gpus"], region, since)
    except BrokerError as exc:
        raise _fail(exc) from None
    several = len(result["gpus"]) > 1
    table = Table(title=f"{result['gpu']}: spot vs on-demand, per GPU-hour", header_style="bold")
    columns = ["GPU"] if several else []
    columns += ["provider", "region", "spot", "on-demand", "savings", "interr./h", "risk"]
    columns += ["source", "effective"]
    for column in columns:
        numeric = column in ("spot", "on-demand", "savings", "interr./h", "effective")
        table.add_column(column, justify="right" if numeric else "left")
    cheapest = result["cheapest"]
    for row in result["rows"]:
        best = cheapest is not None and row["spot_offer_id"] == cheapest["spot_offer_id"]
        probability = row["interruption_probability"]
        cells = [row["gpu"]] if several else []
        cells += [
            row["provider"] + (" (stale)" if row["stale"] else ""),
            row["region"],
            row["spot_price"] or "-",
            row["on_demand_price"] or "-",
            f"{row['savings_pct']}%" if row["savings_pct"] is not None else "-",
            f"{probability:.1%}" if probability is not None else "-",
            row["risk_bucket"] or "-",
            row["interruption_source"] or "-",
            (row["effective_price"] or "-") + (" *" if best else ""),
        ]
        table.add_row(*cells)
    console.print(table)
    if cheapest is None:
        console.print("no spot offer is available for this GPU now")
    else:
        console.print(
            f"* cheapest useful spot hour: {cheapest['provider']}, {cheapest['region']}, "
            f"{cheapest['effective_price']} effective"
        )
    levels = provider_levels(points, since, now, SPARK_SAMPLES)
    if not levels:
        console.print(f"no spot price recorded in the last {SPARK_HOURS} hours")
        return
    trend = Table(title=f"cheapest spot price, last {SPARK_HOURS} hours", header_style="bold")
    for column in ("provider", "trend", "low", "high", "now"):
        trend.add_column(column, justify="left" if column in ("provider", "trend") else "right")
    for provider, values in sorted(levels.items()):
        known = [v for v in values if v is not None]
        trend.add_row(
            provider,
            sparkline(values),
            format_usd(min(known)),
            format_usd(max(known)),
            format_usd(known[-1]),
        )
    console.print(trend)
