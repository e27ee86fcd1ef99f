"""Cost reports over the store's `costs` view: periods, group-by, bins, filters, previous period.

A report is one SQL query for the period and one for the period just before it (the same
length), joined in Python on the group and the bin. Group-by names map to columns through a
fixed table; every user value (dates, filter values, integration ids) is a bound parameter.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import duckdb

from provider.errors import CirclecostError
from provider.vql import COST_FIELDS, TAG_COLUMNS, compile_filter

DIMENSIONS: dict[str, str] = {
    name.removeprefix("costs."): column for name, column in COST_FIELDS.items()
}
BINS = ("day", "week", "month", "quarter", "cumulative")
PERIODS = (
    "this_month",
    "last_month",
    "last_7_days",
    "last_30_days",
    "last_3_months",
    "last_6_months",
    "last_12_months",
    "year_to_date",
)


def dimension_column(name: str) -> str:
    """The costs-view column for a group-by name such as `service` or `tag:circleci:vcs_branch`."""
    if name in DIMENSIONS:
        return DIMENSIONS[name]
    if name.startswith("tag:") and name[4:] in TAG_COLUMNS:
        return TAG_COLUMNS[name[4:]]
    known = ", ".join([*DIMENSIONS, *(f"tag:{key}" for key in TAG_COLUMNS)])
    raise CirclecostError(f"--group-by: unknown dimension '{name}'", hint=f"use one of: {known}")


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        return Period(self.start - timedelta(days=self.days), self.start - timedelta(days=1))

    def as_dict(self) -> dict[str, str]:
        return {"from": self.start.isoformat(), "to": self.end.isoformat()}


def add_months(day: date, months: int) -> date:
    month_index = day.year * 12 + day.month - 1 + months
    year, month = divmod(month_index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def named_period(name: str, today: date) -> Period:
    """A named period ending today (or last month, whole)."""
    first_of_month = today.replace(day=1)
    if name == "this_month":
        return Period(first_of_month, today)
    if name == "last_month":
        return Period(add_months(first_of_month, -1), first_of_month - timedelta(days=1))
    if name == "last_7_days":
        return Period(today - timedelta(days=6), today)
    if name == "last_30_days":
        return Period(today - timedelta(days=29), today)
    if name in ("last_3_months", "last_6_months", "last_12_months"):
        months = int(name.split("_")[1])
        return Period(add_months(today, -months) + timedelta(days=1), today)
    if name == "year_to_date":
        return Period(date(today.year, 1, 1), today)
    raise CirclecostError(
        f"--period: unknown period '{name}'", hint=f"use one of: {', '.join(PERIODS)}"
    )


def resolve_period(start: date | None, end: date | None, name: str | None, today: date) -> Period:
    if name and (start or end):
        raise CirclecostError("give either --period or --from/--to, not both")
    if name:
        return named_period(name, today)
    if start is None or end is None:
        raise CirclecostError(
            "a report needs a period", hint="give --from and --to (YYYY-MM-DD) or --period"
        )
    if end < start:
        raise CirclecostError(f"--to {end} is before --from {start}", hint="swap the two dates")
    return Period(start, end)


@dataclass(frozen=True)
class ReportRequest:
    period: Period
    group_by: tuple[str, ...] = ()
    bin: str | None = None
    filter: str | None = None
    integration_ids: tuple[str, ...] | None = None  # None: every integration

    def __post_init__(self) -> None:
        for name in self.group_by:
            dimension_column(name)
        if self.bin is not None and self.bin not in BINS:
            raise CirclecostError(
                f"--bin: unknown bin '{self.bin}'", hint=f"use one of: {', '.join(BINS)}"
            )


@dataclass
class Report:
    request: ReportRequest
    rows: list[dict[str, Any]] = field(default_factory=list)
    total: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "period": self.request.period.as_dict(),
            "previous_period": self.request.period.previous().as_dict(),
            "group_by": list(self.request.group_by),
            "bin": self.request.bin,
            "filter": self.request.filter,
            "rows": self.rows,
            "total": self.total,
        }


def bin_expression(bin_name: str | None, shift_days: int) -> str | None:
    """SQL for a row's bin; `shift_days` moves previous-period rows onto the current bins."""
    day = f"(date + INTERVAL {int(shift_days)} DAY)::DATE" if shift_days else "date"
    return {
        None: None,
        "day": day,
        "cumulative": day,
        "week": f"date_trunc('week', {day})::DATE",
        "month": f"date_trunc('month', {day})::DATE",
        "quarter": f"date_trunc('quarter', {day})::DATE",
    }[bin_name]


