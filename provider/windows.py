"""Which date ranges to ask CircleCI for: backfill and refresh windows.

CircleCI's usage export takes an inclusive [start, end] of at most 31 days, starting no more
than a year ago and not ending in the future. circlecost asks for calendar months (each fits),
clipped to those limits, so every window is the same on every run and a ledger can key on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

# CircleCI refuses an end in the future; a minute of margin absorbs clock skew.
END_MARGIN = timedelta(minutes=1)
# CircleCI refuses a start more than a year back; a day of margin keeps retries valid.
OLDEST_START = timedelta(days=364)
REFRESH_TRAILING_DAYS = 3


@dataclass(frozen=True, order=True)
class Window:
    """An inclusive export window, both ends UTC, whole seconds."""

    start: datetime
    end: datetime

    @property
    def first_day(self) -> date:
        return self.start.date()

    @property
    def last_day(self) -> date:
        return self.end.date()

    def __str__(self) -> str:
        return f"{self.start:%Y-%m-%d}..{self.end:%Y-%m-%d}"


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def latest_end(now: datetime) -> datetime:
    return (now - END_MARGIN).replace(microsecond=0)


def earliest_start(now: datetime) -> datetime:
    return midnight((now - OLDEST_START).date() + timedelta(days=1))


def split_by_month(start: datetime, end: datetime) -> list[Window]:
    """Calendar-month windows covering [start, end]; each ≤ 31 days."""
    windows = []
    cursor = start
    while cursor <= end:
        boundary = midnight(next_month(cursor.date()))
        windows.append(Window(cursor, min(boundary - timedelta(seconds=1), end)))
        cursor = boundary
    return windows


def backfill_windows(now: datetime, months: int) -> list[Window]:
    """The first import: this month so far plus `months` whole months before it."""
    if not 0 <= months <= 12:
        raise ValueError(f"backfill_months must be 0 to 12, not {months}")
    first = month_start(now.date())
    for _ in range(months):
        first = month_start(first - timedelta(days=1))
    start = max(midnight(first), earliest_start(now))
    return split_by_month(start, latest_end(now))


def refresh_windows(now: datetime, imported_through: date | None) -> list[Window]:
    """The daily refresh: the months holding the trailing days (CircleCI completes them late)
    and anything newer than the data already imported.

    Whole calendar months are asked for again, so each refresh window is the same ledger window
    as the backfill's and replaces its rows exactly (rows without any date cannot be told apart
    by day).
    """
    trailing = now.date() - timedelta(days=REFRESH_TRAILING_DAYS)
    start_day = trailing if imported_through is None else min(trailing, imported_through)
    start = max(midnight(month_start(start_day)), earliest_start(now))
    return split_by_month(start, latest_end(now))
