"""The audit log: who changed what and when, secrets redacted."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from circlecost.store.common import _audit, _required_from_db
from circlecost.store.connection import StoreBase, _retried
from circlecost.store.records import AuditEntry


class AuditMixin(StoreBase):
    """Recording and reading the audit log."""

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
