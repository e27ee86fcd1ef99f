"""Virtual tags: rules that give each cost a value of a key (a team, a product, a cost centre).

Only the rules are stored: reports evaluate them on every query (`circlecost.virtual_tags`), so
a rule change re-tags every cost at once, as a price change re-prices them, with no re-import.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any, Final

import duckdb

from circlecost.store.common import _audit, _changed, _public, _required_from_db, _to_db, _utc_now
from circlecost.store.connection import StoreBase, _retried
from circlecost.store.errors import StoreConflictError, StoreNotFoundError
from circlecost.store.records import TagRule, VirtualTag

_SELECT: Final = (
    "SELECT id, key, rules, default_value, description, created_at, updated_at FROM virtual_tags"
)


class VirtualTagsMixin(StoreBase):
    """Virtual tags and their rules."""

    @_retried
    def create_virtual_tag(
        self,
        key: str,
        rules: Sequence[TagRule],
        default_value: str | None = None,
        description: str = "",
        *,
        tag_id: str | None = None,
        actor: str | None = None,
    ) -> VirtualTag:
        new_id = tag_id or str(uuid.uuid4())
        with self.transaction() as con:
            if _tag_row(con, "key = ?", key) is not None:
                raise StoreConflictError(
                    f"a virtual tag with key {key!r} exists already",
                    hint="each key has one set of rules: change that tag's rules instead",
                )
            now = _to_db(_utc_now())
            con.execute(
                "INSERT INTO virtual_tags VALUES (?, ?, ?, ?, ?, ?, ?)",
                [new_id, key, _rules_json(rules), default_value, description, now, now],
            )
            tag = _tag(con, new_id)
            if actor is not None:
                _audit(con, actor, "create", "virtual_tag", new_id, _audited(tag))
            return tag

    @_retried
    def update_virtual_tag(
        self,
        tag_id: str,
        key: str,
        rules: Sequence[TagRule],
        default_value: str | None = None,
        description: str = "",
        *,
        actor: str | None = None,
    ) -> VirtualTag:
        with self.transaction() as con:
            before = _tag(con, tag_id)
            same_key = _tag_row(con, "key = ?", key)
            if same_key is not None and same_key.id != tag_id:
                raise StoreConflictError(
                    f"a virtual tag with key {key!r} exists already", hint="choose another key"
                )
            con.execute(
                "UPDATE virtual_tags SET key = ?, rules = ?, default_value = ?, description = ?, "
                "updated_at = ? WHERE id = ?",
                [key, _rules_json(rules), default_value, description, _to_db(_utc_now()), tag_id],
            )
            after = _tag(con, tag_id)
            if actor is not None:
                changes = _changed(_audited(before), _audited(after))
                _audit(con, actor, "update", "virtual_tag", tag_id, changes)
            return after

    @_retried
    def delete_virtual_tag(self, tag_id: str, *, actor: str | None = None) -> bool:
        with self.transaction() as con:
            tag = _tag_row(con, "id = ?", tag_id)
            if tag is None:
                return False
            con.execute("DELETE FROM virtual_tags WHERE id = ?", [tag_id])
            if actor is not None:
                _audit(con, actor, "delete", "virtual_tag", tag_id, {"key": tag.key})
            return True

    def get_virtual_tag(self, tag_id: str) -> VirtualTag | None:
        with self.reader() as con:
            return _tag_row(con, "id = ?", tag_id)

    def list_virtual_tags(self) -> list[VirtualTag]:
        with self.reader() as con:
            return virtual_tags_in(con)


def virtual_tags_in(con: duckdb.DuckDBPyConnection) -> list[VirtualTag]:
    """The virtual tags of the store `con` reads, by key (reports read them on their own
    connection, so that a report and the rules it applies come from one snapshot). A store not
    yet upgraded to schema 7 has none; reading must not need the write that upgrades it."""
    try:
        rows = con.execute(f"{_SELECT} ORDER BY key").fetchall()
    except duckdb.CatalogException:
        return []
    return [_from_row(row) for row in rows]


def _rules_json(rules: Sequence[TagRule]) -> str:
    return json.dumps([{"value": rule.value, "filter": rule.filter} for rule in rules])


def _from_row(row: tuple[Any, ...]) -> VirtualTag:
    id_, key, rules, default_value, description, created, updated = row
    parsed = tuple(TagRule(rule["value"], rule["filter"]) for rule in json.loads(rules))
    return VirtualTag(
        id_,
        key,
        parsed,
        default_value,
        description,
        _required_from_db(created),
        _required_from_db(updated),
    )


def _audited(tag: VirtualTag) -> dict[str, Any]:
    fields = _public(tag)
    fields["rules"] = json.loads(_rules_json(tag.rules))
    return {name: value for name, value in fields.items() if name not in ("id", "created_at")}


def _tag_row(con: duckdb.DuckDBPyConnection, condition: str, value: str) -> VirtualTag | None:
    row = con.execute(f"{_SELECT} WHERE {condition}", [value]).fetchone()
    return None if row is None else _from_row(row)


def _tag(con: duckdb.DuckDBPyConnection, tag_id: str) -> VirtualTag:
    tag = _tag_row(con, "id = ?", tag_id)
    if tag is None:
        raise StoreNotFoundError(
            f"there is no virtual tag {tag_id} in the store",
            hint="see `circlecost vtags list`; it may have been deleted",
        )
    return tag
