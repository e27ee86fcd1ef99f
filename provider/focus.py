"""Cost line items as FOCUS 1.2 (FinOps Open Cost and Usage Specification) rows.

One FOCUS row per cost line item of the store's `costs` view. CircleCI bills in credits: the
consumed and pricing quantities are credits, ListCost uses CircleCI's list price, and the
billed, effective and contracted costs use the integration's price per credit on that day.
Columns after the FOCUS ones carry circlecost's own details with the `x_` prefix.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb

from provider.errors import CirclecostError
from provider.usage_columns import LIST_PRICE_USD_PER_CREDIT

# FOCUS columns whose values may never be null (checked by the export tests).
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
    "ContractedCost",
    "EffectiveCost",
    "InvoiceIssuerName",
    "ListCost",
    "ProviderName",
    "PublisherName",
    "ServiceCategory",
    "ServiceName",
)

FOCUS_SELECT = f"""
SELECT
    CAST(amount_usd AS DECIMAL(38, 10)) AS BilledCost,
    CAST(amount_usd AS DECIMAL(38, 10)) AS EffectiveCost,
    CAST(credits * {LIST_PRICE_USD_PER_CREDIT} AS DECIMAL(38, 10)) AS ListCost,
    CAST(amount_usd AS DECIMAL(38, 10)) AS ContractedCost,
    billing_account_id AS BillingAccountId,
    billing_account AS BillingAccountName,
    'USD' AS BillingCurrency,
    CAST(date_trunc('month', date) AS TIMESTAMPTZ) AS BillingPeriodStart,
    CAST(date_trunc('month', date) + INTERVAL 1 MONTH AS TIMESTAMPTZ) AS BillingPeriodEnd,
    'Usage' AS ChargeCategory,
    CAST(NULL AS VARCHAR) AS ChargeClass,
    service || ' credits for ' || coalesce('job ' || resource, 'seats and storage')
        || coalesce(' (' || category || coalesce(', ' || subcategory, '') || ')', '')
        AS ChargeDescription,
    'Usage-Based' AS ChargeFrequency,
    CAST(date AS TIMESTAMPTZ) AS ChargePeriodStart,
    CAST(date + INTERVAL 1 DAY AS TIMESTAMPTZ) AS ChargePeriodEnd,
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
    CAST(json_object(
        'circleci:organization_id', tag_organization_id,
        'circleci:project_id', tag_project_id,
        'circleci:vcs_name', tag_vcs_name,
        'circleci:vcs_url', tag_vcs_url,
        'circleci:vcs_branch', tag_vcs_branch,
        'circleci:pipeline_id', tag_pipeline_id,
        'circleci:job_build_status', tag_job_build_status
    ) AS VARCHAR) AS Tags,
    integration_id AS x_IntegrationId,
    category AS x_Category,
    subcategory AS x_ResourceClass,
    job_run_number AS x_JobRunNumber,
    pipeline_number AS x_PipelineNumber,
    workflow_name AS x_WorkflowName,
    CAST(date AS DATE) AS x_UsageDate
FROM costs
WHERE date BETWEEN ? AND ?
ORDER BY date, BillingAccountId, SubAccountId, ServiceName, ResourceId
"""


def export(connection: duckdb.DuckDBPyConnection, start: date, end: date, output: Path) -> int:
    """Writes FOCUS rows for [start, end] to `output` (.csv or .parquet); returns the row count."""
    suffix = output.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise CirclecostError(
            f"--output: '{output}' must end in .csv or .parquet", hint="e.g. --output focus.parquet"
        )
    connection.execute("SET TimeZone = 'UTC'")
    relation = connection.sql(FOCUS_SELECT, params=[start, end])
    temporary = output.with_name(output.name + ".partial")
    if suffix == ".csv":
        relation.write_csv(str(temporary), header=True)
    else:
        relation.write_parquet(str(temporary))
    temporary.replace(output)
    row = connection.execute(f"SELECT count(*) FROM ({FOCUS_SELECT})", [start, end]).fetchone()
    return int(row[0]) if row else 0
