"""The `circlecost` command: integrations, sync, status, reports, exports, access, audit,
and the emulator when its package is installed.

Exit codes: 0 done, 1 the operation failed (one clear line on stderr, a traceback only with
--debug), 2 the command line was wrong.
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from circlecost import service
from circlecost.cli_admin import access, audit, store_group, vtags
from circlecost.cli_context import Context, emit, existing_store, parse_day, pass_context
from circlecost.cli_insights import (
    anomalies_command,
    budgets_command,
    insights_group,
    metrics,
    print_budgets,
)
from circlecost.errors import CirclecostError
from circlecost.importer import ImportReport, TokenRejectedError
from circlecost.settings import Settings
from circlecost.store import Integration, Store
from circlecost.vocabulary import PERIODS, Status

if TYPE_CHECKING:
    from circlecost.reports import ReportRequest

EPILOG_STORE = "The store is --store, else CIRCLECOST_STORE, else .circlecost/costs.duckdb."
# CircleCI's usage export quota refills over an hour: one full cycle fits in the default wait.
DEFAULT_WAIT_SECONDS = 3600
NEW_TOKEN_HINT = (
    "create a new personal API token of an organization admin in CircleCI (User Settings → "
    "Personal API Tokens) and put it in CIRCLECI_TOKEN"
)
# Stack config keys that hints written for Pulumi name, and how the CLI takes each instead: its
# flag (--actor and --store go before the command) and its variable. The service layer writes
# for both; the CLI translates where it prints errors.
CLI_SETTINGS: dict[str, tuple[str, str]] = {
    "actor": ("circlecost --actor {value} …", "CIRCLECOST_ACTOR"),
    "store": ("circlecost --store {value} …", "CIRCLECOST_STORE"),
    "circleciUrl": ("--circleci-url {value}", "CIRCLECI_URL"),
}
_CONFIG_IN_HINT = re.compile(
    r"(?P<run>run )?`(?:pulumi config set )?circlecost:(?P<key>\w+)(?: (?P<value>[^`]+))?`"
)
# `integrations list` shows ids this long (a UUID's first group), longer where two share it;
# `integrations remove` takes any unique prefix of at least MIN_ID_PREFIX characters.
SHORT_ID_LENGTH = 8
MIN_ID_PREFIX = 4


def fail(error: CirclecostError, debug: bool) -> NoReturn:
    if debug:
        raise error
    click.echo(f"error: {error.message}", err=True)
    hint = cli_hint(error)
    if hint:
        click.echo(f"hint: {hint}", err=True)
    sys.exit(1)


def cli_hint(error: CirclecostError) -> str:
    """The error's hint in the CLI's words: its flags and variables, not the stack config that
    `pulumi config set` writes, and a new token in CIRCLECI_TOKEN, not in the stack."""
    if isinstance(error, TokenRejectedError):
        return NEW_TOKEN_HINT
    hint = error.hint

    def cli_setting(match: re.Match[str]) -> str:
        if match["key"] not in CLI_SETTINGS:
            return match[0]
        usage, variable = CLI_SETTINGS[match["key"]]
        command = " ".join(usage.format(value=match["value"] or "").split())
        verb = ("run " if command.startswith("circlecost") else "pass ") if match["run"] else ""
        also = "" if variable in hint else f" (or {variable})"
        return f"{verb}`{command}`{also}"

    return _CONFIG_IN_HINT.sub(cli_setting, hint)


class ExplainingGroup(click.Group):
    """Turns circlecost's own errors into one clear line and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CirclecostError as error:
            fail(error, bool(ctx.params.get("debug")))


@click.group(cls=ExplainingGroup, epilog=EPILOG_STORE)
@click.option(
    "--store",
    help="The cost store: a DuckDB file's path, or ducklake:postgres:<libpq string> for a "
    "shared store (its data path from CIRCLECOST_STORE_DATA_PATH). Default: CIRCLECOST_STORE, "
    "else .circlecost/costs.duckdb.",
)
@click.option(
    "--actor", help="Who acts (checked against roles, audited). Default: CIRCLECOST_ACTOR."
)
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.pass_context
def main(ctx: click.Context, store: str | None, actor: str | None, debug: bool) -> None:
    """circlecost: CircleCI costs, imported, priced and reported.

    \b
    Example:
      circlecost report --period last_month --group-by service
    """
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING)
    # httpx logs full URLs at INFO, and pre-signed download links carry signatures.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    ctx.obj = Context(store, actor, debug)


