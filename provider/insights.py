"""Savings insights over job runs: right-sizing, waste (failed and cancelled jobs, reruns,
branches) and durations.

An insight reads the usage rows that are job runs (a row with a JOB_ID; seat rows without a job
are not runs) of the period, in the integrations in scope, that pass the report filter, and
prices each run's credits at the price in effect on its day (the costs view's rule). A run's
credits are the sum of its component credit columns, as in the costs view; right-sizing looks
at Compute credits only, the part the resource class decides.

The report filter works as in `circlecost report`, except `costs.service`: a run's credits span
several services, so insights refuse it rather than guess which part of a run it means.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

import duckdb

from circlecost.errors import CirclecostError
from circlecost.reports import (
    DAY_PRICES_SQL,
    MAX_BINS,
    Period,
    bin_count,
    integration_scope,
    too_many_bins,
)
from circlecost.resource_classes import Suggestion, suggest
from circlecost.usage_columns import COST_COLUMNS_SQL, CREDIT_SERVICES, USAGE_DATE_SQL
from circlecost.virtual_tags import virtual_columns
from circlecost.vql import VirtualColumns, compile_filter

INSIGHTS = ("rightsizing", "waste", "durations")
DURATION_BINS = ("day", "week", "month")
DEFAULT_BRANCHES: tuple[str, ...] = ("main", "master")
# JOB_BUILD_STATUS values of a run whose credits bought nothing that shipped (CircleCI's job
# statuses; `success` and a still-running job are not waste).
WASTED_STATUSES: tuple[str, ...] = (
    "failed",
    "canceled",
    "cancelled",
    "infrastructure_fail",
    "timedout",
)
# A monthly saving is the period's saving scaled to this many days.
DAYS_PER_MONTH = 30
MILLIONTH = Decimal("0.000001")

Kind = Literal["text", "count", "credits", "usd", "seconds", "pct", "number"]


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: Kind


@dataclass
class Section:
    """One table of an insight: its columns and rows (dicts keyed by column key)."""

    name: str
    title: str
    columns: tuple[Column, ...]
    rows: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class InsightRequest:
    period: Period
    filter: str | None = None
    integration_ids: tuple[str, ...] | None = None  # None: every integration
    bin: str | None = None  # durations only
    default_branches: tuple[str, ...] = DEFAULT_BRANCHES

    def __post_init__(self) -> None:
        if self.bin is not None and self.bin not in DURATION_BINS:
            raise CirclecostError(
                f"--bin: insights take {', '.join(DURATION_BINS)}, not '{self.bin}'",
                hint="use --bin week for a weekly trend",
            )
        if self.bin is not None and bin_count(self.period, self.bin) > MAX_BINS:
            raise too_many_bins(self.period, self.bin)
        if not self.default_branches or not all(b.strip() for b in self.default_branches):
            raise CirclecostError(
                "--default-branch: give a branch name", hint="e.g. --default-branch main"
            )


@dataclass
class Insight:
    name: str
    request: InsightRequest
    sections: list[Section]
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "insight": self.name,
            "period": self.request.period.as_dict(),
            "filter": self.request.filter,
            "sections": {
                section.name: [json_row(section, row) for row in section.rows]
                for section in self.sections
            },
            "notes": self.notes,
        }


def exact6(value: Decimal) -> Decimal:
    """A derived figure to six decimals (a millionth of a credit or dollar), half up."""
    return value.quantize(MILLIONTH, rounding=ROUND_HALF_UP) + 0  # + 0 turns -0 into 0


def json_row(section: Section, row: dict[str, Any]) -> dict[str, Any]:
    """Exact figures as JSON numbers: whole ones as ints, others as the nearest float."""
    out: dict[str, Any] = {}
    for column in section.columns:
        value = row.get(column.key)
        if isinstance(value, Decimal):
            value = int(value) if value == value.to_integral_value() else float(value)
        out[column.key] = value
    return out


# --- the runs every insight reads ---------------------------------------------------------------

# A run's credits: its component columns (TOTAL_CREDITS may disagree with them; the costs view
# prices the components too).
RUN_CREDITS_SQL = " + ".join(f"coalesce({name}, 0)" for name, _ in CREDIT_SERVICES)
# A run's credits are priced in this type: DuckDB types DECIMAL(18, 6) credits times a
# DECIMAL(18, 10) price as DECIMAL(18, 16), which overflows at $100 (one long GPU job).
WIDE_CREDITS = "DECIMAL(38, 6)"
_FILTER_COLUMNS = ", ".join(
    f"{sql} AS {column}"
    for column, sql in COST_COLUMNS_SQL.items()
    if column not in ("service", "date", "charge_type")
)
# The runs of the period in scope that pass the filter, each with the price of its day.
# Parameters: first and last day, the integration ids, the filter's values, then the first and
# last day and the integration ids again (for the days to price).
# The two run CTEs are NOT MATERIALIZED: DuckDB 1.5 materializes a CTE read twice, and
# computing every cost column of 10M runs to keep them cost more than the insight itself.
# The days to price come from the daily rollup (the same days and the same date rule, in far
# fewer rows): 10M line items, rightsizing 596 -> 378 ms, durations 482 -> 294 ms.
_RUNS_SQL = f"""
WITH all_runs AS NOT MATERIALIZED (
    SELECT integration_id, {USAGE_DATE_SQL} AS date, {_FILTER_COLUMNS}, 'Usage' AS charge_type,
        JOB_NAME, RESOURCE_CLASS, EXECUTOR, JOB_BUILD_STATUS, VCS_BRANCH, PIPELINE_ID,
        WORKFLOW_NAME, JOB_ID, JOB_RUN_STARTED_AT, JOB_RUN_SECONDS,
        MEDIAN_CPU_UTILIZATION_PCT, MAX_CPU_UTILIZATION_PCT,
        MEDIAN_RAM_UTILIZATION_PCT, MAX_RAM_UTILIZATION_PCT,
        CAST(coalesce(COMPUTE_CREDITS, 0) AS {WIDE_CREDITS}) AS compute_credits,
        CAST({RUN_CREDITS_SQL} AS {WIDE_CREDITS}) AS credits
    FROM usage
    WHERE JOB_ID IS NOT NULL AND {USAGE_DATE_SQL} BETWEEN ? AND ?{{scope}}
),
runs_in_filter AS NOT MATERIALIZED (SELECT * FROM all_runs WHERE {{filter}}),
run_days AS (
    SELECT DISTINCT integration_id, usage_date AS date FROM usage_daily
    WHERE usage_date BETWEEN ? AND ?{{scope}}
),
day_prices AS ({DAY_PRICES_SQL.format(relation="run_days")}),
runs AS (
    SELECT runs_in_filter.*, day_prices.usd_per_credit AS price
    FROM runs_in_filter JOIN day_prices USING (integration_id, date)
)
"""


def runs_cte(
    request: InsightRequest, virtual: VirtualColumns | None = None
) -> tuple[str, list[Any]]:
    """The WITH clause naming `runs`, and its parameters; `virtual` holds the virtual tags
    that the filter may name."""
    compiled = compile_filter(request.filter, virtual) if request.filter else None
    if compiled is not None and re.search(r"\bservice\b", compiled.sql):
        raise CirclecostError(
            "--filter: insights look at job runs, whose credits span services, so they cannot "
            "filter by costs.service",
            hint="filter by costs.account, costs.resource, costs.subcategory, costs.category, "
            "costs.billing_account or tags",
        )
    scope, scope_params = integration_scope(request.integration_ids)
    sql = _RUNS_SQL.format(scope=scope, filter=compiled.sql if compiled else "TRUE")
    days: list[Any] = [request.period.start, request.period.end, *scope_params]
    return sql, days + list(compiled.params if compiled else ()) + days


def run_query(
    connection: duckdb.DuckDBPyConnection,
    request: InsightRequest,
    select: str,
    extra: Sequence[Any] = (),
) -> list[dict[str, Any]]:
    """Rows of `select` (a query over `runs`) as dicts; no rows when the scope is empty."""
    if request.integration_ids is not None and not request.integration_ids:
        return []  # a workspace without bindings sees nothing
    with_clause, params = runs_cte(request, virtual_columns(connection))
    cursor = connection.execute(with_clause + select, [*params, *extra])
    names = [description[0] for description in cursor.description or ()]
    return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]


def build_insight(
    connection: duckdb.DuckDBPyConnection, name: str, request: InsightRequest
) -> Insight:
    builders = {"rightsizing": rightsizing, "waste": waste, "durations": durations}
    if name not in builders:
        raise CirclecostError(
            f"unknown insight '{name}'", hint=f"use one of: {', '.join(INSIGHTS)}"
        )
    return builders[name](connection, request)


# --- durations ----------------------------------------------------------------------------------

# P50 and P95 come from one list-valued quantile_cont, which gathers each job's durations once
# instead of twice (10M line items: 488 -> 402 ms; by week 663 -> 560 ms).
_DURATIONS_SQL = """
SELECT account AS project, JOB_NAME AS job{bin},
    count(*) AS runs, count(JOB_RUN_SECONDS) AS timed_runs,
    avg(JOB_RUN_SECONDS) AS avg_seconds,
    quantile_cont(JOB_RUN_SECONDS, [0.5, 0.95]) AS quantiles,
    max(JOB_RUN_SECONDS) AS max_seconds, sum(JOB_RUN_SECONDS) AS total_seconds,
    sum(credits) AS credits, sum(credits * price) AS amount_usd
