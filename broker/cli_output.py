"""How the client commands talk to the user: data as plain text, tables that never cut, errors.

- Data is printed as plain text: no Rich markup, emoji codes or highlighting are read in it, so
  `computegpu:cloud:rtx-4090` stays what it is and `foo[/]` prints as typed.
- Tables fit the terminal by wrapping cells between words, never by cutting them: ids and
  numbers stay whole, and a table that cannot fit that way is printed one block per row
  (`records`); `--wide` prints each row on one line whatever the width; `-o json` prints the
  API's JSON, `-o csv` CSV. List commands share their options through `lists`.
- Errors are one line on stderr (a JSON object under `-o json`), with a hint naming the command
  to run. Exit status: 0 done, 1 the broker refused or could not be reached, 2 a usage error.
"""

from __future__ import annotations

import csv
import functools
import inspect
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table
from rich.text import Text
from typer._click.globals import get_current_context  # Typer vendors Click

from broker.client import BrokerError, Client
from broker.client.calls import Call
from broker.schemas import Page

T = TypeVar("T", bound=BaseModel)
Item = TypeVar("Item", bound=BaseModel)
PAGE_MAX = 500  # the most rows the API answers in one page
API_ERROR = 1
USAGE_ERROR = 2
WIDE_COLUMNS = 10_000


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


@dataclass
class Target:
    """The broker this run talks to (global `--url`, `--api-key`; else environment, profile)."""

    url: str | None = None
    api_key: str | None = None


TARGET = Target()

OutputOption = Annotated[
    Format | None, typer.Option("--output", "-o", help="table (default), json or csv.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Same as -o json.")]
LimitOption = Annotated[int, typer.Option(min=1, max=500, help="Rows to show.")]
AllOption = Annotated[bool, typer.Option("--all", help="Every row, page after page.")]
WideOption = Annotated[
    bool, typer.Option("--wide", help="One line per row, whatever the terminal's width.")
]


def output_format(output: Format | None, as_json: bool) -> Format:
    return Format.json if as_json else output or Format.table


def console(wide: bool = False, stderr: bool = False) -> Console:
    """A console that reads nothing in the text it prints (markup, emoji, highlighting)."""
    return Console(
        markup=False,
        emoji=False,
        highlight=False,
        stderr=stderr,
        width=WIDE_COLUMNS if wide else None,
        soft_wrap=False,
    )


def say(line: str = "") -> None:
    """A line of text on stdout, printed as it is."""
    typer.echo(line)


def note(line: str) -> None:
    """A line for the user on stderr (progress, notices), kept out of the data on stdout."""
    typer.echo(line, err=True)


def money(value: Decimal | str | None, per: str = "") -> str:
    """`$0.19/h`: USD with at least two decimals and every significant one, never cut."""
    if value is None:
        return "-"
    amount = Decimal(value)
    text = format(amount.normalize(), "f")
    whole, _, fraction = text.partition(".")
    fraction = fraction.ljust(2, "0")
    sign = "-" if whole.startswith("-") else ""
    return f"{sign}${whole.lstrip('-')}.{fraction}{per}"


def percent(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}%}"


