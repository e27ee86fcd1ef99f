"""Costs: totals by dimension and an integration's summary, read from the `costs` view."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any, Final

from circlecost.errors import CirclecostError
from circlecost.store.connection import StoreBase
from circlecost.vocabulary import TAG_COLUMNS

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


class CostsMixin(StoreBase):
    """Cost totals and summaries."""

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
        `where` is a condition over the costs view compiled by circlecost.vql, with its params.
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
