"""Cost anomalies: days whose cost rises far above the group's own recent days.

Method (a robust z-score, Iglewicz and Hoaglin's modified z, on a log scale): for every day of
the period and every group (a report dimension, or the whole cost), the baseline is the group's
daily costs on the BASELINE_DAYS days before it (a day without cost counts as 0). CI costs are
multiplicative (more jobs times pricier classes) and heavy-tailed, so scores are computed on
log(1 + USD): with m the median of the baseline's logs and MAD the median of their absolute
deviations from m, the day's score is 0.6745 × (log(1 + cost) − m) / MAD. A day is an anomaly
when its score is above SCORE_THRESHOLD and its cost exceeds the baseline's median cost by at
least MIN_CHANGE_USD (so that cents on a quiet project are no alarm). After a flat baseline
(MAD 0) any such rise is an anomaly, without a score. Only rises count: CI costs drop every
weekend, and a drop is no bill to explain.

For each anomaly the project, job and branch that cost the most in that group on that day are
named: where to look first.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import duckdb

from circlecost import reports
from circlecost.insights import Column, Insight, InsightRequest, Section

BASELINE_DAYS = 14
SCORE_THRESHOLD = 3.5
MIN_CHANGE_USD = Decimal(1)
MAD_SCALE = 0.6745  # makes the MAD comparable with a standard deviation for normal data

COLUMNS = (
    Column("group", "Group", "text"),
    Column("day", "Day", "text"),
    Column("amount_usd", "Cost", "usd"),
    Column("baseline_usd", "Baseline", "usd"),
    Column("change_usd", "Change", "usd"),
    Column("score", "Score", "number"),
    Column("top_project", "Top project", "text"),
    Column("top_job", "Top job", "text"),
    Column("top_branch", "Top branch", "text"),
)
CONTRIBUTORS = {
    "top_project": "account",
    "top_job": "resource",
    "top_branch": "tag:circleci:vcs_branch",
}


@dataclass(frozen=True)
class AnomalyRequest:
    period: reports.Period
    group_by: str | None = None
    filter: str | None = None
    integration_ids: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.group_by is not None:
            reports.check_dimension(self.group_by)


def daily_costs(
    connection: duckdb.DuckDBPyConnection, request: AnomalyRequest
) -> dict[Any, dict[date, Decimal]]:
    """Cost per group and day from BASELINE_DAYS before the period to its end."""
    first = request.period.start - timedelta(days=BASELINE_DAYS)
    span = reports.Period(first, request.period.end)
    report = reports.build_report(
        connection,
        reports.ReportRequest(
            span,
            group_by=(request.group_by,) if request.group_by else (),
            bin="day",
            filter=request.filter,
            integration_ids=request.integration_ids,
        ),
    )
    costs: dict[Any, dict[date, Decimal]] = defaultdict(dict)
    for row in report.rows:
        group = row[request.group_by] if request.group_by else "total"
        if row["amount_usd"]:
            costs[group][date.fromisoformat(row["bin"])] = row["amount_usd"]
    return costs


def score(cost: Decimal, baseline: list[Decimal]) -> tuple[Decimal, float]:
    """(the baseline's median cost, the modified z-score of `cost` against it on a log scale)."""
    logs = [math.log1p(float(value)) for value in baseline]
    middle = statistics.median(logs)
    spread = statistics.median(abs(value - middle) for value in logs)
    change = math.log1p(float(cost)) - middle
    median_cost = statistics.median(baseline)
    if spread == 0:
        return median_cost, 0.0 if change == 0 else math.copysign(math.inf, change)
    return median_cost, MAD_SCALE * change / spread


def find(connection: duckdb.DuckDBPyConnection, request: AnomalyRequest) -> Insight:
    costs = daily_costs(connection, request)
    rows: list[dict[str, Any]] = []
    for group, by_day in costs.items():
        for offset in range(request.period.days):
            day = request.period.start + timedelta(days=offset)
            baseline = [
                by_day.get(day - timedelta(days=back), Decimal(0))
                for back in range(1, BASELINE_DAYS + 1)
            ]
            cost = by_day.get(day, Decimal(0))
            middle, z = score(cost, baseline)
            if z > SCORE_THRESHOLD and cost - middle >= MIN_CHANGE_USD:
                rows.append(
                    {
                        "group": group,
                        "day": day.isoformat(),
                        "amount_usd": cost,
                        "baseline_usd": middle,
                        "change_usd": cost - middle,
                        "score": round(z, 2) if z != float("inf") else None,
                    }
                )
    for row in rows:
        row.update(top_contributors(connection, request, row["group"], row["day"]))
    rows.sort(key=lambda row: (row["day"], -row["change_usd"], str(row["group"])))
    scope = InsightRequest(request.period, filter=request.filter)
    title = f"Anomalies by {request.group_by or 'total cost'}"
    note = (
        f"A day is an anomaly when its modified z-score (median and MAD of log(1 + USD)) against "
        f"the {BASELINE_DAYS} days before it is above {SCORE_THRESHOLD} and its cost exceeds their "
        f"median by at least ${MIN_CHANGE_USD}; after a flat baseline (MAD 0) it shows no score."
    )
    return Insight("anomalies", scope, [Section("anomalies", title, COLUMNS, rows)], [note])


def top_contributors(
    connection: duckdb.DuckDBPyConnection, request: AnomalyRequest, group: Any, day: str
) -> dict[str, Any]:
    """The project, job and branch that cost the most in `group` on `day`."""
    one_day = reports.Period(date.fromisoformat(day), date.fromisoformat(day))
    found: dict[str, Any] = {}
    for key, dimension in CONTRIBUTORS.items():
        if request.group_by == dimension:
            found[key] = group
            continue
        names = (request.group_by, dimension) if request.group_by else (dimension,)
        report = reports.build_report(
            connection,
            reports.ReportRequest(
                one_day,
                group_by=names,
                filter=request.filter,
                integration_ids=request.integration_ids,
            ),
        )
        mine = [r for r in report.rows if not request.group_by or r[request.group_by] == group]
        best = max(mine, key=lambda r: r["amount_usd"], default=None)
        found[key] = best[dimension] if best and best["amount_usd"] > 0 else None
    return found
