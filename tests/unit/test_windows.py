"""Export windows: calendar months, CircleCI's limits, refresh of the trailing days."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

import pytest

from circlecost.windows import Window, backfill_windows, refresh_windows
from tests.clock import calendar_edges

NOW = datetime(2026, 11, 25, 15, 30, 12, tzinfo=UTC)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_backfill_of_three_months_asks_for_whole_calendar_months_and_this_month_so_far() -> None:
    assert backfill_windows(NOW, 3) == [
        Window(utc(2026, 8, 1), utc(2026, 8, 31, 23, 59, 59)),
        Window(utc(2026, 9, 1), utc(2026, 9, 30, 23, 59, 59)),
        Window(utc(2026, 10, 1), utc(2026, 10, 31, 23, 59, 59)),
        Window(utc(2026, 11, 1), utc(2026, 11, 25, 15, 29, 12)),
    ]


def test_backfill_of_zero_months_imports_this_month_so_far() -> None:
    assert backfill_windows(NOW, 0) == [Window(utc(2026, 11, 1), utc(2026, 11, 25, 15, 29, 12))]


@pytest.mark.parametrize("months", range(13))
def test_every_window_respects_circleci_limits(months: int) -> None:
    for window in backfill_windows(NOW, months):
        assert window.end - window.start <= timedelta(days=31)
        assert window.start >= NOW - timedelta(days=365)
        assert window.end < NOW
        assert window.start <= window.end


def test_twelve_months_back_starts_no_more_than_a_year_ago() -> None:
    windows = backfill_windows(NOW, 12)
    assert windows[0].start == utc(2025, 11, 27)
    assert windows[-1].end == utc(2026, 11, 25, 15, 29, 12)


def test_windows_cover_the_range_without_gaps_or_overlaps() -> None:
    windows = backfill_windows(NOW, 12)
    for earlier, later in itertools.pairwise(windows):
        assert later.start - earlier.end == timedelta(seconds=1)


def test_backfill_months_outside_0_to_12_is_refused() -> None:
    with pytest.raises(ValueError, match="0 to 12"):
        backfill_windows(NOW, 13)


def test_refresh_reimports_the_month_holding_the_last_three_days() -> None:
    assert refresh_windows(NOW, date(2026, 11, 25)) == [
        Window(utc(2026, 11, 1), utc(2026, 11, 25, 15, 29, 12))
    ]


def test_refresh_after_a_gap_starts_at_the_month_of_the_last_imported_day() -> None:
    assert refresh_windows(NOW, date(2026, 9, 30)) == [
        Window(utc(2026, 9, 1), utc(2026, 9, 30, 23, 59, 59)),
        Window(utc(2026, 10, 1), utc(2026, 10, 31, 23, 59, 59)),
        Window(utc(2026, 11, 1), utc(2026, 11, 25, 15, 29, 12)),
    ]


def test_refresh_early_in_a_month_reaches_into_the_previous_month() -> None:
    now = utc(2026, 12, 1, 0, 30)
    assert refresh_windows(now, date(2026, 11, 30)) == [
        Window(utc(2026, 11, 1), utc(2026, 11, 30, 23, 59, 59)),
        Window(utc(2026, 12, 1), utc(2026, 12, 1, 0, 29)),
    ]


def test_refresh_windows_are_the_backfill_windows_of_the_same_months() -> None:
    backfill = set(backfill_windows(NOW, 3))
    for window in refresh_windows(NOW, date(2026, 10, 2)):
        assert any(window.start == planned.start for planned in backfill)


# --- the same rules on every calendar edge -------------------------------------------------------


@pytest.mark.parametrize("now", calendar_edges())
@pytest.mark.parametrize("months", [0, 1, 3, 11, 12])
def test_backfill_on_every_calendar_edge_is_whole_months_within_circleci_limits(
    now: datetime, months: int
) -> None:
    windows = backfill_windows(now, months)
    assert windows[-1].end == now.replace(microsecond=0) - timedelta(minutes=1)
    assert windows[-1].start == datetime(now.year, now.month, 1, tzinfo=UTC)
    for earlier, later in itertools.pairwise(windows):
        assert later.start - earlier.end == timedelta(seconds=1)  # no gap, no overlap
        assert later.start.day == 1  # every window but the first starts a calendar month
    for window in windows:
        assert window.start <= window.end < now
        assert window.end - window.start <= timedelta(days=31)
        assert window.start.month == window.end.month  # never across a month boundary
        assert now - window.start < timedelta(days=365)  # CircleCI's one-year limit
    assert len(windows) <= months + 1


@pytest.mark.parametrize("now", calendar_edges())
def test_refresh_on_every_calendar_edge_covers_the_trailing_three_days(now: datetime) -> None:
    windows = refresh_windows(now, now.date())
    trailing = now.date() - timedelta(days=3)
    assert windows[0].start == datetime(trailing.year, trailing.month, 1, tzinfo=UTC)
    assert windows[-1].end == now.replace(microsecond=0) - timedelta(minutes=1)
    starts = {window.start for window in backfill_windows(now, 2)}
    assert {window.start for window in windows} <= starts  # the same ledger windows
