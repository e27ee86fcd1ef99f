"""What every `circlecost` command shares: the settings its flags and environment give, and the
store it reads. Its own module so that command modules (cli, cli_admin) import it, not each other.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from datetime import date
from pathlib import Path

import click

from circlecost.errors import CirclecostError
from circlecost.settings import Settings, read_sources
from circlecost.store import Store


class Context:
    def __init__(self, store: str | None, actor: str | None, debug: bool) -> None:
        self.debug = debug
        sources = read_sources(flags={"store": store, "actor": actor})
        self.store_setting = sources.store
        self.data_path = sources.store_data_path
        self.settings = sources.settings(
            "circlecost " + (click.get_current_context().invoked_subcommand or "")
        )


pass_context = click.make_pass_decorator(Context)


def existing_store(settings: Settings) -> Store:
    """The store for reading; a missing one is an error that says where the CLI looked."""
    store = settings.reader()
    if store.shared is None and not store.path.exists():
        raise CirclecostError(
            f"there is no store at {store.path}",
            hint="give the store's path with --store or CIRCLECOST_STORE; "
            "`circlecost integrations add` (or `pulumi up`) creates a new one",
        )
    if store.shared is not None and not store.exists():
        raise store.not_initialised()
    return store


_ISO_DAY = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


def parse_day(_ctx: click.Context, _param: click.Parameter, value: str | None) -> date | None:
    """A YYYY-MM-DD day of the calendar; click names the option in the error."""
    if value is None:
        return None
    match = _ISO_DAY.fullmatch(value.strip())
    if match is None:
        raise click.BadParameter(f"'{value}' is not a date: write YYYY-MM-DD")
    year, month, day = (int(part) for part in match.groups())
    if not 1 <= month <= 12:
        raise click.BadParameter(f"'{value}' is not a date: there is no month {month}")
    if year < 1:
        raise click.BadParameter(f"'{value}' is not a date: there is no year 0")
    days_in_month = calendar.monthrange(year, month)[1]
    if not 1 <= day <= days_in_month:
        raise click.BadParameter(
            f"'{value}' is not a date: {calendar.month_name[month]} {year} has {days_in_month} days"
        )
    return date(year, month, day)


def emit(
    fmt: str, output: Path | None, print_table: Callable[[], None], text: Callable[[], str]
) -> None:
    """Prints the table, or writes the text of another format to stdout or to --output."""
    if fmt == "table":
        if output:
            raise CirclecostError(
                "--output takes --format csv, json or html", hint="or redirect the table"
            )
        print_table()
        return
    if output is None:
        click.echo(text(), nl=False)
        return
    output.write_text(text(), encoding="utf-8")
    click.echo(f"wrote {output}")
