"""Named periods and date bins at every calendar edge, through the CLI's own clock.

A store holds one job a day costing one credit, for the 400 days up to the edge day, so each
report's figures can be counted by hand: a period's credits are its number of days, each bin
holds the days of the period that fall in it, and the previous figures count the days of the
previous period.
"""

from __future__ import annotations

import calendar
import gzip
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from circlecost import reports
from circlecost.settings import Settings
from circlecost.store import Store
from circlecost.usage_columns import COLUMN_NAMES
from circlecost.vocabulary import PERIODS
from circlecost.windows import split_by_month
from tests.clock import calendar_edges
from tests.conftest import Travel
from tests.support import ORG_ID, SAMPLE_PARTS

DAYS_OF_DATA = 400
CREDIT_COLUMNS = ("COMPUTE_CREDITS", "TOTAL_CREDITS")


def one_job_line() -> dict[str, str]:
    """The raw fields of a plain job line of the sample, by column."""
    with gzip.open(SAMPLE_PARTS[0], "rt", encoding="utf-8", newline="") as lines:
        next(lines), next(lines), next(lines)
        values = next(lines).rstrip("\n").split(",")
    return dict(zip(COLUMN_NAMES, values, strict=True))


def store_with_a_credit_a_day(folder: Path, today: date, days: int = DAYS_OF_DATA) -> Store:
    store = Store(folder / "costs.duckdb", writer_kind="pytest", lock_timeout=2.0)
    store.migrate()
    integration = store.insert_integration(
        ORG_ID, "sha256:calendar", organization_name="initech", base_price=Decimal("0.0006")
    )
    first = today - timedelta(days=days - 1)
    windows = split_by_month(
        datetime.combine(first, datetime.min.time(), tzinfo=UTC),
        datetime.combine(today, datetime.max.time(), tzinfo=UTC).replace(microsecond=0),
    )
    store.plan_windows(integration.id, windows)
    base = one_job_line()
    zero_credits = {column: "0" for column in COLUMN_NAMES if column.endswith("_CREDITS")}
    for number, window in enumerate(windows):
        lines = []
        day = window.first_day
        while day <= window.last_day:
            fields = {**base, **zero_credits, "JOB_RUN_DATE": day.isoformat()}
            fields.update(dict.fromkeys(CREDIT_COLUMNS, "1"))
            lines.append(",".join(fields.values()))
            day += timedelta(days=1)
        part = folder / f"part-{number}.csv.gz"
        part.write_bytes(
            gzip.compress(("\n".join([",".join(COLUMN_NAMES), *lines]) + "\n").encode())
        )
        store.replace_window_rows(integration.id, window, None, [part])
    return store


def bin_of(day: date, bin_name: str, period: reports.Period) -> date:
    """The first day of the bin holding `day`: its calendar week, month or quarter, from the
    period's first day on."""
    if bin_name == "week":
        first = day - timedelta(days=day.weekday())
    elif bin_name == "month":
        first = day.replace(day=1)
    else:  # quarter
        first = day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    return max(first, period.start)


def days_with_data(period: reports.Period, today: date) -> int:
    first_day_of_data = today - timedelta(days=DAYS_OF_DATA - 1)
    first, last = max(period.start, first_day_of_data), min(period.end, today)
    return max((last - first).days + 1, 0)


@pytest.mark.parametrize("now", calendar_edges())
def test_every_named_period_and_bin_counts_the_right_days_on_every_calendar_edge(
    now: datetime, travel: Travel, tmp_path: Path
) -> None:
    travel(now)
    store = store_with_a_credit_a_day(tmp_path, now.date())
    today = Settings().clock().date()  # the CLI resolves periods on this clock
    assert today == now.date()
    with store.reader() as con:
        for name in PERIODS:
            period = reports.resolve_period(None, None, name, today)
            assert period.start <= period.end <= today, name
            days = [period.start + timedelta(days=n) for n in range(period.days)]

            total = reports.build_report(con, reports.ReportRequest(period)).total
            assert total["credits"] == len(days), name
            previous_days = days_with_data(period.previous(), today)
            assert total["previous_credits"] == previous_days, name

            by_day = reports.build_report(con, reports.ReportRequest(period, bin="day"))
            assert [row["bin"] for row in by_day.rows] == [day.isoformat() for day in days]
            running = reports.build_report(con, reports.ReportRequest(period, bin="cumulative"))
            assert [row["credits"] for row in running.rows] == list(range(1, len(days) + 1))

            for bin_name in ("week", "month", "quarter"):
                binned = reports.build_report(con, reports.ReportRequest(period, bin=bin_name))
                wanted = Counter(bin_of(day, bin_name, period).isoformat() for day in days)
                got = {row["bin"]: row["credits"] for row in binned.rows}
                assert got == wanted, (name, bin_name)
                starts = [start.isoformat() for start in reports.bin_starts(period, bin_name)]
                assert starts == sorted(wanted), (name, bin_name)
                previous = sum(row["previous_credits"] for row in binned.rows)
                assert previous == previous_days, (name, bin_name)


def daily(month: str, days: range, before: dict[int, int]) -> list[tuple[str, int, int]]:
    """Day rows of one credit each, with `before` previous credits (1 unless listed)."""
    return [(f"{month}-{day:02}", 1, before.get(day, 1)) for day in days]


