"""The 48 columns of a CircleCI usage export and how circlecost types them.

The CSV is mapped by column *name*, never by position (CircleCI's docs and files disagree on
the order of JOB_ID and JOB_RUN_NUMBER). The order below is the one seen in real files and the
one the emulator writes.
"""

import re
from typing import Final

# (column name, DuckDB type). Timestamps carry no zone and are UTC.
USAGE_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("ORGANIZATION_ID", "VARCHAR"),
    ("ORGANIZATION_NAME", "VARCHAR"),
    ("ORGANIZATION_CREATED_DATE", "DATE"),
    ("PROJECT_ID", "VARCHAR"),
    ("PROJECT_NAME", "VARCHAR"),
    ("PROJECT_CREATED_DATE", "DATE"),
    ("LAST_BUILD_FINISHED_AT", "TIMESTAMP"),
    ("VCS_NAME", "VARCHAR"),
    ("VCS_URL", "VARCHAR"),
    ("VCS_BRANCH", "VARCHAR"),
    ("PIPELINE_ID", "VARCHAR"),
    ("PIPELINE_CREATED_AT", "TIMESTAMP"),
    ("PIPELINE_NUMBER", "BIGINT"),
    ("IS_UNREGISTERED_USER", "BOOLEAN"),
    ("PIPELINE_TRIGGER_SOURCE", "VARCHAR"),
    ("PIPELINE_TRIGGER_USER_ID", "VARCHAR"),
    ("WORKFLOW_ID", "VARCHAR"),
    ("WORKFLOW_NAME", "VARCHAR"),
    ("WORKFLOW_FIRST_JOB_QUEUED_AT", "TIMESTAMP"),
    ("WORKFLOW_FIRST_JOB_STARTED_AT", "TIMESTAMP"),
    ("WORKFLOW_STOPPED_AT", "TIMESTAMP"),
    ("IS_WORKFLOW_SUCCESSFUL", "BOOLEAN"),
    ("JOB_NAME", "VARCHAR"),
    ("JOB_RUN_NUMBER", "BIGINT"),
    ("JOB_ID", "VARCHAR"),
    ("JOB_RUN_DATE", "DATE"),
    ("JOB_RUN_QUEUED_AT", "TIMESTAMP"),
    ("JOB_RUN_STARTED_AT", "TIMESTAMP"),
    ("JOB_RUN_STOPPED_AT", "TIMESTAMP"),
    ("JOB_BUILD_STATUS", "VARCHAR"),
    ("RESOURCE_CLASS", "VARCHAR"),
    ("OPERATING_SYSTEM", "VARCHAR"),
    ("EXECUTOR", "VARCHAR"),
    ("PARALLELISM", "BIGINT"),
    ("JOB_RUN_SECONDS", "DOUBLE"),
    ("MEDIAN_CPU_UTILIZATION_PCT", "DOUBLE"),
    ("MAX_CPU_UTILIZATION_PCT", "DOUBLE"),
    ("MEDIAN_RAM_UTILIZATION_PCT", "DOUBLE"),
    ("MAX_RAM_UTILIZATION_PCT", "DOUBLE"),
    ("COMPUTE_CREDITS", "DECIMAL(18,6)"),
    ("DLC_CREDITS", "DECIMAL(18,6)"),
    ("USER_CREDITS", "DECIMAL(18,6)"),
    ("STORAGE_CREDITS", "DECIMAL(18,6)"),
    ("NETWORK_CREDITS", "DECIMAL(18,6)"),
    ("LEASE_CREDITS", "DECIMAL(18,6)"),
    ("LEASE_OVERAGE_CREDITS", "DECIMAL(18,6)"),
    ("IPRANGES_CREDITS", "DECIMAL(18,6)"),
    ("TOTAL_CREDITS", "DECIMAL(18,6)"),
)

COLUMN_NAMES: Final[tuple[str, ...]] = tuple(name for name, _ in USAGE_COLUMNS)
COLUMN_TYPES: Final[dict[str, str]] = dict(USAGE_COLUMNS)

