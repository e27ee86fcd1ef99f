"""The cost store: everything circlecost knows, in one embedded DuckDB file or a shared DuckLake.

It holds integrations (never their tokens: only a fingerprint), dated prices, the import ledger
(windows and CircleCI export jobs), the raw usage rows of every export (all 48 columns, typed),
workspaces and bindings, principals and roles, quota counters and the audit log. Costs are the
view `costs` over usage × the price in effect on each line's date, so a price change re-prices
everything at once and nothing is stored twice.

Every operation opens a short-lived connection and closes it (the Pulumi provider is pickled
and re-imported in other processes, so nothing may live on `self`). On an embedded store,
writers take DuckDB's file lock; one that finds it held retries for `lock_timeout` seconds, then
raises `StoreLocked` naming the process that holds it, which each writer records in
`<store>.writer.json`. A shared store (see `provider.engine`) has no lock: DuckLake commits
optimistically, and a transaction that lost a race to another runner is run again (`_retried`).
Because DuckLake sees no conflict between two inserts, every write transaction first bumps a
guard row (`_GUARDS`) of each aggregate it changes, which turns such races into conflicts too:
two runners never store a window twice or take more quota than there is. The schema has no
constraints (DuckLake has none); the rules live in this module's code, the same on both
engines. Reports read through `reader()`. `duckdb.Error` is translated into this module's
errors in one place, `_translated`, with a hint that says what to do.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, ParamSpec, TypeVar

import duckdb

from provider import csvload, faultpoints
from provider.csvload import LoadResult
from provider.engine import (
    LAKE_ALIAS,
    CatalogNotCreated,
    SharedStore,
    is_commit_conflict,
    lake_connection,
)
from provider.engine import parse_location as parse_location
from provider.engine import unreachable as lake_unreachable
from provider.errors import CirclecostError
from provider.usage_columns import LIST_PRICE_USD_PER_CREDIT
from provider.windows import Window

__all__ = [
    "DIMENSIONS",
    "ROLES",
    "AuditEntry",
    "Binding",
    "ExportJob",
    "ImportWindow",
    "Integration",
    "InvalidValue",
    "LoadResult",
    "NotFound",
    "Price",
    "Principal",
    "Store",
    "StoreConflict",
    "StoreCorrupt",
    "StoreError",
    "StoreLocked",
    "StoreOutdated",
    "WindowTask",
    "Workspace",
    "token_fingerprint",
]

P = ParamSpec("P")
R = TypeVar("R")

BASE_PRICE_DATE: Final = date(1, 1, 1)
LIST_PRICE: Final = Decimal(LIST_PRICE_USD_PER_CREDIT)
ROLES: Final = ("Organization Owner", "Integration Owner", "Editor", "Viewer")
STATUSES: Final = ("Importing", "Stable", "Warning", "Error")
QUOTA_KINDS: Final = ("POST", "GET")
QUOTA_PERIOD: Final = timedelta(hours=1)
QUOTA_HISTORY: Final = timedelta(days=7)
LOCK_RETRY_SECONDS: Final = 0.1
# Prices are DECIMAL(18,10): ten decimal places, eight before the point.
PRICE_PLACES: Final = 10
PRICE_QUANTUM: Final = Decimal(1).scaleb(-PRICE_PLACES)
MAX_PRICE: Final = Decimal(10) ** (18 - PRICE_PLACES)
# CircleCI refuses a usage-export window longer than this (both ends inclusive).
MAX_WINDOW: Final = timedelta(days=31)
SECRET_KEYS: Final = frozenset({"token", "circle_token", "api_token", "password", "secret"})

# Tag key (as in reports and FOCUS exports) -> column of the costs view.
TAG_COLUMNS: Final = {
    "circleci:organization_id": "tag_organization_id",
    "circleci:project_id": "tag_project_id",
    "circleci:vcs_name": "tag_vcs_name",
    "circleci:vcs_url": "tag_vcs_url",
    "circleci:vcs_branch": "tag_vcs_branch",
    "circleci:pipeline_id": "tag_pipeline_id",
    "circleci:job_build_status": "tag_job_build_status",
}
# Group-by dimension -> column of the costs view. The only names ever written into report SQL.
DIMENSIONS: Final = {
    **{
        name: name
        for name in (
            "billing_account",
            "billing_account_id",
            "account",
            "account_id",
            "service",
            "category",
            "subcategory",
            "resource",
            "charge_type",
            "date",
        )
    },
    **{f"tag:{key}": column for key, column in TAG_COLUMNS.items()},
}
# Integration fields a caller may change; `token` is refused, only its fingerprint is stored.
INTEGRATION_FIELDS: Final = (
    "organization_name",
    "description",
    "token_fingerprint",
    "token_user",
    "token_rotated_at",
    "token_expires_on",
    "backfill_months",
    "status",
    "status_detail",
    "last_refresh_at",
)


# --- errors --------------------------------------------------------------------------------------


class StoreError(CirclecostError):
    """The store could not do what was asked."""


class StoreLocked(StoreError):
    """Another process holds the store's write lock."""


class StoreCorrupt(StoreError):
    """The store file is not a readable DuckDB database."""


class StoreOutdated(StoreError):
    """The store was written by a newer circlecost than this one."""


class StoreConflict(StoreError):
    """The change would break a rule of the store (one integration per organization, ...)."""


class NotFound(StoreError):
    """No such integration, workspace or binding."""


class InvalidValue(StoreError, ValueError):
    """A value the store cannot hold as given (a price, a window); names the field."""


# --- records -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Integration:
    id: str
    organization_id: str
    organization_name: str | None
    description: str
    token_fingerprint: str
    token_user: str | None
    token_rotated_at: datetime | None
    token_expires_on: date | None
    backfill_months: int
    status: str
    status_detail: str
    created_at: datetime
    updated_at: datetime
    last_refresh_at: datetime | None
    created_by_stack: str | None = None  # "organization/project/stack" of a Pulumi create


@dataclass(frozen=True)
class Price:
    effective_from: date
    usd_per_credit: Decimal


@dataclass(frozen=True)
class ImportWindow:
    integration_id: str
    window: Window
    state: str  # planned | requested | loaded | failed
    rows: int | None
    total_mismatch_rows: int | None
    loaded_at: datetime | None
    attempts: int
    last_error: str | None
    current_job_id: str | None


@dataclass(frozen=True)
class ExportJob:
    job_id: str
    integration_id: str
    window: Window
    created_at: datetime
    state: str  # created | processing | completed | failed | loaded
    polls: int
    last_polled_at: datetime | None
    next_poll_at: datetime | None
    download_completed: bool
    error_reason: str | None


@dataclass
class WindowTask:
    """An open window with its current CircleCI job, as the import engine walks them."""

    window: Window
    job_id: str | None
    job_state: str | None
    next_poll_at: datetime | None
    attempts: int
    error_reason: str | None = None  # why CircleCI failed the current job, if it did


@dataclass(frozen=True)
class Workspace:
    id: str
    name: str
    description: str
    created_at: datetime


@dataclass(frozen=True)
class Binding:
    workspace_id: str
    integration_id: str
    created_at: datetime


@dataclass(frozen=True)
class Principal:
    actor: str
    role: str
    granted_by: str | None
    granted_at: datetime


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    changes: dict[str, Any]


def token_fingerprint(token: str) -> str:
    """A short SHA-256 prefix of a token: safe to store and show, enough to spot a shared token."""
    return "sha256:" + hashlib.sha256(token.encode("utf-8")).hexdigest()[:16]


# --- schema --------------------------------------------------------------------------------------

_USAGE_TABLE = """
CREATE TABLE usage (
    integration_id VARCHAR NOT NULL,
    window_start TIMESTAMP NOT NULL,
    export_job_id VARCHAR,
    loaded_at TIMESTAMP NOT NULL,
    source_part SMALLINT,
    source_line BIGINT,
    ORGANIZATION_ID VARCHAR,
    ORGANIZATION_NAME VARCHAR,
    ORGANIZATION_CREATED_DATE DATE,
    PROJECT_ID VARCHAR,
    PROJECT_NAME VARCHAR,
    PROJECT_CREATED_DATE DATE,
    LAST_BUILD_FINISHED_AT TIMESTAMP,
    VCS_NAME VARCHAR,
    VCS_URL VARCHAR,
    VCS_BRANCH VARCHAR,
    PIPELINE_ID VARCHAR,
    PIPELINE_CREATED_AT TIMESTAMP,
    PIPELINE_NUMBER BIGINT,
    IS_UNREGISTERED_USER BOOLEAN,
    PIPELINE_TRIGGER_SOURCE VARCHAR,
    PIPELINE_TRIGGER_USER_ID VARCHAR,
    WORKFLOW_ID VARCHAR,
    WORKFLOW_NAME VARCHAR,
    WORKFLOW_FIRST_JOB_QUEUED_AT TIMESTAMP,
    WORKFLOW_FIRST_JOB_STARTED_AT TIMESTAMP,
    WORKFLOW_STOPPED_AT TIMESTAMP,
    IS_WORKFLOW_SUCCESSFUL BOOLEAN,
    JOB_NAME VARCHAR,
    JOB_RUN_NUMBER BIGINT,
    JOB_ID VARCHAR,
    JOB_RUN_DATE DATE,
    JOB_RUN_QUEUED_AT TIMESTAMP,
    JOB_RUN_STARTED_AT TIMESTAMP,
    JOB_RUN_STOPPED_AT TIMESTAMP,
    JOB_BUILD_STATUS VARCHAR,
    RESOURCE_CLASS VARCHAR,
    OPERATING_SYSTEM VARCHAR,
    EXECUTOR VARCHAR,
    PARALLELISM BIGINT,
    JOB_RUN_SECONDS DOUBLE,
    MEDIAN_CPU_UTILIZATION_PCT DOUBLE,
    MAX_CPU_UTILIZATION_PCT DOUBLE,
    MEDIAN_RAM_UTILIZATION_PCT DOUBLE,
    MAX_RAM_UTILIZATION_PCT DOUBLE,
    COMPUTE_CREDITS DECIMAL(18,6),
    DLC_CREDITS DECIMAL(18,6),
    USER_CREDITS DECIMAL(18,6),
    STORAGE_CREDITS DECIMAL(18,6),
    NETWORK_CREDITS DECIMAL(18,6),
    LEASE_CREDITS DECIMAL(18,6),
    LEASE_OVERAGE_CREDITS DECIMAL(18,6),
    IPRANGES_CREDITS DECIMAL(18,6),
    TOTAL_CREDITS DECIMAL(18,6)
)
"""

