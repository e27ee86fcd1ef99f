"""Named periods and date bins at every calendar edge, through the CLI's own clock.

A store holds one job a day costing one credit, for the 400 days up to the edge day, so each
report's figures can be counted by hand: a period's credits are its number of days, and each bin
holds the days of the period that fall in it.
"""

from __future__ import annotations

import gzip
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from provider import reports
from provider.service import Settings
from provider.store import Store
from provider.usage_columns import COLUMN_NAMES
from provider.windows import split_by_month
from tests.clock import calendar_edges
from tests.conftest import Travel

from .samples import ORG_ID, SAMPLE_PARTS

DAYS_OF_DATA = 400
CREDIT_COLUMNS = ("COMPUTE_CREDITS", "TOTAL_CREDITS")


def one_job_line() -> dict[str, str]:
    """The raw fields of a plain job line of the sample, by column."""
    with gzip.open(SAMPLE_PARTS[0], "rt", encoding="utf-8", newline="") as lines:
        next(lines), next(lines), next(lines)
        values = next(lines).rstrip("\n").split(",")
    return dict(zip(COLUMN_NAMES, values, strict=True))


def store_with_a_credit_a_day(folder: Path, today: date) -> Store:
    store = Store(folder / "costs.duckdb", writer_kind="pytest", lock_timeout=2.0)
    store.migrate()
    integration = store.insert_integration(
        ORG_ID, "sha256:calendar", organization_name="initech", base_price=Decimal("0.0006")
    )
    first = today - timedelta(days=DAYS_OF_DATA - 1)
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


def bin_of(day: date, bin_name: str) -> date:
    if bin_name == "week":
        return day - timedelta(days=day.weekday())
    if bin_name == "month":
        return day.replace(day=1)
    return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)  # quarter


@pytest.mark.parametrize("now", calendar_edges())
def test_every_named_period_and_bin_counts_the_right_days_on_every_calendar_edge(
    now: datetime, travel: Travel, tmp_path: Path
) -> None:
    travel(now)
    store = store_with_a_credit_a_day(tmp_path, now.date())
    today = Settings().clock().date()  # the CLI resolves periods on this clock
    assert today == now.date()
    with store.reader() as con:
        for name in reports.PERIODS:
            period = reports.resolve_period(None, None, name, today)
            assert period.start <= period.end <= today, name
            days = [period.start + timedelta(days=n) for n in range(period.days)]

            total = reports.build_report(con, reports.ReportRequest(period)).total
            assert total["credits"] == len(days), name

            by_day = reports.build_report(con, reports.ReportRequest(period, bin="day"))
            assert [row["bin"] for row in by_day.rows] == [day.isoformat() for day in days]
            running = reports.build_report(con, reports.ReportRequest(period, bin="cumulative"))
            assert [row["credits"] for row in running.rows] == list(range(1, len(days) + 1))

            for bin_name in ("week", "month", "quarter"):
                binned = reports.build_report(con, reports.ReportRequest(period, bin=bin_name))
                wanted = Counter(bin_of(day, bin_name).isoformat() for day in days)
                got = {row["bin"]: row["credits"] for row in binned.rows}
                assert got == wanted, (name, bin_name)
                starts = [start.isoformat() for start in reports.bin_starts(period, bin_name)]
                assert starts == sorted(wanted), (name, bin_name)


@pytest.mark.parametrize("now", calendar_edges())
def test_named_periods_keep_their_shape_on_every_calendar_edge(now: datetime) -> None:
    today = now.date()
    first_of_month = today.replace(day=1)
    last_month = reports.named_period("last_month", today)
    assert last_month.end == first_of_month - timedelta(days=1)
    assert last_month.start == last_month.end.replace(day=1)
    assert reports.named_period("this_month", today) == reports.Period(first_of_month, today)
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
