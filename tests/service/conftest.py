"""An emulator on loopback and service settings pointing at it, with fast polling."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from circlecost import service
from circlecost.engine import SharedStore
from circlecost.importer import ImportSettings
from circlecost.store import Store
from circlecost.usage_columns import CREDIT_SERVICES
from circlecost.windows import backfill_windows
from circlecost_emulator import Emulator
from tests.emulator.helpers import credit
from tests.engines import ENGINES, store_location

FAST = ImportSettings(
    first_poll_after=timedelta(0),
    poll_every=timedelta(seconds=0.05),
    retry_failed_window_after=timedelta(seconds=0.05),
)


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(seed=11, job_delay=0.0, quota_per_hour=None) as running:
        yield running


@pytest.fixture(params=ENGINES)
def settings(
    emulator: Emulator, tmp_path: Path, request: pytest.FixtureRequest
) -> service.Settings:
    """Settings for a new store on each engine; a shared one is created with ana as its owner
    (as `circlecost store init --owner ana` does), an embedded one adopts ana as its first actor."""
    location = store_location(request, request.param, tmp_path)
    if isinstance(location, SharedStore):
        Store(location).initialize("ana")
    return service.Settings(
        store_location=location,
        circleci_url=emulator.base_url,
        actor="ana",
        allow_loopback_downloads=True,
        imports=FAST,
        create_timeout=timedelta(seconds=60),
        binding_timeout=timedelta(seconds=0),
    )


def org_and_token(emulator: Emulator, index: int = 0) -> tuple[str, str]:
    org_id = emulator.organizations[index]["id"]
    return org_id, emulator.org_admin_tokens[org_id]


def expected_credits(
    emulator: Emulator, org_id: str, months: int, now: datetime | None = None
) -> tuple[int, Decimal]:
    """Rows and TOTAL_CREDITS the emulator serves for the backfill windows, from its own data."""
    rows = 0
    credits = Decimal(0)
    for window in backfill_windows(now or emulator.clock.now(), months):
        for row in emulator.expected_rows(org_id, window.start, window.end):
            rows += 1
            credits += sum((credit(row, column) for column in CREDIT_COLUMNS), Decimal(0))
    return rows, credits


CREDIT_COLUMNS = tuple(column for column, _service in CREDIT_SERVICES)  # the 8 components


def as_actor(settings: service.Settings, actor: str) -> service.Settings:
    return replace(settings, actor=actor)