# One line item per usage row and non-zero credit column, priced by the dated price in effect.
_COSTS_VIEW = """
CREATE VIEW costs AS
WITH lines AS (
    SELECT
        u.integration_id,
        u.ORGANIZATION_NAME AS billing_account,
        u.ORGANIZATION_ID AS billing_account_id,
        u.PROJECT_NAME AS account,
        u.PROJECT_ID AS account_id,
        item.service,
        lower(u.OPERATING_SYSTEM) || ' ' || lower(u.EXECUTOR) AS category,
        u.RESOURCE_CLASS AS subcategory,
        u.JOB_NAME AS resource,
        'Usage' AS charge_type,
        coalesce(
            u.JOB_RUN_DATE,
            CAST(u.JOB_RUN_STARTED_AT AS DATE),
            CAST(u.PIPELINE_CREATED_AT AS DATE),
            CAST(u.window_start AS DATE)
        ) AS date,
        u.ORGANIZATION_ID AS tag_organization_id,
        u.PROJECT_ID AS tag_project_id,
        u.VCS_NAME AS tag_vcs_name,
        u.VCS_URL AS tag_vcs_url,
        u.VCS_BRANCH AS tag_vcs_branch,
        u.PIPELINE_ID AS tag_pipeline_id,
        u.JOB_BUILD_STATUS AS tag_job_build_status,
        item.credits,
        u.JOB_ID AS job_id,
        u.JOB_RUN_NUMBER AS job_run_number,
        u.PIPELINE_NUMBER AS pipeline_number,
        u.WORKFLOW_NAME AS workflow_name,
        u.window_start,
        u.export_job_id
    FROM usage AS u
    CROSS JOIN LATERAL (VALUES
        ('Compute', u.COMPUTE_CREDITS),
        ('DLC', u.DLC_CREDITS),
        ('Users', u.USER_CREDITS),
        ('Storage', u.STORAGE_CREDITS),
        ('Network', u.NETWORK_CREDITS),
        ('Lease', u.LEASE_CREDITS),
        ('Lease Overage', u.LEASE_OVERAGE_CREDITS),
        ('IP Ranges', u.IPRANGES_CREDITS)
    ) AS item(service, credits)
    WHERE item.credits <> 0
)
SELECT
    lines.* EXCLUDE (credits, job_id, job_run_number, pipeline_number, workflow_name,
                     window_start, export_job_id),
    lines.credits,
    price.usd_per_credit,
    lines.credits * price.usd_per_credit AS amount_usd,
    lines.job_id,
    lines.job_run_number,
    lines.pipeline_number,
    lines.workflow_name,
    lines.window_start,
    lines.export_job_id
FROM lines
ASOF LEFT JOIN prices AS price
    ON price.integration_id = lines.integration_id AND lines.date >= price.effective_from
"""

# A new store, on either engine, starts from this schema at BASELINE_VERSION, then takes the
# migrations after it. It has no keys, constraints or sequences, which DuckLake does not have: the
# rules they would enforce (one integration per organization, unique workspace names, valid
# states, roles and prices) are checked by this module's code, the same way on both engines.
# Embedded stores made before it were built by MIGRATIONS[0:3], with constraints; they keep them
# (harmless: the code checks first) and take the same later migrations.
BASELINE_VERSION: Final = 3
_BASELINE: Final[tuple[str, ...]] = (
    """CREATE TABLE integrations (
        id VARCHAR NOT NULL,
        organization_id VARCHAR NOT NULL,
        organization_name VARCHAR,
        description VARCHAR NOT NULL DEFAULT '',
        token_fingerprint VARCHAR NOT NULL,
        token_user VARCHAR,
        token_rotated_at TIMESTAMP,
        token_expires_on DATE,
        backfill_months INTEGER NOT NULL DEFAULT 3,
        status VARCHAR NOT NULL DEFAULT 'Importing',
        status_detail VARCHAR NOT NULL DEFAULT '',
        created_at TIMESTAMP NOT NULL,
        updated_at TIMESTAMP NOT NULL,
        last_refresh_at TIMESTAMP,
        created_by_stack VARCHAR
    )""",
    """CREATE TABLE prices (
        integration_id VARCHAR NOT NULL,
        effective_from DATE NOT NULL,
        usd_per_credit DECIMAL(18,10) NOT NULL
    )""",
    """CREATE TABLE import_windows (
        integration_id VARCHAR NOT NULL,
        window_start TIMESTAMP NOT NULL,
        window_end TIMESTAMP NOT NULL,
        state VARCHAR NOT NULL DEFAULT 'planned',
        rows BIGINT,
        total_mismatch_rows BIGINT,
        loaded_at TIMESTAMP,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error VARCHAR,
        current_job_id VARCHAR
    )""",
    """CREATE TABLE export_jobs (
        job_id VARCHAR NOT NULL,
        integration_id VARCHAR NOT NULL,
        window_start TIMESTAMP NOT NULL,
        window_end TIMESTAMP NOT NULL,
        created_at TIMESTAMP NOT NULL,
        state VARCHAR NOT NULL DEFAULT 'created',
        polls INTEGER NOT NULL DEFAULT 0,
        last_polled_at TIMESTAMP,
        next_poll_at TIMESTAMP,
        download_completed BOOLEAN NOT NULL DEFAULT false,
        error_reason VARCHAR
    )""",
    _USAGE_TABLE,
    """CREATE TABLE workspaces (
        id VARCHAR NOT NULL,
        name VARCHAR NOT NULL,
        description VARCHAR NOT NULL DEFAULT '',
        created_at TIMESTAMP NOT NULL
    )""",
    """CREATE TABLE bindings (
        workspace_id VARCHAR NOT NULL,
        integration_id VARCHAR NOT NULL,
        created_at TIMESTAMP NOT NULL
    )""",
    """CREATE TABLE principals (
        actor VARCHAR NOT NULL,
        role VARCHAR NOT NULL,
        granted_by VARCHAR,
        granted_at TIMESTAMP NOT NULL
    )""",
    """CREATE TABLE quota_requests (
        org_id VARCHAR NOT NULL,
        kind VARCHAR NOT NULL,
        requested_at TIMESTAMP NOT NULL
    )""",
    "CREATE TABLE quota_blocks (org_id VARCHAR NOT NULL, until TIMESTAMP NOT NULL)",
    """CREATE TABLE audit_log (
        id BIGINT NOT NULL,
        recorded_at TIMESTAMP NOT NULL,
        actor VARCHAR NOT NULL,
        action VARCHAR NOT NULL,
        object_type VARCHAR NOT NULL,
        object_id VARCHAR NOT NULL,
        changes JSON NOT NULL
    )""",
    _COSTS_VIEW,
    "CREATE TABLE store_identity (id VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL)",
    "INSERT INTO store_identity SELECT uuid()::VARCHAR, now()::TIMESTAMP",
)

# Guard tables, one per aggregate. DuckLake detects conflicts per table, so a transaction that
# bumps the guard of an aggregate conflicts with every other transaction that does, and one of
# the two runs again: that makes "read, check, insert" safe across runners (an empty window
# loaded twice, a quota slot taken twice, an organization integrated twice).
GUARD_CATALOG: Final = "guard_catalog"  # integrations, prices, workspaces, bindings, roles, audit
GUARD_LEDGER: Final = "guard_ledger"  # import windows, export jobs and usage rows
GUARD_QUOTA: Final = "guard_quota"  # CircleCI request counters and blocks
ALL_GUARDS: Final = (GUARD_CATALOG, GUARD_LEDGER, GUARD_QUOTA)

# Ordered forward migrations; version N is MIGRATIONS[N - 1]. Never edit a released step:
# append a new one.
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """CREATE TABLE integrations (
            id VARCHAR PRIMARY KEY,
            organization_id VARCHAR NOT NULL UNIQUE,
            organization_name VARCHAR,
            description VARCHAR NOT NULL DEFAULT '',
            token_fingerprint VARCHAR NOT NULL,
            token_user VARCHAR,
            token_rotated_at TIMESTAMP,
            token_expires_on DATE,
            backfill_months INTEGER NOT NULL DEFAULT 3
                CHECK (backfill_months BETWEEN 0 AND 12),
            status VARCHAR NOT NULL DEFAULT 'Importing'
                CHECK (status IN ('Importing', 'Stable', 'Warning', 'Error')),
            status_detail VARCHAR NOT NULL DEFAULT '',
            created_at TIMESTAMP NOT NULL,
            updated_at TIMESTAMP NOT NULL,
            last_refresh_at TIMESTAMP
        )""",
        """CREATE TABLE prices (
            integration_id VARCHAR NOT NULL,
            effective_from DATE NOT NULL,
            usd_per_credit DECIMAL(18,10) NOT NULL CHECK (usd_per_credit > 0),
            PRIMARY KEY (integration_id, effective_from)
        )""",
        """CREATE TABLE import_windows (
            integration_id VARCHAR NOT NULL,
            window_start TIMESTAMP NOT NULL,
            window_end TIMESTAMP NOT NULL,
            state VARCHAR NOT NULL DEFAULT 'planned'
                CHECK (state IN ('planned', 'requested', 'loaded', 'failed')),
            rows BIGINT,
            total_mismatch_rows BIGINT,
            loaded_at TIMESTAMP,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error VARCHAR,
            current_job_id VARCHAR,
            PRIMARY KEY (integration_id, window_start)
        )""",
        """CREATE TABLE export_jobs (
            job_id VARCHAR PRIMARY KEY,
            integration_id VARCHAR NOT NULL,
            window_start TIMESTAMP NOT NULL,
            window_end TIMESTAMP NOT NULL,
            created_at TIMESTAMP NOT NULL,
            state VARCHAR NOT NULL DEFAULT 'created'
                CHECK (state IN ('created', 'processing', 'completed', 'failed', 'loaded')),
            polls INTEGER NOT NULL DEFAULT 0,
            last_polled_at TIMESTAMP,
            next_poll_at TIMESTAMP,
            download_completed BOOLEAN NOT NULL DEFAULT false,
            error_reason VARCHAR
        )""",
        _USAGE_TABLE,
        """CREATE TABLE workspaces (
            id VARCHAR PRIMARY KEY,
            name VARCHAR NOT NULL UNIQUE,
            description VARCHAR NOT NULL DEFAULT '',
            created_at TIMESTAMP NOT NULL
        )""",
        """CREATE TABLE bindings (
            workspace_id VARCHAR NOT NULL,
            integration_id VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL,
            PRIMARY KEY (workspace_id, integration_id)
        )""",
        """CREATE TABLE principals (
            actor VARCHAR PRIMARY KEY,
            role VARCHAR NOT NULL CHECK (role IN
                ('Organization Owner', 'Integration Owner', 'Editor', 'Viewer')),
            granted_by VARCHAR,
            granted_at TIMESTAMP NOT NULL
        )""",
        """CREATE TABLE quota_requests (
            org_id VARCHAR NOT NULL,
            kind VARCHAR NOT NULL CHECK (kind IN ('POST', 'GET')),
            requested_at TIMESTAMP NOT NULL
        )""",
        """CREATE TABLE quota_blocks (
            org_id VARCHAR NOT NULL,
            until TIMESTAMP NOT NULL
        )""",
        "CREATE SEQUENCE audit_ids START 1",
        """CREATE TABLE audit_log (
            id BIGINT PRIMARY KEY DEFAULT nextval('audit_ids'),
            recorded_at TIMESTAMP NOT NULL,
            actor VARCHAR NOT NULL,
            action VARCHAR NOT NULL,
            object_type VARCHAR NOT NULL,
            object_id VARCHAR NOT NULL,
            changes JSON NOT NULL
        )""",
        _COSTS_VIEW,
    ),
    # 2: which Pulumi stack created an integration, so that the same stack re-running a create
    # that was cut off continues it (another stack still has to adopt it explicitly).
    ("ALTER TABLE integrations ADD COLUMN created_by_stack VARCHAR",),
    # 3: the store's identity, recorded in every resource's outputs, so that a run looking into
    # an empty or different store fails instead of making Pulumi forget the resources.
    (
        "CREATE TABLE store_identity (id VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL)",
        "INSERT INTO store_identity SELECT uuid()::VARCHAR, now()::TIMESTAMP",
    ),
    # 4: runs on both engines. The guard tables, and a claim on a window, so that of two runners
    # refreshing one integration only one asks CircleCI for its export.
    (
        *(
            statement
            for guard in ALL_GUARDS
            for statement in (
                f"CREATE TABLE {guard} (version BIGINT NOT NULL, touched_at TIMESTAMP)",
                f"INSERT INTO {guard} VALUES (0, NULL)",
            )
        ),
        "ALTER TABLE import_windows ADD COLUMN claimed_by VARCHAR",
        "ALTER TABLE import_windows ADD COLUMN claimed_until TIMESTAMP",
    ),
)


