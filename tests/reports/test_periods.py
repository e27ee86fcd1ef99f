"""Named periods against a fixed today, explicit ranges, the previous period, and the bounds."""

from __future__ import annotations

from datetime import date

import pytest

from circlecost.errors import CirclecostError
from circlecost.reports import (
    MAX_BINS,
    Period,
    ReportRequest,
    bin_count,
    named_period,
    resolve_period,
)
from circlecost.vocabulary import PERIODS

# (period, today, first day, last day)
NAMED = [
    ("this_month", date(2026, 11, 15), date(2026, 11, 1), date(2026, 11, 15)),
    ("last_month", date(2026, 11, 15), date(2026, 10, 1), date(2026, 10, 31)),
    ("last_7_days", date(2026, 11, 15), date(2026, 11, 9), date(2026, 11, 15)),
    ("last_30_days", date(2026, 11, 15), date(2026, 10, 17), date(2026, 11, 15)),
    ("last_3_months", date(2026, 11, 15), date(2026, 8, 16), date(2026, 11, 15)),
    ("last_6_months", date(2026, 11, 15), date(2026, 5, 16), date(2026, 11, 15)),
    ("last_12_months", date(2026, 11, 15), date(2025, 11, 16), date(2026, 11, 15)),
    ("year_to_date", date(2026, 11, 15), date(2026, 1, 1), date(2026, 11, 15)),
    # month and year edges
    ("this_month", date(2026, 1, 1), date(2026, 1, 1), date(2026, 1, 1)),
    ("last_month", date(2026, 1, 1), date(2025, 12, 1), date(2025, 12, 31)),
    ("last_month", date(2026, 3, 31), date(2026, 2, 1), date(2026, 2, 28)),
    ("last_month", date(2024, 3, 1), date(2024, 2, 1), date(2024, 2, 29)),
    ("last_3_months", date(2026, 3, 31), date(2026, 1, 1), date(2026, 3, 31)),
    ("last_3_months", date(2026, 5, 31), date(2026, 3, 1), date(2026, 5, 31)),
    ("last_12_months", date(2024, 2, 29), date(2023, 3, 1), date(2024, 2, 29)),
    ("year_to_date", date(2026, 1, 1), date(2026, 1, 1), date(2026, 1, 1)),
]


@pytest.mark.parametrize(("name", "today", "first", "last"), NAMED)
def test_named_periods_cover_the_documented_days(
    name: str, today: date, first: date, last: date
) -> None:
    period = named_period(name, today)

    assert (period.start, period.end) == (first, last)


def test_every_named_period_is_in_the_table() -> None:
    assert {name for name, *_ in NAMED} == set(PERIODS)


