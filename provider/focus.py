"""Cost line items as FOCUS 1.2 (FinOps Open Cost and Usage Specification) rows.

One FOCUS row per cost line item of the store's `costs` view. CircleCI bills in credits: the
consumed and pricing quantities are credits, ListCost uses CircleCI's list price, and the
billed, effective and contracted costs use the integration's price per credit on that day.
Columns after the FOCUS ones carry circlecost's own details with the `x_` prefix.

FOCUS date/times are UTC. The SQL never depends on the session's time zone (a reader on a
machine in another zone gets the same file, and the caller's connection is left as it was):
Parquet gets TIMESTAMP WITH TIME ZONE values built as UTC instants, CSV gets ISO 8601 text
ending in `Z`, the format FOCUS names.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import date
from pathlib import Path

import duckdb

from circlecost.engine import sql_string
from circlecost.errors import CirclecostError
from circlecost.usage_columns import LIST_PRICE_USD_PER_CREDIT
from circlecost.virtual_tags import virtual_columns
from circlecost.vocabulary import TAG_COLUMNS

# FOCUS columns that may never be null in this export: the mandatory ones FOCUS requires a value
# in, and the conditional ones it requires for usage charges (every row here is one).
NON_NULL_COLUMNS = (
    "BilledCost",
    "BillingAccountId",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedCost",
    "EffectiveCost",
    "InvoiceIssuerName",
    "ListCost",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "ServiceCategory",
    "ServiceName",
    "ServiceSubcategory",
)

# Costs keep the view's full precision (credits × price has 16 decimals), so that the FOCUS
# costs add up to exactly the report's total.
COST = "DECIMAL(38, 16)"


# Each `circleci:*` tag the line item has, as a member of the `Tags` JSON object (to_json
# escapes the value).
TAG_MEMBERS = [
    f"""CASE WHEN {column} IS NOT NULL THEN '"{tag}":' || to_json({column}) END"""
    for tag, column in TAG_COLUMNS.items()
]


def tags_sql(connection: duckdb.DuckDBPyConnection) -> tuple[str, dict[str, str]]:
    """The `Tags` JSON object: the line item's `circleci:*` tags, then the value of each virtual
    tag under its key (every line item has one, `(untagged)` at worst), with the virtual tags'
    parameters by name. Virtual tag keys are lowercase words, so they need no escaping."""
    members = list(TAG_MEMBERS)
    params: dict[str, str] = {}
    for index, (key, expression) in enumerate(virtual_columns(connection).items()):
        sql, named = expression.named(f"vtag{index}_")
        members.append(f"""'"{key}":' || to_json({sql})""")
        params.update(named)
    return "'{' || concat_ws(',', " + ", ".join(members) + ") || '}'", params


def focus_select(timestamp: Callable[[str], str], tags: str) -> str:
    """The FOCUS query over the costs view for [$start, $end]; `timestamp` writes a UTC
    date/time. The four date/times of a line item depend on its day alone, so they are made
    once per day of the period (`days`) and joined, not converted once per line item. Rows
    come in the store's order: FOCUS readers need none, and sorting 10M wide rows doubled the
    export's time (bench/reports_bench.py)."""
    return f"""
WITH days AS (
    SELECT CAST(day AS DATE) AS day,
        {timestamp("date_trunc('month', day)")} AS BillingPeriodStart,
        {timestamp("date_trunc('month', day) + INTERVAL 1 MONTH")} AS BillingPeriodEnd,
        {timestamp("day")} AS ChargePeriodStart,
        {timestamp("day + INTERVAL 1 DAY")} AS ChargePeriodEnd
    FROM range(CAST($start AS TIMESTAMP), CAST($end AS TIMESTAMP) + INTERVAL 1 DAY,
        INTERVAL 1 DAY) AS t(day)
)
SELECT
    CAST(amount_usd AS {COST}) AS BilledCost,
    CAST(amount_usd AS {COST}) AS EffectiveCost,
    CAST(credits * {LIST_PRICE_USD_PER_CREDIT} AS {COST}) AS ListCost,
    CAST(amount_usd AS {COST}) AS ContractedCost,
    billing_account_id AS BillingAccountId,
    billing_account AS BillingAccountName,
    'USD' AS BillingCurrency,
    days.BillingPeriodStart,
    days.BillingPeriodEnd,
    'Usage' AS ChargeCategory,
    CAST(NULL AS VARCHAR) AS ChargeClass,
    service || ' credits for ' || coalesce('job ' || resource, 'seats and storage')
        || coalesce(' (' || category || coalesce(', ' || subcategory, '') || ')', '')
        AS ChargeDescription,
    'Usage-Based' AS ChargeFrequency,
    days.ChargePeriodStart,
    days.ChargePeriodEnd,
    CAST(credits AS DECIMAL(38, 6)) AS ConsumedQuantity,
    'Credits' AS ConsumedUnit,
    CAST({LIST_PRICE_USD_PER_CREDIT} AS DECIMAL(38, 10)) AS ListUnitPrice,
    CAST(usd_per_credit AS DECIMAL(38, 10)) AS ContractedUnitPrice,
    'Standard' AS PricingCategory,
    CAST(credits AS DECIMAL(38, 6)) AS PricingQuantity,
    'Credits' AS PricingUnit,
    'CircleCI' AS ProviderName,
    'CircleCI' AS PublisherName,
    'CircleCI' AS InvoiceIssuerName,
    CAST(NULL AS VARCHAR) AS InvoiceId,
    CAST(NULL AS VARCHAR) AS RegionId,
    CAST(NULL AS VARCHAR) AS RegionName,
    coalesce(job_id, tag_pipeline_id, account_id, billing_account_id) AS ResourceId,
    resource AS ResourceName,
    CASE WHEN job_id IS NULL THEN 'CircleCI Plan' ELSE 'CircleCI Job' END AS ResourceType,
    'Developer Tools' AS ServiceCategory,
    'Continuous Integration and Deployment' AS ServiceSubcategory,
    'CircleCI ' || service AS ServiceName,
    service || coalesce(':' || subcategory, '') AS SkuId,
    account_id AS SubAccountId,
    account AS SubAccountName,
    {tags} AS Tags,
    integration_id AS x_IntegrationId,
    category AS x_Category,
    subcategory AS x_ResourceClass,
    job_run_number AS x_JobRunNumber,
    pipeline_number AS x_PipelineNumber,
    workflow_name AS x_WorkflowName,
    CAST(date AS DATE) AS x_UsageDate
FROM costs JOIN days ON days.day = costs.date
WHERE costs.date BETWEEN $start AND $end
"""


