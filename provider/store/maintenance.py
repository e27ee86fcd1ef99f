"""Keeping and moving a store: `store maintain` frees old versions, `store copy` copies an
embedded store into a new one."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Final, Self

import duckdb

from circlecost.engine import LAKE_ALIAS, is_commit_conflict, sql_string
from circlecost.store.connection import _CommitConflict, _retried
from circlecost.store.errors import StoreConflictError, StoreError, StoreNotFoundError
from circlecost.store.schema import SchemaMixin

# Every table with data, in the order `store copy` copies them (the guards and schema_version
# belong to each store itself).
COPIED_TABLES: Final = (
    "store_identity",
    "integrations",
    "prices",
    "import_windows",
    "export_jobs",
    "usage",
    "usage_daily",
    "workspaces",
    "bindings",
    "virtual_tags",
    "budgets",
    "alert_channels",
    "alert_deliveries",
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
            raise StoreConflictError(
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


class MaintenanceMixin(SchemaMixin):
    """Maintaining a store and copying one into another."""

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

    def copy_from(self, source: Self) -> dict[str, int]:
        """Copies every table of the embedded store `source` into this store, which must be new
        or empty, in one transaction; row counts are compared before it commits. The copy keeps
        the source's identity, so Pulumi stacks recorded against it go on working."""
        if source.shared is not None:
            raise StoreError(
                f"the store {source.name} to copy from is shared",
                hint="copy from an embedded store's file (--from PATH)",
            )
        if not source.path.exists():
            raise StoreNotFoundError(
                f"there is no store at {source.path}", hint="give the file to copy with --from"
            )
        source.migrate()
        self._migrate()
        counts: dict[str, int] = {}
        with self._writer() as con:
            con.execute(f"ATTACH {sql_string(str(source.path))} AS copy_source (READ_ONLY)")
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
