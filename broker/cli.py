"""The `gpubroker` command: run the broker, and use it from a terminal.

`serve` runs the service; the other commands are clients of a running broker, through
`broker.client` (`--url`/`--api-key`, else GPUBROKER_URL/GPUBROKER_API_KEY, else the profile
`gpubroker login` saved), so they work the same against a laptop demo or a production deployment.
Every mistake is one line on stderr, never a traceback: exit 1 for what the broker refused or
could not answer, 2 for a usage error (`broker.cli_output`).

Before serving, `serve` checks the database's schema and stops with one line when it is not
current, or migrates it first with `--migrate`; `db upgrade` and `db check` do the same by hand
(`broker.cli_schema`).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any

import typer
from typer._click import exceptions as click  # Typer vendors Click; its errors live here
from typer.core import TyperGroup

from broker import cli_account, cli_catalog, cli_rent, cli_rentals, cli_schema, cli_webhooks
from broker.cli_output import API_ERROR, TARGET, USAGE_ERROR, note


class OneLineErrors(TyperGroup):
    """The top-level command: a usage mistake is one line on stderr with exit status 2 (a JSON
    object under --json), and nothing unexpected ever ends in a traceback."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the command line; errors are reported here, whatever `standalone_mode` says."""
        given = list(sys.argv[1:] if args is None else args)
        as_json = (
            "--json" in given
            or any(a == "-ojson" or a == "--output=json" for a in given)
            or _option_value(given, ("-o", "--output")) == "json"
        )
        try:
            result = super().main(
                given,
                prog_name or "gpubroker",
                complete_var,
                False,
                windows_expand_args,
                **extra,
            )
        except click.NoArgsIsHelpError as exc:
            note(exc.format_message())
            sys.exit(USAGE_ERROR)
        except click.UsageError as exc:
            where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
            message = exc.format_message() + where
            if as_json:
                note(json.dumps({"error": {"code": "usage", "message": message}}))
            else:
                note(f"gpubroker: usage error: {message}")
            sys.exit(USAGE_ERROR)
        except click.ClickException as exc:
            note(f"gpubroker: error: {exc.format_message()}")
            sys.exit(exc.exit_code)
        except typer.Abort:
            note("gpubroker: aborted")
            sys.exit(API_ERROR)
        except Exception as exc:  # noqa: BLE001  # the promise: one line, never a traceback
            note(f"gpubroker: unexpected error: {type(exc).__name__}: {exc}")
            sys.exit(API_ERROR)
        sys.exit(result if isinstance(result, int) else 0)


def _option_value(args: list[str], names: tuple[str, ...]) -> str | None:
    for index, arg in enumerate(args[:-1]):
        if arg in names:
            return args[index + 1]
    return None


def _version(value: bool) -> None:
    if value:
        try:
            typer.echo(f"gpubroker {version('gpubroker')}")
        except PackageNotFoundError:
            typer.echo("gpubroker (not installed as a package)")
        raise typer.Exit()


app = typer.Typer(
    cls=OneLineErrors,
    help="gpubroker: one catalog and one rental API over many GPU clouds.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
db_app = typer.Typer(help="Database schema.")
app.add_typer(db_app, name="db")


@app.callback()
def target(
    url: Annotated[
        str | None, typer.Option("--url", help="The broker (else GPUBROKER_URL, the profile).")
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", help="Your account key (else GPUBROKER_API_KEY, the profile)."),
    ] = None,
    show_version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """gpubroker: one catalog and one rental API over many GPU clouds.

    Exit status: 0 done, 1 the broker refused or could not be reached, 2 a usage error.
    """
    TARGET.url, TARGET.api_key = url, api_key


for module in (cli_catalog, cli_rent, cli_rentals, cli_account, cli_webhooks):
    module.register(app)


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
    typer.echo("database schema is up to date")


@db_app.command("check")
def db_check() -> None:
    """Exit 0 when GPUBROKER_DATABASE_URL's schema is current; else say why in one line, exit 1."""
    typer.echo(cli_schema.check(cli_schema.database_url(demo=False)))