FROM runs
GROUP BY ALL
"""
BIN_SQL = {
    "day": "date",
    "week": "greatest(date_trunc('week', date)::DATE, ?::DATE)",
    "month": "greatest(date_trunc('month', date)::DATE, ?::DATE)",
}


def durations(connection: duckdb.DuckDBPyConnection, request: InsightRequest) -> Insight:
    """Per job (project and job name): runs, average/P50/P95/max/total seconds, credits, cost;
    with a bin, per job and bin, with the change of the average from the job's previous bin."""
    binned = request.bin is not None
    bin_sql = f", {BIN_SQL[request.bin]} AS bin" if request.bin else ""
    # The bin's `?` (the period's first day, where a week or month is clipped) follows the
    # WITH clause's parameters in the text.
    extra = [request.period.start] if "?" in bin_sql else []
    rows = run_query(connection, request, _DURATIONS_SQL.format(bin=bin_sql), extra)
    columns = [Column("project", "Project", "text"), Column("job", "Job", "text")]
    if binned:
        columns.append(Column("bin", "Bin", "text"))
    columns += [
        Column("runs", "Runs", "count"),
        Column("avg_seconds", "Avg s", "seconds"),
        Column("p50_seconds", "P50 s", "seconds"),
        Column("p95_seconds", "P95 s", "seconds"),
        Column("max_seconds", "Max s", "seconds"),
        Column("total_seconds", "Total s", "seconds"),
        Column("credits", "Credits", "credits"),
        Column("amount_usd", "Cost", "usd"),
    ]
    for row in rows:
        row["credits"] = Decimal(row["credits"] or 0)
        row["amount_usd"] = Decimal(row["amount_usd"] or 0)
        row["p50_seconds"], row["p95_seconds"] = row.pop("quantiles") or (None, None)
        for key in ("avg_seconds", "p50_seconds", "p95_seconds"):
            row[key] = None if row[key] is None else round(row[key], 3)
        if binned:
            row["bin"] = row["bin"].isoformat()
    if binned:
        columns.append(Column("avg_change_pct", "Avg Δ", "pct"))
        rows.sort(key=lambda row: (row["project"] or "", row["job"] or "", row["bin"]))
        add_trend(rows)
        totals = job_totals(rows)
        rows.sort(key=lambda row: (-totals[job_key(row)], job_key(row), row["bin"]))
    else:
        rows.sort(key=lambda row: (-row["credits"], job_key(row)))
    return Insight(
        "durations", request, [Section("durations", "Job durations", tuple(columns), rows)]
    )