# (period, today, the period, the period it is compared with): calendar periods with the
# previous period of their kind, rolling ones with as many days just before.
COMPARED = [
    # a whole month with the whole month before, whatever their lengths
    ("last_month", "2026-11-25", "2026-10-01 .. 2026-10-31", "2026-09-01 .. 2026-09-30"),
    ("last_month", "2027-04-15", "2027-03-01 .. 2027-03-31", "2027-02-01 .. 2027-02-28"),
    ("last_month", "2027-03-31", "2027-02-01 .. 2027-02-28", "2027-01-01 .. 2027-01-31"),
    ("last_month", "2028-03-01", "2028-02-01 .. 2028-02-29", "2028-01-01 .. 2028-01-31"),
    ("last_month", "2027-01-01", "2026-12-01 .. 2026-12-31", "2026-11-01 .. 2026-11-30"),
    # the month so far with the same days of the month before, clipped to its length
    ("this_month", "2027-02-28", "2027-02-01 .. 2027-02-28", "2027-01-01 .. 2027-01-28"),
    ("this_month", "2028-02-29", "2028-02-01 .. 2028-02-29", "2028-01-01 .. 2028-01-29"),
    ("this_month", "2027-03-31", "2027-03-01 .. 2027-03-31", "2027-02-01 .. 2027-02-28"),
    ("this_month", "2028-03-30", "2028-03-01 .. 2028-03-30", "2028-02-01 .. 2028-02-29"),
    ("this_month", "2027-01-01", "2027-01-01 .. 2027-01-01", "2026-12-01 .. 2026-12-01"),
    # the year so far with the same span of the year before
    ("year_to_date", "2027-02-28", "2027-01-01 .. 2027-02-28", "2026-01-01 .. 2026-02-28"),
    ("year_to_date", "2028-02-29", "2028-01-01 .. 2028-02-29", "2027-01-01 .. 2027-02-28"),
    ("year_to_date", "2027-03-31", "2027-01-01 .. 2027-03-31", "2026-01-01 .. 2026-03-31"),
    ("year_to_date", "2028-03-01", "2028-01-01 .. 2028-03-01", "2027-01-01 .. 2027-03-01"),
    ("year_to_date", "2029-03-01", "2029-01-01 .. 2029-03-01", "2028-01-01 .. 2028-03-01"),
    ("year_to_date", "2027-01-01", "2027-01-01 .. 2027-01-01", "2026-01-01 .. 2026-01-01"),
    # rolling periods: the same length, ending the day before
    ("last_7_days", "2027-01-01", "2026-12-26 .. 2027-01-01", "2026-12-19 .. 2026-12-25"),
    ("last_30_days", "2027-02-28", "2027-01-30 .. 2027-02-28", "2026-12-31 .. 2027-01-29"),
    ("last_30_days", "2028-02-29", "2028-01-31 .. 2028-02-29", "2028-01-01 .. 2028-01-30"),
    ("last_3_months", "2028-02-29", "2027-11-30 .. 2028-02-29", "2027-08-30 .. 2027-11-29"),
    ("last_12_months", "2027-03-31", "2026-04-01 .. 2027-03-31", "2025-04-01 .. 2026-03-31"),
]


def span(period: Period) -> str:
    return f"{period.start} .. {period.end}"


@pytest.mark.parametrize(("name", "today", "period", "previous"), COMPARED)
def test_each_named_period_is_compared_with_the_previous_period_of_its_kind(
    name: str, today: str, period: str, previous: str
) -> None:
    got = named_period(name, date.fromisoformat(today))

    assert span(got) == period
    assert span(got.previous()) == previous


def test_the_comparison_table_covers_every_named_period_but_the_six_months() -> None:
    assert {name for name, *_ in COMPARED} == set(PERIODS) - {"last_6_months"}


@pytest.mark.parametrize(
    ("name", "today", "shift"),
    [
        ("last_month", date(2027, 3, 31), (1, 0)),
        ("this_month", date(2027, 3, 31), (1, 0)),
        ("year_to_date", date(2028, 2, 29), (12, 0)),
        ("last_7_days", date(2028, 2, 29), (0, 7)),
        ("last_3_months", date(2028, 2, 29), (0, 92)),
    ],
)
def test_previous_days_move_by_calendar_months_or_by_the_periods_length(
    name: str, today: date, shift: tuple[int, int]
) -> None:
    assert named_period(name, today).previous_shift() == shift


def test_an_explicit_whole_month_is_a_rolling_period() -> None:
    october = resolve_period(date(2026, 10, 1), date(2026, 10, 31), None, date(2026, 11, 25))

    assert october.previous() == Period(date(2026, 8, 31), date(2026, 9, 30))


@pytest.mark.parametrize(
    ("first", "last", "kind"),
    [
        (date(2026, 10, 2), date(2026, 10, 31), "month"),
        (date(2026, 10, 1), date(2026, 10, 30), "month"),
        (date(2026, 10, 1), date(2026, 11, 3), "month_to_date"),
        (date(2026, 2, 1), date(2026, 3, 1), "year_to_date"),
        (date(2026, 1, 1), date(2027, 1, 1), "year_to_date"),
    ],
)
def test_a_calendar_period_must_have_the_shape_of_its_kind(
    first: date, last: date, kind: str
) -> None:
    with pytest.raises(ValueError, match=f"is not a {kind} period"):
        Period(first, last, kind)  # type: ignore[arg-type]


# (period, previous period)
PREVIOUS = [
    (Period(date(2026, 10, 1), date(2026, 10, 31)), Period(date(2026, 8, 31), date(2026, 9, 30))),
    (Period(date(2026, 11, 1), date(2026, 11, 15)), Period(date(2026, 10, 17), date(2026, 10, 31))),
    (Period(date(2026, 3, 1), date(2026, 3, 1)), Period(date(2026, 2, 28), date(2026, 2, 28))),
    (Period(date(2026, 1, 1), date(2026, 12, 31)), Period(date(2025, 1, 1), date(2025, 12, 31))),
]