# --- time ----------------------------------------------------------------------------------------


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _to_db(moment: datetime) -> datetime:
    """Timestamps are stored as naive UTC; a naive input is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def _maybe_to_db(moment: datetime | None) -> datetime | None:
    return None if moment is None else _to_db(moment)


def _from_db(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.replace(tzinfo=UTC)


def _required_from_db(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC)


# --- the writer lock and who holds it -----------------------------------------------------------

_LOCK_MESSAGE_RE: Final = re.compile(r"Conflicting lock is held in (.*?) \(PID (\d+)\)")
_process_state = threading.Lock()
_writers: dict[Path, int] = {}
_umask_users = 0
_saved_umask = 0


_path_locks: dict[Path, threading.RLock] = {}


def _process_writer_lock(path: Path) -> threading.RLock:
    with _process_state:
        return _path_locks.setdefault(path, threading.RLock())


def _is_lock_error(err: duckdb.Error) -> bool:
    return "Could not set lock" in str(err) or "Conflicting lock" in str(err)


@contextlib.contextmanager
def _private_files() -> Iterator[None]:
    """Files created meanwhile (the store, its WAL, spill files) are readable by the owner only.

    The umask is per process, so nested and concurrent writers share one saved value.
    """
    global _umask_users, _saved_umask
    with _process_state:
        if _umask_users == 0:
            _saved_umask = os.umask(0o077)
        _umask_users += 1
    try:
        yield
    finally:
        with _process_state:
            _umask_users -= 1
            if _umask_users == 0:
                os.umask(_saved_umask)


def _holder_file(path: Path) -> Path:
    return path.with_name(path.name + ".writer.json")


@contextlib.contextmanager
def _holding(path: Path, kind: str) -> Iterator[None]:
    """Records this process as the writer in `<store>.writer.json` while it holds the lock."""
    with _process_state:
        first = _writers.get(path, 0) == 0
        _writers[path] = _writers.get(path, 0) + 1
    if first:
        _write_holder(path, kind)
    try:
        yield
    finally:
        with _process_state:
            _writers[path] -= 1
            last = _writers[path] == 0
        if last:
            _remove_holder(path)


def _write_holder(path: Path, kind: str) -> None:
    record = {"pid": os.getpid(), "kind": kind, "started_at": _utc_now().isoformat()}
    temporary = _holder_file(path).with_suffix(f".{os.getpid()}.tmp")
    with contextlib.suppress(OSError):
        temporary.write_text(json.dumps(record), encoding="utf-8")
        temporary.replace(_holder_file(path))


def _remove_holder(path: Path) -> None:
    holder = _read_holder(path)
    if holder is not None and holder.get("pid") == os.getpid():
        with contextlib.suppress(OSError):
            _holder_file(path).unlink()


def _read_holder(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(_holder_file(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _in_process_writer(path: Path) -> bool:
    with _process_state:
        return _writers.get(path, 0) > 0


def _locked_error(path: Path, err: duckdb.Error, waited: float) -> StoreLocked:
    match = _LOCK_MESSAGE_RE.search(str(err))
    lock_pid = int(match.group(2)) if match else None
    holder = _read_holder(path)
    if holder is not None and (lock_pid is None or holder.get("pid") == lock_pid):
        since = str(holder.get("started_at", ""))[11:19]
        who = f"`{holder.get('kind')}` (pid {holder.get('pid')}, since {since}Z)"
    elif lock_pid is not None:
        who = f"another process (pid {lock_pid}, {match.group(1) if match else 'unknown'})"
    else:
        who = "another process"
    return StoreLocked(
        f"the store {path} is being written by {who}; waited {waited:.0f} s for it",
        hint="wait for it to finish or stop it, then retry",
    )


# --- errors at the boundary ---------------------------------------------------------------------


def _translated(path: str, err: duckdb.Error) -> StoreError:
    """The one place where DuckDB's errors become circlecost's, each with what to do next."""
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    if "not a valid DuckDB database" in text or "corrupt" in text.lower():
        return StoreCorrupt(
            f"the store {path} is damaged or not a circlecost store ({text})",
            hint="restore it from a backup, or move it aside and run `pulumi up` "
            "to create a new one (costs are then imported again)",
        )
    if isinstance(err, duckdb.ConstraintException):
        return StoreConflict(
            f"the store {path} refused a change that breaks one of its rules ({text})",
            hint="check that the integration, workspace or binding does not exist already",
        )
    if isinstance(err, duckdb.CatalogException):
        return StoreOutdated(
            f"the store {path} lacks part of its schema ({text})",
            hint="run `circlecost sync` or `pulumi up` once to upgrade it",
        )
    return StoreError(
        f"the store {path} failed: {text}",
        hint="retry; if it fails again, check the disk (space, permissions) and report it",
    )


# Every table with data, in the order `store copy` copies them (the guards and schema_version
# belong to each store itself).
COPIED_TABLES: Final = (
    "store_identity",
    "integrations",
    "prices",
    "import_windows",
    "export_jobs",
    "usage",
    "workspaces",
    "bindings",
    "principals",
    "quota_requests",
    "quota_blocks",
    "audit_log",
)
# What `store maintain` keeps by default: a week of snapshots (time travel), as DuckLake advises
# for files that a long read may still scan.
MAINTAIN_KEEP: Final = timedelta(days=7)


def _refuse_copy_into_used_store(con: duckdb.DuckDBPyConnection, name: str) -> None:
    for table in COPIED_TABLES[1:]:
        row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
        if row is not None and row[0] > 0:
            raise StoreConflict(
                f"the store {name} holds data already ({table} has {row[0]} rows)",
                hint="copy into a new, empty store; nothing was copied",
            )


def _copied_count(con: duckdb.DuckDBPyConnection, table: str, name: str) -> int:
    here = con.execute(f"SELECT count(*) FROM {table}").fetchone()
    there = con.execute(f"SELECT count(*) FROM copy_source.{table}").fetchone()
    if here != there or here is None:
        raise StoreError(
            f"copying {table} into {name} gave {here} rows where the source has {there}",
            hint="nothing was copied; retry, and report it if it happens again",
        )
    return int(here[0])


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# --- runs that lose a race on a shared store ---------------------------------------------------

# A transaction that lost a race runs again after a random pause that grows to CONFLICT_MAX_DELAY,
# for up to CONFLICT_BUDGET seconds: a long window load can lose to many short transactions.
CONFLICT_BUDGET: Final = 180.0
CONFLICT_FIRST_DELAY: Final = 0.02
CONFLICT_MAX_DELAY: Final = 2.0
# How many transactions lost a race and ran again, in this process (the concurrency test prints it).
conflict_retries = 0


class _CommitConflict(Exception):
    """Another runner committed a change to the same aggregate first; run the transaction again."""


def _retried(method: Callable[P, R]) -> Callable[P, R]:
    """Runs a Store method again (with a jittered, growing pause) when its transaction lost a
    race to another runner; after CONFLICT_ATTEMPTS tries, raises StoreConflict. The method must
    do nothing outside its one transaction that may not be done twice."""

    @functools.wraps(method)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        global conflict_retries
        delay = CONFLICT_FIRST_DELAY
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                return method(*args, **kwargs)
            except _CommitConflict as conflict:
                waited = time.monotonic() - started
                if waited >= CONFLICT_BUDGET:
                    raise StoreConflict(
                        f"{method.__name__} lost {attempt} races in {waited:.0f} s to other "
                        "runners writing the same store",
                        hint="retry; if it keeps happening, fewer runners should refresh at once",
                    ) from conflict
                with _process_state:
                    conflict_retries += 1
                time.sleep(random.uniform(delay / 2, delay))
                delay = min(delay * 2, CONFLICT_MAX_DELAY)

    return run


# --- the store ---------------------------------------------------------------------------------


class Store:
    """The cost store: an embedded DuckDB file or a shared DuckLake. Holds only its settings,
    never a connection."""

    def __init__(
        self,
        location: str | os.PathLike[str] | SharedStore,
        writer_kind: str = "circlecost",
        lock_timeout: float = 10.0,
        *,
        data_path: str | None = None,
    ) -> None:
        where = (
            location if isinstance(location, SharedStore) else parse_location(location, data_path)
        )
        self.shared: SharedStore | None = where if isinstance(where, SharedStore) else None
        self._path = None if isinstance(where, SharedStore) else where.absolute()
        self.writer_kind = writer_kind
        self.lock_timeout = lock_timeout

    def __repr__(self) -> str:
        return f"Store({self.name!r}, writer_kind={self.writer_kind!r})"

    @property
    def path(self) -> Path:
        """The file of an embedded store."""
        if self._path is None:
            raise StoreError(
                f"the shared store {self.name} has no file",
                hint="copy it to a file with `circlecost store copy` to work on one",
            )
        return self._path

    @property
    def location(self) -> Path | SharedStore:
        """What `Store(...)` takes to open this store again (in another process, say)."""
        return self.shared if self.shared is not None else self.path

    @property
    def name(self) -> str:
        """How messages name this store: its file, or a shared store's catalog (no password)."""
        return self.shared.name if self.shared is not None else str(self._path)

    def exists(self) -> bool:
        """Whether the store has been created (a shared store: initialised by `store init`)."""
        if self.shared is None:
            return self.path.exists()
        try:
            with self.reader() as con:
                return _schema_version(con) > 0
        except CatalogNotCreated:
            return False

    # --- connections and transactions ----------------------------------------------------------

    @contextlib.contextmanager
    def transaction(
        self, guards: Sequence[str] = ALL_GUARDS
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """A write transaction: committed if the block succeeds, rolled back on any error.

        `guards` names the aggregates it changes (all by default). On a shared store, losing a
        race to another runner raises `_CommitConflict`, which `_retried` methods run again.
        """
        with self._writer() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                # An embedded store has one writer at a time (its file lock): no races to guard.
                for guard in guards if self.shared is not None else ():
                    con.execute(
                        f"UPDATE {guard} SET version = version + 1, touched_at = ?",
                        [_to_db(_utc_now())],
                    )
                yield con
                con.commit()
            except BaseException as err:
                with contextlib.suppress(duckdb.Error):
                    con.rollback()
                if self.shared is not None and isinstance(err, duckdb.Error):
                    if is_commit_conflict(err):
                        raise _CommitConflict(str(err)) from err
                raise

    @contextlib.contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection for reports; it sees only committed data."""
        if self.shared is not None:
            with self._lake() as con:
                yield con
            return
        if not self.path.exists():
            raise NotFound(
                f"there is no store at {self.path}",
                hint="run `pulumi up` (or `circlecost sync`) to create and fill it",
            )
        try:
            # DuckDB refuses a read-only and a read-write connection to one file in one
            # process at once, so readers and writers of this process take turns; inside a
            # writer (same thread) the reader shares its read-write configuration.
            lock = _process_writer_lock(self.path)
            lock.acquire()
            try:
                con = self._connect(read_only=not _in_process_writer(self.path))
            except BaseException:
                lock.release()
                raise
            try:
                yield con
            finally:
                con.close()
                lock.release()
        except duckdb.Error as err:
            raise _translated(self.name, err) from err

    @contextlib.contextmanager
    def _writer(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if self.shared is not None:
            # Threads of one process take turns (Pulumi runs provider calls in parallel):
            # they would only conflict with each other. Other runners are DuckLake's business.
            with _process_writer_lock(Path(self.shared.name)), self._lake() as con:
                yield con
            return
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as err:
            raise StoreError(
                f"cannot create the folder of the store {self.path}: {err.strerror}",
                hint="choose a writable path with `pulumi config set circlecost:store PATH`",
            ) from err
        try:
            # One writer at a time within this process too: Pulumi runs provider calls in
            # parallel threads, and concurrent DuckDB transactions would conflict.
            with _process_writer_lock(self.path), _private_files():
                con = self._connect(read_only=False)
                try:
                    with _holding(self.path, self.writer_kind):
                        yield con
                finally:
                    con.close()
        except duckdb.Error as err:
            raise _translated(self.name, err) from err

    @contextlib.contextmanager
    def _lake(self) -> Iterator[duckdb.DuckDBPyConnection]:
        assert self.shared is not None
        try:
            with lake_connection(self.shared) as con:
                yield con
        except duckdb.Error as err:
            if is_commit_conflict(err):
                raise
            if isinstance(err, duckdb.CatalogException) and not self._initialised():
                raise self.not_initialised() from err
            if isinstance(
                err, duckdb.IOException | duckdb.ConnectionException | duckdb.HTTPException
            ):
                raise lake_unreachable(self.shared, err) from err
            raise _translated(self.name, err) from err

    def _initialised(self) -> bool:
        assert self.shared is not None
        with contextlib.suppress(duckdb.Error), lake_connection(self.shared) as con:
            return _schema_version(con) > 0
        return True  # cannot tell: let the original error speak

    def not_initialised(self) -> NotFound:
        return NotFound(
            f"there is no circlecost store in {self.name}",
            hint="create it once with `circlecost store init --owner NAME`, which names its "
            "first Organization Owner",
        )

    def _connect(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        started = time.monotonic()
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=read_only)
            except duckdb.IOException as err:
                waited = time.monotonic() - started
                if not _is_lock_error(err):
                    raise
                if waited >= self.lock_timeout:
                    raise _locked_error(self.path, err, waited) from err
                time.sleep(min(LOCK_RETRY_SECONDS, max(self.lock_timeout - waited, 0.01)))

    # --- schema --------------------------------------------------------------------------------

    def migrate(self) -> int:
        """Creates an embedded store or upgrades a store of either engine to the current schema,
        in one transaction; returns the schema version. A shared store must exist already
        (`initialize`): no run may create one by accident, with itself as its owner."""
        if self.shared is not None and not self.exists():
            raise self.not_initialised()
        return self._migrate()

    @_retried
    def initialize(self, owner: str) -> bool:
        """Creates the store (if new) with `owner` as its first Organization Owner. True if it
        created it; False if it was there already (then nothing changes)."""
        if self.exists():
            self._migrate()
            return False
        self._migrate()
        with self.transaction() as con:
            if con.execute("SELECT count(*) FROM principals").fetchone() != (0,):
                return False
            _insert_principal(con, owner, "Organization Owner", None)
            _audit(
                con,
                owner,
                "bootstrap",
                "principal",
                owner,
                {"role": [None, "Organization Owner"], "reason": "named by `store init`"},
            )
        return True

    @_retried
    def _migrate(self) -> int:
        with self.transaction(guards=()) as con:
            con.execute(
                "CREATE TABLE IF NOT EXISTS schema_version "
                "(version INTEGER NOT NULL, applied_at TIMESTAMP NOT NULL)"
            )
            current = _schema_version(con)
            if current > len(MIGRATIONS):
                raise StoreOutdated(
                    f"the store {self.name} has schema version {current}, newer than this "
                    f"circlecost knows ({len(MIGRATIONS)})",
                    hint="upgrade circlecost to the version that wrote the store",
                )
            now = _to_db(_utc_now())
            if current == 0:
                for step in _BASELINE:
                    con.execute(step)
                for version in range(1, BASELINE_VERSION + 1):
                    con.execute("INSERT INTO schema_version VALUES (?, ?)", [version, now])
                current = BASELINE_VERSION
            for version in range(current + 1, len(MIGRATIONS) + 1):
                for step in MIGRATIONS[version - 1]:
                    con.execute(step)
                con.execute("INSERT INTO schema_version VALUES (?, ?)", [version, now])
            return len(MIGRATIONS)

    def schema_version(self) -> int:
        with self.reader() as con:
            return _schema_version(con)

    def identity(self) -> str:
        """The UUID this store was given when it was created (or upgraded to schema 3)."""
        with self.reader() as con:
            row = con.execute("SELECT id FROM store_identity").fetchone()
        if row is None:
            raise StoreError(
                f"the store {self.name} has no identity",
                hint="open it once with this version of circlecost (it migrates the store)",
            )
        return str(row[0])

    # --- keeping and moving a store ------------------------------------------------------------

    @_retried
    def maintain(self, keep: timedelta = MAINTAIN_KEEP) -> dict[str, int]:
        """Frees what old versions hold: on a shared store, expires snapshots older than `keep`
        (no time travel before then) and deletes the data files only they used; an embedded
        store is checkpointed. `keep` of zero removes every file no longer in use."""
        if self.shared is None:
            with self._writer() as con:
                con.execute("CHECKPOINT")
            return {"snapshots_expired": 0, "files_removed": 0}
        cutoff = f"now() - INTERVAL '{int(keep.total_seconds())} seconds'"
        with self._writer() as con:
            try:
                expired = con.execute(
                    f"CALL ducklake_expire_snapshots('{LAKE_ALIAS}', older_than => {cutoff})"
                ).fetchall()
                cleanup = "cleanup_all => true" if not keep else f"older_than => {cutoff}"
                removed = con.execute(
                    f"CALL ducklake_cleanup_old_files('{LAKE_ALIAS}', {cleanup})"
                ).fetchall()
            except duckdb.Error as err:
                if is_commit_conflict(err):
                    raise _CommitConflict(str(err)) from err
                raise
        return {"snapshots_expired": len(expired), "files_removed": len(removed)}

    def copy_from(self, source: Store) -> dict[str, int]:
        """Copies every table of the embedded store `source` into this store, which must be new
        or empty, in one transaction; row counts are compared before it commits. The copy keeps
        the source's identity, so Pulumi stacks recorded against it go on working."""
        if source.shared is not None:
            raise StoreError(
                f"the store {source.name} to copy from is shared",
                hint="copy from an embedded store's file (--from PATH)",
            )
        if not source.path.exists():
            raise NotFound(
                f"there is no store at {source.path}", hint="give the file to copy with --from"
            )
        source.migrate()
        self._migrate()
        counts: dict[str, int] = {}
        with self._writer() as con:
            con.execute(f"ATTACH {_sql_text(str(source.path))} AS copy_source (READ_ONLY)")
            try:
                con.execute("BEGIN TRANSACTION")
                try:
                    _refuse_copy_into_used_store(con, self.name)
                    con.execute("DELETE FROM store_identity")
                    for table in COPIED_TABLES:
                        con.execute(
                            f"INSERT INTO {table} BY NAME SELECT * FROM copy_source.{table}"
                        )
                        counts[table] = _copied_count(con, table, self.name)
                    con.commit()
                except BaseException:
                    with contextlib.suppress(duckdb.Error):
                        con.rollback()
                    raise
            finally:
                with contextlib.suppress(duckdb.Error):
                    con.execute("DETACH copy_source")
        return counts

    # --- integrations --------------------------------------------------------------------------

    @_retried
    def insert_integration(
        self,
        organization_id: str,
        token_fingerprint: str,
        *,
        organization_name: str | None = None,
        description: str = "",
        token_user: str | None = None,
        token_rotated_at: datetime | None = None,
        token_expires_on: date | None = None,
        backfill_months: int = 3,
        base_price: Decimal = LIST_PRICE,
        price_schedule: Sequence[tuple[date, Decimal]] = (),
        integration_id: str | None = None,
        actor: str | None = None,
        created_by_stack: str | None = None,
    ) -> Integration:
        """Records a new integration with its prices, in one transaction."""
        new_id = integration_id or str(uuid.uuid4())
        now = _to_db(_utc_now())
        with self.transaction() as con:
            _refuse_second_integration(con, organization_id)
            con.execute(
                "INSERT INTO integrations (id, organization_id, organization_name, description, "
                "token_fingerprint, token_user, token_rotated_at, token_expires_on, "
                "backfill_months, created_at, updated_at, created_by_stack) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    new_id,
                    organization_id,
                    organization_name,
                    description,
                    token_fingerprint,
                    token_user,
                    _maybe_to_db(token_rotated_at),
                    token_expires_on,
                    backfill_months,
                    now,
                    now,
                    created_by_stack,
                ],
            )
            _replace_prices(con, new_id, base_price, price_schedule)
            integration = _integration(con, new_id)
            if actor is not None:
                _audit(con, actor, "create", "integration", new_id, _public(integration))
            return integration

    @_retried
    def update_integration(
        self, integration_id: str, *, actor: str | None = None, **fields: Any
    ) -> Integration:
        """Changes the given fields (see INTEGRATION_FIELDS) and returns the new record."""
        _check_integration_fields(fields)
        with self.transaction() as con:
            before = _integration(con, integration_id)
            assignments = ", ".join(f"{name} = ?" for name in fields)
            values = [_db_value(value) for value in fields.values()]
            con.execute(
                f"UPDATE integrations SET {assignments}, updated_at = ? WHERE id = ?",
                [*values, _to_db(_utc_now()), integration_id],
            )
            after = _integration(con, integration_id)
            if actor is not None:
                _audit(
                    con,
                    actor,
                    "update",
                    "integration",
                    integration_id,
                    _changed(_public(before), _public(after)),
                )
            return after

    def get_integration(self, integration_id: str) -> Integration | None:
        return self._one_integration("id = ?", integration_id)

    def get_integration_by_org(self, organization_id: str) -> Integration | None:
        return self._one_integration("organization_id = ?", organization_id)

    def find_integration_by_fingerprint(self, fingerprint: str) -> Integration | None:
        return self._one_integration("token_fingerprint = ?", fingerprint)

    def list_integrations(self) -> list[Integration]:
        with self.reader() as con:
            rows = con.execute(f"{_INTEGRATION_SELECT} ORDER BY created_at, id").fetchall()
        return [_integration_from_row(row) for row in rows]

    def _one_integration(self, condition: str, value: str) -> Integration | None:
        with self.reader() as con:
            row = con.execute(
                f"{_INTEGRATION_SELECT} WHERE {condition} ORDER BY created_at LIMIT 1", [value]
            ).fetchone()
        return None if row is None else _integration_from_row(row)

    @_retried
    def set_import_status(self, integration_id: str, status: str, detail: str) -> None:
        with self.transaction((GUARD_CATALOG,)) as con:
            _require_integration(con, integration_id)
            con.execute(
                "UPDATE integrations SET status = ?, status_detail = ?, updated_at = ? "
                "WHERE id = ?",
                [status, detail, _to_db(_utc_now()), integration_id],
            )

    @_retried
    def purge_integration(self, integration_id: str, *, actor: str | None = None) -> dict[str, int]:
        """Deletes the integration with every usage row, ledger entry, price and binding."""
        with self.transaction() as con:
            integration = _integration(con, integration_id)
            removed = {
                table: _delete_count(con, table, "integration_id = ?", integration_id)
                for table in ("usage", "export_jobs", "import_windows", "prices", "bindings")
            }
            removed["integrations"] = _delete_count(con, "integrations", "id = ?", integration_id)
            if actor is not None:
                _audit(
                    con,
                    actor,
                    "delete",
                    "integration",
                    integration_id,
                    {"organization_id": integration.organization_id, "removed": removed},
                )
            return removed

    # --- prices --------------------------------------------------------------------------------

    @_retried
    def set_prices(
        self,
        integration_id: str,
        base_price: Decimal,
        schedule: Sequence[tuple[date, Decimal]] = (),
        *,
        actor: str | None = None,
    ) -> list[Price]:
        """Replaces all prices of the integration: the base price and the dated overrides."""
        with self.transaction() as con:
            _require_integration(con, integration_id)
            before = _prices(con, integration_id)
            _replace_prices(con, integration_id, base_price, schedule)
            after = _prices(con, integration_id)
            if actor is not None and before != after:
                _audit(
                    con,
                    actor,
                    "set_prices",
                    "integration",
                    integration_id,
                    {"prices": [[_price_json(p) for p in before], [_price_json(p) for p in after]]},
                )
            return after

    def get_prices(self, integration_id: str) -> list[Price]:
        with self.reader() as con:
            return _prices(con, integration_id)

    # --- the import ledger ---------------------------------------------------------------------

    @_retried
    def plan_windows(self, integration_id: str, windows: Iterable[Window]) -> list[Window]:
        """Adds the windows not yet in the ledger (keyed by start); returns the new ones."""
        given = list(windows)
        for window in given:
            _check_window(window)
        wanted = sorted(set(given))
        with self.transaction((GUARD_LEDGER,)) as con:
            _require_integration(con, integration_id)
            known = _window_starts(con, integration_id)
            new = [window for window in wanted if _to_db(window.start) not in known]
            for window in new:
                con.execute(
                    "INSERT INTO import_windows (integration_id, window_start, window_end) "
                    "VALUES (?, ?, ?)",
                    [integration_id, _to_db(window.start), _to_db(window.end)],
                )
            return new

    @_retried
    def reopen_window(self, integration_id: str, window: Window) -> None:
        """Plans a window again (daily refresh); its rows stay until a new load replaces them.

        A window whose export job is still in flight keeps it (and its bounds): a refresh that
        follows a crash continues that job instead of spending quota on a duplicate.
        """
        _check_window(window)
        with self.transaction((GUARD_LEDGER,)) as con:
            _require_integration(con, integration_id)
            start, end = _to_db(window.start), _to_db(window.end)
            state = _window_state(con, integration_id, start)
            if state is None:
                con.execute(
                    "INSERT INTO import_windows (integration_id, window_start, window_end) "
                    "VALUES (?, ?, ?)",
                    [integration_id, start, end],
                )
            elif state != "requested":
                con.execute(
                    "UPDATE import_windows SET window_end = ?, state = 'planned', attempts = 0, "
                    "last_error = NULL, current_job_id = NULL, claimed_by = NULL, "
                    "claimed_until = NULL WHERE integration_id = ? AND window_start = ?",
                    [end, integration_id, start],
                )

    def list_windows(self, integration_id: str) -> list[ImportWindow]:
        with self.reader() as con:
            rows = con.execute(
                f"{_WINDOW_SELECT} WHERE integration_id = ? ORDER BY window_start",
                [integration_id],
            ).fetchall()
        return [_window_from_row(row) for row in rows]

    def open_windows(self, integration_id: str) -> list[WindowTask]:
        """Windows still to load (planned or requested), oldest first, with their current job."""
        with self.reader() as con:
            rows = con.execute(
                "SELECT w.window_start, w.window_end, j.job_id, j.state, j.next_poll_at, "
                "w.attempts, j.error_reason FROM import_windows AS w "
                "LEFT JOIN export_jobs AS j ON j.job_id = w.current_job_id "
                "WHERE w.integration_id = ? AND w.state IN ('planned', 'requested') "
                "ORDER BY w.window_start",
                [integration_id],
            ).fetchall()
        return [
            WindowTask(
                Window(_required_from_db(start), _required_from_db(end)),
                job_id,
                job_state,
                _from_db(next_poll_at),
                int(attempts),
                error_reason,
            )
            for start, end, job_id, job_state, next_poll_at, attempts, error_reason in rows
        ]

    def window_counts(self, integration_id: str) -> dict[str, int]:
        """How many windows are loaded, open (planned or requested) and failed for good."""
        with self.reader() as con:
            rows = con.execute(
                "SELECT CASE WHEN state IN ('planned', 'requested') THEN 'open' ELSE state END, "
                "count(*) FROM import_windows WHERE integration_id = ? GROUP BY ALL",
                [integration_id],
            ).fetchall()
        counts = {"loaded": 0, "open": 0, "failed": 0}
        counts.update({str(state): int(count) for state, count in rows})
        return counts

    @_retried
    def claim_window(
        self,
        integration_id: str,
        window: Window,
        claimant: str,
        now: datetime,
        hold: timedelta,
        current_job_id: str | None,
        abandoned: Callable[[str], bool] = lambda _holder: False,
    ) -> datetime | None:
        """Claims the window for asking CircleCI for its export: None when `claimant` holds it
        now, else when to look again (another run holds it, or recorded a job since the caller
        read the ledger). Of two runners refreshing one integration only one may POST.
        `abandoned(holder)` says whether another holder is known to be gone (a killed process
        of this machine): its claim is taken over at once instead of when it runs out."""
        with self.transaction((GUARD_LEDGER,)) as con:
            row = con.execute(
                "SELECT claimed_by, claimed_until, current_job_id FROM import_windows "
                "WHERE integration_id = ? AND window_start = ?",
                [integration_id, _to_db(window.start)],
            ).fetchone()
            if row is None:
                raise NotFound(
                    f"the window {window} of integration {integration_id} is not in the ledger",
                    hint="plan it with plan_windows first",
                )
            holder, until, job_id = row[0], _from_db(row[1]), row[2]
            if job_id != current_job_id:
                return now
            held = holder not in (None, claimant) and until is not None and until > now
            if held and not abandoned(str(holder)):
                return until
            con.execute(
                "UPDATE import_windows SET claimed_by = ?, claimed_until = ? "
                "WHERE integration_id = ? AND window_start = ?",
                [claimant, _to_db(now + hold), integration_id, _to_db(window.start)],
            )
            return None

    @_retried
    def release_window(self, integration_id: str, window: Window, claimant: str) -> None:
        """Gives up a claim that did not lead to an export job (no quota, CircleCI failed)."""
        with self.transaction((GUARD_LEDGER,)) as con:
            con.execute(
                "UPDATE import_windows SET claimed_by = NULL, claimed_until = NULL "
                "WHERE integration_id = ? AND window_start = ? AND claimed_by = ?",
                [integration_id, _to_db(window.start), claimant],
            )

    @_retried
    def record_job(
        self, integration_id: str, window: Window, job_id: str, created_at: datetime
    ) -> None:
        """Writes a new CircleCI export job to the ledger; call it before polling the job."""
        with self.transaction((GUARD_LEDGER,)) as con:
            _require_integration(con, integration_id)
            start, end = _to_db(window.start), _to_db(window.end)
            known = con.execute(
                "SELECT count(*) FROM export_jobs WHERE job_id = ?", [job_id]
            ).fetchone()
            if known != (0,):
                raise StoreConflict(
                    f"the export job {job_id} is in the ledger of {self.name} already",
                    hint="record each CircleCI export job once",
                )
            con.execute(
                "INSERT INTO export_jobs (job_id, integration_id, window_start, window_end, "
                "created_at) VALUES (?, ?, ?, ?, ?)",
                [job_id, integration_id, start, end, _to_db(created_at)],
            )
            if _window_state(con, integration_id, start) is None:
                con.execute(
                    "INSERT INTO import_windows (integration_id, window_start, window_end, "
                    "state, attempts, current_job_id) VALUES (?, ?, ?, 'requested', 1, ?)",
                    [integration_id, start, end, job_id],
                )
            else:
                con.execute(
                    "UPDATE import_windows SET state = 'requested', window_end = ?, "
                    "attempts = attempts + 1, current_job_id = ?, claimed_by = NULL, "
                    "claimed_until = NULL WHERE integration_id = ? AND window_start = ?",
                    [end, job_id, integration_id, start],
                )

    @_retried
    def update_job(
        self,
        job_id: str,
        state: str,
        polled_at: datetime,
        next_poll_at: datetime | None,
        error_reason: str | None = None,
    ) -> None:
        """Records what CircleCI said about a job (or that it was loaded) and when to look again."""
        with self.transaction((GUARD_LEDGER,)) as con:
            updated = con.execute(
                "UPDATE export_jobs SET state = ?, "
                "polls = polls + CASE WHEN ? > created_at THEN 1 ELSE 0 END, "
                "last_polled_at = ?, next_poll_at = ?, "
                "error_reason = coalesce(?, error_reason), "
                "download_completed = download_completed OR ? = 'loaded' "
                "WHERE job_id = ?",
                [
                    state,
                    _to_db(polled_at),
                    _to_db(polled_at),
                    _maybe_to_db(next_poll_at),
                    error_reason,
                    state,
                    job_id,
                ],
            ).fetchall()
            if _affected(updated) == 0:
                raise NotFound(
                    f"the export job {job_id} is not in the ledger of {self.name}",
                    hint="record it with record_job before polling it",
                )

    def get_job(self, job_id: str) -> ExportJob | None:
        with self.reader() as con:
            row = con.execute(f"{_JOB_SELECT} WHERE job_id = ?", [job_id]).fetchone()
        return None if row is None else _job_from_row(row)

    def list_jobs(self, integration_id: str) -> list[ExportJob]:
        with self.reader() as con:
            rows = con.execute(
                f"{_JOB_SELECT} WHERE integration_id = ? ORDER BY created_at, job_id",
                [integration_id],
            ).fetchall()
        return [_job_from_row(row) for row in rows]

    @_retried
    def fail_window(self, integration_id: str, window: Window, error: str, final: bool) -> None:
        """Notes why a window could not be loaded; `final` stops further attempts."""
        with self.transaction((GUARD_LEDGER,)) as con:
            con.execute(
                "UPDATE import_windows SET last_error = ?, "
                "state = CASE WHEN ? THEN 'failed' ELSE state END "
                "WHERE integration_id = ? AND window_start = ?",
                [error, final, integration_id, _to_db(window.start)],
            )

    def load_window(
        self, integration_id: str, window: Window, job_id: str | None, part_files: Sequence[Path]
    ) -> LoadResult:
        """Replaces the window's usage rows with the parts' rows and marks it loaded, atomically."""
        return self.replace_window_rows(integration_id, window, job_id, part_files)

    @_retried
    def replace_window_rows(
        self,
        integration_id: str,
        window: Window,
        export_job_id: str | None,
        part_files: Sequence[Path],
    ) -> LoadResult:
        """In one transaction: delete the window's rows, load every part, mark the window loaded.

        A failure anywhere (a bad line, a full disk, a crash) leaves the previous rows intact.
        """
        target = csvload.Target(
            integration_id, _to_db(window.start), export_job_id, _to_db(_utc_now())
        )
        with self.transaction((GUARD_LEDGER,)) as con:
            _require_integration(con, integration_id)
            csvload.tune_for_load(con)
            con.execute(
                "DELETE FROM usage WHERE integration_id = ? AND window_start = ?",
                [integration_id, target.window_start],
            )
            faultpoints.reached("mid_insert")
            result = csvload.load_parts(con, list(part_files), target)
            faultpoints.reached("before_mark_loaded")
            _mark_loaded(con, integration_id, window, export_job_id, result, target.loaded_at)
            return result

    # --- quota ---------------------------------------------------------------------------------

    @_retried
    def record_request(self, org_id: str, kind: str, at: datetime) -> None:
        with self.transaction((GUARD_QUOTA,)) as con:
            _insert_request(con, org_id, kind, at)

    def count_requests(self, org_id: str, kind: str, since: datetime) -> int:
        with self.reader() as con:
            return _count_requests(con, org_id, kind, since)

    def oldest_request_since(self, org_id: str, kind: str, since: datetime) -> datetime | None:
        with self.reader() as con:
            return _oldest_request_since(con, org_id, kind, since)

    @_retried
    def take_request_slot(
        self, org_id: str, kind: str, now: datetime, per_hour: int
    ) -> datetime | None:
        """Counts a request now if the hourly budget allows it (None); else when a slot frees."""
        with self.transaction((GUARD_QUOTA,)) as con:
            blocked_until = _blocked_until(con, org_id, now)
            if blocked_until is not None:
                return blocked_until
            since = now - QUOTA_PERIOD
            if _count_requests(con, org_id, kind, since) < per_hour:
                _insert_request(con, org_id, kind, now)
                _forget_old_requests(con, now)
                return None
            oldest = _oldest_request_since(con, org_id, kind, since)
            return (oldest or now) + QUOTA_PERIOD

    @_retried
    def block_requests(self, org_id: str, until: datetime) -> None:
        """CircleCI said 429: no request for this organization before `until`."""
        with self.transaction((GUARD_QUOTA,)) as con:
            con.execute("INSERT INTO quota_blocks VALUES (?, ?)", [org_id, _to_db(until)])

    # --- workspaces and bindings ---------------------------------------------------------------

    @_retried
    def create_workspace(
        self,
        name: str,
        description: str = "",
        *,
        workspace_id: str | None = None,
        actor: str | None = None,
    ) -> Workspace:
        new_id = workspace_id or str(uuid.uuid4())
        with self.transaction() as con:
            if _workspace_row(con, "name = ?", name) is not None:
                raise StoreConflict(
                    f"a workspace named {name!r} exists already",
                    hint="choose another name, or import the existing workspace",
                )
            con.execute(
                "INSERT INTO workspaces VALUES (?, ?, ?, ?)",
                [new_id, name, description, _to_db(_utc_now())],
            )
            workspace = _workspace(con, new_id)
            if actor is not None:
                _audit(
                    con,
                    actor,
                    "create",
                    "workspace",
                    new_id,
                    {"name": name, "description": description},
                )
            return workspace

    @_retried
    def update_workspace(
        self,
        workspace_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        actor: str | None = None,
    ) -> Workspace:
        with self.transaction() as con:
            before = _workspace(con, workspace_id)
            same_name = None if name is None else _workspace_row(con, "name = ?", name)
            if same_name is not None and same_name.id != workspace_id:
                raise StoreConflict(
                    f"a workspace named {name!r} exists already",
                    hint="choose another name",
                )
            con.execute(
                "UPDATE workspaces SET name = coalesce(?, name), "
                "description = coalesce(?, description) WHERE id = ?",
                [name, description, workspace_id],
            )
            after = _workspace(con, workspace_id)
            if actor is not None:
                _audit(
                    con,
                    actor,
                    "update",
                    "workspace",
                    workspace_id,
                    _changed(_public(before), _public(after)),
                )
            return after

    @_retried
    def delete_workspace(self, workspace_id: str, *, actor: str | None = None) -> None:
        """Deletes the workspace and its bindings (the costs stay with their integrations)."""
        with self.transaction() as con:
            workspace = _workspace(con, workspace_id)
            unbound = _delete_count(con, "bindings", "workspace_id = ?", workspace_id)
            _delete_count(con, "workspaces", "id = ?", workspace_id)
            if actor is not None:
                _audit(
                    con,
                    actor,
                    "delete",
                    "workspace",
                    workspace_id,
                    {"name": workspace.name, "bindings_removed": unbound},
                )

    def get_workspace(self, workspace_id: str) -> Workspace | None:
        with self.reader() as con:
            return _workspace_row(con, "id = ?", workspace_id)

    def get_workspace_by_name(self, name: str) -> Workspace | None:
        with self.reader() as con:
            return _workspace_row(con, "name = ?", name)

    def list_workspaces(self) -> list[Workspace]:
        with self.reader() as con:
            rows = con.execute(f"{_WORKSPACE_SELECT} ORDER BY name").fetchall()
        return [_workspace_from_row(row) for row in rows]

    @_retried
    def bind(self, workspace_id: str, integration_id: str, *, actor: str | None = None) -> Binding:
        with self.transaction() as con:
            _workspace(con, workspace_id)
            _require_integration(con, integration_id)
            bound = con.execute(
                "SELECT count(*) FROM bindings WHERE workspace_id = ? AND integration_id = ?",
                [workspace_id, integration_id],
            ).fetchone()
            if bound == (0,):
                con.execute(
                    "INSERT INTO bindings VALUES (?, ?, ?)",
                    [workspace_id, integration_id, _to_db(_utc_now())],
                )
            if actor is not None:
                _audit(
                    con,
                    actor,
                    "bind",
                    "binding",
                    f"{workspace_id}/{integration_id}",
                    {"workspace_id": workspace_id, "integration_id": integration_id},
                )
            return _bindings(
                con, "workspace_id = ? AND integration_id = ?", [workspace_id, integration_id]
            )[0]

    @_retried
    def unbind(self, workspace_id: str, integration_id: str, *, actor: str | None = None) -> bool:
        with self.transaction() as con:
            removed = _delete_count(
                con,
                "bindings",
                "workspace_id = ? AND integration_id = ?",
                workspace_id,
                integration_id,
            )
            if actor is not None and removed:
                _audit(
                    con,
                    actor,
                    "unbind",
                    "binding",
                    f"{workspace_id}/{integration_id}",
                    {"workspace_id": workspace_id, "integration_id": integration_id},
                )
            return removed > 0

    def list_bindings(
        self, *, workspace_id: str | None = None, integration_id: str | None = None
    ) -> list[Binding]:
        with self.reader() as con:
            return _bindings(
                con,
                "(? IS NULL OR workspace_id = ?) AND (? IS NULL OR integration_id = ?)",
                [workspace_id, workspace_id, integration_id, integration_id],
            )

    def workspace_integration_ids(self, workspace_id: str) -> list[str]:
        return [b.integration_id for b in self.list_bindings(workspace_id=workspace_id)]

    # --- principals and roles ------------------------------------------------------------------

    @_retried
    def grant_role(self, actor: str, role: str, *, granted_by: str | None = None) -> Principal:
        _check_role(role)
        with self.transaction() as con:
            before = _principal(con, actor)
            _delete_count(con, "principals", "actor = ?", actor)
            _insert_principal(con, actor, role, granted_by)
            if granted_by is not None:
                _audit(
                    con,
                    granted_by,
                    "grant",
                    "principal",
                    actor,
                    {"role": [before.role if before else None, role]},
                )
            principal = _principal(con, actor)
            assert principal is not None
            return principal

    @_retried
    def revoke_role(self, actor: str, *, revoked_by: str | None = None) -> bool:
        with self.transaction() as con:
            before = _principal(con, actor)
            if before is None:
                return False
            _delete_count(con, "principals", "actor = ?", actor)
            if revoked_by is not None:
                _audit(con, revoked_by, "revoke", "principal", actor, {"role": [before.role, None]})
            return True

    @_retried
    def ensure_first_owner(self, actor: str) -> bool:
        """On an embedded store without principals, makes `actor` its Organization Owner (True
        if so). A shared store never does: its owner is named by `circlecost store init`."""
        if self.shared is not None:
            return False
        with self.transaction() as con:
            row = con.execute("SELECT count(*) FROM principals").fetchone()
            if row is None or row[0] > 0:
                return False
            _insert_principal(con, actor, "Organization Owner", None)
            _audit(
                con,
                actor,
                "bootstrap",
                "principal",
                actor,
                {"role": [None, "Organization Owner"], "reason": "first actor of a new store"},
            )
            return True

    def get_role(self, actor: str) -> str | None:
        with self.reader() as con:
            principal = _principal(con, actor)
        return None if principal is None else principal.role

    def list_principals(self) -> list[Principal]:
        with self.reader() as con:
            rows = con.execute(f"{_PRINCIPAL_SELECT} ORDER BY actor").fetchall()
        return [_principal_from_row(row) for row in rows]

    # --- audit ---------------------------------------------------------------------------------

    @_retried
    def record_audit(
        self,
        actor: str,
        action: str,
        object_type: str,
        object_id: str,
        changes: Mapping[str, Any],
    ) -> None:
        with self.transaction() as con:
            _audit(con, actor, action, object_type, object_id, changes)

    def list_audit(
        self,
        *,
        object_type: str | None = None,
        object_id: str | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        with self.reader() as con:
            rows = con.execute(
                "SELECT id, recorded_at, actor, action, object_type, object_id, changes "
                "FROM audit_log "
                "WHERE (? IS NULL OR object_type = ?) AND (? IS NULL OR object_id = ?) "
                "ORDER BY id DESC LIMIT ?",
                [object_type, object_type, object_id, object_id, limit],
            ).fetchall()
        return [
            AuditEntry(int(i), _required_from_db(at), actor, action, kind, oid, json.loads(ch))
            for i, at, actor, action, kind, oid, ch in rows
        ]

    # --- costs ---------------------------------------------------------------------------------

    def cost_totals(
        self,
        group_by: Sequence[str],
        date_from: date | None = None,
        date_to: date | None = None,
        integration_ids: Sequence[str] | None = None,
        *,
        where: str | None = None,
        where_params: Sequence[Any] = (),
    ) -> dict[str, Any]:
        """Credits and USD per combination of `group_by` dimensions, and the grand total.

        Dimensions come from DIMENSIONS (`tag:circleci:<name>` for tags); values are bound.
        `where` is a condition over the costs view compiled by provider.vql, with its params.
        """
        columns = [_dimension_column(name) for name in group_by]
        condition, params = _cost_condition(
            date_from, date_to, integration_ids, where, where_params
        )
        selected = ", ".join(f'"{column}"' for column in columns)
        with self.reader() as con:
            rows = con.execute(
                f"SELECT {selected + ', ' if columns else ''}"
                "sum(credits), sum(amount_usd) FROM costs "
                f"WHERE {condition} {'GROUP BY ALL ORDER BY ALL' if columns else ''}",
                params,
            ).fetchall()
        return _totals(group_by, rows)

    def integration_summary(self, integration_id: str) -> dict[str, Any]:
        """The figures an Integration resource reports: line items, credits, USD, date range."""
        with self.reader() as con:
            row = con.execute(
                "SELECT count(*), coalesce(sum(credits), 0), coalesce(sum(amount_usd), 0), "
                "min(date), max(date) FROM costs WHERE integration_id = ?",
                [integration_id],
            ).fetchone()
        assert row is not None
        line_items, credits, usd, first, last = row
        return {
            "line_items": int(line_items),
            "total_credits": Decimal(credits),
            "total_cost_usd": Decimal(usd),
            "imported_from": first,
            "imported_through": last,
        }


# --- SQL helpers (module level so that transactions can compose them) ----------------------------

_INTEGRATION_SELECT: Final = (
    "SELECT id, organization_id, organization_name, description, token_fingerprint, token_user, "
    "token_rotated_at, token_expires_on, backfill_months, status, status_detail, created_at, "
    "updated_at, last_refresh_at, created_by_stack FROM integrations"
)
_WINDOW_SELECT: Final = (
    "SELECT integration_id, window_start, window_end, state, rows, total_mismatch_rows, "
    "loaded_at, attempts, last_error, current_job_id FROM import_windows"
)
_JOB_SELECT: Final = (
    "SELECT job_id, integration_id, window_start, window_end, created_at, state, polls, "
    "last_polled_at, next_poll_at, download_completed, error_reason FROM export_jobs"
)
_WORKSPACE_SELECT: Final = "SELECT id, name, description, created_at FROM workspaces"
_PRINCIPAL_SELECT: Final = "SELECT actor, role, granted_by, granted_at FROM principals"


def _schema_version(con: duckdb.DuckDBPyConnection) -> int:
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() "
        "WHERE table_name = 'schema_version' AND database_name = current_database()"
    ).fetchone()
    if exists is None or exists[0] == 0:
        return 0
    row = con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
    return 0 if row is None else int(row[0])


