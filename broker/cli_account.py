"""Account commands: `login`, `logout`, `wallet`, `topup`, `ledger`, `budget`, `keys`."""

from __future__ import annotations

import sys
from decimal import Decimal
from typing import Annotated, Any

import typer

from broker import cli_output as out
from broker.cli_output import TARGET, Column, JsonOption, money, say
from broker.cli_rent import parse_amount
from broker.client import BrokerError, Client, calls
from broker.client.config import (
    KEY_VARIABLE,
    URL_VARIABLE,
    Profile,
    ProfileError,
    load_profile,
    profile_path,
    remove_profile,
    resolve,
    save_profile,
)
from broker.schemas.account import Budget

keys_app = typer.Typer(help="Your API keys: list them, rotate the one in use, revoke one.")


def login(
    url: Annotated[str | None, typer.Option("--url", help="The broker's URL.")] = None,
    api_key: Annotated[str | None, typer.Option("--api-key", help="Your account key.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Check a broker URL and key, then save them as your profile (mode 0600)."""
    import os

    fmt = out.output_format(None, as_json)
    url = url or TARGET.url or os.environ.get(URL_VARIABLE)
    api_key = api_key or TARGET.api_key or os.environ.get(KEY_VARIABLE)
    if not api_key:
        if not sys.stdin.isatty():
            raise out.usage("give the key with --api-key (no terminal to ask on)", fmt)
        api_key = typer.prompt("API key", hide_input=True, err=True)
    try:
        with Client(url, api_key) as client:
            client.wallet()
            url = client.url
    except BrokerError as error:
        raise out.failed(error, fmt) from None
    except ProfileError as error:
        raise out.usage(str(error), fmt) from None
    path = save_profile(Profile(url=url, api_key=api_key))
    if fmt is out.Format.json:
        out.dump({"url": url, "profile": str(path)})
    else:
        say(f"logged in to {url}; profile saved to {path} (readable by you only)")


def logout(as_json: JsonOption = False) -> None:
    """Delete the saved profile (the key itself stays valid: `gpubroker keys revoke`)."""
    path = profile_path()
    removed = remove_profile(path)
    if as_json:
        out.dump({"profile": str(path), "removed": removed})
    else:
        say(f"removed {path}" if removed else f"no profile at {path}")


def wallet(as_json: JsonOption = False) -> None:
    """Balance, held and available credit."""
    fmt = out.output_format(None, as_json)
    result = out.ask(fmt, calls.wallet())
    if not out.shown_as_json(result, fmt):
        say(
            f"available {money(result.available)} (balance {money(result.balance)}, "
            f"held for running rentals {money(result.held)})"
        )


def topup(
    amount: Annotated[str, typer.Argument(help="USD, at least 5.00.")],
    idempotency_key: Annotated[str | None, typer.Option(help="Safe retries.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Start a top-up: a Stripe PaymentIntent your wallet is credited from once it is paid."""
    fmt = out.output_format(None, as_json)
    created = out.ask(fmt, calls.topup(parse_amount(amount, "AMOUNT", fmt), idempotency_key))
    if out.shown_as_json(created, fmt):
        return
    say(f"top-up {created.id} for {money(created.amount)}: {created.status}")
    if created.checkout_url:
        say(f"pay here: {created.checkout_url}")
    else:
        say(f"payment intent: {created.payment_intent_id or '-'}")
        say(f"client secret:  {created.client_secret}")
        say("confirm it with Stripe (Stripe.js or a Stripe client) using the client secret;")
    say("the wallet is credited when Stripe reports the payment: check with `gpubroker wallet`")


@out.lists
def ledger(view: out.View) -> None:
    """Your ledger, newest first: top-ups, grants, holds, charges, releases."""
    entries, more = out.listing(view.fmt, calls.ledger(view.page_size), view.every)
    if out.shown_as_json({"object": "list", "data": entries}, view.fmt):
        return
    columns = [Column("ID", numeric=True), Column("TIME"), Column("KIND")]
    columns += out.numeric("AMOUNT", "BALANCE", "HELD")
    columns.append(Column("REFERENCE"))
    rows = [
        [
            str(e.id),
            e.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            e.kind,
            money(e.amount),
            money(e.balance_after),
            money(e.held_after),
            e.reference,
        ]
        for e in entries
    ]
    out.table(columns, rows, view.fmt, wide=view.wide)
    out.footer(len(entries), more, "no ledger entries", view.fmt)


def _budget_lines(result: Budget) -> list[str]:
    period = f"{result.period_start:%Y-%m-%d} to {result.period_end:%Y-%m-%d} UTC"
    used = f"spent {money(result.spent)}, held {money(result.held)}"
    if result.monthly_limit is None:
        lines = [f"no monthly limit ({used}, {period})"]
    else:
        left = max(result.monthly_limit - result.spent - result.held, Decimal(0))
        lines = [f"monthly limit {money(result.monthly_limit)}: {used}, left {money(left)}"]
        lines.append(f"period: {period}")
    alerts = ", ".join(f"{(Decimal(a) * 100).normalize():f}%" for a in result.alert_at) or "none"
    lines.append(f"alerts at: {alerts} of the limit")
    low = money(result.low_balance) if result.low_balance is not None else "off"
    lines.append(f"low-balance alert: {low}")
    return lines


def budget(
    limit: Annotated[str | None, typer.Option("--limit", help="Monthly limit, USD.")] = None,
    no_limit: Annotated[bool, typer.Option("--no-limit", help="Remove the limit.")] = False,
    alert_at: Annotated[
        str | None, typer.Option(help="Fractions of the limit that alert: 0.5,0.9")
    ] = None,
    low_balance: Annotated[
        str | None, typer.Option(help="Alert when available credit falls under this (USD).")
    ] = None,
    no_low_balance: Annotated[bool, typer.Option("--no-low-balance")] = False,
    as_json: JsonOption = False,
) -> None:
    """Show your monthly budget, or set it (--limit, --alert-at, --low-balance)."""
    fmt = out.output_format(None, as_json)
    changes: dict[str, Any] = {}
    if limit is not None:
        changes["monthly_limit"] = parse_amount(limit, "--limit", fmt)
    if no_limit:
        changes["monthly_limit"] = None
    if alert_at is not None:
        try:
            fractions = [Decimal(part) for part in alert_at.split(",") if part.strip()]
        except ArithmeticError:
            fractions = []
        if not fractions or any(not 0 < f <= 1 for f in fractions):
            raise out.usage(
                "--alert-at takes fractions in (0, 1] separated by commas: 0.5,0.9", fmt
            )
        changes["alert_at"] = fractions
    if low_balance is not None:
        changes["low_balance"] = parse_amount(low_balance, "--low-balance", fmt)
    if no_low_balance:
        changes["low_balance"] = None
    changed = out.ask(fmt, calls.set_budget(**changes) if changes else calls.budget())
    if not out.shown_as_json(changed, fmt):
        for line in _budget_lines(changed):
            say(line)


@keys_app.callback(invoke_without_command=True)
def keys(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Your API keys; `current` marks the one in use."""
    if ctx.invoked_subcommand is not None:
        return
    fmt = out.output_format(None, as_json)
    page = out.ask(fmt, calls.keys())
    if out.shown_as_json(page, fmt):
        return
    columns = [Column("KEY ID", whole=True), Column("CREATED"), Column("REVOKED"), Column("IN USE")]
    rows = [
        [
            k.key_id,
            f"{k.created_at:%Y-%m-%d %H:%M:%S}",
            f"{k.revoked_at:%Y-%m-%d %H:%M:%S}" if k.revoked_at else "-",
            "yes" if k.current else "",
        ]
        for k in page.data
    ]
    out.table(columns, rows, fmt)


@keys_app.command("rotate")
def rotate(as_json: JsonOption = False) -> None:
    """Issue a new key and revoke the one in use, in one step; the profile is updated."""
    fmt = out.output_format(None, as_json)
    with out.broker(fmt) as client:
        current = next((k for k in client.keys().data if k.current), None)
        issued = client.new_key(replaces=current.key_id if current else None)
    url, key_in_use = resolve(TARGET.url, TARGET.api_key)
    saved = False
    try:
        profile = load_profile()
    except ProfileError:
        profile = Profile()
    if profile.api_key and profile.api_key == key_in_use:
        save_profile(Profile(url=profile.url or url, api_key=issued.api_key))
        saved = True
    if fmt is out.Format.json:
        out.dump({**issued.model_dump(mode="json"), "profile_updated": saved})
        return
    say(f"new key {issued.key_id}: {issued.api_key}")
    say("shown once: keep it." + (f" Revoked {current.key_id}." if current else ""))
    if saved:
        say(f"profile {profile_path()} now uses the new key")
    else:
        say(f"use it from now on: export {KEY_VARIABLE}={issued.api_key}")


@keys_app.command("revoke")
def revoke(key_id: str, as_json: JsonOption = False) -> None:
    """Revoke one of your keys."""
    fmt = out.output_format(None, as_json)
    revoked = out.ask(fmt, calls.revoke_key(key_id), "list your keys with `gpubroker keys`")
    if not out.shown_as_json(revoked, fmt):
        say(f"revoked {revoked.key_id}" + (" (the key in use)" if revoked.current else ""))


def register(app: typer.Typer) -> None:
    for command in (login, logout, wallet, topup, ledger, budget):
        app.command()(command)
    app.add_typer(keys_app, name="keys")
