"""The schema: the tables and the costs view, the migrations that build them on either engine,
and the methods that create, upgrade and identify a store."""

from __future__ import annotations

from typing import Final

from circlecost.store.common import _audit, _insert_principal, _to_db, _utc_now
from circlecost.store.connection import ALL_GUARDS, StoreBase, _retried, _schema_version
from circlecost.store.errors import StoreError, StoreOutdatedError
from circlecost.usage_columns import (
    COLUMN_TYPES,
    COST_COLUMNS_SQL,
    CREDIT_SERVICES,
    DAILY_COLUMNS,
    PRESENT_SUFFIX,
    USAGE_COLUMNS,
    USAGE_DATE_SQL,
)

# The usage table: where each row came from, then the export's 48 columns as typed in usage_columns.
_USAGE_TABLE = (
    "CREATE TABLE usage (\n"
    "    integration_id VARCHAR NOT NULL,\n"
    "    window_start TIMESTAMP NOT NULL,\n"
    "    export_job_id VARCHAR,\n"
    "    loaded_at TIMESTAMP NOT NULL,\n"
    "    source_part SMALLINT,\n"
    "    source_line BIGINT,\n"
    + ",\n".join(f"    {name} {kind}" for name, kind in USAGE_COLUMNS)
    + "\n)"
)

# The daily rollup of usage (see usage_columns.DAILY_COLUMNS): per integration, window, day and
# the rolled-up columns, each credit column's sum and whether any row had it non-zero (a line item
# of the view), and how many usage rows it sums. A window's rows and its rollup change together.
_CREDIT_COLUMNS: Final = tuple(column for column, _ in CREDIT_SERVICES)
_DAILY_TABLE = (
    "CREATE TABLE usage_daily (\n"
    "    integration_id VARCHAR NOT NULL,\n"
    "    window_start TIMESTAMP NOT NULL,\n"
    "    usage_date DATE NOT NULL,\n"
    + "".join(f"    {name} {COLUMN_TYPES[name]},\n" for name in DAILY_COLUMNS)
    + "".join(
        f"    {name} DECIMAL(38,6),\n    {name}{PRESENT_SUFFIX} BOOLEAN,\n"
        for name in _CREDIT_COLUMNS
    )
    + "    usage_rows BIGINT NOT NULL\n)"
)
# Rolls up the usage rows that `where` selects (it may hold ? parameters).
DAILY_FILL = (
    "INSERT INTO usage_daily BY NAME SELECT integration_id, window_start, "
    f"{USAGE_DATE_SQL} AS usage_date, {', '.join(DAILY_COLUMNS)}, "
    + ", ".join(
        f"sum({name}) AS {name}, bool_or({name} <> 0) AS {name}{PRESENT_SUFFIX}"
        for name in _CREDIT_COLUMNS
    )
    + ", count(*) AS usage_rows FROM usage WHERE {where} GROUP BY ALL"
)

# One line item per usage row and non-zero credit column, priced by the dated price in effect.
# The view's body up to its price join; the join is what changed between versions.
_COSTS_VIEW_LINES = (
    """
CREATE VIEW costs AS
WITH lines AS (
    SELECT
        u.integration_id,
"""
    + "".join(f"        {sql} AS {column},\n" for column, sql in COST_COLUMNS_SQL.items())
    + """        item.credits,
        u.JOB_ID AS job_id,
        u.JOB_RUN_NUMBER AS job_run_number,
        u.PIPELINE_NUMBER AS pipeline_number,
        u.WORKFLOW_NAME AS workflow_name,
        u.window_start,
        u.export_job_id
    FROM usage AS u
    CROSS JOIN LATERAL (VALUES
"""
    + ",\n".join(f"        ('{service}', u.{column})" for column, service in CREDIT_SERVICES)
    + """
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
"""
)
# Schema 1 to 4: the price in effect found by an ASOF join (about 5 s at 10M line items).
_COSTS_VIEW_V1 = (
    _COSTS_VIEW_LINES
    + """ASOF LEFT JOIN prices AS price
    ON price.integration_id = lines.integration_id AND lines.date >= price.effective_from
"""
)
# Schema 5: each price with the day the next one takes over, joined on the range it covers (a
# range join DuckDB runs in parallel; measured in bench/reports_bench.py). A day before the first
# price has none, as with the ASOF join.
_COSTS_VIEW = (
    _COSTS_VIEW_LINES
    + """LEFT JOIN (
    SELECT integration_id, effective_from, usd_per_credit,
        coalesce(
            lead(effective_from) OVER (PARTITION BY integration_id ORDER BY effective_from),
            DATE '9999-12-31'
        ) AS effective_until
    FROM prices
) AS price
    ON price.integration_id = lines.integration_id
    AND lines.date >= price.effective_from AND lines.date < price.effective_until
"""
)
# Schema 9: each line item's amount is figured in DECIMAL(38, 16). DuckDB types DECIMAL(18, 6)
# credits times a DECIMAL(18, 10) price as DECIMAL(18, 16), which overflows at $100: one seat
# row of a large organization, or one long GPU job, made every query of the view fail.
_WIDE_AMOUNT: Final = "CAST(lines.credits AS DECIMAL(38, 6)) * price.usd_per_credit AS amount_usd"
_COSTS_VIEW_WIDE = _COSTS_VIEW.replace(
    "lines.credits * price.usd_per_credit AS amount_usd", _WIDE_AMOUNT
)
assert _WIDE_AMOUNT in _COSTS_VIEW_WIDE

