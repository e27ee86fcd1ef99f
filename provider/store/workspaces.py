"""Workspaces, named groups of integrations that reports cover, and their bindings."""

from __future__ import annotations

import uuid
from typing import Any, Final

import duckdb

from circlecost.store.common import (
    _audit,
    _changed,
    _delete_count,
    _public,
    _require_integration,
    _required_from_db,
    _to_db,
    _utc_now,
)
from circlecost.store.connection import StoreBase, _retried
from circlecost.store.errors import StoreConflictError, StoreNotFoundError
from circlecost.store.records import Binding, Workspace

_WORKSPACE_SELECT: Final = "SELECT id, name, description, created_at FROM workspaces"


class WorkspacesMixin(StoreBase):
    """Workspaces and bindings."""

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
                raise StoreConflictError(
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
                raise StoreConflictError(
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


def _workspace_from_row(row: tuple[Any, ...]) -> Workspace:
    id_, name, description, created = row
    return Workspace(id_, name, description, _required_from_db(created))


def _workspace_row(con: duckdb.DuckDBPyConnection, condition: str, value: str) -> Workspace | None:
    row = con.execute(f"{_WORKSPACE_SELECT} WHERE {condition}", [value]).fetchone()
    return None if row is None else _workspace_from_row(row)


def _workspace(con: duckdb.DuckDBPyConnection, workspace_id: str) -> Workspace:
    workspace = _workspace_row(con, "id = ?", workspace_id)
    if workspace is None:
        raise StoreNotFoundError(
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
