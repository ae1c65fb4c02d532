"""Catalog commands: `offers`, `gpus`, `spot`. Public: they need no key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, cast

import typer

from broker import cli_output as out
from broker.cli_output import Column, Format, JsonOption, OutputOption, WideOption, money, numeric
from broker.client import Client, OfferFilters, calls
from broker.client.calls import HistoryFilters
from broker.schemas.catalog import Offer, OfferPage, SpotComparison, SpotRow
from pricing.history import HistoryPoint
from pricing.money import to_micros
from pricing.offer import Tier
from pricing.spot import provider_levels, sparkline

MAX_COUNT_PAGES = 10
SPARK_HOURS = 24
SPARK_SAMPLES = 48
MAX_HISTORY_PAGES = 20


def gpu_label(offer: Offer) -> str:
    """The GPU, with a slice marked so it never passes for a whole card."""
    if offer.slice is None and offer.gpu_fraction >= 1:
        return offer.gpu
    share = f"{offer.gpu_fraction:g} of a card" if offer.gpu_fraction < 1 else "part of a card"
    return f"{offer.gpu} [SLICE {offer.slice or ''}: {share}]".replace(" :", ":")


def region_label(offer: Offer) -> str:
    region = offer.region or "-"
    if offer.country and offer.country.lower() not in region.lower():
        region += f" ({offer.country})"
    return region


@dataclass(frozen=True)
class Found:
    """What a search shows, and how many match in all (`more`: at least `total`)."""

    page: OfferPage
    total: int
    more: bool


def _search(client: Client, filters: OfferFilters, limit: int, everything: bool) -> Found:
    """The first `limit` matches (all with `everything`), with `next_cursor` kept when more
    exist, and how many match in all, counted up to MAX_COUNT_PAGES pages."""
    filters["limit"] = out.PAGE_MAX
    first = client.offers(**filters)
    offers = list(first.data)
    cursor, pages = first.next_cursor, 1
    while cursor is not None and (everything or pages < MAX_COUNT_PAGES):
        filters["cursor"] = cursor
        page = client.offers(**filters)
        offers += page.data
        cursor, pages = page.next_cursor, pages + 1
    shown = offers if everything else offers[:limit]
    page = OfferPage(
        data=shown, next_cursor=None if everything else cursor, providers=first.providers
    )
    return Found(page, total=len(offers), more=cursor is not None)


@out.lists
def offers(
    view: out.View,
    gpu: Annotated[list[str] | None, typer.Option("--gpu", help="GPU model; repeatable.")] = None,
    max_price: Annotated[str | None, typer.Option(help="USD per GPU-hour.")] = None,
    min_vram: Annotated[float | None, typer.Option(help="GB per GPU.")] = None,
    gpu_count: Annotated[int | None, typer.Option()] = None,
    min_gpu_count: Annotated[int | None, typer.Option()] = None,
    provider: Annotated[list[str] | None, typer.Option("--provider", help="Repeatable.")] = None,
    region: Annotated[
        str | None, typer.Option(help="Region text, country (DE, Germany) or continent (eu).")
    ] = None,
    tier: Annotated[str | None, typer.Option(help="on_demand or spot.")] = None,
    spot: Annotated[bool, typer.Option("--spot", help="Same as --tier spot.")] = False,
    max_interruption: Annotated[float | None, typer.Option()] = None,
    instance_type: Annotated[str | None, typer.Option(help="container, vm or baremetal.")] = None,
    model: Annotated[
        str | None, typer.Option(help="Only listings that serve this model (or load any).")
    ] = None,
    slices: Annotated[
        bool, typer.Option("--slices", help="Include parts of cards (MIG, time-sliced).")
    ] = False,
    only_slices: Annotated[bool, typer.Option("--only-slices", help="Only slices.")] = False,
    sort: Annotated[str, typer.Option(help="price, -price, effective_price, vram, ...")] = "price",
) -> None:
    """Search the catalog, cheapest first; whole cards unless --slices."""
    fmt = view.fmt
    given = {
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
        "model": model,
        "slices": "only" if only_slices else "true" if slices else None,
    }
    filters = cast(OfferFilters, {"sort": sort, **{k: v for k, v in given.items() if v}})
    with out.broker(fmt, not_found="list offers with `gpubroker offers`") as client:
        found = _search(client, filters, view.limit, view.every)
    page = found.page
    if fmt is Format.json:
        out.dump(page)
        return
    show_models = any(o.models for o in page.data)
    columns = [Column("ID", whole=True), Column("GPU"), *numeric("N", "VRAM", "$/GPU-H")]
    columns += [*numeric("EFFECTIVE"), Column("TIER"), *numeric("RISK/H")]
    columns += [Column("PROVIDER"), Column("REGION")]
    if show_models:
        columns.append(Column("MODELS"))
    rows = []
    for o in page.data:
        row = [
            o.id,
            gpu_label(o),
            str(o.gpu_count),
            f"{o.vram_gb:g} GB",
            money(o.price_per_gpu_hour, "/h"),
            money(o.effective_price_per_gpu_hour, "/h"),
            o.tier,
            out.percent(o.interruption_probability) if o.tier == "spot" else "-",
            o.provider + (" (stale)" if o.stale else ""),
            region_label(o),
        ]
        if show_models:
            row.append(", ".join(o.models or []) or "any")
        rows.append(row)
    out.table(columns, rows, fmt, wide=view.wide)
    if fmt is Format.table:
        _footer(found)


def _footer(found: Found) -> None:
    page, total, more = found.page, found.total, found.more
    matched = f"{total}+" if more else str(total)
    if not page.data:
        out.say("no offer matches (try fewer filters, or --slices)")
    elif len(page.data) < total or more:
        out.say(f"showing {len(page.data)} of {matched} (use --limit or --all)")
    else:
        out.say(f"showing all {matched}")
    if any(o.slice is not None or o.gpu_fraction < 1 for o in page.data):
        out.say("[SLICE ...] rows are part of a card (MIG or time-sliced), not the whole GPU")
    for name, status in page.providers.items():
        if status.status != "ok":
            out.say(f"{name}: {status.status} ({status.error or 'not refreshed yet'})")


def gpus(
    wide: WideOption = False, output: OutputOption = None, as_json: JsonOption = False
) -> None:
    """One row per GPU model: cheapest whole-card prices and who has it."""
    fmt = out.output_format(output, as_json)
    page = out.ask(fmt, calls.gpus())
    if out.shown_as_json(page, fmt):
        return
    columns = [Column("GPU"), *numeric("VRAM", "OFFERS", "ON-DEMAND FROM", "SPOT FROM")]
    columns.append(Column("PROVIDERS"))
    rows = [
        [
            row.gpu,
            f"{row.vram_gb:g} GB" if row.vram_gb is not None else "-",
            str(row.offers),
            money(row.min_on_demand_price, "/h"),
            money(row.min_spot_price, "/h"),
            ", ".join(row.providers),
        ]
        for row in page.data
    ]
    out.table(columns, rows, fmt, wide=wide)


def _history(
    client: Client, gpus: list[str], region: str | None, since: datetime
) -> list[HistoryPoint]:
    """Every spot change point of `gpus` since `since`, with each offer's level at `since`."""
    filters: HistoryFilters = {
        "gpu": gpus,
        "tier": "spot",
        "since": since.isoformat(),
        "limit": 500,
    }
    if region:
        filters["region"] = region
    points = []
    for count, p in enumerate(client.iter_price_history(**filters)):
        if count >= MAX_HISTORY_PAGES * 500:
            break
        points.append(
            HistoryPoint(
                offer_id=p.offer_id or "",
                provider=p.provider,
                gpu=p.gpu,
                region=p.region or "",
                tier=Tier(p.tier),
                price=to_micros(p.price),
                at=p.at,
            )
        )
    return points