# --- integrations -------------------------------------------------------------------------------


@main.group()
def integrations() -> None:
    """Add, list and remove CircleCI integrations (for use without Pulumi)."""


def timeout_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--timeout",
        type=click.IntRange(min=1),
        default=None,
        help=f"With --wait: give up after this many seconds [default: {DEFAULT_WAIT_SECONDS}]; "
        "a later `circlecost sync` continues.",
    )(command)


def import_budget(wait: bool, timeout: int | None) -> timedelta:
    """How long the import may run: a single pass without --wait."""
    if not wait:
        if timeout is not None:
            raise click.UsageError("--timeout only applies with --wait")
        return timedelta(0)
    return timedelta(seconds=timeout or DEFAULT_WAIT_SECONDS)


class ImportProgress:
    """What --wait sees of the import: the latest report and, when stderr is no terminal, one
    line per change, so that CI logs show progress. A terminal shows the importer's own lines.

    Only unfinished states are shown: the command's last line says how the import ended.
    """

    def __init__(self) -> None:
        self.show_lines = not sys.stderr.isatty()
        self.last_line = ""
        self.report: ImportReport | None = None

    def __call__(self, organization_name: str, report: ImportReport) -> None:
        self.report = report
        line = f"{organization_name}: {report.status} — {report.detail}"
        if self.show_lines and report.status == Status.IMPORTING and line != self.last_line:
            click.echo(line, err=True)
            self.last_line = line


def require_stable(
    settings: Settings,
    outputs: service.IntegrationOutputs,
    report: ImportReport | None,
    budget: timedelta,
) -> None:
    """--wait succeeds once the import is Stable; anything else ends it with the reason."""
    # A name is known once the token was validated; an older record may lack it.
    name = outputs["organization_name"] or "the integration"
    status, detail = outputs["status"], outputs["status_detail"]
    if status == Status.STABLE:
        return
    if status != Status.IMPORTING:  # nothing is left to do: windows failed for good
        raise CirclecostError(
            f"{name} is {status}: {detail}",
            hint="`circlecost sync --wait` retries the windows that failed",
        )
    if report is not None and report.refused_links:
        raise CirclecostError(
            f"{name} cannot continue: {report.refused_links[0]}", hint=refused_link_hint(settings)
        )
    raise CirclecostError(
        still_importing(name, report, budget),
        hint="a later `circlecost sync --wait` continues with the same export jobs; "
        "a larger --timeout waits longer",
    )


def refused_link_hint(settings: Settings) -> str:
    if not settings.allow_loopback_downloads:
        return (
            "links to this machine, such as the emulator's, need "
            "CIRCLECOST_ALLOW_LOOPBACK_DOWNLOADS=1; set it, then `circlecost sync --wait` "
            "continues with the same export jobs"
        )
    return (
        "CircleCI's download links must be https to a public host; `circlecost sync --wait` asks "
        "for fresh ones, and a link refused again is worth reporting"
    )


def still_importing(name: str, report: ImportReport | None, budget: timedelta) -> str:
    """The import stops waiting as soon as its next step falls after the timeout."""
    if report is None:
        return f"{name} is still Importing after --timeout {budget.total_seconds():.0f} s"
    shown = ", ".join(str(window) for window in report.missing[:3])
    more = len(report.missing) - 3
    missing = shown + (f" and {more} more" if more > 0 else "")
    text = (
        f"{name} is still Importing: {report.loaded_windows} of "
        f"{report.loaded_windows + report.open_windows + report.failed_windows} window(s) "
        f"imported, still missing {missing or 'none'}"
    )
    if report.next_action_at is None:
        return text
    return (
        f"{text}; the next step ({report.waiting_for}) is due at "
        f"{report.next_action_at:%Y-%m-%d %H:%M:%S} UTC, after the --timeout of "
        f"{budget.total_seconds():.0f} s"
    )


def token_from_env() -> str:
    token = os.environ.get("CIRCLECI_TOKEN", "")
    if not token:
        raise CirclecostError(
            "CIRCLECI_TOKEN is not set",
            hint="export CIRCLECI_TOKEN=<a CircleCI personal API token of an org admin>",
        )
    return token