def job_key(row: dict[str, Any]) -> tuple[str, str]:
    return (row["project"] or "", row["job"] or "")


def job_totals(rows: list[dict[str, Any]]) -> dict[tuple[str, str], Decimal]:
    totals: dict[tuple[str, str], Decimal] = {}
    for row in rows:
        totals[job_key(row)] = totals.get(job_key(row), Decimal(0)) + row["credits"]
    return totals


def add_trend(rows: list[dict[str, Any]]) -> None:
    """Each binned row's change of the average duration from the same job's previous bin with
    runs (rows sorted by job, then bin); None for a job's first bin."""
    previous: dict[tuple[str, str], float | None] = {}
    for row in rows:
        before = previous.get(job_key(row))
        now = row["avg_seconds"]
        row["avg_change_pct"] = (
            round((now - before) / before * 100, 1) if before and now is not None else None
        )
        previous[job_key(row)] = now


# --- right-sizing -------------------------------------------------------------------------------

_RIGHTSIZING_SQL = """
SELECT account AS project, JOB_NAME AS job, EXECUTOR AS executor,
    RESOURCE_CLASS AS resource_class, count(*) AS runs,
    count(MEDIAN_CPU_UTILIZATION_PCT) AS measured_runs,
    round(quantile_cont(MEDIAN_CPU_UTILIZATION_PCT, 0.5), 3) AS median_cpu_pct,
    max(MAX_CPU_UTILIZATION_PCT) AS max_cpu_pct,
    round(quantile_cont(MEDIAN_RAM_UTILIZATION_PCT, 0.5), 3) AS median_ram_pct,
    max(MAX_RAM_UTILIZATION_PCT) AS max_ram_pct,
    sum(compute_credits) AS compute_credits, sum(compute_credits * price) AS compute_usd
FROM runs
GROUP BY ALL
"""
RIGHTSIZING_COLUMNS = (
    Column("project", "Project", "text"),
    Column("job", "Job", "text"),
    Column("executor", "Executor", "text"),
    Column("resource_class", "Class", "text"),
    Column("runs", "Runs", "count"),
    Column("median_cpu_pct", "CPU med", "pct"),
    Column("max_cpu_pct", "CPU max", "pct"),
    Column("median_ram_pct", "RAM med", "pct"),
    Column("max_ram_pct", "RAM max", "pct"),
    Column("compute_credits", "Compute credits", "credits"),
    Column("suggested_class", "Suggested", "text"),
    Column("monthly_saving_credits", "Saving credits/mo", "credits"),
    Column("monthly_saving_usd", "Saving/mo", "usd"),
    Column("reason", "Why", "text"),
)