def verdict(comparison: SpotComparison) -> str:
    """Which wins for useful hours, spot or on-demand, said plainly."""
    spot_rows = [r for r in comparison.rows if r.spot_price is not None and r.effective_price]
    od_rows = [r for r in comparison.rows if r.on_demand_price is not None]
    best_spot: SpotRow | None = min(spot_rows, key=lambda r: r.effective_price or 0, default=None)
    best_od: SpotRow | None = min(od_rows, key=lambda r: r.on_demand_price or 0, default=None)
    if best_spot is None and best_od is None:
        return "nothing is available for this GPU now"
    if best_spot is None or best_spot.effective_price is None:
        assert best_od is not None
        return (
            f"on-demand wins: no spot offer now; cheapest on-demand {best_od.provider}, "
            f"{best_od.region}, {money(best_od.on_demand_price, '/h')}"
        )
    if best_od is not None and best_od.on_demand_price is not None:
        if best_od.on_demand_price <= best_spot.effective_price:
            return (
                f"on-demand wins: {best_od.provider}, {best_od.region} at "
                f"{money(best_od.on_demand_price, '/h')} costs no more than the cheapest spot "
                f"hour once interruptions are counted ({best_spot.provider}, "
                f"{money(best_spot.effective_price, '/h')} effective)"
            )
        return (
            f"spot wins: {best_spot.provider}, {best_spot.region} at "
            f"{money(best_spot.effective_price, '/h')} effective, below the cheapest on-demand "
            f"({best_od.provider}, {money(best_od.on_demand_price, '/h')})"
        )
    return (
        f"spot wins: {best_spot.provider}, {best_spot.region} at "
        f"{money(best_spot.effective_price, '/h')} effective; no on-demand offer now"
    )