def _integration_from_row(row: tuple[Any, ...]) -> Integration:
    (
        id_,
        org,
        org_name,
        description,
        fingerprint,
        user,
        rotated,
        expires,
        backfill,
        status,
        detail,
        created,
        updated,
        refreshed,
        created_by_stack,
    ) = row
    return Integration(
        id_,
        org,
        org_name,
        description,
        fingerprint,
        user,
        _from_db(rotated),
        expires,
        int(backfill),
        status,
        detail,
        _required_from_db(created),
        _required_from_db(updated),
        _from_db(refreshed),
        created_by_stack,
    )


def _integration(con: duckdb.DuckDBPyConnection, integration_id: str) -> Integration:
    row = con.execute(f"{_INTEGRATION_SELECT} WHERE id = ?", [integration_id]).fetchone()
    if row is None:
        raise NotFound(
            f"there is no integration {integration_id} in the store",
            hint="check the id with `circlecost status`; it may have been deleted",
        )
    return _integration_from_row(row)


def _require_integration(con: duckdb.DuckDBPyConnection, integration_id: str) -> None:
    _integration(con, integration_id)


def _refuse_second_integration(con: duckdb.DuckDBPyConnection, organization_id: str) -> None:
    row = con.execute(
        "SELECT id FROM integrations WHERE organization_id = ?", [organization_id]
    ).fetchone()
    if row is not None:
        raise StoreConflict(
            f"organization {organization_id} already has an integration ({row[0]})",
            hint="keep one Integration per organization: change the existing one, "
            "or delete it before creating another",
        )


