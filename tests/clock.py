"""The suite's one clock.

Every test runs at SUITE_NOW (the root conftest moves the process clock there, ticking), so no
test depends on the real date. Date-sensitive tests also run at each of CALENDAR_EDGES: the days
on which month, year and leap-year arithmetic goes wrong. Code in a child process (the Pulumi
provider, the policy pack, the circlecost CLI) cannot be moved by time-machine; `child_env()`
gives it the same clock through CIRCLECOST_CLOCK_OFFSET_SECONDS.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from circlecost.settings import CLOCK_OFFSET_VARIABLE

# A plain mid-month weekday afternoon: far from every calendar edge.
SUITE_NOW = datetime(2026, 11, 25, 15, 30, 12, tzinfo=UTC)

# Afternoon instants on the days that break calendar arithmetic.
CALENDAR_EDGES: dict[str, datetime] = {
    "1st": datetime(2027, 3, 1, 15, 30, 12, tzinfo=UTC),
    "28th-of-february": datetime(2027, 2, 28, 15, 30, 12, tzinfo=UTC),
    "29th": datetime(2027, 1, 29, 15, 30, 12, tzinfo=UTC),
    "30th": datetime(2027, 4, 30, 15, 30, 12, tzinfo=UTC),
    "31st": datetime(2027, 3, 31, 15, 30, 12, tzinfo=UTC),
    "leap-day-2028": datetime(2028, 2, 29, 15, 30, 12, tzinfo=UTC),
    "31st-of-december": datetime(2026, 12, 31, 15, 30, 12, tzinfo=UTC),
    "1st-of-january": datetime(2027, 1, 1, 15, 30, 12, tzinfo=UTC),
}


def calendar_edges() -> list[object]:
    """`@pytest.mark.parametrize("now", calendar_edges())`: one case per edge day, named."""
    return [pytest.param(when, id=name) for name, when in CALENDAR_EDGES.items()]


def real_now() -> datetime:
    """The machine's real time, whatever the suite's clock says."""
    return time_machine.escape_hatch.datetime.datetime.now(UTC)


def offset_from_real_time() -> timedelta:
    return datetime.now(UTC) - real_now()


def child_env(later: timedelta = timedelta(0)) -> dict[str, str]:
    """Variables that put a child process's circlecost on this process's clock (plus `later`)."""
    seconds = (offset_from_real_time() + later).total_seconds()
    return {CLOCK_OFFSET_VARIABLE: f"{seconds:.3f}"}