# Each component credit column becomes one cost line item with this Service name.
CREDIT_SERVICES: Final[tuple[tuple[str, str], ...]] = (
    ("COMPUTE_CREDITS", "Compute"),
    ("DLC_CREDITS", "DLC"),
    ("USER_CREDITS", "Users"),
    ("STORAGE_CREDITS", "Storage"),
    ("NETWORK_CREDITS", "Network"),
    ("LEASE_CREDITS", "Lease"),
    ("LEASE_OVERAGE_CREDITS", "Lease Overage"),
    ("IPRANGES_CREDITS", "IP Ranges"),
)

BOOLEAN_COLUMNS: Final[frozenset[str]] = frozenset(
    name for name, kind in USAGE_COLUMNS if kind == "BOOLEAN"
)

# Accepted spellings of booleans (compared case-insensitively).
TRUE_WORDS: Final[frozenset[str]] = frozenset({"true", "t", "y", "yes", "1"})
FALSE_WORDS: Final[frozenset[str]] = frozenset({"false", "f", "n", "no", "0"})

LIST_PRICE_USD_PER_CREDIT: Final[str] = "0.0006"

# How a usage row becomes a cost line item: each column of the store's `costs` view (before its
# credits and price) -> its SQL over one row of the `usage` table. The view (store/schema.py) and
# the report query (reports.py), which computes the same figures without reading the view, are
# both built from this table. `service` comes from the credit column the line item is for.
# Stores keep the view they were created with: a change here needs a migration that recreates it.
USAGE_DATE_SQL: Final[str] = (
    "coalesce(JOB_RUN_DATE, CAST(JOB_RUN_STARTED_AT AS DATE), "
    "CAST(PIPELINE_CREATED_AT AS DATE), CAST(window_start AS DATE))"
)
LINE_ITEM_SERVICE: Final[str] = "item.service"
COST_COLUMNS_SQL: Final[dict[str, str]] = {
    "billing_account": "ORGANIZATION_NAME",
    "billing_account_id": "ORGANIZATION_ID",
    "account": "PROJECT_NAME",
    "account_id": "PROJECT_ID",
    "service": LINE_ITEM_SERVICE,
    "category": "lower(OPERATING_SYSTEM) || ' ' || lower(EXECUTOR)",
    "subcategory": "RESOURCE_CLASS",
    "resource": "JOB_NAME",
    "charge_type": "'Usage'",
    "date": USAGE_DATE_SQL,
    "tag_organization_id": "ORGANIZATION_ID",
    "tag_project_id": "PROJECT_ID",
    "tag_vcs_name": "VCS_NAME",
    "tag_vcs_url": "VCS_URL",
    "tag_vcs_branch": "VCS_BRANCH",
    "tag_pipeline_id": "PIPELINE_ID",
    "tag_job_build_status": "JOB_BUILD_STATUS",
}

# The daily rollup (the store's `usage_daily` table): usage summed per integration, window, day
# and the usage columns a cost column is made of, except those that are nearly unique per row
# (a pipeline's id), which only the usage table answers. Reports read the rollup whenever their
# group-by and filter need none of those: at 10M line items it is a small fraction of the rows.
UNROLLED_COLUMNS: Final[frozenset[str]] = frozenset({"PIPELINE_ID"})


def usage_columns_in(sql: str) -> frozenset[str]:
    """The export's columns that a piece of SQL over a usage row names."""
    return frozenset(name for name in COLUMN_NAMES if re.search(rf"\b{name}\b", sql))


# Each cost column made of a usage row's columns (not `service` or `date`) -> those columns.
_COST_COLUMN_SOURCES: Final[dict[str, frozenset[str]]] = {
    column: usage_columns_in(sql)
    for column, sql in COST_COLUMNS_SQL.items()
    if sql not in (USAGE_DATE_SQL, LINE_ITEM_SERVICE)
}
DAILY_COLUMNS: Final[tuple[str, ...]] = tuple(
    name
    for name in COLUMN_NAMES
    if name not in UNROLLED_COLUMNS
    and any(name in sources for sources in _COST_COLUMN_SOURCES.values())
)
# The cost columns the rollup answers: those made only of the columns it keeps.
DAILY_COST_COLUMNS: Final[frozenset[str]] = frozenset(
    column
    for column, sources in _COST_COLUMN_SOURCES.items()
    if sources.isdisjoint(UNROLLED_COLUMNS)
)
PRESENT_SUFFIX: Final[str] = "_PRESENT"  # whether any of a day's rows has a non-zero credit column