def rightsizing(connection: duckdb.DuckDBPyConnection, request: InsightRequest) -> Insight:
    """Per project, job and resource class: utilisation of the runs, Compute credits, and the
    next smaller class that fits (resource_classes.suggest) with its monthly saving."""
    rows = run_query(connection, request, _RIGHTSIZING_SQL)
    scale = Decimal(DAYS_PER_MONTH) / Decimal(request.period.days)
    for row in rows:
        # Medians come rounded to 3 decimals (of percentages given to one): exact, not float noise.
        measured = [
            row[key] for key in ("median_cpu_pct", "max_cpu_pct", "median_ram_pct", "max_ram_pct")
        ]
        advice: Suggestion = suggest(
            row["executor"],
            row["resource_class"],
            *(None if value is None else Decimal(str(value)) for value in measured),
        )
        row["compute_credits"] = Decimal(row["compute_credits"] or 0)
        compute_usd = Decimal(row.pop("compute_usd") or 0)
        row["suggested_class"] = advice.smaller.name if advice.smaller else None
        saving = advice.saving_share * scale
        row["monthly_saving_credits"] = (
            exact6(row["compute_credits"] * saving) if advice.smaller else None
        )
        row["monthly_saving_usd"] = exact6(compute_usd * saving) if advice.smaller else None
        row["reason"] = advice.reason
    rows.sort(
        key=lambda row: (-(row["monthly_saving_usd"] or 0), -row["compute_credits"], job_key(row))
    )
    notes = [
        f"Over-provisioned: median CPU and RAM under 40%; a smaller class is suggested when the "
        f"job's peak CPU and RAM would stay at or under 80% of it. Savings: Compute credits × "
        f"(1 − smaller rate / current rate), scaled from {request.period.days} days to "
        f"{DAYS_PER_MONTH}. Rates: circlecost.resource_classes (CircleCI's published table)."
    ]
    return Insight(
        "rightsizing",
        request,
        [Section("rightsizing", "Right-sizing", RIGHTSIZING_COLUMNS, rows)],
        notes,
    )