def aggregate(
    connection: duckdb.DuckDBPyConnection, request: ReportRequest, period: Period, shift_days: int
) -> dict[tuple[Any, ...], tuple[Decimal, Decimal]]:
    """{(bin?, *dims): (credits, amount_usd)} for one period."""
    columns = [dimension_column(name) for name in request.group_by]
    bin_sql = bin_expression(request.bin, shift_days)
    keys = ([bin_sql] if bin_sql else []) + columns
    where, params = where_clause(request, period)
    select_keys = "".join(f"{key} AS k{index}, " for index, key in enumerate(keys))
    group = f"GROUP BY {', '.join(f'k{index}' for index in range(len(keys)))}" if keys else ""
    sql = f"SELECT {select_keys}sum(credits), sum(amount_usd) FROM costs WHERE {where} {group}"
    result: dict[tuple[Any, ...], tuple[Decimal, Decimal]] = {}
    for row in connection.execute(sql, params).fetchall():
        result[tuple(row[: len(keys)])] = (Decimal(row[-2] or 0), Decimal(row[-1] or 0))
    return result


def where_clause(request: ReportRequest, period: Period) -> tuple[str, list[Any]]:
    conditions = ["date BETWEEN ? AND ?"]
    params: list[Any] = [period.start, period.end]
    if request.integration_ids is not None:
        if not request.integration_ids:
            return "FALSE", []
        conditions.append(f"integration_id IN ({', '.join('?' for _ in request.integration_ids)})")
        params.extend(request.integration_ids)
    if request.filter:
        compiled = compile_filter(request.filter)
        conditions.append(compiled.sql)
        params.extend(compiled.params)
    return " AND ".join(conditions), params


def build_report(connection: duckdb.DuckDBPyConnection, request: ReportRequest) -> Report:
    period = request.period
    current = aggregate(connection, request, period, 0)
    previous = aggregate(connection, request, period.previous(), period.days)
    if request.bin == "cumulative":
        current, previous = accumulate(current), accumulate(previous)
    report = Report(request)
    for key in sorted(set(current) | set(previous), key=sort_key):
        credits, amount = current.get(key, (Decimal(0), Decimal(0)))
        before_credits, before_amount = previous.get(key, (Decimal(0), Decimal(0)))
        if key not in current and request.bin is not None:
            continue  # a bin that exists only in the previous period has no place in this one
        report.rows.append(row_dict(request, key, credits, amount, before_credits, before_amount))
    report.rows.sort(key=lambda row: (row.get("bin") or "", -row["amount_usd"]))
    if request.bin == "cumulative":
        current, previous = last_bins(current), last_bins(previous)
    report.total = totals(current, previous)
    return report


def accumulate(
    values: dict[tuple[Any, ...], tuple[Decimal, Decimal]],
) -> dict[tuple[Any, ...], tuple[Decimal, Decimal]]:
    """Running totals per group across the days (the first key part is the day)."""
    running: dict[tuple[Any, ...], tuple[Decimal, Decimal]] = {}
    result = {}
    for key in sorted(values, key=sort_key):
        group = key[1:]
        credits, amount = values[key]
        before = running.get(group, (Decimal(0), Decimal(0)))
        running[group] = (before[0] + credits, before[1] + amount)
        result[key] = running[group]
    return result


def last_bins(
    values: dict[tuple[Any, ...], tuple[Decimal, Decimal]],
) -> dict[tuple[Any, ...], tuple[Decimal, Decimal]]:
    latest: dict[tuple[Any, ...], tuple[Any, tuple[Decimal, Decimal]]] = {}
    for key, value in values.items():
        if key[1:] not in latest or key[0] > latest[key[1:]][0]:
            latest[key[1:]] = (key[0], value)
    return {group: value for group, (_day, value) in latest.items()}


def sort_key(key: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple((value is None, "" if value is None else str(value)) for value in key)


def row_dict(
    request: ReportRequest,
    key: tuple[Any, ...],
    credits: Decimal,
    amount: Decimal,
    before_credits: Decimal,
    before_amount: Decimal,
) -> dict[str, Any]:
    row: dict[str, Any] = {}
    values = list(key)
    if request.bin is not None:
        row["bin"] = values.pop(0).isoformat()
    for name, value in zip(request.group_by, values, strict=True):
        row[name] = value
    row.update(figures(credits, amount, before_credits, before_amount))
    return row


def figures(
    credits: Decimal, amount: Decimal, before_credits: Decimal, before_amount: Decimal
) -> dict[str, Any]:
    return {
        "credits": number(credits),
        "amount_usd": float(amount),
        "previous_credits": number(before_credits),
        "previous_amount_usd": float(before_amount),
        "change_pct": change(amount, before_amount),
    }


def totals(
    current: dict[tuple[Any, ...], tuple[Decimal, Decimal]],
    previous: dict[tuple[Any, ...], tuple[Decimal, Decimal]],
) -> dict[str, Any]:
    credits = sum((value[0] for value in current.values()), Decimal(0))
    amount = sum((value[1] for value in current.values()), Decimal(0))
    before_credits = sum((value[0] for value in previous.values()), Decimal(0))
    before_amount = sum((value[1] for value in previous.values()), Decimal(0))
    return figures(credits, amount, before_credits, before_amount)


def number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def change(now: Decimal, before: Decimal) -> float | None:
    if before == 0:
        return None
    return float(round((now - before) / before * 100, 1))


def group_label(value: Any) -> str:
    return "(none)" if value is None else str(value)


def columns_of(request: ReportRequest) -> Sequence[str]:
    return (["bin"] if request.bin else []) + list(request.group_by)
