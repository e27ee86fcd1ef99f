"""What several parts of the store use inside their transactions: timestamps as the store
keeps them, the audit log, row counts, integrations looked up by id, principals inserted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import fields, replace
from datetime import UTC, datetime
from typing import Any, Final

import duckdb

from circlecost.store.errors import StoreNotFoundError
from circlecost.store.records import Integration

SECRET_KEYS: Final = frozenset({"token", "circle_token", "api_token", "password", "secret"})


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


# --- SQL helpers (module level so that transactions can compose them) ----------------------------

# The integrations table's columns carry the record's field names.
_INTEGRATION_SELECT: Final = (
    f"SELECT {', '.join(field.name for field in fields(Integration))} FROM integrations"
)


def _integration_from_row(row: tuple[Any, ...]) -> Integration:
    """An Integration from a row of _INTEGRATION_SELECT (its columns in the record's order)."""
    record = Integration(*row)
    return replace(
        record,
        token_rotated_at=_from_db(record.token_rotated_at),
        backfill_months=int(record.backfill_months),
        created_at=_required_from_db(record.created_at),
        updated_at=_required_from_db(record.updated_at),
        last_refresh_at=_from_db(record.last_refresh_at),
    )


def _integration(con: duckdb.DuckDBPyConnection, integration_id: str) -> Integration:
    row = con.execute(f"{_INTEGRATION_SELECT} WHERE id = ?", [integration_id]).fetchone()
    if row is None:
        raise StoreNotFoundError(
            f"there is no integration {integration_id} in the store",
            hint="check the id with `circlecost status`; it may have been deleted",
        )
    return _integration_from_row(row)


def _require_integration(con: duckdb.DuckDBPyConnection, integration_id: str) -> None:
    _integration(con, integration_id)


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
    """Deletes matching rows of a table named by the store's code; returns how many."""
    return _affected(con.execute(f"DELETE FROM {table} WHERE {condition}", list(values)).fetchall())


def _affected(result: list[tuple[Any, ...]]) -> int:
    """The row count that DELETE and UPDATE return (on both engines: no RETURNING in DuckLake)."""
    return int(result[0][0]) if result else 0


def _insert_principal(
    con: duckdb.DuckDBPyConnection, actor: str, role: str, granted_by: str | None
) -> None:
    con.execute(
        "INSERT INTO principals VALUES (?, ?, ?, ?)", [actor, role, granted_by, _to_db(_utc_now())]
    )