# A new store, on either engine, starts from this schema at BASELINE_VERSION, then takes the
# migrations after it. It has no keys, constraints or sequences, which DuckLake does not have: the
# rules they would enforce (one integration per organization, unique workspace names, valid
# states, roles and prices) are checked by the store's code, the same way on both engines.
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
    _COSTS_VIEW_V1,
    "CREATE TABLE store_identity (id VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL)",
    "INSERT INTO store_identity SELECT uuid()::VARCHAR, now()::TIMESTAMP",
)


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
        _COSTS_VIEW_V1,
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
    # 5: runs on both engines. The costs view finds each line item's price by a range join
    # instead of an ASOF join: the same figures, about five times faster at 10M line items.
    ("DROP VIEW costs", _COSTS_VIEW),
    # 6: runs on both engines. The daily rollup that reports read, filled from the usage rows.
    (_DAILY_TABLE, DAILY_FILL.format(where="TRUE")),
    # 7: runs on both engines. Virtual tags: a key and its rules (a JSON list of value and VQL
    # filter), evaluated by every report.
    (
        """CREATE TABLE virtual_tags (
            id VARCHAR NOT NULL,
            key VARCHAR NOT NULL,
            rules VARCHAR NOT NULL,
            default_value VARCHAR,
            description VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL,
            updated_at TIMESTAMP NOT NULL
        )""",
    ),
    # 8: runs on both engines. Budgets, alert channels (a fingerprint of the webhook URL, never
    # the URL) and the alerts delivered, each once per channel, subject and occasion.
    (
        """CREATE TABLE budgets (
            id VARCHAR NOT NULL,
            name VARCHAR NOT NULL,
            workspace_id VARCHAR,
            amount_usd DECIMAL(18,2) NOT NULL,
            period VARCHAR NOT NULL,
            thresholds VARCHAR NOT NULL,
            filter VARCHAR,
            alert_channel_ids VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL,
            updated_at TIMESTAMP NOT NULL
        )""",
        """CREATE TABLE alert_channels (
            id VARCHAR NOT NULL,
            name VARCHAR NOT NULL,
            url_fingerprint VARCHAR NOT NULL,
            anomalies BOOLEAN NOT NULL,
            anomaly_group_by VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL,
            updated_at TIMESTAMP NOT NULL
        )""",
        """CREATE TABLE alert_deliveries (
            channel_id VARCHAR NOT NULL,
            subject_id VARCHAR NOT NULL,
            occasion VARCHAR NOT NULL,
            message_id VARCHAR NOT NULL,
            text VARCHAR NOT NULL,
            delivered_at TIMESTAMP NOT NULL
        )""",
    ),
    # 9: runs on both engines. Line item amounts no longer overflow at $100 (see above).
    ("DROP VIEW costs", _COSTS_VIEW_WIDE),
)


class SchemaMixin(StoreBase):
    """Creating, upgrading and identifying a store."""

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
                raise StoreOutdatedError(
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