def duration(seconds: float | None) -> str:
    """`2h`, `30m`, `1h30m`, `45s`."""
    if seconds is None:
        return "-"
    left = int(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if left >= size:
            parts.append(f"{left // size}{unit}")
            left %= size
    if left or not parts:
        parts.append(f"{left}s")
    return "".join(parts)


def interactive() -> bool:
    """Whether a person is there to answer a question (stdin is a terminal)."""
    return sys.stdin.isatty()


def jsonable(payload: Any) -> Any:
    """Models as the API spelled them (fields it did not send left out), inside lists and dicts."""
    if isinstance(payload, BaseModel):
        return payload.model_dump(mode="json", exclude_unset=True)
    if isinstance(payload, list):
        return [jsonable(item) for item in payload]
    if isinstance(payload, dict):
        return {key: jsonable(value) for key, value in payload.items()}
    return payload


def dump(payload: Any) -> None:
    """JSON on stdout."""
    say(json.dumps(jsonable(payload), indent=2))


@dataclass(frozen=True)
class Column:
    header: str
    numeric: bool = False
    whole: bool = False  # kept on one line (ids: to copy them); other columns fold around it


def numeric(*headers: str) -> list[Column]:
    """Right-aligned columns, for numbers and money."""
    return [Column(header, numeric=True) for header in headers]


def table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    fmt: Format,
    *,
    wide: bool = False,
    title: str | None = None,
) -> None:
    """Rows as a table, or as CSV. Nothing is ever cut: ids and numbers stay whole on one line
    and other cells wrap between words; where even that does not fit the terminal, each row is
    printed as a short block instead (`records`)."""
    if fmt is Format.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(c.header for c in columns)
        writer.writerows(rows)
        return
    shown = Table(
        title=Text(title) if title else None,
        header_style="bold",
        box=None,
        pad_edge=False,
        show_edge=False,
    )
    out = console(wide)
    widths = None if wide else fitted(columns, rows, out.width)
    if not wide and widths is None:
        records(columns, rows, out.width, title)
        return
    for index, column in enumerate(columns):
        shown.add_column(
            Text(column.header),
            justify="right" if column.numeric else "left",
            overflow="fold",
            no_wrap=wide or column.whole or column.numeric,
            width=widths[index] if widths else None,
        )
    for row in rows:
        shown.add_row(*(Text(cell) for cell in row))
    out.print(shown)


def fitted(
    columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int
) -> list[int] | None:
    """Column widths that fit `width` with ids and numbers whole and other cells wrapped only
    between words, narrowing the column with the most room to spare first; None if none do."""
    natural, needed = [], []
    for index, column in enumerate(columns):
        cells = [column.header, *(row[index] for row in rows)]
        natural.append(max(len(cell) for cell in cells))
        kept = column.whole or column.numeric
        words = cells if kept else [word for cell in cells for word in cell.split()]
        needed.append(max((len(word) for word in words), default=1))
    room = width - 2 * (len(columns) - 1)  # two spaces between columns
    widths = natural
    while sum(widths) > room:
        slack, index = max((w - n, k) for k, (w, n) in enumerate(zip(widths, needed, strict=True)))
        if slack <= 0:
            return None
        widths[index] -= 1
    return widths


def records(
    columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int, title: str | None
) -> None:
    """Each row as a block: its first cell alone on a line (an id, whole, to copy), then
    `HEADER value` pairs packed into lines of `width`, never split."""
    if title:
        say(title)
    for row in rows:
        say(row[0])
        line = ""
        for column, cell in zip(columns[1:], row[1:], strict=True):
            pair = f"{column.header} {cell}"
            if line and len(line) + 2 + len(pair) > width:
                say(line)
                line = ""
            line = f"{line}  {pair}" if line else f"  {pair}"
        if line:
            say(line)


def fields(pairs: Sequence[tuple[str, str | None]]) -> None:
    """`name  value` lines for one object, skipping empty values."""
    present = [(name, value) for name, value in pairs if value not in (None, "")]
    width = max((len(name) for name, _ in present), default=0)
    for name, value in present:
        say(f"{name.ljust(width)}  {value}")


def _hint(error: BrokerError, not_found: str | None) -> str | None:
    hints = {
        "unauthorized": "log in with `gpubroker login --api-key KEY` (or set GPUBROKER_API_KEY)",
        "insufficient_credit": "add credit with `gpubroker topup AMOUNT`; see `gpubroker wallet`",
        "budget_exceeded": "see `gpubroker budget`; raise it with `gpubroker budget --limit USD`",
        "no_capacity": "see what is available now with `gpubroker offers`",
        "price_changed": "run the same `gpubroker rent` again to see the new price",
        "rate_limited": "wait a moment, then run it again",
        "unreachable": "is the broker running (`gpubroker serve --demo`)? "
        "Point at another one with --url or `gpubroker login --url URL`",
        "bad_url": "give a URL such as http://127.0.0.1:8000 with --url or "
        "`gpubroker login --url URL`",
        "bad_response": "check that --url (or GPUBROKER_URL) points at a gpubroker",
        "wait_ended": "see why with `gpubroker status RENTAL_ID`",
        "not_configured": "the operator has not configured this on the broker",
        "conflict": "see where it stands with `gpubroker status RENTAL_ID` or `gpubroker rentals`",
        "provider_error": "run the same command again, or pick another offer with "
        "`gpubroker offers`",
        "internal_error": "run the same command again later",
        "invalid_request": f"see `{_command()} --help`",
        "not_found": not_found,
    }
    return hints.get(error.code)