# (today, period, bin, rows as (bin, credits, previous credits))
COMPARED_ON_EDGES = [
    # February 2027 with the 31 days of January: 29..31 January fall on the 28th
    pytest.param(
        date(2027, 3, 1), "last_month", "day", daily("2027-02", range(1, 29), {28: 4}),
        id="1st-last-month-by-day",
    ),
    pytest.param(
        date(2027, 3, 1), "last_month", "month", [("2027-02-01", 28, 31)],
        id="1st-last-month-by-month",
    ),
    # 1..31 March with 1..28 February: 29..31 March have nothing to compare with
    pytest.param(
        date(2027, 3, 31), "this_month", "day",
        daily("2027-03", range(1, 32), {29: 0, 30: 0, 31: 0}),
        id="31st-this-month-by-day",
    ),
    # 1..29 February 2028 with 1..29 January 2028
    pytest.param(
        date(2028, 2, 29), "this_month", "week",
        [("2028-02-01", 6, 6), ("2028-02-07", 7, 7), ("2028-02-14", 7, 7),
         ("2028-02-21", 7, 7), ("2028-02-28", 2, 2)],
        id="leap-day-this-month-by-week",
    ),
    # 1 January .. 29 February 2028 with 1 January .. 28 February 2027
    pytest.param(
        date(2028, 2, 29), "year_to_date", "month",
        [("2028-01-01", 31, 31), ("2028-02-01", 29, 28)],
        id="leap-day-year-to-date-by-month",
    ),
    pytest.param(
        date(2027, 2, 28), "year_to_date", "quarter", [("2027-01-01", 59, 59)],
        id="28th-of-february-year-to-date-by-quarter",
    ),
    # December 2026 (from a Tuesday) with November: its 30 days fall on 1..30 December
    pytest.param(
        date(2027, 1, 1), "last_month", "week",
        [("2026-12-01", 6, 6), ("2026-12-07", 7, 7), ("2026-12-14", 7, 7),
         ("2026-12-21", 7, 7), ("2026-12-28", 4, 3)],
        id="1st-of-january-last-month-by-week",
    ),
    pytest.param(
        date(2027, 1, 1), "this_month", "day", [("2027-01-01", 1, 1)],
        id="1st-of-january-this-month-by-day",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("today", "name", "bin_name", "rows"), COMPARED_ON_EDGES)
def test_calendar_periods_put_the_previous_calendar_period_beside_each_bin(
    today: date, name: str, bin_name: str, rows: list[tuple[str, int, int]], tmp_path: Path
) -> None:
    period = reports.named_period(name, today)
    store = store_with_a_credit_a_day(tmp_path, today, (today - period.previous().start).days + 1)

    with store.reader() as con:
        report = reports.build_report(con, reports.ReportRequest(period, bin=bin_name))

    got = [(row["bin"], row["credits"], row["previous_credits"]) for row in report.rows]
    assert got == rows
    assert report.total["credits"] == sum(now for _, now, _ in rows)
    assert report.total["previous_credits"] == period.previous().days


@pytest.mark.parametrize("now", calendar_edges())
def test_named_periods_keep_their_shape_on_every_calendar_edge(now: datetime) -> None:
    today = now.date()
    first_of_month = today.replace(day=1)
    last_month = reports.named_period("last_month", today)
    assert last_month.end == first_of_month - timedelta(days=1)
    assert last_month.start == last_month.end.replace(day=1)
    this_month = reports.named_period("this_month", today)
    assert (this_month.start, this_month.end) == (first_of_month, today)
    assert reports.named_period("last_7_days", today).days == 7
    assert reports.named_period("last_30_days", today).days == 30
    assert reports.named_period("year_to_date", today).start == date(today.year, 1, 1)
    for months in (3, 6, 12):
        period = reports.named_period(f"last_{months}_months", today)
        assert period.end == today
        # starts the day after the same day `months` back (clipped to a shorter month's end)
        month_index = today.year * 12 + today.month - 1 - months
        back = period.start - timedelta(days=1)
        assert (back.year * 12 + back.month - 1) == month_index
        assert back.day == today.day or (
            back.day < today.day and (back + timedelta(days=1)).day == 1
        )


@pytest.mark.parametrize("now", calendar_edges())
def test_each_period_is_compared_with_the_previous_period_of_its_kind_on_every_calendar_edge(
    now: datetime,
) -> None:
    today = now.date()
    month_before = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    days_in_month_before = calendar.monthrange(month_before.year, month_before.month)[1]

    last_month = reports.named_period("last_month", today).previous()
    assert last_month.end == reports.named_period("last_month", today).start - timedelta(days=1)
    assert (last_month.start.day, last_month.end.day) == (
        1,
        calendar.monthrange(last_month.end.year, last_month.end.month)[1],
    )

    this_month = reports.named_period("this_month", today).previous()
    assert this_month.start == month_before
    assert this_month.end == month_before.replace(day=min(today.day, days_in_month_before))

    year_to_date = reports.named_period("year_to_date", today).previous()
    assert year_to_date.start == date(today.year - 1, 1, 1)
    leap_day = (today.month, today.day) == (2, 29)
    assert year_to_date.end == today.replace(year=today.year - 1, day=28 if leap_day else today.day)

    for name in ("last_7_days", "last_30_days", "last_3_months", "last_6_months", "last_12_months"):
        period = reports.named_period(name, today)
        assert period.previous().days == period.days, name
        assert period.previous().end == period.start - timedelta(days=1), name
