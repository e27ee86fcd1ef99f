"""Named periods against a fixed today, explicit ranges, and the previous period."""

from __future__ import annotations

from datetime import date

import pytest

from provider.errors import CirclecostError
from provider.reports import PERIODS, Period, named_period, resolve_period

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
    assert named_period(name, today) == Period(first, last)


def test_every_named_period_is_in_the_table() -> None:
    assert {name for name, *_ in NAMED} == set(PERIODS)


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
    ],
)
def test_a_bad_period_is_refused_with_a_clear_message(
    start: date | None, end: date | None, name: str | None, message: str
) -> None:
    with pytest.raises(CirclecostError, match=message):
        resolve_period(start, end, name, date(2026, 11, 15))