def _command() -> str:
    """The command being run (`gpubroker offers`), whatever name the program was started by."""
    context = get_current_context(silent=True)
    path = context.command_path.split()[1:] if context is not None else []
    return " ".join(["gpubroker", *path])


def print_error(error: BrokerError, fmt: Format, not_found: str | None = None) -> None:
    hint = _hint(error, not_found)
    if fmt is Format.json:
        body: dict[str, Any] = {**error.body, "code": error.code, "message": error.message}
        body["status"] = error.status
        if hint:
            body["hint"] = hint
        note(json.dumps({"error": body}, default=str))
        return
    message = " ".join(error.message.split())
    line = f"gpubroker: error: {error.code}: {message}"
    if error.attempts:
        tried = "; ".join(f"{a.provider or '?'}: {a.error}" for a in error.attempts)
        line += f" (tried {tried})"
    note(line + (f" (hint: {hint})" if hint else ""))


def usage(message: str, fmt: Format = Format.table) -> typer.Exit:
    """A usage error: one line on stderr, exit status 2. Raise what it returns."""
    if fmt is Format.json:
        note(json.dumps({"error": {"code": "usage", "message": message}}))
    else:
        note(f"gpubroker: usage error: {message}")
    return typer.Exit(USAGE_ERROR)


def failed(error: BrokerError, fmt: Format, not_found: str | None = None) -> typer.Exit:
    print_error(error, fmt, not_found)
    return typer.Exit(API_ERROR)


@contextmanager
def broker(fmt: Format, not_found: str | None = None) -> Iterator[Client]:
    """A client for the broker this run targets; any `BrokerError` inside ends the command with
    its one-line report and exit status 1. `not_found` is the hint for a 404."""
    try:
        with Client(TARGET.url, TARGET.api_key) as client:
            yield client
    except BrokerError as error:
        raise failed(error, fmt, not_found) from None


def ask(fmt: Format, call: Call[T], not_found: str | None = None) -> T:
    """Send one call to the broker this run targets; a refusal ends the command (exit 1)."""
    with broker(fmt, not_found) as client:
        return client.send(call)


def shown_as_json(payload: Any, fmt: Format) -> bool:
    """Under `-o json`, print the answer as the API spelled it and say so: the command is done."""
    if fmt is not Format.json:
        return False
    dump(payload)
    return True


@dataclass(frozen=True)
class View:
    """How a list command shows its list: the options every one of them takes."""

    fmt: Format
    limit: int
    every: bool
    wide: bool

    @property
    def page_size(self) -> int:
        return PAGE_MAX if self.every else self.limit


def _view(
    limit: LimitOption = 20,
    show_all: AllOption = False,
    wide: WideOption = False,
    output: OutputOption = None,
    as_json: JsonOption = False,
) -> View:
    return View(output_format(output, as_json), limit, show_all, wide)


def lists(command: Callable[..., None]) -> Callable[..., None]:
    """A command that prints a list: it gets `--limit`, `--all`, `--wide`, `-o` and `--json`
    after its own options, and receives them as one `View`, its first parameter."""
    own = list(inspect.signature(command, eval_str=True).parameters.values())[1:]
    shared = list(inspect.signature(_view, eval_str=True).parameters.values())

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        view = _view(**{option.name: kwargs.pop(option.name) for option in shared})
        command(view, *args, **kwargs)

    parameters = [*own, *shared]
    # Typer reads the options of a command from its signature and its annotations.
    run.__dict__["__signature__"] = inspect.Signature(parameters)
    run.__annotations__ = {option.name: option.annotation for option in parameters}
    return run


def listing(fmt: Format, call: Call[Page[Item]], every: bool) -> tuple[list[Item], bool]:
    """The first page of a list, or every item with `--all`; and whether more are left."""
    with broker(fmt) as client:
        if every:
            return list(client.walk(call)), False
        page = client.send(call)
    return page.data, page.next_cursor is not None


def footer(shown: int, more: bool, empty: str, fmt: Format) -> None:
    """What a table of a list says after it: that it is empty, or that more are left."""
    if fmt is not Format.table:
        return
    if not shown:
        say(empty)
    elif more:
        say(f"showing the newest {shown} (use --limit or --all)")
