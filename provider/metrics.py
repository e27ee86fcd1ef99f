"""`circlecost metrics`: the period's costs and the imports' health in the OpenMetrics text
format, for a monitoring agent to read from a file. circlecost sends nothing anywhere itself.

Prometheus reads the file with node-exporter's textfile collector (a `.prom` file in its
`--collector.textfile.directory`); the Datadog agent with its OpenMetrics check pointed at a
small web server or at the exporter that serves the file. Every metric is a gauge: a cost so
far in the period goes down when a reload corrects it, so it is not a counter.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time

from circlecost import reports
from circlecost.store import Store
from circlecost.vocabulary import Status


@dataclass
class Family:
    name: str
    help: str
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)


def escape(value: str) -> str:
    """A label value as OpenMetrics writes it: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def number(value: float) -> str:
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"metric value {value} is not a finite number")
    return str(int(value)) if value == int(value) else repr(value)


def exposition(families: Iterable[Family]) -> str:
    lines: list[str] = []
    for family in families:
        lines.append(f"# TYPE {family.name} gauge")
        lines.append(f"# HELP {family.name} {escape(family.help)}")
        for labels, value in family.samples:
            text = ",".join(f'{key}="{escape(val)}"' for key, val in labels.items())
            lines.append(f"{family.name}{{{text}}} {number(value)}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def collect(
    store: Store, period: reports.Period, period_name: str, today: date | None = None
) -> list[Family]:
    """Costs and credits of the period by organization and service, per integration its
    status, windows, rows whose TOTAL_CREDITS disagrees with its components, line items and
    the last day with costs, and (given `today`) each budget's figures this month."""
    cost = Family(
        "circlecost_cost_usd",
        f"Cost in USD of the period {period_name}, by organization and service",
    )
    credits = Family("circlecost_credits", f"Credits used in the period {period_name}")
    request = reports.ReportRequest(period, group_by=("billing_account", "service"))
    with store.reader() as connection:
        report = reports.build_report(connection, request)
    for row in report.rows:
        if row["credits"] == 0 and row["amount_usd"] == 0:
            continue  # a row only the previous period has
        labels = {
            "organization": row["billing_account"] or "",
            "service": row["service"] or "",
            "period": period_name,
        }
        cost.samples.append((labels, float(round(row["amount_usd"], 6))))
        credits.samples.append((labels, float(row["credits"])))
    budgets = budget_families(store, today) if today is not None else []
    return [cost, credits, *import_health(store), *budgets]


def budget_families(store: Store, today: date) -> list[Family]:
    from circlecost import chargeback  # it needs the service layer; metrics alone do not

    spent = Family("circlecost_budget_spent_usd", "A budget's spending this month so far")
    forecast = Family(
        "circlecost_budget_forecast_usd",
        "A budget's forecast to the end of the month (linear run-rate)",
    )
    amount = Family("circlecost_budget_amount_usd", "A budget's amount per month")
    level = Family("circlecost_budget_status", "0 ok, 1 warning (a threshold reached), 2 over")
    levels = {"ok": 0.0, "warning": 1.0, "over": 2.0}
    for budget in store.list_budgets():
        status = chargeback.evaluate(store, budget, today)
        labels = {"budget": budget.name}
        spent.samples.append((labels, float(round(status.spent, 6))))
        forecast.samples.append((labels, float(round(status.forecast, 6))))
        amount.samples.append((labels, float(budget.amount_usd)))
        level.samples.append((labels, levels[status.status]))
    return [spent, forecast, amount, level]


def import_health(store: Store) -> list[Family]:
    stable = Family("circlecost_integration_stable", "1 when the integration's import is Stable")
    windows = Family("circlecost_import_windows", "Import windows by state (loaded, open, failed)")
    mismatch = Family(
        "circlecost_total_mismatch_rows",
        "Imported rows whose TOTAL_CREDITS differs from the sum of their component credits",
    )
    through = Family(
        "circlecost_imported_through_timestamp_seconds",
        "End of the last day the integration has costs for, as a Unix time",
    )
    items = Family("circlecost_line_items", "Cost line items stored for the integration")
    for record in store.list_integrations():
        labels = {"integration": record.id, "organization": record.organization_name or ""}
        stable.samples.append((labels, 1.0 if record.status == Status.STABLE else 0.0))
        for state, count in sorted(store.window_counts(record.id).items()):
            windows.samples.append(({**labels, "state": state}, float(count)))
        rows = sum(w.total_mismatch_rows or 0 for w in store.list_windows(record.id))
        mismatch.samples.append((labels, float(rows)))
        summary = store.integration_summary(record.id)
        items.samples.append((labels, float(summary["line_items"])))
        if summary["imported_through"] is not None:
            end = datetime.combine(summary["imported_through"], time.max, tzinfo=UTC)
            through.samples.append((labels, float(math.floor(end.timestamp()) + 1)))
    return [stable, windows, mismatch, through, items]
