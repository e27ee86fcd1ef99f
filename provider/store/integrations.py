"""Integrations, one per CircleCI organization (never a token: only its fingerprint), and
their dated prices."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final

import duckdb

from circlecost.store.common import (
    _INTEGRATION_SELECT,
    _audit,
    _changed,
    _delete_count,
    _integration,
    _integration_from_row,
    _maybe_to_db,
    _public,
    _require_integration,
    _to_db,
    _utc_now,
)
from circlecost.store.connection import GUARD_CATALOG, StoreBase, _retried
from circlecost.store.errors import InvalidValueError, StoreConflictError
from circlecost.store.records import Integration, Price
from circlecost.usage_columns import LIST_PRICE_USD_PER_CREDIT
from circlecost.vocabulary import Status

BASE_PRICE_DATE: Final = date(1, 1, 1)
LIST_PRICE: Final = Decimal(LIST_PRICE_USD_PER_CREDIT)

# Prices are DECIMAL(18,10): ten decimal places, eight before the point.
PRICE_PLACES: Final = 10
PRICE_QUANTUM: Final = Decimal(1).scaleb(-PRICE_PLACES)
MAX_PRICE: Final = Decimal(10) ** (18 - PRICE_PLACES)

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


class IntegrationsMixin(StoreBase):
    """Integrations and their prices."""

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
            # The rollup of the usage rows counted above.
            _delete_count(con, "usage_daily", "integration_id = ?", integration_id)
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


def _refuse_second_integration(con: duckdb.DuckDBPyConnection, organization_id: str) -> None:
    row = con.execute(
        "SELECT id FROM integrations WHERE organization_id = ?", [organization_id]
    ).fetchone()
    if row is not None:
        raise StoreConflictError(
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
    if "status" in fields and fields["status"] not in set(Status):
        raise ValueError(f"status must be one of {', '.join(Status)}, not {fields['status']!r}")


def _db_value(value: Any) -> Any:
    return _to_db(value) if isinstance(value, datetime) else value


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
        raise InvalidValueError(
            "price_schedule has two prices for the same effective_from date",
            hint="keep one price per date",
        )
    for day, price in dated:
        field = "price_per_credit" if day == BASE_PRICE_DATE else f"price_schedule[{day}]"
        if not price.is_finite() or price <= 0:
            raise InvalidValueError(
                f"{field}: {price} is not a price: it must be greater than 0 USD per credit",
                hint="CircleCI's list price is 0.0006 USD per credit",
            )
        if price >= MAX_PRICE:
            raise InvalidValueError(
                f"{field}: {price} USD per credit is too large (the store holds less than "
                f"{MAX_PRICE:,} USD per credit)",
                hint="write the price in USD per credit; CircleCI's list price is 0.0006",
            )
        if price != price.quantize(PRICE_QUANTUM):
            raise InvalidValueError(
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