def _check_integration_fields(fields: Mapping[str, Any]) -> None:
    if "token" in fields:
        raise ValueError("the store never keeps a token: pass token_fingerprint instead")
    unknown = sorted(set(fields) - set(INTEGRATION_FIELDS))
    if unknown:
        raise ValueError(f"cannot update {', '.join(unknown)}; updatable: {INTEGRATION_FIELDS}")
    if "status" in fields and fields["status"] not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, not {fields['status']!r}")


def _db_value(value: Any) -> Any:
    return _to_db(value) if isinstance(value, datetime) else value


def _public(record: Any) -> dict[str, Any]:
    """A record's fields for the audit log (dataclass fields; never a token)."""
    return {name: getattr(record, name) for name in record.__dataclass_fields__}


def _changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    return {
        key: [before.get(key), after.get(key)]
        for key in after
        if before.get(key) != after.get(key) and key != "updated_at"
    }


def _audit(
    con: duckdb.DuckDBPyConnection,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    changes: Mapping[str, Any],
) -> None:
    # Ids count up without a sequence (DuckLake has none): every transaction that writes the
    # audit log holds the catalog guard, so no two runners can take the same next id.
    con.execute(
        "INSERT INTO audit_log (id, recorded_at, actor, action, object_type, object_id, changes) "
        "SELECT coalesce(max(id), 0) + 1, ?, ?, ?, ?, ?, ? FROM audit_log",
        [
            _to_db(_utc_now()),
            actor,
            action,
            object_type,
            object_id,
            json.dumps(_redacted(changes), default=str, sort_keys=True),
        ],
    )


