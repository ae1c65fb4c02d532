"""`gpubroker webhooks add|list|rm|test|deliveries`: signed event deliveries to your URLs."""

from __future__ import annotations

from typing import Annotated

import typer

from broker import cli_output as out
from broker.cli_output import Column, JsonOption, OutputOption, WideOption, say
from broker.client import calls

webhooks_app = typer.Typer(help="Webhooks: the broker POSTs signed events to your URL.")
NOT_FOUND = "list your webhooks with `gpubroker webhooks list`"


@webhooks_app.command("add")
def add(
    url: Annotated[str, typer.Argument(help="An https URL that receives the events.")],
    event: Annotated[
        list[str] | None,
        typer.Option("--event", "-e", help="rental.running, budget.alert, ...; repeatable."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Register a URL for events (all of them unless --event); prints its secret once."""
    fmt = out.output_format(None, as_json)
    created = out.ask(fmt, calls.add_webhook(url, event or ["*"]))
    if not out.shown_as_json(created, fmt):
        say(f"webhook {created.id}: {created.url} <- {', '.join(created.events)}")
        say(f"signing secret (shown once, keep it): {created.secret}")


@webhooks_app.command("list")
def list_webhooks(
    wide: WideOption = False, output: OutputOption = None, as_json: JsonOption = False
) -> None:
    """Your webhooks."""
    fmt = out.output_format(output, as_json)
    hooks, more = out.listing(fmt, calls.webhooks(), False)
    if out.shown_as_json({"object": "list", "data": hooks}, fmt):
        return
    rows = [[w.id, w.url, ", ".join(w.events)] for w in hooks]
    out.table([Column("ID", whole=True), Column("URL"), Column("EVENTS")], rows, fmt, wide=wide)
    out.footer(len(rows), more, "no webhooks; add one with `gpubroker webhooks add URL`", fmt)


@webhooks_app.command("rm")
def remove(webhook_id: str, as_json: JsonOption = False) -> None:
    """Delete a webhook; nothing more is delivered to it."""
    fmt = out.output_format(None, as_json)
    answer = out.ask(fmt, calls.remove_webhook(webhook_id), NOT_FOUND)
    if not out.shown_as_json(answer, fmt):
        say(f"removed webhook {webhook_id}")


@webhooks_app.command("test")
def test(webhook_id: str, as_json: JsonOption = False) -> None:
    """Queue a test event to the webhook; see it with `gpubroker webhooks deliveries ID`."""
    fmt = out.output_format(None, as_json)
    answer = out.ask(fmt, calls.test_webhook(webhook_id), NOT_FOUND)
    if not out.shown_as_json(answer, fmt):
        say(
            f"test event {answer.event_id} queued for {webhook_id}; "
            f"see it with `gpubroker webhooks deliveries {webhook_id}`"
        )


@webhooks_app.command("deliveries")
def deliveries(
    webhook_id: str,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Attempts to show.")] = 20,
    wide: WideOption = False,
    output: OutputOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delivery attempts to a webhook, newest first, with the answer each got."""
    fmt = out.output_format(output, as_json)
    page = out.ask(fmt, calls.deliveries(webhook_id, limit), NOT_FOUND)
    if out.shown_as_json(page, fmt):
        return
    columns = [Column("TIME"), Column("EVENT", whole=True), Column("TYPE")]
    columns += [*out.numeric("TRY", "STATUS"), Column("ERROR")]
    rows = [
        [
            f"{d.at:%Y-%m-%d %H:%M:%S}",
            d.event_id,
            d.type,
            str(d.attempt),
            str(d.status_code) if d.status_code is not None else "-",
            (d.error or "") + (" (given up)" if d.gave_up else ""),
        ]
        for d in page.data
    ]
    out.table(columns, rows, fmt, wide=wide)
    out.footer(len(rows), False, "no deliveries yet", fmt)


def register(app: typer.Typer) -> None:
    app.add_typer(webhooks_app, name="webhooks")
