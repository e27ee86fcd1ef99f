"""Access: principals and the role each holds in the store."""

from __future__ import annotations

from typing import Any, Final

import duckdb

from circlecost.store.common import _audit, _delete_count, _insert_principal, _required_from_db
from circlecost.store.connection import StoreBase, _retried
from circlecost.store.records import Principal
from circlecost.vocabulary import Role

_PRINCIPAL_SELECT: Final = "SELECT actor, role, granted_by, granted_at FROM principals"


class AccessMixin(StoreBase):
    """Principals and roles."""

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
            _insert_principal(con, actor, Role.ORGANIZATION_OWNER, None)
            _audit(
                con,
                actor,
                "bootstrap",
                "principal",
                actor,
                {
                    "role": [None, Role.ORGANIZATION_OWNER.value],
                    "reason": "first actor of a new store",
                },
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


def _check_role(role: str) -> None:
    if role not in set(Role):
        raise ValueError(f"role must be one of {', '.join(Role)}, not {role!r}")


def _principal_from_row(row: tuple[Any, ...]) -> Principal:
    actor, role, granted_by, granted_at = row
    return Principal(actor, role, granted_by, _required_from_db(granted_at))


def _principal(con: duckdb.DuckDBPyConnection, actor: str) -> Principal | None:
    row = con.execute(f"{_PRINCIPAL_SELECT} WHERE actor = ?", [actor]).fetchone()
    return None if row is None else _principal_from_row(row)