def _redacted(changes: Mapping[str, Any]) -> dict[str, Any]:
    return {
        key: "[redacted]" if key.lower() in SECRET_KEYS else value for key, value in changes.items()
    }


def _delete_count(con: duckdb.DuckDBPyConnection, table: str, condition: str, *values: Any) -> int:
    """Deletes matching rows of a table named by this module; returns how many."""
    return _affected(con.execute(f"DELETE FROM {table} WHERE {condition}", list(values)).fetchall())


def _affected(result: list[tuple[Any, ...]]) -> int:
    """The row count that DELETE and UPDATE return (on both engines: no RETURNING in DuckLake)."""
    return int(result[0][0]) if result else 0


def _window_state(
    con: duckdb.DuckDBPyConnection, integration_id: str, start: datetime
) -> str | None:
    row = con.execute(
        "SELECT state FROM import_windows WHERE integration_id = ? AND window_start = ?",
        [integration_id, start],
    ).fetchone()
    return None if row is None else str(row[0])


def _insert_principal(
    con: duckdb.DuckDBPyConnection, actor: str, role: str, granted_by: str | None
) -> None:
    con.execute(
        "INSERT INTO principals VALUES (?, ?, ?, ?)", [actor, role, granted_by, _to_db(_utc_now())]
    )


