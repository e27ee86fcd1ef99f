"""`circlecost insights rightsizing|waste|durations` (where the money goes and how to save it;
each takes the report options) and `circlecost metrics` (OpenMetrics text for monitoring)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
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
    """Builds insight `name` from the command's options and prints or writes it."""
    from circlecost import insights, render_insights, reports

    settings = context.settings
    fields: dict[str, Any] = {
        "filter": options.get("filter_text"),
        "bin": options.get("bin_name"),
        "default_branches": options.get("default_branches") or insights.DEFAULT_BRANCHES,
    }
    period = reports.resolve_period(
        options["start"], options["end"], options["period"], settings.clock().date()
    )
    request = insights.InsightRequest(period, **fields)
    store = existing_store(settings)
    if options["workspace"]:
        scope = tuple(service.workspace_integration_ids(settings, options["workspace"]))
        request = replace(request, integration_ids=scope)
    with store.reader() as connection:
        result = insights.build_insight(connection, name, request)
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
    text = metric_families.exposition(metric_families.collect(store, chosen, period))
    if output is None:
        click.echo(text, nl=False)
        return
    partial = output.with_name(f".{output.name}.partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(output)
    click.echo(f"wrote {output}")
