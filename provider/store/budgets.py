"""Budgets, alert channels and the alerts delivered to them.

A budget is its definition only: what it has spent is a report over the costs, made when it is
asked for. An alert channel keeps a fingerprint of its webhook URL, never the URL (a secret:
it stays in the Pulumi state, as tokens do). `alert_deliveries` remembers, per channel, each
occasion announced (a budget's threshold in a month, an anomaly's day and group) and the message
that announced it, so that a crossing is announced once however often budgets are evaluated.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import duckdb

from circlecost.store.common import (
    _audit,
    _changed,
    _public,
    _required_from_db,
    _to_db,
    _utc_now,
)
from circlecost.store.connection import StoreBase, _retried
from circlecost.store.errors import StoreConflictError
from circlecost.store.records import AlertChannel, Budget

_BUDGET_SELECT: Final = (
    "SELECT id, name, workspace_id, amount_usd, period, thresholds, filter, alert_channel_ids, "
    "created_at, updated_at FROM budgets"
)
_CHANNEL_SELECT: Final = (
    "SELECT id, name, url_fingerprint, anomalies, anomaly_group_by, created_at, updated_at "
    "FROM alert_channels"
)


@dataclass(frozen=True)
class _Kind:
    """A table of named records (budgets, alert channels) and how to read and audit them."""

    table: str
    object_type: str  # in the audit log
    called: str  # in messages: "a budget"
    select: str
    from_row: Callable[[tuple[Any, ...]], Any]
    deliveries_column: str  # of alert_deliveries, naming the record

    def row(self, con: duckdb.DuckDBPyConnection, condition: str, value: str) -> Any | None:
        found = con.execute(f"{self.select} WHERE {condition}", [value]).fetchone()
        return None if found is None else self.from_row(found)

    def rows(self, con: duckdb.DuckDBPyConnection) -> list[Any]:
        return [
            self.from_row(row) for row in con.execute(f"{self.select} ORDER BY name").fetchall()
        ]

    def put(
        self, con: duckdb.DuckDBPyConnection, record: Any, values: list[Any], actor: str | None
    ) -> Any:
        """Creates `record` (whose columns but the two times are `values`), or replaces the one
        with its id; names are unique."""
        same_name = self.row(con, "name = ?", record.name)
        if same_name is not None and same_name.id != record.id:
            raise StoreConflictError(
                f"{self.called} named {record.name!r} exists already",
                hint=f"give each {self.called.split(' ', 1)[1]} its own name",
            )
        before = self.row(con, "id = ?", record.id)
        now = _to_db(_utc_now())
        created = _to_db(before.created_at) if before else now
        con.execute(f"DELETE FROM {self.table} WHERE id = ?", [record.id])
        marks = ", ".join("?" for _ in range(len(values) + 2))
        con.execute(f"INSERT INTO {self.table} VALUES ({marks})", [*values, created, now])
        after = self.row(con, "id = ?", record.id)
        if actor is not None:
            changes = _changed(_public(before) if before else {}, _public(after))
            action = "update" if before else "create"
            _audit(con, actor, action, self.object_type, record.id, _jsonable(changes))
        return after

    def delete(self, con: duckdb.DuckDBPyConnection, record_id: str, actor: str | None) -> bool:
        """Deletes the record and what its alerts were; False when there is none."""
        record = self.row(con, "id = ?", record_id)
        if record is None:
            return False
        con.execute(f"DELETE FROM {self.table} WHERE id = ?", [record_id])
        con.execute(f"DELETE FROM alert_deliveries WHERE {self.deliveries_column} = ?", [record_id])
        if actor is not None:
            _audit(con, actor, "delete", self.object_type, record_id, {"name": record.name})
        return True


class BudgetsMixin(StoreBase):
    """Budgets, alert channels and deliveries."""

    @_retried
    def put_budget(self, budget: Budget, *, actor: str | None = None) -> Budget:
        """Creates the budget, or replaces the one with its id; names are unique."""
        values = [
            budget.id,
            budget.name,
            budget.workspace_id,
            budget.amount_usd,
            budget.period,
            json.dumps([str(fraction) for fraction in budget.thresholds]),
            budget.filter,
            json.dumps(list(budget.alert_channel_ids)),
        ]
        with self.transaction() as con:
            stored: Budget = _BUDGETS.put(con, budget, values, actor)
            return stored

    @_retried
    def delete_budget(self, budget_id: str, *, actor: str | None = None) -> bool:
        with self.transaction() as con:
            return _BUDGETS.delete(con, budget_id, actor)

    def get_budget(self, budget_id: str) -> Budget | None:
        with self.reader() as con:
            found: Budget | None = _BUDGETS.row(con, "id = ?", budget_id)
            return found

    def list_budgets(self) -> list[Budget]:
        with self.reader() as con:
            return _BUDGETS.rows(con)

    @_retried
    def put_alert_channel(self, channel: AlertChannel, *, actor: str | None = None) -> AlertChannel:
        """Creates the channel, or replaces the one with its id; names are unique."""
        values = [
            channel.id,
            channel.name,
            channel.url_fingerprint,
            channel.anomalies,
            channel.anomaly_group_by,
        ]
        with self.transaction() as con:
            stored: AlertChannel = _CHANNELS.put(con, channel, values, actor)
            return stored

    @_retried
    def delete_alert_channel(self, channel_id: str, *, actor: str | None = None) -> bool:
        with self.transaction() as con:
            return _CHANNELS.delete(con, channel_id, actor)

    def get_alert_channel(self, channel_id: str) -> AlertChannel | None:
        with self.reader() as con:
            found: AlertChannel | None = _CHANNELS.row(con, "id = ?", channel_id)
            return found

    # --- deliveries ---

    def delivered(self, channel_id: str, subject_id: str, occasions: Sequence[str]) -> set[str]:
        """Which of `occasions` (of a budget or of anomalies) the channel was sent already."""
        if not occasions:
            return set()
        marks = ", ".join("?" for _ in occasions)
        with self.reader() as con:
            rows = con.execute(
                "SELECT occasion FROM alert_deliveries WHERE channel_id = ? AND subject_id = ? "
                f"AND occasion IN ({marks})",
                [channel_id, subject_id, *occasions],
            ).fetchall()
        return {row[0] for row in rows}

    @_retried
    def claim_alert(
        self, channel_id: str, subject_id: str, occasions: Sequence[str], message_id: str, text: str
    ) -> bool:
        """Records one message to the channel that announces `occasions`, before it is sent;
        False (and nothing recorded) when another run claimed any of them first."""
        marks = ", ".join("?" for _ in occasions)
        with self.transaction() as con:
            seen = con.execute(
                "SELECT count(*) FROM alert_deliveries WHERE channel_id = ? AND subject_id = ? "
                f"AND occasion IN ({marks})",
                [channel_id, subject_id, *occasions],
            ).fetchone()
            if seen != (0,):
                return False
            now = _to_db(_utc_now())
            for occasion in occasions:
                con.execute(
                    "INSERT INTO alert_deliveries VALUES (?, ?, ?, ?, ?, ?)",
                    [channel_id, subject_id, occasion, message_id, text, now],
                )
            return True

    @_retried
    def forget_alert(self, channel_id: str, message_id: str) -> None:
        """Forgets a message claimed but not delivered, so that a later run sends it."""
        with self.transaction() as con:
            con.execute(
                "DELETE FROM alert_deliveries WHERE channel_id = ? AND message_id = ?",
                [channel_id, message_id],
            )

    def delivery_count(self, channel_id: str) -> int:
        with self.reader() as con:
            row = con.execute(
                "SELECT count(DISTINCT message_id) FROM alert_deliveries WHERE channel_id = ?",
                [channel_id],
            ).fetchone()
        return int(row[0]) if row else 0


def _jsonable(changes: dict[str, Any]) -> dict[str, Any]:
    """Decimals and tuples as the audit log's JSON holds them."""
    plain: dict[str, Any] = json.loads(json.dumps(changes, default=str))
    return plain


def _budget_from_row(row: tuple[Any, ...]) -> Budget:
    id_, name, workspace, amount, period, thresholds, filter_, channels, created, updated = row
    return Budget(
        id_,
        name,
        workspace,
        Decimal(amount),
        period,
        tuple(Decimal(fraction) for fraction in json.loads(thresholds)),
        filter_,
        tuple(json.loads(channels)),
        _required_from_db(created),
        _required_from_db(updated),
    )


def _channel_from_row(row: tuple[Any, ...]) -> AlertChannel:
    id_, name, fingerprint, anomalies, group_by, created, updated = row
    return AlertChannel(
        id_,
        name,
        fingerprint,
        bool(anomalies),
        group_by,
        _required_from_db(created),
        _required_from_db(updated),
    )


_BUDGETS: Final = _Kind(
    "budgets", "budget", "a budget", _BUDGET_SELECT, _budget_from_row, "subject_id"
)
_CHANNELS: Final = _Kind(
    "alert_channels",
    "alert_channel",
    "an alert channel",
    _CHANNEL_SELECT,
    _channel_from_row,
    "channel_id",
)