def _replace_prices(
    con: duckdb.DuckDBPyConnection,
    integration_id: str,
    base_price: Decimal,
    schedule: Sequence[tuple[date, Decimal]],
) -> None:
    dated = [(BASE_PRICE_DATE, Decimal(base_price))]
    dated += [(day, Decimal(price)) for day, price in schedule]
    _check_prices(dated)
    con.execute("DELETE FROM prices WHERE integration_id = ?", [integration_id])
    con.executemany(
        "INSERT INTO prices VALUES (?, ?, ?)",
        [[integration_id, day, price] for day, price in dated],
    )


def _check_prices(dated: list[tuple[date, Decimal]]) -> None:
    """Refuses a price the `prices` column (DECIMAL(18,10)) would round or could not hold."""
    days = [day for day, _ in dated]
    if len(set(days)) != len(days):
        raise InvalidValue(
            "price_schedule has two prices for the same effective_from date",
            hint="keep one price per date",
        )
    for day, price in dated:
        field = "price_per_credit" if day == BASE_PRICE_DATE else f"price_schedule[{day}]"
        if not price.is_finite() or price <= 0:
            raise InvalidValue(
                f"{field}: {price} is not a price: it must be greater than 0 USD per credit",
                hint="CircleCI's list price is 0.0006 USD per credit",
            )
        if price >= MAX_PRICE:
            raise InvalidValue(
                f"{field}: {price} USD per credit is too large (the store holds less than "
                f"{MAX_PRICE:,} USD per credit)",
                hint="write the price in USD per credit; CircleCI's list price is 0.0006",
            )
        if price != price.quantize(PRICE_QUANTUM):
            raise InvalidValue(
                f"{field}: {price} USD per credit has more than {PRICE_PLACES} decimal places, "
                "and the store would round it",
                hint=f"round the price to {PRICE_PLACES} decimal places",
            )


