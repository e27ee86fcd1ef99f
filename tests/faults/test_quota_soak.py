"""Simulated hours on the emulator's clock: an integration needing more export jobs than
CircleCI's hourly quota allows stays within the quota, is never answered 429, and completes in
the following hours with exactly the rows CircleCI serves."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from provider import service
from provider.emulator import Emulator
from provider.emulator.request_log import USAGE_EXPORT_CREATE, USAGE_EXPORT_GET
from provider.importer import ImportSettings
from tests.faults.support import (
    SCOREBOARD,
    assert_exactly_once,
    integration_inputs,
    org_and_token,
    served,
    total,
)

pytestmark = [pytest.mark.faults, pytest.mark.emulator]

QUOTA = 10


@pytest.fixture
def quota_emulator() -> Iterator[Emulator]:
    # Jobs take half a minute of emulator time, as small exports do on CircleCI.
    with Emulator(seed=23, job_delay=30.0, quota_per_hour=QUOTA) as running:
        running.clock.freeze()
        yield running


def test_thirteen_windows_stay_within_ten_requests_an_hour_and_complete_in_the_next_hour(
    quota_emulator: Emulator, tmp_path: Path
) -> None:
    emulator = quota_emulator
    org_id, token = org_and_token(emulator)
    started = emulator.clock.now()
    slept: list[float] = []

    def sleep_on_the_emulator_clock(seconds: float) -> None:
        slept.append(seconds)
        emulator.clock.advance(seconds)

    settings = service.Settings(
        store_path=tmp_path / "store" / "costs.duckdb",
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
    after_create = emulator.clock.now() - started
    finished = service.sync_integrations(settings, token)
    elapsed = emulator.clock.now() - started

    store = settings.store()
    windows = store.list_windows(integration_id)
    got = assert_exactly_once(emulator, store, integration_id)
    posts_per_hour = emulator.requests.max_per_hour(org_id=org_id, kind=USAGE_EXPORT_CREATE)
    gets_per_hour = emulator.requests.max_per_hour(org_id=org_id, kind=USAGE_EXPORT_GET)
    SCOREBOARD.fault(
        f"quota soak: {len(windows)} windows, {QUOTA}/h quota",
        f"(a) {finished['status']} after {elapsed}; max {posts_per_hour} POST, "
        f"{gets_per_hour} GET per hour; {emulator.requests.count(status=429)} x 429",
        total(served(emulator, store, integration_id)),
        got,
    )
    assert len(windows) == 13
    assert first_hour["status"] == "Importing"  # 13 windows cannot fit in one hour's quota
    assert first_hour["status_detail"].startswith("10 of 13 window(s) imported; next step at")
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

    settings = service.Settings(
        store_path=tmp_path / "store" / "costs.duckdb",
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
