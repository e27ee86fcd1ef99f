"""Cost reports: periods, group-by, bins, filters, and the previous period beside them.

A report is one SQL query over both periods, the chosen one and the previous one it is compared
with (`Period.previous` holds the rule). The previous period's days are shifted onto the current
period's days, so that every bin compares like with like. Group-by names map to columns through
fixed tables; every user value (dates, filter values, integration ids) is a bound parameter.

The figures are those of the store's `costs` view (one line item per usage row and non-zero
credit column, priced by the price in effect on its date), but the query does not read the view:
pricing ten million line items one by one takes seconds. It sums the usage table's credit columns
per day and per needed column first, splits those sums into line items by service, and prices
each (integration, day) once. Decimal sums are exact, so the results are equal to the view's,
which tests/reports/test_report_query.py checks; both are built from
`usage_columns.COST_COLUMNS_SQL`.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Literal

import duckdb

from circlecost.errors import CirclecostError
from circlecost.usage_columns import (
    COST_COLUMNS_SQL,
    CREDIT_SERVICES,
    DAILY_COST_COLUMNS,
    LINE_ITEM_SERVICE,
    PRESENT_SUFFIX,
    USAGE_DATE_SQL,
)
from circlecost.virtual_tags import GROUP_PREFIX, group_expression, is_virtual, virtual_columns
from circlecost.vocabulary import PERIODS, TAG_COLUMNS
from circlecost.vql import COST_FIELDS, VirtualColumns, compile_filter

# Group-by name -> column of the costs view.
DIMENSIONS: dict[str, str] = {
    **{name.removeprefix("costs."): column for name, column in COST_FIELDS.items()},
    "billing_account_id": "billing_account_id",
    "account_id": "account_id",
}
BINS = ("day", "week", "month", "quarter", "cumulative")

# Costs-view column -> its SQL over one usage row; `service`, `date` and the figures come from
# the split into line items.
USAGE_COLUMNS_SQL: dict[str, str] = {
    column: sql
    for column, sql in COST_COLUMNS_SQL.items()
    if sql not in (LINE_ITEM_SERVICE, USAGE_DATE_SQL)
}
BIN_SQL = {
    "day": "day",
    "cumulative": "day",
    "week": "date_trunc('week', day)::DATE",
    "month": "date_trunc('month', day)::DATE",
    "quarter": "date_trunc('quarter', day)::DATE",
}
# Bins that can start before the period does; their first bin is labelled with the period's
# first day instead (a report from a Wednesday has its first week start on that Wednesday).
CLIPPED_BINS = ("week", "month", "quarter")
BIN_MONTHS = {"month": 1, "quarter": 3}
_WORD = re.compile(r"\b[a-z_]+\b")

# Reports cover days in [EARLIEST_DAY, LATEST_DAY]. CircleCI began in 2011, so every real cost
# is inside; a year like 0001 or 9999 is a typo, and its previous period is not even a date.
EARLIEST_DAY = date(2000, 1, 1)
LATEST_DAY = date(2099, 12, 31)
# At most this many bins: five years of day bins (1,827) fit. Beyond it a chart has less than
# half a pixel per bar and the table thousands of lines; a wider bin shows more.
MAX_BINS = 2000

# The parameters, in order: the first and last days of the previous period and of the period,
# the integration ids (if any), the first day of the period and the months and days that move a
# previous day onto the day it is compared with, the first day of the period again (for
# `is_current`, then for clipping the bin if it is clipped), the values of each virtual tag
# grouped by, then the filter's values.
# Only column names from the fixed tables above are ever formatted into it.
_REPORT_SQL = """
WITH usage_sums AS (
    SELECT integration_id, {date} AS date{columns},
        {sums}
    FROM {source}
    WHERE ({date} BETWEEN ? AND ? OR {date} BETWEEN ? AND ?){scope}
    GROUP BY ALL
),
lines AS (
    SELECT integration_id, date{column_names}, item.service, item.credits
    FROM usage_sums CROSS JOIN LATERAL (VALUES
        {items}
    ) AS item(service, credits, present)
    WHERE item.present
),
day_prices AS ({day_prices}),
report_lines AS (
    SELECT lines.*, lines.credits * day_prices.usd_per_credit AS amount_usd,
        CASE WHEN lines.date < ?
            THEN CAST(lines.date + to_months(?) + to_days(?) AS DATE)
            ELSE lines.date END AS day
    FROM lines JOIN day_prices
        ON day_prices.integration_id = lines.integration_id AND day_prices.date = lines.date
)
SELECT date >= ? AS is_current{keys}, sum(credits), sum(amount_usd)
FROM report_lines
WHERE {filter}
GROUP BY ALL
"""


# The price in effect on each (integration, date) of a relation with those two columns: the
# latest price that took effect on or before the date (NULL before the first).
DAY_PRICES_SQL = """
    SELECT days.integration_id, days.date, price.usd_per_credit
    FROM (SELECT DISTINCT integration_id, date FROM {relation}) AS days
    ASOF LEFT JOIN prices AS price
        ON price.integration_id = days.integration_id AND days.date >= price.effective_from