def _prices(con: duckdb.DuckDBPyConnection, integration_id: str) -> list[Price]:
    rows = con.execute(
        "SELECT effective_from, usd_per_credit FROM prices WHERE integration_id = ? "
        "ORDER BY effective_from",
        [integration_id],
    ).fetchall()
    return [Price(day, Decimal(price)) for day, price in rows]


def _price_json(price: Price) -> list[str]:
    return [price.effective_from.isoformat(), str(price.usd_per_credit.normalize())]


def _check_window(window: Window) -> None:
    """A window CircleCI could export: ordered, timezone-aware bounds at most 31 days apart."""
    if window.start.tzinfo is None or window.end.tzinfo is None:
        raise InvalidValue(
            f"window {window.start.isoformat()}..{window.end.isoformat()}: its bounds must be "
            "timezone-aware (UTC) datetimes",
            hint="build windows with provider.windows (backfill_windows, refresh_windows)",
        )
    if window.end < window.start:
        raise InvalidValue(
            f"window {window}: it ends ({window.end.isoformat()}) before it starts "
            f"({window.start.isoformat()})",
            hint="build windows with provider.windows (backfill_windows, refresh_windows)",
        )
    if window.end - window.start > MAX_WINDOW:
        raise InvalidValue(
            f"window {window}: it spans more than {MAX_WINDOW.days} days, longer than CircleCI "
            "exports",
            hint="split it by calendar month (provider.windows.split_by_month)",
        )


def _window_starts(con: duckdb.DuckDBPyConnection, integration_id: str) -> set[datetime]:
    rows = con.execute(
        "SELECT window_start FROM import_windows WHERE integration_id = ?", [integration_id]
    ).fetchall()
    return {start for (start,) in rows}


def _window_from_row(row: tuple[Any, ...]) -> ImportWindow:
    integration_id, start, end, state, rows, mismatches, loaded_at, attempts, error, job = row
    return ImportWindow(
        integration_id,
        Window(_required_from_db(start), _required_from_db(end)),
        state,
        rows,
        mismatches,
        _from_db(loaded_at),
        int(attempts),
        error,
        job,
    )


def _job_from_row(row: tuple[Any, ...]) -> ExportJob:
    (job_id, integration_id, start, end, created, state, polls, polled, next_poll, done, reason) = (
        row
    )
    return ExportJob(
        job_id,
        integration_id,
        Window(_required_from_db(start), _required_from_db(end)),
        _required_from_db(created),
        state,
        int(polls),
        _from_db(polled),
        _from_db(next_poll),
        bool(done),
        reason,
    )


def _mark_loaded(
    con: duckdb.DuckDBPyConnection,
    integration_id: str,
    window: Window,
    job_id: str | None,
    result: LoadResult,
    loaded_at: datetime,
) -> None:
    start = _to_db(window.start)
    if _window_state(con, integration_id, start) is None:
        con.execute(
            "INSERT INTO import_windows (integration_id, window_start, window_end) "
            "VALUES (?, ?, ?)",
            [integration_id, start, _to_db(window.end)],
        )
    con.execute(
        "UPDATE import_windows SET state = 'loaded', window_end = ?, rows = ?, "
        "total_mismatch_rows = ?, loaded_at = ?, last_error = NULL, current_job_id = ?, "
        "claimed_by = NULL, claimed_until = NULL WHERE integration_id = ? AND window_start = ?",
        [
            _to_db(window.end),
            result.rows,
            result.total_mismatch_rows,
            loaded_at,
            job_id,
            integration_id,
            start,
        ],
    )
    if job_id is not None:
        con.execute("UPDATE export_jobs SET download_completed = true WHERE job_id = ?", [job_id])


def _insert_request(con: duckdb.DuckDBPyConnection, org_id: str, kind: str, at: datetime) -> None:
    if kind not in QUOTA_KINDS:
        raise ValueError(f"quota kind must be one of {QUOTA_KINDS}, not {kind!r}")
    con.execute("INSERT INTO quota_requests VALUES (?, ?, ?)", [org_id, kind, _to_db(at)])


def _count_requests(con: duckdb.DuckDBPyConnection, org_id: str, kind: str, since: datetime) -> int:
    row = con.execute(
        "SELECT count(*) FROM quota_requests WHERE org_id = ? AND kind = ? AND requested_at > ?",
        [org_id, kind, _to_db(since)],
    ).fetchone()
    return 0 if row is None else int(row[0])


def _oldest_request_since(
    con: duckdb.DuckDBPyConnection, org_id: str, kind: str, since: datetime
) -> datetime | None:
    row = con.execute(
        "SELECT min(requested_at) FROM quota_requests "
        "WHERE org_id = ? AND kind = ? AND requested_at > ?",
        [org_id, kind, _to_db(since)],
    ).fetchone()
    return None if row is None else _from_db(row[0])


def _blocked_until(con: duckdb.DuckDBPyConnection, org_id: str, now: datetime) -> datetime | None:
    row = con.execute(
        "SELECT max(until) FROM quota_blocks WHERE org_id = ? AND until > ?",
        [org_id, _to_db(now)],
    ).fetchone()
    return None if row is None else _from_db(row[0])


def _forget_old_requests(con: duckdb.DuckDBPyConnection, now: datetime) -> None:
    horizon = _to_db(now - QUOTA_HISTORY)
    con.execute("DELETE FROM quota_requests WHERE requested_at < ?", [horizon])
    con.execute("DELETE FROM quota_blocks WHERE until < ?", [horizon])


def _workspace_from_row(row: tuple[Any, ...]) -> Workspace:
    id_, name, description, created = row
    return Workspace(id_, name, description, _required_from_db(created))


def _workspace_row(con: duckdb.DuckDBPyConnection, condition: str, value: str) -> Workspace | None:
    row = con.execute(f"{_WORKSPACE_SELECT} WHERE {condition}", [value]).fetchone()
    return None if row is None else _workspace_from_row(row)


def _workspace(con: duckdb.DuckDBPyConnection, workspace_id: str) -> Workspace:
    workspace = _workspace_row(con, "id = ?", workspace_id)
    if workspace is None:
        raise NotFound(
            f"there is no workspace {workspace_id} in the store",
            hint="check the id with `circlecost status`; it may have been deleted",
        )
    return workspace


def _bindings(con: duckdb.DuckDBPyConnection, condition: str, values: list[Any]) -> list[Binding]:
    rows = con.execute(
        "SELECT workspace_id, integration_id, created_at FROM bindings "
        f"WHERE {condition} ORDER BY workspace_id, integration_id",
        values,
    ).fetchall()
    return [Binding(ws, integration, _required_from_db(at)) for ws, integration, at in rows]


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")


def _principal_from_row(row: tuple[Any, ...]) -> Principal:
    actor, role, granted_by, granted_at = row
    return Principal(actor, role, granted_by, _required_from_db(granted_at))


def _principal(con: duckdb.DuckDBPyConnection, actor: str) -> Principal | None:
    row = con.execute(f"{_PRINCIPAL_SELECT} WHERE actor = ?", [actor]).fetchone()
    return None if row is None else _principal_from_row(row)


def _dimension_column(name: str) -> str:
    column = DIMENSIONS.get(name)
    if column is None:
        raise CirclecostError(
            f"cannot group costs by {name!r}",
            hint=f"group by one of: {', '.join(DIMENSIONS)}",
        )
    return column


def _cost_condition(
    date_from: date | None,
    date_to: date | None,
    integration_ids: Sequence[str] | None,
    where: str | None,
    where_params: Sequence[Any],
) -> tuple[str, list[Any]]:
    conditions = ["(?::DATE IS NULL OR date >= ?)", "(?::DATE IS NULL OR date <= ?)"]
    params: list[Any] = [date_from, date_from, date_to, date_to]
    if integration_ids is not None:
        conditions.append("list_contains(?::VARCHAR[], integration_id)")
        params.append(list(integration_ids))
    if where:
        conditions.append(f"({where})")
        params.extend(where_params)
    return " AND ".join(conditions), params


def _totals(group_by: Sequence[str], rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    dims = len(group_by)
    lines = [
        {
            **dict(zip(group_by, row[:dims], strict=True)),
            "credits": Decimal(row[dims] or 0),
            "amount_usd": Decimal(row[dims + 1] or 0),
        }
        for row in rows
        if dims or row[dims] is not None
    ]
    total = {
        "credits": sum((line["credits"] for line in lines), Decimal(0)),
        "amount_usd": sum((line["amount_usd"] for line in lines), Decimal(0)),
    }
    return {"rows": lines, "total": total}