# --- waste --------------------------------------------------------------------------------------

# One pass gives both the failed runs and the branch split: runs summed per project, status
# and whether the branch is a default one (NULL branch: not). Each (integration, day) is priced
# once after summing, as reports do: exact decimals, so the same as pricing each run.
_STATUS_BRANCH_SQL = """
SELECT project, status, on_default, sum(runs) AS runs, sum(credits) AS credits,
    sum(credits * day_prices.usd_per_credit) AS amount_usd
FROM (
    SELECT integration_id, date, account AS project, JOB_BUILD_STATUS AS status,
        coalesce(VCS_BRANCH IN ({branches}), false) AS on_default,
        count(*) AS runs, sum(credits) AS credits
    FROM runs_in_filter
    GROUP BY ALL
) AS sums JOIN day_prices USING (integration_id, date)
GROUP BY ALL
"""
# A rerun: a later run of the same job name in the same pipeline and workflow name (CircleCI's
# "rerun workflow" and "rerun from failed" make a new workflow of the same name in the
# pipeline); the first run is the one that started first (then the smallest job id). Runs
# without a pipeline id are never counted as reruns. Most jobs run once, so a pass over a hash
# of the four keys keeps only the runs whose keys may repeat, and only those are priced and
# grouped exactly (a hash collision only lets a run through to the exact check).
# The text continues the WITH clause of `runs_cte`.
_RERUN_KEY = "hash(integration_id, PIPELINE_ID, WORKFLOW_NAME, JOB_NAME)"
_RERUN_SQL = f"""
, repeated AS (
    SELECT {_RERUN_KEY} AS key FROM runs_in_filter
    WHERE PIPELINE_ID IS NOT NULL
    GROUP BY key HAVING count(*) > 1
),
maybe_rerun AS (
    SELECT runs_in_filter.*, day_prices.usd_per_credit AS price
    FROM runs_in_filter JOIN day_prices USING (integration_id, date)
    WHERE PIPELINE_ID IS NOT NULL AND {_RERUN_KEY} IN (SELECT key FROM repeated)
)
SELECT project, sum(runs - 1) AS reruns, sum(credits - first_credits) AS credits,
    sum(amount_usd - first_usd) AS amount_usd
FROM (
    SELECT account AS project, count(*) AS runs, sum(credits) AS credits,
        sum(credits * price) AS amount_usd,
        arg_min(credits, (JOB_RUN_STARTED_AT IS NULL, JOB_RUN_STARTED_AT, JOB_ID)) AS first_credits,
        arg_min(credits * price, (JOB_RUN_STARTED_AT IS NULL, JOB_RUN_STARTED_AT, JOB_ID))
            AS first_usd
    FROM maybe_rerun
    GROUP BY integration_id, PIPELINE_ID, WORKFLOW_NAME, JOB_NAME, account
    HAVING count(*) > 1
)
GROUP BY project
"""
STATUS_COLUMNS = (
    Column("project", "Project", "text"),
    Column("status", "Status", "text"),
    Column("runs", "Runs", "count"),
    Column("credits", "Credits", "credits"),
    Column("amount_usd", "Cost", "usd"),
)
RERUN_COLUMNS = (
    Column("project", "Project", "text"),
    Column("reruns", "Reruns", "count"),
    Column("credits", "Credits", "credits"),
    Column("amount_usd", "Cost", "usd"),
)
BRANCH_FIGURES = ("default_credits", "default_usd", "other_credits", "other_usd")
BRANCH_COLUMNS = (
    Column("project", "Project", "text"),
    Column("default_credits", "Default-branch credits", "credits"),
    Column("default_usd", "Default-branch cost", "usd"),
    Column("other_credits", "Other-branch credits", "credits"),
    Column("other_usd", "Other-branch cost", "usd"),
    Column("other_share_pct", "Other share", "pct"),
)