@integrations.command("add")
@click.option("--org", "organization_id", required=True, help="CircleCI organization UUID.")
@click.option("--price", default="0.0006", show_default=True, help="USD per credit.")
@click.option("--description", default="", help="A label for people.")
@click.option("--backfill-months", default=3, show_default=True, type=click.IntRange(0, 12))
@click.option("--token-expires-on", default=None, help="YYYY-MM-DD the token expires.")
@click.option("--circleci-url", envvar="CIRCLECI_URL", default=None, help="CircleCI API base URL.")
@click.option("--wait/--no-wait", default=False, help="Wait until the import is Stable.")
@timeout_option
@pass_context
def integrations_add(
    context: Context,
    organization_id: str,
    price: str,
    description: str,
    backfill_months: int,
    token_expires_on: str | None,
    circleci_url: str | None,
    wait: bool,
    timeout: int | None,
) -> None:
    """Add an integration; the token comes from CIRCLECI_TOKEN.

    With --wait it exits 0 once the import is Stable, and 1 with the reason when the import
    cannot go on or the --timeout passes.

    \b
    Example:
      CIRCLECI_TOKEN=... circlecost integrations add --org 6513270e-269e-4d37-b2a7-4de452e6b438
    """
    from pydantic import ValidationError

    from circlecost.models import IntegrationInputs, field_errors

    try:
        inputs = IntegrationInputs.model_validate(
            {
                "token": token_from_env(),
                "organization_id": organization_id,
                "description": description,
                "price_per_credit": price,
                "backfill_months": backfill_months,
                "token_expires_on": token_expires_on,
            }
        )
    except ValidationError as error:
        field, reason = field_errors(error)[0]
        raise CirclecostError(f"{field}: {reason}") from None
    budget = import_budget(wait, timeout)
    settings = replace(context.settings, create_timeout=budget)
    if circleci_url:
        settings = replace(settings, circleci_url=circleci_url)
    progress = ImportProgress()
    integration_id, outputs = service.create_integration(
        settings, inputs, watch=progress if wait else None
    )
    click.echo(
        f"{integration_id}  {outputs['organization_name']}  "
        f"{outputs['status']}: {outputs['status_detail']}"
    )
    if wait:
        require_stable(settings, outputs, progress.report, budget)


@integrations.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@pass_context
def integrations_list(context: Context, fmt: str) -> None:
    """List integrations with their status.

    The table shows each id by its first 8 characters (more where two ids share them), which
    `integrations remove` takes; --format json shows whole ids.
    """
    rows = status_rows(context.settings)
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    from circlecost.render import print_table

    length = short_id_length([row["id"] for row in rows])
    print_table(
        ["id", "organization", "status", "imported", "line items", "USD"],
        [
            [
                row["id"][:length],
                row["organization_name"],
                row["status"],
                f"{row['imported_from'] or '-'} .. {row['imported_through'] or '-'}",
                f"{row['line_items']:,}",
                f"{row['total_cost_usd']:,.2f}",
            ]
            for row in rows
        ],
        numeric=("line items", "USD"),
        unbroken=("id", "imported"),
    )


def short_id_length(ids: list[str]) -> int:
    """The shortest length, from SHORT_ID_LENGTH on, at which no two ids look the same."""
    length = SHORT_ID_LENGTH
    while len({integration_id[:length] for integration_id in ids}) < len(ids):
        length += 1
    return length


def find_integration(store: Store, text: str) -> Integration:
    """The integration whose id is `text` or starts with it (git-style unique prefixes)."""
    records = store.list_integrations()
    prefix = text.strip().lower()
    exact = [record for record in records if record.id.lower() == prefix]
    if exact:
        return exact[0]
    if len(prefix) < MIN_ID_PREFIX:
        raise CirclecostError(
            f"'{text}' is too short to name an integration",
            hint=f"give at least {MIN_ID_PREFIX} characters of an id from "
            "`circlecost integrations list`",
        )
    matches = [record for record in records if record.id.lower().startswith(prefix)]
    if not matches:
        raise CirclecostError(
            f"no integration id starts with '{text}'", hint="see `circlecost integrations list`"
        )
    if len(matches) > 1:
        candidates = ", ".join(
            f"{record.id} ({record.organization_name or record.organization_id})"
            for record in matches
        )
        raise CirclecostError(
            f"'{text}' matches {len(matches)} integrations: {candidates}",
            hint="give more characters of the id",
        )
    return matches[0]


@integrations.command("remove")
@click.argument("integration_id")
@pass_context
def integrations_remove(context: Context, integration_id: str) -> None:
    """Remove an integration and purge all its costs.

    INTEGRATION_ID is an id as `integrations list` shows it: the whole id, or any part of its
    start (at least 4 characters) that no other integration's id shares.

    \b
    Example:
      circlecost integrations remove 0b7c1e2f
    """
    record = find_integration(existing_store(context.settings), integration_id)
    service.delete_integration(context.settings, record.id)
    name = record.organization_name or record.organization_id
    click.echo(f"removed {record.id} ({name}) and purged its costs")