def spot(
    gpu: Annotated[str, typer.Option("--gpu", help="GPU model, any spelling.")],
    region: Annotated[str | None, typer.Option(help="Region, country or continent.")] = None,
    wide: WideOption = False,
    output: OutputOption = None,
    as_json: JsonOption = False,
) -> None:
    """Spot against on-demand for one GPU, per provider and region, with the last 24 hours."""
    fmt = out.output_format(output, as_json)
    if not gpu.strip():
        raise out.usage("--gpu needs a GPU name", fmt)
    now = datetime.now(UTC)
    since = now - timedelta(hours=SPARK_HOURS)
    with out.broker(fmt, not_found="see the GPU names with `gpubroker gpus`") as client:
        comparison = client.spot_prices(gpu, region)
        if fmt is Format.json:
            out.dump(comparison)
            return
        points = _history(client, comparison.gpus or [comparison.gpu], region, since)
    several = len(comparison.gpus) > 1
    columns = [Column("GPU")] if several else []
    columns += [Column("PROVIDER"), Column("REGION")]
    columns += numeric("SPOT", "ON-DEMAND", "SAVINGS", "RISK/H")
    columns += [Column("RISK"), Column("SOURCE"), *numeric("EFFECTIVE")]
    cheapest = comparison.cheapest
    rows = []
    for row in comparison.rows:
        best = cheapest is not None and (row.provider, row.region, row.spot_offer_id) == (
            cheapest.provider,
            cheapest.region,
            cheapest.spot_offer_id,
        )
        cells = [row.gpu or ""] if several else []
        cells += [
            row.provider + (" (stale)" if row.stale else ""),
            row.region or "-",
            money(row.spot_price),
            money(row.on_demand_price),
            f"{row.savings_pct}%" if row.savings_pct is not None else "-",
            out.percent(row.interruption_probability),
            row.risk_bucket or "-",
            row.interruption_source or "-",
            money(row.effective_price) + (" *" if best else ""),
        ]
        rows.append(cells)
    out.table(
        columns, rows, fmt, wide=wide, title=f"{comparison.gpu}: spot vs on-demand, per GPU-hour"
    )
    if fmt is not Format.table:
        return
    out.say(verdict(comparison))
    levels = provider_levels(points, since, now, SPARK_SAMPLES)
    if not levels:
        out.say(f"no spot price recorded in the last {SPARK_HOURS} hours")
        return
    trend_rows = []
    for name, values in sorted(levels.items()):
        known = [v for v in values if v is not None]
        trend_rows.append(
            [
                name,
                sparkline(values),
                money(Decimal(min(known)).scaleb(-6)),
                money(Decimal(max(known)).scaleb(-6)),
                money(Decimal(known[-1]).scaleb(-6)),
            ]
        )
    trend_columns = [Column("PROVIDER"), Column("TREND")]
    trend_columns += numeric("LOW", "HIGH", "NOW")
    out.table(
        trend_columns,
        trend_rows,
        fmt,
        wide=wide,
        title=f"cheapest spot price, last {SPARK_HOURS} hours",
    )


def register(app: typer.Typer) -> None:
    app.command()(offers)
    app.command()(gpus)
    app.command("spot")(spot)