@pytest.mark.parametrize(("period", "previous"), PREVIOUS)
def test_the_previous_period_has_the_same_length_and_ends_the_day_before(
    period: Period, previous: Period
) -> None:
    assert period.previous() == previous
    assert previous.days == period.days


def test_an_explicit_range_is_taken_as_given() -> None:
    period = resolve_period(date(2026, 10, 3), date(2026, 10, 9), None, date(2026, 11, 15))

    assert period == Period(date(2026, 10, 3), date(2026, 10, 9))
    assert period.days == 7


@pytest.mark.parametrize(
    ("start", "end", "name", "message"),
    [
        (date(2026, 10, 1), None, "last_month", "either --period or --from/--to"),
        (None, None, None, "needs a period"),
        (date(2026, 10, 1), None, None, "needs a period"),
        (date(2026, 10, 9), date(2026, 10, 3), None, "before --from"),
        (None, None, "last_quarter", "unknown period 'last_quarter'"),
        (date(1, 1, 1), date(2026, 10, 3), None, "--from 0001-01-01: reports cover 2000-01-01"),
        (date(1999, 12, 31), date(2026, 10, 3), None, "--from 1999-12-31: reports cover"),
        (date(2026, 10, 1), date(9999, 12, 31), None, "--to 9999-12-31: reports cover"),
        (date(2026, 10, 1), date(2100, 1, 1), None, "--to 2100-01-01: reports cover"),
        (date(9999, 12, 31), date(1, 1, 1), None, "--from 9999-12-31: reports cover"),
    ],
)
def test_a_bad_period_is_refused_with_a_clear_message(
    start: date | None, end: date | None, name: str | None, message: str
) -> None:
    with pytest.raises(CirclecostError, match=message):
        resolve_period(start, end, name, date(2026, 11, 15))


def test_the_first_and_last_days_reports_cover_are_accepted() -> None:
    period = resolve_period(date(2000, 1, 1), date(2099, 12, 31), None, date(2026, 11, 15))

    assert period.days == 36525
    assert period.previous() == Period(date(1899, 12, 31), date(1999, 12, 31))


@pytest.mark.parametrize(
    ("first", "last", "bin_name", "message", "hint"),
    [
        (
            date(2020, 1, 1),
            date(2025, 12, 31),
            "day",
            "--bin day: 2020-01-01 .. 2025-12-31 makes 2,192 bins, more than the 2,000",
            "use --bin week (314 bins) or a shorter period",
        ),
        (
            date(2020, 1, 1),
            date(2025, 12, 31),
            "cumulative",
            "--bin cumulative: 2020-01-01 .. 2025-12-31 makes 2,192 bins",
            "use a shorter period",
        ),
        (
            date(2000, 1, 1),
            date(2099, 12, 31),
            "day",
            "makes 36,525 bins",
            "use --bin month (1,200 bins) or a shorter period",
        ),
        (
            date(2000, 1, 1),
            date(2099, 12, 31),
            "week",
            "--bin week: 2000-01-01 .. 2099-12-31 makes 5,219 bins",
            "use --bin month (1,200 bins) or a shorter period",
        ),
    ],
)
def test_a_report_of_more_bins_than_the_maximum_is_refused_with_a_bin_that_fits(
    first: date, last: date, bin_name: str, message: str, hint: str
) -> None:
    with pytest.raises(CirclecostError, match=message) as refused:
        ReportRequest(Period(first, last), bin=bin_name)

    assert refused.value.hint == hint


def test_five_years_of_day_bins_and_up_to_the_maximum_are_allowed() -> None:
    five_years = Period(date(2021, 1, 1), date(2025, 12, 31))
    most = Period(date(2020, 1, 1), date(2025, 6, 22))

    assert ReportRequest(five_years, bin="day").period.days == 1826
    assert bin_count(most, "day") == MAX_BINS == 2000
    assert ReportRequest(most, bin="cumulative").bin == "cumulative"
    assert ReportRequest(Period(date(2000, 1, 1), date(2099, 12, 31))).bin is None