def status_rows(settings: Settings) -> list[dict[str, Any]]:
    store = existing_store(settings)
    return [
        {"id": record.id, **service.integration_outputs(store, record.id)}
        for record in store.list_integrations()
    ]


@main.command()
@click.option("--wait/--no-wait", default=False, help="Wait until every window is loaded.")
@timeout_option
@click.option("--circleci-url", envvar="CIRCLECI_URL", default=None, help="CircleCI API base URL.")
@pass_context
def sync(context: Context, wait: bool, timeout: int | None, circleci_url: str | None) -> None:
    """Refresh the integration whose token is in CIRCLECI_TOKEN (the daily refresh), then
    show each budget's figures with the new costs.

    With --wait it exits 0 once the import is Stable, and 1 with the reason when the import
    cannot go on or the --timeout passes.

    \b
    Example:
      CIRCLECI_TOKEN=... circlecost sync --wait --timeout 1800
    """
    budget = import_budget(wait, timeout)
    settings = replace(context.settings, create_timeout=budget)
    if circleci_url:
        settings = replace(settings, circleci_url=circleci_url)
    progress = ImportProgress()
    outputs = service.sync_integrations(
        settings, token_from_env(), watch=progress if wait else None
    )
    click.echo(f"{outputs['organization_name']}: {outputs['status']}: {outputs['status_detail']}")
    print_budgets(settings, settings.reader())  # their figures with the new costs
    if wait:
        require_stable(settings, outputs, progress.report, budget)


@main.command()
@pass_context
def status(context: Context) -> None:
    """Integrations, their status and detail, imported range and next quota slot."""
    rows = status_rows(context.settings)
    if not rows:
        click.echo(f"no integrations in {context.settings.store_name}")
        return
    for row in rows:
        click.echo(
            f"{row['organization_name']} ({row['id']}): {row['status']} — {row['status_detail']}\n"
            f"  imported {row['imported_from'] or '-'} .. {row['imported_through'] or '-'}, "
            f"{row['line_items']} line items, {row['total_credits']:,.0f} credits, "
            f"${row['total_cost_usd']:,.2f}"
        )


# --- reports ------------------------------------------------------------------------------------


@main.command()
@click.option("--from", "start", callback=parse_day, help="First day (YYYY-MM-DD), inclusive.")
@click.option("--to", "end", callback=parse_day, help="Last day (YYYY-MM-DD), inclusive.")
@click.option(
    "--period",
    type=click.Choice(PERIODS),
)
@click.option("--workspace", help="Only integrations bound to this workspace.")
@click.option(
    "--group-by",
    "group_by",
    multiple=True,
    help="Dimension(s): service, account, tag:circleci:vcs_branch, vtag:team, … "
    "(repeat or comma-separate).",
)
@click.option(
    "--bin", "bin_name", type=click.Choice(["day", "week", "month", "quarter", "cumulative"])
)
@click.option("--filter", "filter_text", help="VQL filter, e.g. \"costs.service = 'Compute'\".")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "csv", "json", "html"]), default="table"
)
@click.option(
    "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file."
)
@pass_context
def report(
    context: Context,
    start: date | None,
    end: date | None,
    period: str | None,
    workspace: str | None,
    group_by: tuple[str, ...],
    bin_name: str | None,
    filter_text: str | None,
    fmt: str,
    output: Path | None,
) -> None:
    """Cost report: totals by any dimensions, with the previous period beside them.

    \b
    Examples:
      circlecost report --period last_month --group-by service
      circlecost report --from 2026-10-01 --to 2026-10-31 --group-by account,service --bin week
      circlecost report --period this_month \\
        --filter "tags.name = 'circleci:vcs_branch' AND tags.value = 'main'"
      circlecost report --period last_month --group-by vtag:team \\
        --filter "vtags.team != 'payments'"
    """
    from circlecost import render, reports

    settings = context.settings
    request = reports.ReportRequest(
        period=reports.resolve_period(start, end, period, settings.clock().date()),
        group_by=tuple(
            name.strip() for names in group_by for name in names.split(",") if name.strip()
        ),
        bin=bin_name,
        filter=filter_text,
    )
    store = existing_store(settings)
    if workspace:
        scope = tuple(service.workspace_integration_ids(settings, workspace))
        request = replace(request, integration_ids=scope)
    with store.reader() as connection:
        result = reports.build_report(connection, request)
    writers: dict[str, Callable[[reports.Report], str]] = {
        "json": render.as_json,
        "csv": render.as_csv,
        "html": lambda result: render.as_html(
            result, rightsizing_html(store, request), anomaly_marks(store, request)
        ),
    }
    emit(fmt, output, lambda: render.print_report(result), lambda: writers[fmt](result))