def waste(connection: duckdb.DuckDBPyConnection, request: InsightRequest) -> Insight:
    """Failed and cancelled runs by project and status, reruns by project, and the cost of the
    default branch against every other branch (and runs without a branch) per project."""
    marks = ", ".join("?" for _ in request.default_branches)
    sums = run_query(
        connection, request, _STATUS_BRANCH_SQL.format(branches=marks), request.default_branches
    )
    reruns = run_query(connection, request, _RERUN_SQL)
    failed_by: dict[tuple[str, str], dict[str, Any]] = {}
    branches_by: dict[str, dict[str, Any]] = {}
    zero = Decimal(0)
    for row in sums:
        credits, usd = Decimal(row["credits"] or 0), Decimal(row["amount_usd"] or 0)
        if row["status"] in WASTED_STATUSES:
            key = (row["project"], row["status"])
            entry = failed_by.setdefault(
                key,
                {
                    "project": key[0],
                    "status": key[1],
                    "runs": 0,
                    "credits": zero,
                    "amount_usd": zero,
                },
            )
            entry["runs"] += row["runs"]
            entry["credits"] += credits
            entry["amount_usd"] += usd
        split = branches_by.setdefault(
            row["project"],
            {"project": row["project"], **dict.fromkeys(BRANCH_FIGURES, zero)},
        )
        side = "default" if row["on_default"] else "other"
        split[f"{side}_credits"] += credits
        split[f"{side}_usd"] += usd
    failed, branches = list(failed_by.values()), list(branches_by.values())
    for row in reruns:
        row["credits"] = Decimal(row["credits"] or 0)
        row["amount_usd"] = Decimal(row["amount_usd"] or 0)
    for row in branches:
        total = row["default_credits"] + row["other_credits"]
        row["other_share_pct"] = (
            float(round(row["other_credits"] / total * 100, 1)) if total else None
        )
    failed.sort(key=lambda row: (-row["credits"], row["project"] or "", row["status"]))
    reruns.sort(key=lambda row: (-row["credits"], row["project"] or ""))
    branches.sort(key=lambda row: (-row["other_credits"], row["project"] or ""))
    default = ", ".join(request.default_branches)
    return Insight(
        "waste",
        request,
        [
            Section("failed", "Failed and cancelled jobs", STATUS_COLUMNS, failed),
            Section(
                "reruns", "Reruns (later runs of a job in the same workflow)", RERUN_COLUMNS, reruns
            ),
            Section(
                "branches",
                f"Default branch ({default}) against other branches",
                BRANCH_COLUMNS,
                branches,
            ),
        ],
        [f"Wasted statuses: {', '.join(WASTED_STATUSES)}. Runs without a branch count as other."],
    )