def csv_timestamp(sql: str) -> str:
    return f"strftime(CAST({sql} AS TIMESTAMP), '%Y-%m-%dT%H:%M:%SZ')"


def parquet_timestamp(sql: str) -> str:
    # AT TIME ZONE reads the wall-clock time as UTC, whatever the session's TimeZone is.
    return f"(CAST({sql} AS TIMESTAMP) AT TIME ZONE 'UTC')"


# Output format -> (its UTC date/time expression, its COPY options). Parquet is written with
# zstd, which every FOCUS reader (pyarrow, Spark, DuckDB, the warehouses) reads: 10M line items
# made 64 MB instead of DuckDB's default snappy's 403 MB, in 19.5 s instead of 18.9 s.
FORMATS: dict[str, tuple[Callable[[str], str], str]] = {
    ".csv": (csv_timestamp, "FORMAT csv, HEADER"),
    ".parquet": (parquet_timestamp, "FORMAT parquet, COMPRESSION zstd"),
}


def export(connection: duckdb.DuckDBPyConnection, start: date, end: date, output: Path) -> int:
    """Writes FOCUS rows for [start, end] to `output` (.csv or .parquet); returns the row count.

    The file appears whole or not at all: it is written beside `output` and renamed over it.
    """
    suffix = output.suffix.lower()
    if suffix not in FORMATS:
        raise CirclecostError(
            f"--output: '{output}' must end in .csv or .parquet", hint="e.g. --output focus.parquet"
        )
    partial = output.with_name(output.name + ".partial")
    timestamp, options = FORMATS[suffix]
    tags, tag_params = tags_sql(connection)
    try:
        row = connection.execute(
            # A quoted literal: DuckDB 1.5 takes no parameter for COPY's target.
            f"COPY ({focus_select(timestamp, tags)}) TO {sql_string(str(partial))} ({options})",
            {"start": start, "end": end, **tag_params},
        ).fetchone()
        partial.replace(output)
    except (duckdb.IOException, OSError) as err:
        raise CirclecostError(
            f"--output: cannot write {output}: {err}",
            hint="choose a file in an existing folder you can write to",
        ) from err
    finally:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
    return int(row[0]) if row else 0
