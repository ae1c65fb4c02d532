"""`gpubroker rent`: check the input, show the plan, ask, rent, then (with --wait) wait.

Nothing is sent before the input is known to be good (`--env NAME=value`, durations, amounts):
a mistake is a usage error, exit 2, and nothing is rented. The plan names the offer, its price,
the credit hold, the interruption risk and the effective price; renting an offer id passes the
price shown as `expected_price`, so a dearer offer is refused (409 `price_changed`) instead of
rented. Without a terminal it rents only with `--yes`. The rental id and its key (shown once)
are printed before waiting; Ctrl-C while waiting stops the waiting, not the rental.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, cast

import typer

from broker import cli_output as out
from broker.cli_output import Format, JsonOption, duration, money, note, percent, say, usage
from broker.cli_rentals import summary, wait_running
from broker.client import Client, OfferFilters, RentSpec
from broker.schemas.catalog import Offer

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_duration(text: str, option: str, fmt: Format) -> int:
    """`90`, `90s`, `30m`, `2h`, `1h30m`, `1d` as seconds; anything else is a usage error."""
    match = _DURATION.match(text.strip().lower())
    if not text.strip() or match is None:
        raise usage(f"{option} {text!r} is not a duration such as 30m, 2h or 1h30m", fmt)
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    if total <= 0:
        raise usage(f"{option} must be longer than zero", fmt)
    return total


def parse_amount(text: str, option: str, fmt: Format) -> Decimal:
    try:
        amount = Decimal(text.strip().removeprefix("$"))
    except InvalidOperation:
        raise usage(f"{option} {text!r} is not an amount in USD such as 5 or 0.40", fmt) from None
    if not amount.is_finite() or amount <= 0:
        raise usage(f"{option} must be a positive amount in USD", fmt)
    return amount


def parse_env(items: list[str], fmt: Format) -> dict[str, str]:
    variables: dict[str, str] = {}
    for item in items:
        name, equals, value = item.partition("=")
        if not equals or not _ENV_NAME.match(name):
            raise usage(f"--env {item!r} must be NAME=value (NAME: letters, digits, _)", fmt)
        variables[name] = value
    return variables


def _plan(offer: Offer | None, spec: RentSpec, by_constraints: bool) -> list[str]:
    lines = []
    if offer is None:
        return ["no offer matches these constraints now; the broker will still try"]
    head = "best match now" if by_constraints else "offer"
    lines.append(f"{head}: {offer.id}")
    lines.append(
        f"  {offer.gpu_count}x {offer.gpu}"
        + (f" [SLICE {offer.slice}]" if offer.slice else "")
        + f", {offer.vram_gb:g} GB, {offer.tier}, {offer.provider}, {offer.region or '-'}"
    )
    lines.append(
        f"price: {money(offer.price_per_hour, '/h')} "
        f"({money(offer.price_per_gpu_hour, '/h')} per GPU)"
        + (
            f"; any offer up to {money(Decimal(str(spec['max_price'])), '/h')} per GPU"
            if by_constraints and spec.get("max_price")
            else ""
        )
    )
    lines.append(
        f"hold: {money(offer.price_per_hour)} set aside from your credit now (an hour at this "
        "price, the default); what is not spent is released when the rental ends"
    )
    if offer.tier == "spot":
        lines.append(
            f"risk: {percent(offer.interruption_probability)} chance of interruption per hour "
            f"({offer.interruption_source or 'estimated'}); effective "
            f"{money(offer.effective_price_per_gpu_hour, '/h')} per GPU for useful hours"
        )
    else:
        lines.append("risk: on-demand, not interrupted by the provider")
    limits = []
    if "max_duration_seconds" in spec:
        limits.append(f"ends after {duration(spec['max_duration_seconds'])} running")
    if "max_cost" in spec:
        limits.append(f"ends at {money(Decimal(str(spec['max_cost'])))} spent")
    if "idle_timeout_seconds" in spec:
        limits.append(f"stops after {duration(spec['idle_timeout_seconds'])} without requests")
    lines.append("limits: " + ("; ".join(limits) if limits else "none (runs until you end it)"))
    return lines


def _best_match(client: Client, spec: RentSpec) -> Offer | None:
    filters: dict[str, Any] = {
        "gpu": spec.get("gpu"),
        "gpu_count": spec.get("gpu_count"),
        "max_price": spec.get("max_price"),
        "region": spec.get("region"),
        "max_interruption": spec.get("max_interruption"),
        "provider": spec.get("providers"),
        "model": spec.get("model"),
        "sort": "effective_price",
        "limit": 1,
    }
    if spec.get("tier") in ("spot", "on_demand"):
        filters["tier"] = spec["tier"]
    page = client.offers(**cast(OfferFilters, {k: v for k, v in filters.items() if v}))
    return page.data[0] if page.data else None


def _confirm(yes: bool, fmt: Format) -> None:
    if yes:
        return
    if not out.interactive():
        raise usage("not a terminal: add --yes to rent without being asked", fmt)
    if not typer.confirm("Rent it?", default=False, err=True):
        note("nothing rented")
        raise typer.Exit(0)


def rent(
    offer_id: Annotated[
        str | None, typer.Argument(help="An offer id from `gpubroker offers`.")
    ] = None,
    gpu: Annotated[list[str] | None, typer.Option("--gpu", help="GPU model; repeatable.")] = None,
    gpu_count: Annotated[int, typer.Option(min=1)] = 1,
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
    max_duration: Annotated[
        str | None, typer.Option(help="End it after this long running: 30m, 2h, 1h30m.")
    ] = None,
    max_cost: Annotated[
        str | None, typer.Option(help="End it when it has cost this (USD).")
    ] = None,
    idle: Annotated[
        str | None, typer.Option(help="Stop it after this long without a request: 30m.")
    ] = None,
    idempotency_key: Annotated[str | None, typer.Option(help="Safe retries.")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Rent without asking.")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Wait until it is running.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Rent an offer, or the cheapest offer that starts among those matching constraints."""
    fmt = out.output_format(None, as_json)
    if offer_id and (gpu or spot or on_demand or region or provider):
        raise usage("give an OFFER_ID or constraints (--gpu, --spot, ...), not both", fmt)
    if spot and on_demand:
        raise usage("--spot and --on-demand exclude each other", fmt)
    given: dict[str, Any] = {
        "mode": mode,
        "image": image,
        "model": model,
        "template": template,
        "ports": port,
        "env": parse_env(env or [], fmt),
        "ssh_key": ssh_key,
        "recover": recover or None,
    }
    if max_price is not None:
        given["max_price"] = str(parse_amount(max_price, "--max-price", fmt))
    if max_duration is not None:
        given["max_duration_seconds"] = parse_duration(max_duration, "--max-duration", fmt)
    if max_cost is not None:
        given["max_cost"] = str(parse_amount(max_cost, "--max-cost", fmt))
    if idle is not None:
        given["idle_timeout_seconds"] = parse_duration(idle, "--idle", fmt)
    if not offer_id:
        given.update(
            gpu=gpu,
            gpu_count=gpu_count,
            region=region,
            providers=provider,
            tier="spot" if spot else "on_demand" if on_demand else None,
        )
    spec = cast(RentSpec, {k: v for k, v in given.items() if v not in (None, [], {})})
    with out.broker(fmt, not_found="list offers with `gpubroker offers`") as client:
        offer = client.offer(offer_id) if offer_id else _best_match(client, spec)
        if offer_id and offer is not None:
            spec["expected_price"] = offer.price_per_gpu_hour
        for line in _plan(offer, spec, by_constraints=not offer_id):
            note(line) if fmt is Format.json else say(line)
        _confirm(yes, fmt)
        rental = client.rent(offer_id, idempotency_key=idempotency_key, **spec)
        key = rental.rental_key
        if fmt is Format.json and not wait:
            out.dump(rental)
            return
        started = (
            f"rented {rental.id} on {rental.provider or '-'} at "
            f"{money(rental.price_per_hour, '/h')}: {rental.status}"
        )
        keyline = f"rental key (shown once, keep it): {key}" if key else ""
        for line in (started, keyline):
            if line:
                note(line) if fmt is Format.json else say(line)
        if wait and rental.status != "running":
            rental = wait_running(client, rental, fmt)
            rental.rental_key = key
    if fmt is Format.json:
        out.dump(rental)
    elif wait:
        say(summary(rental))


def register(app: typer.Typer) -> None:
    app.command()(rent)
