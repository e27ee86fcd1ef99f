"""`circlecost insights rightsizing|waste|durations` (where the money goes and how to save it),
`circlecost anomalies` (each takes the report options), `circlecost budgets` and
`circlecost metrics` (OpenMetrics text for monitoring)."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import click

from circlecost import service
from circlecost.cli_context import Context, emit, existing_store, parse_day, pass_context
from circlecost.vocabulary import PERIODS


@click.group("insights")
def insights_group() -> None:
    """Savings: over-provisioned jobs, failed jobs and branches, job durations."""


def insight_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options every insight shares with `circlecost report`."""
    options: list[Callable[[Callable[..., Any]], Callable[..., Any]]] = [
        click.option("--from", "start", callback=parse_day, help="First day (YYYY-MM-DD)."),
        click.option("--to", "end", callback=parse_day, help="Last day (YYYY-MM-DD), inclusive."),
        click.option("--period", type=click.Choice(PERIODS)),
        click.option("--workspace", help="Only integrations bound to this workspace."),
        click.option("--filter", "filter_text", help="VQL filter, e.g. \"costs.account = 'api'\"."),
        click.option(
            "--format",
            "fmt",
            type=click.Choice(["table", "csv", "json", "html"]),
            default="table",
        ),
        click.option(
            "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file."
        ),
        pass_context,
    ]
    for option in reversed(options):
        command = option(command)
    return command


def show_insight(context: Context, name: str, options: dict[str, Any]) -> None:
    """Builds insight `name` (or the anomalies) from the command's options; prints or writes it."""
    from circlecost import anomalies, insights, render_insights, reports

    settings = context.settings
    period = reports.resolve_period(
        options["start"], options["end"], options["period"], settings.clock().date()
    )
    scope = None
    if options["workspace"]:
        scope = tuple(service.workspace_integration_ids(settings, options["workspace"]))
    build: Callable[[Any], Any]
    if name == "anomalies":
        asked = anomalies.AnomalyRequest(
            period, options.get("group_by"), options.get("filter_text"), scope
        )
        build = partial(anomalies.find, request=asked)
    else:
        request = insights.InsightRequest(
            period,
            filter=options.get("filter_text"),
            integration_ids=scope,
            bin=options.get("bin_name"),
            default_branches=options.get("default_branches") or insights.DEFAULT_BRANCHES,
        )
        build = partial(insights.build_insight, name=name, request=request)
    with existing_store(settings).reader() as connection:
        result = build(connection)
    writers = {
        "json": render_insights.as_json,
        "csv": render_insights.as_csv,
        "html": render_insights.as_html,
    }
    emit(
        options["fmt"],
        options["output"],
        lambda: render_insights.print_insight(result),
        lambda: writers[options["fmt"]](result),
    )


@insights_group.command("rightsizing")
@insight_options
def rightsizing(context: Context, **options: Any) -> None:
    """Jobs whose resource class is bigger than they use, and what a smaller one would save.

    Per project, job and resource class: runs, median and peak CPU and RAM, Compute credits,
    the next smaller class of the same kind that fits the peaks with a 20% margin, and the
    monthly saving at the integration's price.

    \b
    Example:
      circlecost insights rightsizing --period last_30_days
    """
    show_insight(context, "rightsizing", options)


@insights_group.command("waste")
@insight_options
@click.option(
    "--default-branch",
    "default_branches",
    multiple=True,
    help="The default branch (repeat for several; default: main and master).",
)
def waste(context: Context, **options: Any) -> None:
    """What failed and cancelled jobs, reruns and non-default branches cost.

    \b
    Example:
      circlecost insights waste --period last_month --default-branch trunk
    """
    show_insight(context, "waste", options)


@insights_group.command("durations")
@insight_options
@click.option("--bin", "bin_name", type=click.Choice(["day", "week", "month"]), help="A trend.")
def durations(context: Context, **options: Any) -> None:
    """Per job: runs, average, P50, P95, max and total seconds, credits and cost.

    \b
    Example:
      circlecost insights durations --period last_3_months --bin week
    """
    show_insight(context, "durations", options)


@click.command("anomalies")
@insight_options
@click.option(
    "--group-by",
    "group_by",
    help="One dimension (account, service, resource, tag:circleci:vcs_branch, …); "
    "default: the total cost.",
)
def anomalies_command(context: Context, **options: Any) -> None:
    """Days whose cost rose far above the same group's previous 14 days, with the project, job
    and branch that cost the most that day.

    Score: a modified z-score (median and MAD) of log(1 + USD) above 3.5, and at least $1 above
    the baseline's median (README: Chargeback → Anomalies).

    \b
    Example:
      circlecost anomalies --period last_30_days --group-by account
    """
    show_insight(context, "anomalies", options)


@click.command("metrics")
@click.option(
    "--period",
    type=click.Choice(PERIODS),
    default="this_month",
    show_default=True,
    help="The period whose costs the metrics carry.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file (replaced at once, so a collector never reads half of it).",
)
@pass_context
def metrics(context: Context, period: str, output: Path | None) -> None:
    """The period's costs and credits and the imports' health, in the OpenMetrics text format.

    Nothing is sent anywhere: point Prometheus' node-exporter textfile collector or the Datadog
    agent's OpenMetrics check at the file (README: Savings → Metrics).

    \b
    Example (cron, every 15 minutes):
      circlecost metrics --output /var/lib/node_exporter/textfile/circlecost.prom
    """
    from circlecost import metrics as metric_families
    from circlecost import reports

    settings = context.settings
    store = existing_store(settings)
    chosen = reports.named_period(period, settings.clock().date())
    today = context.settings.clock().date()
    text = metric_families.exposition(metric_families.collect(store, chosen, period, today))
    if output is None:
        click.echo(text, nl=False)
        return
    partial = output.with_name(f".{output.name}.partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(output)
    click.echo(f"wrote {output}")


@click.command("budgets")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@pass_context
def budgets_command(context: Context, fmt: str) -> None:
    """Each budget this month: spent, forecast (linear run-rate: spent ÷ days elapsed × days in
    the month) and status (ok, warning at its lowest threshold, over at its amount).

    \b
    Example:
      circlecost budgets --format json
    """
    from circlecost import chargeback

    statuses = chargeback.all_statuses(context.settings, existing_store(context.settings))
    rows = [budget_row(status) for status in statuses]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no budgets yet")
    for row in rows:
        click.echo(budget_line(row))


def budget_line(row: dict[str, Any]) -> str:
    from circlecost.render import usd

    return (
        f"{row['name']}: {row['status']} — {usd(row['spent_usd'])} spent of "
        f"{usd(row['amount_usd'])} ({row['period_start']} .. {row['as_of']}), forecast "
        f"{usd(row['forecast_usd'])} by {row['period_end']}"
    )


def print_budgets(settings: Any, store: Any) -> None:
    """One line per budget, as `circlecost budgets` prints them (`sync` ends with them)."""
    from circlecost import chargeback

    for status in chargeback.all_statuses(settings, store):
        click.echo("budget " + budget_line(budget_row(status)))


def budget_row(status: Any) -> dict[str, Any]:
    from circlecost import chargeback

    budget = status.budget
    return {
        "name": budget.name,
        "id": budget.id,
        "workspace_id": budget.workspace_id,
        "filter": budget.filter,
        "amount_usd": float(budget.amount_usd),
        "thresholds": [float(t) for t in budget.thresholds],
        **chargeback.budget_outputs(status),
    }
