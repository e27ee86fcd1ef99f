"""Date bins, the previous period beside each bin, change in percent, cumulative totals."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

import pytest

from circlecost import reports
from circlecost.errors import CirclecostError

from .conftest import BuildReport
from .samples import credits_by, october_days

SECOND_HALF = reports.Period(date(2026, 10, 16), date(2026, 10, 31))  # previous: Sep 30..Oct 15
PRICE = Decimal("0.0006")


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def test_day_bins_hold_each_days_costs(build: BuildReport) -> None:
    report = build(bin="day")

    wanted = credits_by(lambda item: item.date.isoformat())
    assert {row["bin"]: row["credits"] for row in report.rows} == wanted
    assert [row["bin"] for row in report.rows] == sorted(wanted)


def test_week_bins_start_on_monday_except_the_first_which_starts_with_the_period(
    build: BuildReport,
) -> None:
    report = build(bin="week", group_by=("service",))  # 1 October 2026 is a Thursday

    first = date(2026, 10, 1)
    wanted = credits_by(lambda item: (max(monday(item.date), first).isoformat(), item.service))
    assert {(row["bin"], row["service"]): row["credits"] for row in report.rows} == wanted
    assert {row["bin"] for row in report.rows} == {
        "2026-10-01", "2026-10-05", "2026-10-12", "2026-10-19", "2026-10-26"
    }  # fmt: skip


def test_a_report_from_a_wednesday_labels_its_first_week_with_that_wednesday(
    build: BuildReport,
) -> None:
    period = reports.Period(date(2026, 10, 14), date(2026, 10, 27))  # Wednesday .. Tuesday

    report = build(period, bin="week")

    assert [(row["bin"], row["credits"]) for row in report.rows] == [
        ("2026-10-14", october_days(14, 18)),
        ("2026-10-19", october_days(19, 25)),
        ("2026-10-26", october_days(26, 27)),
    ]
    assert report.total["credits"] == october_days(14, 27)
    assert reports.bin_starts(period, "week") == [
        date(2026, 10, 14), date(2026, 10, 19), date(2026, 10, 26)
    ]  # fmt: skip


# 14 October .. 31 December (79 days) is compared with 27 July .. 13 October: 1..13 October
# lands on 19..31 December.
@pytest.mark.parametrize(
    ("bin_name", "labels", "rows"),
    [
        (
            "month",
            ["2026-10-14", "2026-11-01", "2026-12-01"],
            [("2026-10-14", (14, 31), None), ("2026-12-01", None, (1, 13))],
        ),
        ("quarter", ["2026-10-14"], [("2026-10-14", (14, 31), (1, 13))]),
    ],
)
def test_month_and_quarter_bins_that_start_before_the_period_start_with_it(
    build: BuildReport,
    bin_name: str,
    labels: list[str],
    rows: list[tuple[str, tuple[int, int] | None, tuple[int, int] | None]],
) -> None:
    period = reports.Period(date(2026, 10, 14), date(2026, 12, 31))

    report = build(period, bin=bin_name)

    figures = [(row["bin"], row["credits"], row["previous_credits"]) for row in report.rows]
    assert figures == [
        (label, october_days(*now) if now else 0, october_days(*before) if before else 0)
        for label, now, before in rows
    ]
    assert [start.isoformat() for start in reports.bin_starts(period, bin_name)] == labels


def test_quarter_bins_start_on_the_quarters_first_day(build: BuildReport) -> None:
    report = build(reports.Period(date(2026, 9, 1), date(2026, 12, 31)), bin="quarter")

    assert [(row["bin"], row["credits"]) for row in report.rows] == [
        ("2026-10-01", report.total["credits"])
    ]
    assert report.total["credits"] == 793487


def test_month_bins_compare_with_the_previous_period_shifted_onto_them(
    build: BuildReport,
) -> None:
    # Oct 16..Nov 15 (31 days) is compared with Sep 15..Oct 15: Oct 1..15 lands on Nov 1..15.
    report = build(reports.Period(date(2026, 10, 16), date(2026, 11, 15)), bin="month")

    first_half = credits_by(lambda item: item.date.day <= 15)[True]
    second_half = credits_by(lambda item: item.date.day > 15)[True]
    rows = {row["bin"]: row for row in report.rows}
    assert set(rows) == {"2026-10-16", "2026-11-01"}
    assert (rows["2026-10-16"]["credits"], rows["2026-10-16"]["previous_credits"]) == (
        second_half,
        0,
    )
    assert (rows["2026-11-01"]["credits"], rows["2026-11-01"]["previous_credits"]) == (
        0,
        first_half,
    )
    assert report.total["previous_credits"] == first_half


def test_day_bins_put_the_previous_period_beside_the_same_day_of_the_period(
    build: BuildReport,
) -> None:
    report = build(SECOND_HALF, bin="day")

    daily = credits_by(lambda item: item.date)
    for row in report.rows:
        day = date.fromisoformat(row["bin"])
        assert row["credits"] == daily.get(day, 0), day
        assert row["previous_credits"] == daily.get(day - timedelta(days=16), 0), day


def test_previous_period_totals_and_change_in_percent(build: BuildReport) -> None:
    report = build(SECOND_HALF, group_by=("service",))

    now = credits_by(lambda item: item.service, lambda item: item.date.day >= 16)
    before = credits_by(lambda item: item.service, lambda item: item.date.day <= 15)
    for row in report.rows:
        service = row["service"]
        assert row["previous_credits"] == before.get(service, 0)
        assert row["previous_amount_usd"] == before.get(service, 0) * PRICE
        if before.get(service):
            change = (now.get(service, 0) - before[service]) / before[service] * 100
            assert row["change_pct"] == float(round(change, 1))
        else:
            assert row["change_pct"] is None
    total_now, total_before = sum(now.values(), Decimal(0)), sum(before.values(), Decimal(0))
    assert report.total["previous_credits"] == total_before
    assert report.total["change_pct"] == float(
        round((total_now - total_before) / total_before * 100, 1)
    )


def test_a_group_seen_only_in_the_previous_period_keeps_its_row(build: BuildReport) -> None:
    # In the samples, Lease Overage has credits in the first half of October only.
    before = credits_by(lambda item: item.service, lambda item: item.date.day <= 15)
    now = credits_by(lambda item: item.service, lambda item: item.date.day >= 16)
    gone = sorted(set(before) - set(now))
    assert gone, "the samples have a service used only in the first half"

    report = build(SECOND_HALF, group_by=("service",), bin="month")

    rows = {row["service"]: row for row in report.rows}
    for service in gone:
        assert rows[service]["credits"] == 0
        assert rows[service]["previous_credits"] == before[service]
        assert rows[service]["change_pct"] == -100.0
    assert sum(row["previous_credits"] for row in report.rows) == report.total["previous_credits"]


def test_cumulative_rows_are_running_totals_per_group(build: BuildReport) -> None:
    report = build(group_by=("service",), bin="cumulative")

    daily = credits_by(lambda item: (item.date.isoformat(), item.service))
    running: dict[str, Decimal] = defaultdict(Decimal)
    started: set[str] = set()
    expected_rows = {}
    for day in sorted({day for day, _ in daily}):
        for (when, service), credits in daily.items():
            if when == day:
                running[service] += credits
                started.add(service)
        expected_rows.update({(day, service): running[service] for service in started})
    assert {(row["bin"], row["service"]): row["credits"] for row in report.rows} == expected_rows


def test_cumulative_total_is_the_period_total(build: BuildReport) -> None:
    cumulative = build(group_by=("service",), bin="cumulative")
    plain = build(group_by=("service",))

    assert cumulative.total == plain.total
    last_day = max(row["bin"] for row in cumulative.rows)
    last = {row["service"]: row["credits"] for row in cumulative.rows if row["bin"] == last_day}
    assert last == {row["service"]: row["credits"] for row in plain.rows}


def test_cumulative_previous_figures_are_running_totals_too(build: BuildReport) -> None:
    report = build(SECOND_HALF, bin="cumulative")

    previous = [row["previous_credits"] for row in report.rows]
    assert previous == sorted(previous)
    assert previous[-1] == report.total["previous_credits"]
    assert report.rows[-1]["credits"] == report.total["credits"]


def test_an_unknown_bin_is_refused() -> None:
    with pytest.raises(CirclecostError, match="unknown bin 'fortnight'"):
        reports.ReportRequest(SECOND_HALF, bin="fortnight")
