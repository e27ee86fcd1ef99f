"""The chart's series: every bin of the period on the x axis, the costliest keys, `other`."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from circlecost import render, reports

OCTOBER = reports.Period(date(2026, 10, 1), date(2026, 10, 31))


def hand_made(bin_name: str | None, rows: list[tuple[Any, ...]]) -> reports.Report:
    """A report over October grouped by service, from (bin, service, amount) rows."""
    request = reports.ReportRequest(OCTOBER, group_by=("service",), bin=bin_name)
    report = reports.Report(request)
    for bin_label, service, amount in rows:
        figures = reports.figures((Decimal(amount), Decimal(amount)), (Decimal(0), Decimal(0)))
        report.rows.append({"bin": bin_label, "service": service, **figures})
    return report


@pytest.mark.parametrize(
    ("bin_name", "first", "last", "count"),
    [
        ("day", date(2026, 10, 1), date(2026, 10, 31), 31),
        ("cumulative", date(2026, 10, 1), date(2026, 10, 31), 31),
        ("week", date(2026, 10, 1), date(2026, 10, 26), 5),  # 1 October is a Thursday
        ("month", date(2026, 10, 1), date(2026, 10, 1), 1),
        ("quarter", date(2026, 10, 1), date(2026, 10, 1), 1),
    ],
)
def test_bin_starts_cover_the_period(bin_name: str, first: date, last: date, count: int) -> None:
    starts = reports.bin_starts(OCTOBER, bin_name)

    assert (starts[0], starts[-1], len(starts)) == (first, last, count)


def test_bin_starts_of_a_long_period_step_by_calendar_months() -> None:
    period = reports.Period(date(2026, 1, 31), date(2026, 12, 30))

    months = reports.bin_starts(period, "month")
    assert months == [date(2026, 1, 31), *(date(2026, m, 1) for m in range(2, 13))]
    quarters = reports.bin_starts(period, "quarter")
    assert quarters == [date(2026, 1, 31), *(date(2026, m, 1) for m in (4, 7, 10))]


@pytest.mark.parametrize("bin_name", ["day", "week", "month", "quarter", "cumulative"])
def test_bin_count_is_the_number_of_bin_starts(bin_name: str) -> None:
    for first, last in [
        (date(2026, 10, 14), date(2026, 10, 14)),
        (date(2026, 10, 14), date(2026, 10, 19)),
        (date(2026, 12, 27), date(2027, 1, 4)),
        (date(2026, 1, 31), date(2028, 2, 29)),
    ]:
        period = reports.Period(first, last)
        assert reports.bin_count(period, bin_name) == len(reports.bin_starts(period, bin_name))


def test_a_chart_from_a_wednesday_labels_its_first_week_with_that_wednesday() -> None:
    wednesday = reports.Period(date(2026, 10, 14), date(2026, 10, 31))
    request = reports.ReportRequest(wednesday, group_by=("service",), bin="week")
    report = reports.Report(request)
    figures = reports.figures((Decimal(3), Decimal(3)), (Decimal(0), Decimal(0)))
    report.rows.append({"bin": "2026-10-14", "service": "Compute", **figures})

    series = render.chart_series(report)
    svg = render.chart_svg(report)

    assert series.bins == ["2026-10-14", "2026-10-19", "2026-10-26"]
    assert series.amounts == {("2026-10-14", "Compute"): 3.0}
    assert 'data-bin="2026-10-14"' in svg
    assert ">2026-10-14</text>" in svg
    assert "2026-10-12" not in svg


def test_days_without_costs_keep_their_place_on_the_axis() -> None:
    series = render.chart_series(hand_made("day", [("2026-10-03", "Compute", 5)]))

    assert len(series.bins) == 31
    assert series.amounts == {("2026-10-03", "Compute"): 5.0}


def test_running_totals_hold_on_days_without_costs() -> None:
    report = hand_made("cumulative", [("2026-10-03", "Compute", 5), ("2026-10-06", "Compute", 9)])

    series = render.chart_series(report)

    by_day = {day: amount for (day, _), amount in series.amounts.items()}
    assert [by_day.get(f"2026-10-0{day}") for day in range(2, 8)] == [None, 5, 5, 5, 9, 9]


def test_keys_beyond_the_palette_fold_into_other() -> None:
    rows = [(None, f"service-{n:02}", 100 - n) for n in range(12)]

    series = render.chart_series(hand_made(None, rows), most=4)

    assert series.keys == ["service-00", "service-01", "service-02", "other"]
    assert series.amounts[(series.bins[0], "other")] == sum(100 - n for n in range(3, 12))
    svg = render.chart_svg(hand_made(None, rows))
    assert svg.count('class="bar"') == len(render.PALETTE)
    assert render.OTHER_COLOUR in svg
