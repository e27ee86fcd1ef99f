"""The 48 columns of a CircleCI usage export and how circlecost types them.

The CSV is mapped by column *name*, never by position (CircleCI's docs and files disagree on
the order of JOB_ID and JOB_RUN_NUMBER). The order below is the one seen in real files and the
one the emulator writes.
"""

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