"""


# Per credit column: its sum, and whether any row has a line item for it (credits that cancel
# out still make line items, and the view lists them).
_CREDIT_SUMS = ",\n        ".join(
    f"sum({name}) AS credits_{index}, bool_or({name} <> 0) AS present_{index}"
    for index, (name, _) in enumerate(CREDIT_SERVICES)
)
# The same over the daily rollup, which holds each day's sums and flags.
_DAILY_SUMS = ",\n        ".join(
    f"sum({name}) AS credits_{index}, bool_or({name}{PRESENT_SUFFIX}) AS present_{index}"
    for index, (name, _) in enumerate(CREDIT_SERVICES)
)
_LINE_ITEMS = ",\n        ".join(
    f"('{service}', credits_{index}, present_{index})"
    for index, (_, service) in enumerate(CREDIT_SERVICES)
)

ZERO = Decimal(0)
Figures = tuple[Decimal, Decimal]  # credits, amount in USD
Sums = dict[tuple[Any, ...], Figures]  # (bin?, *group values) -> figures


def dimension_column(name: str) -> str:
    """The costs-view column for a group-by name such as `service` or `tag:circleci:vcs_branch`."""
    if name in DIMENSIONS:
        return DIMENSIONS[name]
    if name.startswith("tag:") and name[4:] in TAG_COLUMNS:
        return TAG_COLUMNS[name[4:]]
    known = ", ".join([*DIMENSIONS, *(f"tag:{key}" for key in TAG_COLUMNS), "vtag:<key>"])
    raise CirclecostError(f"--group-by: unknown dimension '{name}'", hint=f"use one of: {known}")


def check_dimension(name: str) -> None:
    """Refuses an unknown group-by name; a `vtag:<key>` is checked against the store's virtual
    tags when the report runs."""
    if not (is_virtual(name) and len(name) > len(GROUP_PREFIX)):
        dimension_column(name)


# --- periods -------------------------------------------------------------------------------------


# What a period is compared with; `Period.previous` says how.
PeriodKind = Literal["rolling", "month", "month_to_date", "year_to_date"]
# Calendar kinds: how many months back their previous period lies.
CALENDAR_MONTHS: dict[str, int] = {"month": 1, "month_to_date": 1, "year_to_date": 12}


@dataclass(frozen=True)
class Period:
    """The days from `start` to `end`, both included, and the kind that decides the previous
    period (`last_month` is a "month", `this_month` "month_to_date", `year_to_date` itself, and
    every other period, --from/--to too, "rolling")."""

    start: date
    end: date  # inclusive
    kind: PeriodKind = "rolling"

    def __post_init__(self) -> None:
        if not fits_its_kind(self):
            raise ValueError(f"{self.start} .. {self.end} is not a {self.kind} period")

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        """The period this one is compared with; the one rule for all reports:

        - a calendar month (`last_month`): the whole month before it, whatever its length
          (October with September, March with February);
        - month or year to date (`this_month`, `year_to_date`): the same days one month or one
          year earlier, clipped to that month's length (31 March with 1..28 February);
        - rolling (`last_N_days`, `last_N_months`, --from/--to): as many days, ending the day
          before this period starts.
        """
        if self.kind == "rolling":
            return Period(self.start - timedelta(days=self.days), self.start - timedelta(days=1))
        months = CALENDAR_MONTHS[self.kind]
        start = add_months(self.start, -months)
        end = month_end(start) if self.kind == "month" else add_months(self.end, -months)
        return Period(start, end, self.kind)

    def previous_shift(self) -> tuple[int, int]:
        """(months, days) that move a day of `previous()` onto the day it is compared with:
        the same day a month or year later (the end of a shorter month when that day is
        missing: 29..31 January all fall on 28 February), or as many days later as this period
        is long."""
        if self.kind == "rolling":
            return 0, self.days
        return CALENDAR_MONTHS[self.kind], 0

    def as_dict(self) -> dict[str, str]:
        return {"from": self.start.isoformat(), "to": self.end.isoformat()}


def fits_its_kind(period: Period) -> bool:
    """Calendar kinds start on the first of a month (of January for a year) and stay in it."""
    start, end = period.start, period.end
    if period.kind == "month":
        return start.day == 1 and end == month_end(start)
    if period.kind == "month_to_date":
        return start.day == 1 and start <= end <= month_end(start)
    if period.kind == "year_to_date":
        return (start.month, start.day) == (1, 1) and start <= end and end.year == start.year
    return True


def month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def add_months(day: date, months: int) -> date:
    """The same day `months` later (or earlier), clamped to the end of a shorter month."""
    month_index = day.year * 12 + day.month - 1 + months
    year, month = divmod(month_index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def named_period(name: str, today: date) -> Period:
    """A named period: `last_month` is the whole previous month, every other one ends today.

    `last_N_months` starts the day after the same day N months ago, so it holds N months.
    """
    first_of_month = today.replace(day=1)
    if name == "this_month":
        return Period(first_of_month, today, "month_to_date")
    if name == "last_month":
        return Period(add_months(first_of_month, -1), first_of_month - timedelta(days=1), "month")
    if name == "last_7_days":
        return Period(today - timedelta(days=6), today)
    if name == "last_30_days":
        return Period(today - timedelta(days=29), today)
    if name in ("last_3_months", "last_6_months", "last_12_months"):
        months = int(name.split("_")[1])
        return Period(add_months(today, -months) + timedelta(days=1), today)
    if name == "year_to_date":
        return Period(date(today.year, 1, 1), today, "year_to_date")
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
    for option, day in (("--from", start), ("--to", end)):
        if not EARLIEST_DAY <= day <= LATEST_DAY:
            raise CirclecostError(
                f"{option} {day}: reports cover {EARLIEST_DAY} .. {LATEST_DAY}",
                hint=f"give {option} a day in that range",
            )
    if end < start:
        raise CirclecostError(f"--to {end} is before --from {start}", hint="swap the two dates")
    return Period(start, end)


# --- requests and reports ------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportRequest:
    period: Period
    group_by: tuple[str, ...] = ()
    bin: str | None = None
    filter: str | None = None
    integration_ids: tuple[str, ...] | None = None  # None: every integration

    def __post_init__(self) -> None:
        for name in self.group_by:
            check_dimension(name)
        if len(set(self.group_by)) < len(self.group_by):
            raise CirclecostError(
                f"--group-by: a dimension is repeated in {', '.join(self.group_by)}",
                hint="name each dimension once",
            )
        if self.bin is not None and self.bin not in BINS:
            raise CirclecostError(
                f"--bin: unknown bin '{self.bin}'", hint=f"use one of: {', '.join(BINS)}"
            )
        if self.bin is not None and bin_count(self.period, self.bin) > MAX_BINS:
            raise too_many_bins(self.period, self.bin)


def too_many_bins(period: Period, bin_name: str) -> CirclecostError:
    """The error for a period cut into more than MAX_BINS bins, naming a bin that fits."""
    widths = ("day", "week", "month", "quarter")  # cumulative bins are days, with no wider kin
    wider = widths[widths.index(bin_name) + 1 :] if bin_name in widths else ()
    fitting = [name for name in wider if bin_count(period, name) <= MAX_BINS]
    suggestion = (
        f"use --bin {fitting[0]} ({bin_count(period, fitting[0]):,} bins) or a shorter period"
        if fitting
        else "use a shorter period"
    )
    return CirclecostError(
        f"--bin {bin_name}: {period.start} .. {period.end} makes "
        f"{bin_count(period, bin_name):,} bins, more than the {MAX_BINS:,} a report shows",
        hint=suggestion,
    )


@dataclass
class Report:
    """Rows and total hold exact Decimals; `as_dict` gives the JSON view of them.

    Each row has `bin` (ISO date of the bin's first day, when binned), one key per group-by
    name (None when the line item has no value), `credits`, `amount_usd`, `previous_credits`,
    `previous_amount_usd` and `change_pct` (None when the previous amount is zero).
    With the cumulative bin, the figures of a row are running totals up to its day.
    """

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
            "rows": [json_ready(row) for row in self.rows],
            "total": json_ready(self.total),
        }


def json_ready(values: dict[str, Any]) -> dict[str, Any]:
    return {
        key: number(value) if isinstance(value, Decimal) else value for key, value in values.items()
    }


def build_report(
    connection: duckdb.DuckDBPyConnection,
    request: ReportRequest,
    virtual: VirtualColumns | None = None,
) -> Report:
    """The report; `virtual` replaces the store's virtual tags (to try rules not stored yet)."""
    current, previous = aggregate(connection, request, virtual)
    report = Report(request, total=figures(total_of(current), total_of(previous)))
    if request.bin == "cumulative":
        current, previous = running_totals(current, previous)
    for key in set(current) | set(previous):
        now, before = current.get(key, (ZERO, ZERO)), previous.get(key, (ZERO, ZERO))
        report.rows.append(row_dict(request, key, now, before))
    report.rows.sort(key=row_order(request))
    return report


# --- the query -----------------------------------------------------------------------------------


def aggregate(
    connection: duckdb.DuckDBPyConnection,
    request: ReportRequest,
    virtual: VirtualColumns | None = None,
) -> tuple[Sums, Sums]:
    """Figures per (bin?, *group values) of the period and of the previous period.

    Previous-period keys carry the bin of the current-period day they are compared with.
    """
    current: Sums = {}
    previous: Sums = {}
    if request.integration_ids is not None and not request.integration_ids:
        return current, previous  # a workspace without bindings sees nothing
    if virtual is None:
        virtual = virtual_columns(connection)
    sql, params = report_query(request, virtual)
    for is_current, *key, credits, amount in connection.execute(sql, params).fetchall():
        sums = current if is_current else previous
        sums[tuple(key)] = (Decimal(credits or 0), Decimal(amount or 0))
    return current, previous


def report_query(
    request: ReportRequest, virtual: VirtualColumns | None = None
) -> tuple[str, list[Any]]:
    """SQL and parameters; its rows are (is_current, bin?, *group values, credits, amount).
    `virtual` holds the store's virtual tags, which `vtag:<key>` and `vtags.<key>` name."""
    period, before = request.period, request.period.previous()
    virtual = virtual or {}
    groups: list[str] = []
    group_params: list[str] = []
    for name in request.group_by:
        if is_virtual(name):
            expression = group_expression(name, virtual)
            groups.append(expression.sql)
            group_params += expression.params
        else:
            groups.append(dimension_column(name))
    clipped = request.bin in CLIPPED_BINS
    bins = [BIN_SQL[request.bin]] if request.bin else []
    if clipped:  # the first bin starts with the period
        bins = [f"greatest({bins[0]}, ?::DATE)"]
    keys = bins + groups
    compiled = compile_filter(request.filter, virtual) if request.filter else None
    filter_sql = compiled.sql if compiled else "TRUE"
    columns = needed_columns([*groups, filter_sql])
    scope, scope_params = integration_scope(request.integration_ids)
    # The daily rollup holds the same sums in far fewer rows, unless a column needs the rows.
    daily = DAILY_COST_COLUMNS.issuperset(columns)
    sql = _REPORT_SQL.format(
        source="usage_daily" if daily else "usage",
        date="usage_date" if daily else USAGE_DATE_SQL,
        columns="".join(f", {USAGE_COLUMNS_SQL[column]} AS {column}" for column in columns),
        column_names="".join(f", {column}" for column in columns),
        sums=_DAILY_SUMS if daily else _CREDIT_SUMS,
        items=_LINE_ITEMS,
        scope=scope,
        keys="".join(f", {key} AS k{index}" for index, key in enumerate(keys)),
        filter=filter_sql,
        day_prices=DAY_PRICES_SQL.format(relation="usage_sums"),
    )
    params: list[Any] = [before.start, before.end, period.start, period.end, *scope_params]
    params += [period.start, *period.previous_shift(), period.start]
    params += [period.start] if clipped else []
    params += group_params
    params += compiled.params if compiled else ()
    return sql, params


def needed_columns(sql_parts: Iterable[str]) -> list[str]:
    """The usage-derived columns that group-by columns and the compiled filter refer to.

    Compiled filters hold only column names, keywords and `?`, so the words are the columns.
    """
    words = {word for part in sql_parts for word in _WORD.findall(part)}
    return [column for column in USAGE_COLUMNS_SQL if column in words]


def integration_scope(integration_ids: Sequence[str] | None) -> tuple[str, list[str]]:
    if integration_ids is None:
        return "", []
    marks = ", ".join("?" for _ in integration_ids)
    return f" AND integration_id IN ({marks})", list(integration_ids)


# --- rows ----------------------------------------------------------------------------------------


def running_totals(current: Sums, previous: Sums) -> tuple[Sums, Sums]:
    """Daily sums turned into running totals per group, on every day either period has costs.

    A group keeps its row (its total so far) on the days after its last cost, so a chart of
    the rows never drops back; the last day's totals add up to the period's total.
    """
    days = sorted({key[0] for key in current} | {key[0] for key in previous})
    running_now: dict[tuple[Any, ...], Figures] = {}
    running_before: dict[tuple[Any, ...], Figures] = {}
    now_rows: Sums = {}
    before_rows: Sums = {}
    groups = sorted({key[1:] for key in (*current, *previous)}, key=sort_key)
    for day in days:
        for group in groups:
            key = (day, *group)
            if key in current or group in running_now:
                running_now[group] = plus(running_now.get(group), current.get(key))
            if key in previous or group in running_before:
                running_before[group] = plus(running_before.get(group), previous.get(key))
            if group in running_now or group in running_before:
                now_rows[key] = running_now.get(group, (ZERO, ZERO))
                before_rows[key] = running_before.get(group, (ZERO, ZERO))
    return now_rows, before_rows


def plus(total: Figures | None, more: Figures | None) -> Figures:
    total, more = total or (ZERO, ZERO), more or (ZERO, ZERO)
    return total[0] + more[0], total[1] + more[1]


def total_of(sums: Sums) -> Figures:
    return (sum((v[0] for v in sums.values()), ZERO), sum((v[1] for v in sums.values()), ZERO))


def row_dict(
    request: ReportRequest, key: tuple[Any, ...], now: Figures, before: Figures
) -> dict[str, Any]:
    row: dict[str, Any] = {}
    values = list(key)
    if request.bin is not None:
        row["bin"] = values.pop(0).isoformat()
    row.update(zip(request.group_by, values, strict=True))
    row.update(figures(now, before))
    return row


def row_order(request: ReportRequest) -> Any:
    """Bins in time order; inside a bin the costliest group first, then by label."""
    names = columns_of(request)[1 if request.bin else 0 :]

    def order(row: dict[str, Any]) -> tuple[Any, ...]:
        labels = sort_key(tuple(row[name] for name in names))
        return (row.get("bin") or "", -row["amount_usd"], -row["previous_amount_usd"], labels)

    return order


def figures(now: Figures, before: Figures) -> dict[str, Any]:
    return {
        "credits": now[0],
        "amount_usd": now[1],
        "previous_credits": before[0],
        "previous_amount_usd": before[1],
        "change_pct": change(now[1], before[1]),
    }


def sort_key(key: tuple[Any, ...]) -> tuple[Any, ...]:
    """Orders group values with None (no value) last."""
    return tuple((value is None, "" if value is None else str(value)) for value in key)


def number(value: Decimal) -> int | float:
    """A JSON number: an int for whole values, else the nearest float."""
    return int(value) if value == value.to_integral_value() else float(value)


def change(now: Decimal, before: Decimal) -> float | None:
    """Percent change from `before`, one decimal; None when there is nothing to compare with."""
    if before == 0:
        return None
    return float(round((now - before) / before * 100, 1))


def group_label(value: Any) -> str:
    return "(none)" if value is None else str(value)


def columns_of(request: ReportRequest) -> Sequence[str]:
    return (["bin"] if request.bin else []) + list(request.group_by)


def bin_starts(period: Period, bin_name: str) -> list[date]:
    """The first day of every bin that overlaps the period, in order (weeks start on Monday);
    the first bin starts on the period's first day when its calendar week, month or quarter
    starts before it, as its rows are labelled."""
    if bin_name in ("day", "cumulative"):
        return [period.start + timedelta(days=offset) for offset in range(period.days)]
    if bin_name == "week":
        first = period.start - timedelta(days=period.start.weekday())
        starts = [first + timedelta(days=7 * n) for n in range(bin_count(period, bin_name))]
    else:
        months = BIN_MONTHS[bin_name]
        first = period.start.replace(month=(period.start.month - 1) // months * months + 1, day=1)
        starts = [add_months(first, months * n) for n in range(bin_count(period, bin_name))]
    return [max(start, period.start) for start in starts]


def bin_count(period: Period, bin_name: str) -> int:
    """How many bins `bin_starts` gives, counted without making them."""
    if bin_name in ("day", "cumulative"):
        return period.days
    if bin_name == "week":
        monday = period.start - timedelta(days=period.start.weekday())
        return (period.end - monday).days // 7 + 1
    months = BIN_MONTHS[bin_name]
    first, last = (day.year * 12 + day.month - 1 for day in (period.start, period.end))
    return last // months - first // months + 1
