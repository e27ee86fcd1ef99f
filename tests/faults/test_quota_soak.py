"""Simulated hours on the emulator's clock: an integration needing more export jobs than
CircleCI's hourly quota allows stays within the quota, is never answered 429, and completes in
the following hours with exactly the rows CircleCI serves."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest

from circlecost import service
from circlecost.importer import ImportSettings
from circlecost.settings import Settings
from circlecost_emulator import Emulator
from circlecost_emulator.request_log import USAGE_EXPORT_CREATE, USAGE_EXPORT_GET
from tests.clock import calendar_edges
from tests.conftest import Travel
from tests.faults.support import (
    SCOREBOARD,
    assert_exactly_once,
    integration_inputs,
    served,
    total,
)
from tests.support import org_and_token

QUOTA = 10


@pytest.fixture
def quota_emulator() -> Iterator[Emulator]:
    # Jobs take half a minute of emulator time, as small exports do on CircleCI.
    with Emulator(seed=23, job_delay=30.0, quota_per_hour=QUOTA) as running:
        running.clock.freeze()
        yield running


def months_from(first: date, last: date) -> int:
    """How many calendar months [first, last] touches."""
    return (last.year - first.year) * 12 + last.month - first.month + 1


def first_backfill_day(today: date) -> date:
    """CircleCI's rule for a 12-month backfill, restated independently of circlecost.windows:
    the 1st of the month twelve months back, unless that is too close to CircleCI's one-year
    limit; then the first whole day that stays more than a day inside it."""
    twelve_months_back = today.replace(year=today.year - 1, day=1)
    inside_the_limit = today - timedelta(days=363)
    return max(twelve_months_back, inside_the_limit)


@pytest.mark.parametrize("now", calendar_edges())
def test_a_twelve_month_backfill_stays_within_ten_requests_an_hour_and_completes_later(
    quota_emulator: Emulator, tmp_path: Path, travel: Travel, now: datetime
) -> None:
    travel(now)
    emulator = quota_emulator
    emulator.clock.freeze(now)
    org_id, token = org_and_token(emulator)
    slept: list[float] = []

    def sleep_on_the_emulator_clock(seconds: float) -> None:
        slept.append(seconds)
        emulator.clock.advance(seconds)

    settings = Settings(
        store_location=tmp_path / "store" / "costs.duckdb",
        circleci_url=emulator.base_url,
        actor="ana",
        allow_loopback_downloads=True,
        imports=ImportSettings(posts_per_hour=QUOTA, gets_per_hour=QUOTA),
        create_timeout=timedelta(hours=1),
        clock=emulator.clock.now,
        sleep=sleep_on_the_emulator_clock,
    )

    integration_id, first_hour = service.create_integration(
        settings, integration_inputs(org_id, token, backfill_months=12)
    )
    after_create = emulator.clock.now() - now
    finished = service.sync_integrations(settings, token)
    elapsed = emulator.clock.now() - now

    store = settings.store()
    windows = [planned.window for planned in store.list_windows(integration_id)]
    got = assert_exactly_once(emulator, store, integration_id)
    posts_per_hour = emulator.requests.max_per_hour(org_id=org_id, kind=USAGE_EXPORT_CREATE)
    gets_per_hour = emulator.requests.max_per_hour(org_id=org_id, kind=USAGE_EXPORT_GET)
    SCOREBOARD.fault(
        f"quota soak from {now:%Y-%m-%d}: {len(windows)} windows, {QUOTA}/h quota",
        f"(a) {finished['status']} after {elapsed}; max {posts_per_hour} POST, "
        f"{gets_per_hour} GET per hour; {emulator.requests.count(status=429)} x 429",
        total(served(emulator, store, integration_id)),
        got,
    )
    # One window per calendar month from the first allowed day up to now, none in the future.
    first_day = first_backfill_day(now.date())
    assert windows[0].start == datetime.combine(first_day, time.min, tzinfo=UTC)
    assert windows[-1].end == now.replace(microsecond=0) - timedelta(minutes=1)
    assert len(windows) == months_from(first_day, now.date())
    assert now - windows[0].start < timedelta(days=365)  # CircleCI's limit
    # 12 or 13 windows cannot fit in one hour's quota of 10 POSTs.
    assert first_hour["status"] == "Importing"
    assert first_hour["status_detail"].startswith(
        f"{QUOTA} of {len(windows)} window(s) imported; next step at"
    )
    assert after_create <= timedelta(hours=1)
    assert finished["status"] == "Stable"
    assert posts_per_hour <= QUOTA
    assert gets_per_hour <= QUOTA
    assert emulator.requests.count(status=429) == 0
    assert emulator.requests.count(org_id=org_id, kind=USAGE_EXPORT_CREATE) == len(windows)
    assert timedelta(hours=1) < elapsed < timedelta(hours=3)
    assert sum(slept) == pytest.approx(elapsed.total_seconds())  # every wait was simulated


def test_a_retry_after_is_waited_on_the_same_clock_as_the_engine(
    quota_emulator: Emulator, tmp_path: Path
) -> None:
    emulator = quota_emulator
    org_id, token = org_and_token(emulator)
    slept: list[float] = []

    def sleep_on_the_emulator_clock(seconds: float) -> None:
        slept.append(seconds)
        emulator.clock.advance(seconds)

    settings = Settings(
        store_location=tmp_path / "store" / "costs.duckdb",
        circleci_url=emulator.base_url,
        actor="ana",
        allow_loopback_downloads=True,
        create_timeout=timedelta(0),
        clock=emulator.clock.now,
        sleep=sleep_on_the_emulator_clock,
    )
    integration_id, _ = service.create_integration(
        settings, integration_inputs(org_id, token, backfill_months=0)
    )
    emulator.faults.set(rate_limit_storm=2, storm_retry_after=30)

    finished = service.sync_integrations(
        replace(settings, create_timeout=timedelta(hours=1)), token
    )

    assert finished["status"] == "Stable"
    assert_exactly_once(emulator, settings.store(), integration_id)
    assert slept.count(30.0) == 2  # the client's waits for Retry-After moved the same clock
    polls = emulator.requests.records(org_id=org_id, kind=USAGE_EXPORT_GET)
    assert [poll.status for poll in polls] == [429, 429, 200]
    assert polls[2].at - polls[0].at == timedelta(seconds=60)