def anomaly_marks(store: Store, request: ReportRequest) -> dict[str, str]:
    """For a report binned by day: each day with anomalies in the chart's dimension (its first
    group-by, else the total) -> what they are, for the HTML chart to mark."""
    from circlecost import anomalies, render
    from circlecost.reports import group_label

    if request.bin != "day":
        return {}
    group = request.group_by[0] if request.group_by else None
    asked = anomalies.AnomalyRequest(request.period, group, request.filter, request.integration_ids)
    with store.reader() as connection:
        found = anomalies.find(connection, asked).sections[0].rows
    marks: dict[str, list[str]] = {}
    for row in found:
        marks.setdefault(row["day"], []).append(
            f"{group_label(row['group'])}: {render.usd(row['amount_usd'])} against a usual "
            f"{render.usd(row['baseline_usd'])} (top job {row['top_job']})"
        )
    return {day: "anomaly — " + "; ".join(texts) for day, texts in marks.items()}


def rightsizing_html(store: Store, request: ReportRequest) -> str:
    """The right-sizing suggestions for the report's period, scope and filter, as an HTML
    section of the report; nothing when there are none or the filter names a service (which
    insights refuse: the report itself is still right)."""
    from circlecost import insights, render_insights

    scope = insights.InsightRequest(
        request.period, filter=request.filter, integration_ids=request.integration_ids
    )
    try:
        with store.reader() as connection:
            found = insights.build_insight(connection, "rightsizing", scope)
    except CirclecostError:
        return ""
    section = found.sections[0]
    section.rows = [row for row in section.rows if row["suggested_class"]]
    if not section.rows:
        return ""
    notes = "".join(f'<p class="meta">{html.escape(note)}</p>' for note in found.notes)
    return f'<section id="rightsizing">\n{render_insights.section_html(section)}\n{notes}</section>'


@main.command()
@click.option("--format", "fmt", type=click.Choice(["focus"]), default="focus", show_default=True)
@click.option("--from", "start", callback=parse_day, required=True, help="First day, inclusive.")
@click.option("--to", "end", callback=parse_day, required=True, help="Last day, inclusive.")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="FILE.csv or FILE.parquet",
)
@pass_context
def export(context: Context, fmt: str, start: date, end: date, output: Path) -> None:
    """Export cost line items in FOCUS 1.2 (CSV or Parquet, by the file's extension).

    \b
    Example:
      circlecost export --format focus --from 2026-10-01 --to 2026-10-31 --output focus.parquet
    """
    from circlecost import focus, reports

    period = reports.resolve_period(start, end, None, context.settings.clock().date())
    with existing_store(context.settings).reader() as connection:
        count = focus.export(connection, period.start, period.end, output)
    click.echo(f"wrote {count} FOCUS rows to {output}")


# --- commands of other packages (the emulator) ------------------------------------------------

COMMANDS_GROUP = "circlecost.commands"
# Commands another distribution adds, and how to get each when it is missing.
KNOWN_PLUGINS = {
    "emulator": (
        "the CircleCI emulator is its own package: install it with "
        "`pip install ./emulator` from a circlecost checkout (make bootstrap does)"
    ),
}


def add_plugin_commands(group: click.Group) -> None:
    """Adds each command registered under the `circlecost.commands` entry point; a known
    command whose package is not installed still shows, and says how to install it."""
    for entry in entry_points(group=COMMANDS_GROUP):
        group.add_command(entry.load(), entry.name)
    for name, hint in KNOWN_PLUGINS.items():
        if name not in group.commands:
            group.add_command(missing_command(name, hint), name)


def missing_command(name: str, hint: str) -> click.Command:
    def explain() -> None:
        raise click.ClickException(f"`circlecost {name}` is not installed: {hint}")

    return click.Command(name, callback=explain, help=f"(not installed) {hint}.")


for command in (
    store_group,
    access,
    audit,
    vtags,
    insights_group,
    metrics,
    anomalies_command,
    budgets_command,
):
    main.add_command(command)
add_plugin_commands(main)
